//! Loom models of the drain: the server's shutdown waiting in `Drain::idle` while the last
//! requests in flight finish on other threads, under every interleaving.
//!
//! Run optimised (the workspace's `loom` profile), with the crate's `loom` feature (which swaps
//! `src/sync.rs` to loom's types):
//! `cargo test -p x01-shutdown-core --profile loom --features loom --test loom`.
//!
//! loom explores only the operations it can see: those on its own types. The last check makes
//! sure the drain is still built from them, or the models would pass whatever `idle` does.

use std::future::Future;
use std::path::Path;
use std::process::Command;

use harness::loom_shim::{Forbid, sync_outside_the_shim};
use harness::watchdog::check;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use x01_shutdown_core::Drain;

const HANG: &str = "the loom model did not finish: does `idle` poll in a loop, or wait on a \
                    lock or flag that loom cannot see?";

/// A request in flight on another thread: it finishes its report, then leaves the drain.
/// Returns how many requests have answered so far, as the shutdown sees it.
fn request_on_another_thread(
    drain: &Drain,
    answered: &Arc<AtomicUsize>,
) -> loom::thread::JoinHandle<()> {
    let in_flight = drain.enter();
    let answered = Arc::clone(answered);
    loom::thread::spawn(move || {
        answered.fetch_add(1, Ordering::SeqCst);
        drop(in_flight);
    })
}

// ANCHOR: model
/// A deploy stops the server while one report is still running on another worker thread: the
/// shutdown's wait ends, and only once that report has been answered.
#[test]
fn shutdown_wakes_when_the_last_request_leaves() {
    // loom runs this closure once per possible interleaving of the two threads.
    model_in_child("shutdown_wakes_when_the_last_request_leaves", || {
        let drain = Drain::new();
        let answered = Arc::new(AtomicUsize::new(0));
        let request = request_on_another_thread(&drain, &answered);
        loom::future::block_on(drain.idle());
        assert_eq!(
            answered.load(Ordering::SeqCst),
            1,
            "`idle` returned while a request was still in flight: the shutdown would cut a \
             report that was about to be answered. (Or it saw the count at zero without seeing \
             the answer written before the leave: a memory ordering too weak, such as \
             `Relaxed`. The leave must be a `Release` and the look an `Acquire`, or both under \
             the lock.)"
        );
        request.join().unwrap();
    });
}
// ANCHOR_END: model

/// The same with two reports running on two threads, finishing in either order: the wait
/// ends once both have left, not after the first.
#[test]
fn shutdown_waits_for_both_requests() {
    model_in_child("shutdown_waits_for_both_requests", || {
        let drain = Drain::new();
        let answered = Arc::new(AtomicUsize::new(0));
        let first = request_on_another_thread(&drain, &answered);
        let second = request_on_another_thread(&drain, &answered);
        loom::future::block_on(drain.idle());
        let answered = answered.load(Ordering::SeqCst);
        assert_eq!(
            answered, 2,
            "`idle` returned when {answered} of the 2 requests in flight had been answered: the \
             shutdown must wait for the last one, not the first"
        );
        first.join().unwrap();
        second.join().unwrap();
    });
}

/// `idle` has more than one caller: the readiness page waits on it beside the shutdown. The
/// readiness page polls first and sleeps; then the shutdown waits, while a request leaves on
/// another thread. Both waits must end: the readiness page's waker is called, or it saw zero.
#[test]
fn every_waiter_is_woken() {
    model_in_child("every_waiter_is_woken", || {
        let drain = Drain::new();
        let answered = Arc::new(AtomicUsize::new(0));
        let request = request_on_another_thread(&drain, &answered);
        // The readiness page's waker only raises a flag: loom need not see it, since what the
        // model checks is whether the drain called it at all.
        let woken = std::sync::Arc::new(Flag::default());
        let mut readiness = std::pin::pin!(drain.idle());
        let waker = std::task::Waker::from(std::sync::Arc::clone(&woken));
        let ready_at_once = readiness
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker))
            .is_ready();
        loom::future::block_on(drain.idle());
        request.join().unwrap();
        assert!(
            ready_at_once || woken.0.load(std::sync::atomic::Ordering::SeqCst),
            "the readiness page waited in `idle` first, then the shutdown; the last request \
             left, the shutdown's wait ended, and the readiness page's waker was never called. \
             `idle` has more than one caller: it must keep every waiter's waker, not one slot \
             that the next waiter overwrites (or the readiness page's wakeup was lost, as in the \
             first model)"
        );
    });
}

/// A waker that raises a flag.
#[derive(Default)]
struct Flag(std::sync::atomic::AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// loom switches threads only at operations on its own types. A drain built from `std` types
/// runs unseen: each `idle` poll and each leave runs start to finish without a switch inside
/// it, and the models above pass a lost wakeup they never see. So no file of `src/` but
/// `src/sync.rs` may name a `std` lock, atomic or spin hint (nor tokio's or `futures`' locks, nor
/// a `std` `Arc`'s count), `src/sync.rs` only on the normal build's side of its switch (read
/// whole statements at a time by `harness::loom_shim`, with `Forbid::WHOLE_CORE`); and since
/// loom's types refuse to run on a thread loom does not control (they panic there), every step
/// of the drain, tried on a plain thread, must fail.
#[test]
fn loom_can_see_the_drain() {
    let unseen = sync_outside_the_shim(Path::new(env!("CARGO_MANIFEST_DIR")), Forbid::WHOLE_CORE);
    assert!(
        unseen.is_empty(),
        "the drain uses synchronisation that is not the shim's:\n  {}\nloom cannot see it. \
         loom switches threads only at operations on its own types, the ones `src/sync.rs` \
         exports under the `loom` feature. A `std` lock, atomic or `Arc` count, or tokio's or \
         `futures`' synchronisation, is invisible to it: a check and a wait on it run as one \
         step in every interleaving loom tries, so the models pass a lost wakeup they never \
         see (and a model that hangs on it blames a lost wakeup, not the type). Import every \
         lock, atomic and `hint` from `crate::sync`; in `src/sync.rs`, `std` types belong only \
         on the `#[cfg(not(feature = \"loom\"))]` side of the switch, with loom's on the \
         other.",
        unseen.join("\n  ")
    );
    model_in_child("loom_can_see_the_drain", || {
        let drain = Drain::new();
        let in_flight = drain.enter();
        let unseen: Vec<&str> = [
            ("Drain::new", runs_unseen(Drain::new)),
            ("enter", runs_unseen(|| drop(drain.enter()))),
            ("in_flight", runs_unseen(|| drain.in_flight())),
            ("idle", runs_unseen(|| poll_once(drain.idle()))),
        ]
        .into_iter()
        .filter_map(|(step, unseen)| unseen.then_some(step))
        .collect();
        assert!(
            unseen.is_empty(),
            "{unseen:?} ran on a thread loom does not control: the drain is not built from \
             the types of `crate::sync`, so loom cannot see inside it and the models prove \
             nothing about it"
        );
        drop(in_flight);
    });
}

/// Set in the child process that runs a model for its parent.
const IN_CHILD: &str = "X01_LOOM_MODEL_IN_CHILD";

/// Runs the loom `model` of the check `name` in a child process: this same test binary, asked
/// to run just that check. loom 0.7 reports a deadlock by panicking, and a panic that unwinds
/// through loom's own objects can panic again and abort the whole process, report and all. The
/// child may abort; the parent reads what it printed and fails with a message that says what
/// happened.
fn model_in_child(name: &str, model: impl Fn() + Sync + Send + 'static) {
    if std::env::var_os(IN_CHILD).is_some() {
        check(HANG).run(move || {
            // A lost wakeup needs one preemption at the wrong moment; three keep the
            // three-thread model under a second and still reach every ordering of the leaves.
            let mut builder = loom::model::Builder::new();
            builder.preemption_bound = Some(3);
            builder.check(model);
        });
        return;
    }
    let child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(IN_CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running the model in a child process");
    if child.status.success() {
        return;
    }
    let printed = String::from_utf8_lossy(&child.stderr);
    // A model that fails on a type loom cannot see is no evidence of a lost wakeup: say so first.
    let unseen = sync_outside_the_shim(Path::new(env!("CARGO_MANIFEST_DIR")), Forbid::WHOLE_CORE);
    if !unseen.is_empty() {
        panic!(
            "the model failed, and the drain uses synchronisation loom cannot see:\n  {}\nloom \
             explores only operations on its own types, so it cannot tell whether this failure \
             is a lost wakeup in the drain or an artefact of a lock it cannot see (a \
             `tokio::sync::Notify` has its own lock inside). Build the drain from the types of \
             `crate::sync` (standard library only, as the team's `lifecycle` module must be), \
             then read the model again.",
            unseen.join("\n  ")
        );
    }
    if let Some(report) = printed
        .lines()
        .find(|line| line.contains("deadlock; threads"))
    {
        panic!(
            "loom found an interleaving in which the shutdown waits forever ({report}): every \
             request has left the drain, and `idle` is still asleep, its waker never called. \
             The wakeup was lost: the last request left, and looked for someone to wake, \
             between the moment `idle` saw work in flight and the moment it registered to be \
             woken (or it woke the waiters before it decremented, and they looked too early). \
             On a real server this is the deploy that hangs now and then until the \
             orchestrator kills the pod."
        );
    }
    if printed.contains("exceeded maximum number of branches") {
        panic!(
            "loom gave up on the model: in some interleaving `idle` kept running without ever \
             waiting, so the other threads could not be shown to make progress. A wait that \
             polls in a loop (waking itself, yielding, spinning) does not sleep until the work \
             is done; it burns a core for the whole drain, and on a busy machine it starves the \
             very requests it waits for."
        );
    }
    // The model's own assertion failed: its message is what follows `panicked at`.
    let message: Vec<&str> = printed
        .lines()
        .skip_while(|line| !line.contains("panicked at"))
        .skip(1)
        .take_while(|line| !line.starts_with("note:") && !line.is_empty())
        .collect();
    if message.is_empty() {
        panic!("the model failed in its child process:\n{printed}");
    }
    panic!("{}", message.join("\n"));
}

/// Polls `future` once, with a waker that does nothing: enough to run its first step.
fn poll_once<F: std::future::Future>(future: F) {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let _ = std::pin::pin!(future).poll(&mut context);
}

/// Whether `step` runs to the end on a plain `std` thread, outside loom's control.
fn runs_unseen<T: Send>(step: impl FnOnce() -> T + Send) -> bool {
    std::thread::scope(|plain| plain.spawn(step).join().is_ok())
}
