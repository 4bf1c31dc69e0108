//! Loom models of the ticket counter: every interleaving of two or three customers taking a
//! ticket at the same moment, explored exhaustively.
//!
//! Run optimised (the workspace's `loom` profile), with the crate's `loom` feature (which swaps
//! `src/sync.rs` to loom's types):
//! `cargo test -p j07-ticket --profile loom --features loom --test loom`.
//!
//! loom explores only the operations it can see: those on its own types. The last check makes
//! sure the counter is still built from them, or the models would pass whatever `take` does.

use std::path::Path;

use harness::loom_shim::{Forbid, sync_outside_the_shim};
use harness::watchdog::check;
use j07_ticket::sync::Arc;
use j07_ticket::ticket::Dispenser;

const HANG: &str = "the loom model did not finish: does `take` loop forever, or wait on a lock \
                    that a customer never releases?";

// ANCHOR: model
/// Two customers press the button at the same moment: they must get different numbers.
#[test]
fn two_customers_never_share_a_ticket() {
    check(HANG).run(|| {
        // loom runs this closure once per possible interleaving of the two threads.
        loom::model(|| {
            let dispenser = Arc::new(Dispenser::new());
            let kiosk = Arc::clone(&dispenser);
            let other = loom::thread::spawn(move || kiosk.take());

            let mine = dispenser.take();
            let theirs = other.join().unwrap();
            assert_ne!(
                mine, theirs,
                "two customers who took a ticket at the same time were both handed number \
                 {mine}: the counter was changed and read in two separate steps, and the \
                 other customer's step got in between"
            );
        });
    });
}
// ANCHOR_END: model

/// Three customers at once: between them they hold exactly tickets 1, 2 and 3, and the board
/// then says three tickets were handed out.
#[test]
fn three_customers_get_one_two_three() {
    check(HANG).run(|| {
        loom::model(|| {
            let dispenser = Arc::new(Dispenser::new());
            let others: Vec<_> = (0..2)
                .map(|_| {
                    let kiosk = Arc::clone(&dispenser);
                    loom::thread::spawn(move || kiosk.take())
                })
                .collect();

            let mut tickets = vec![dispenser.take()];
            tickets.extend(others.into_iter().map(|t| t.join().unwrap()));
            tickets.sort_unstable();
            assert_eq!(
                tickets,
                [1, 2, 3],
                "three customers took one ticket each at the same time: every number from 1 \
                 to 3 must be handed out exactly once (a duplicate means the counter was \
                 changed and read in separate steps; a 0 means the number is one too low)"
            );
            assert_eq!(
                dispenser.issued(),
                3,
                "three tickets were handed out, but the board shows a different count"
            );
        });
    });
}

/// loom switches threads only at operations on its own types. A counter built from `std` types runs
/// unseen: every `take` runs start to finish without a switch inside it, and the models above pass
/// whatever it does. So no file of `src/` may name a `std` lock, atomic or spin hint (`src/sync.rs`
/// only in its items gated `#[cfg(not(feature = "loom"))]`, the normal build's side of the switch,
/// read whole statements at a time by `harness::loom_shim`); and since loom's types refuse to run
/// on a thread loom does not control (they panic there), every step of the counter, tried on a
/// plain thread, must fail.
#[test]
fn loom_can_see_the_counter() {
    let unseen = sync_outside_the_shim(Path::new(env!("CARGO_MANIFEST_DIR")), Forbid::STD);
    assert!(
        unseen.is_empty(),
        "the counter uses synchronisation that is not the shim's:\n  {}\nloom switches threads \
         only at operations on its own types, the ones `src/sync.rs` exports under the `loom` \
         feature. A `std` atomic, lock or spin hint is invisible to it: a check-then-set on a \
         `std` flag runs as one step in every interleaving loom tries, so the models pass a race \
         they never see. Import every lock, atomic and `hint` from `crate::sync` (add what you \
         need there, for both the `loom` and the normal build: in \
         `src/sync.rs` a `std` type belongs only in an item marked \
         `#[cfg(not(feature = \"loom\"))]`, the normal build's side).",
        unseen.join("\n  ")
    );
    check(HANG).run(|| {
        loom::model(|| {
            let dispenser = Dispenser::new();
            let unseen: Vec<&str> = [
                ("Dispenser::new", runs_unseen(Dispenser::new)),
                ("take", runs_unseen(|| dispenser.take())),
                ("issued", runs_unseen(|| dispenser.issued())),
            ]
            .into_iter()
            .filter_map(|(step, unseen)| unseen.then_some(step))
            .collect();
            assert!(
                unseen.is_empty(),
                "{unseen:?} ran on a thread loom does not control: the counter is not built from \
                 the types of `crate::sync`, so loom cannot see inside `take` and the models \
                 prove nothing about it"
            );
        });
    });
}

/// Whether `step` runs to the end on a plain `std` thread, outside loom's control.
fn runs_unseen<T: Send>(step: impl FnOnce() -> T + Send) -> bool {
    std::thread::scope(|plain| plain.spawn(step).join().is_ok())
}
