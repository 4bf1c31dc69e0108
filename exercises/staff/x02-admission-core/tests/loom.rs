//! Loom models of the admission counter: reports asking to run at the same moment, under
//! every interleaving of their threads.
//!
//! Run optimised (the workspace's `loom` profile), with the crate's `loom` feature (which swaps
//! `src/sync.rs` to loom's types):
//! `cargo test -p x02-admission-core --profile loom --features loom --test loom`.
//!
//! loom explores only the operations it can see: those on its own types. The last check makes
//! sure the admission is still built from them, or the models would pass whatever
//! `try_admit` does.

use std::path::Path;
use std::process::Command;

use harness::loom_shim::{Forbid, sync_outside_the_shim};
use harness::watchdog::check;
use x02_admission_core::admission::Admission;
use x02_admission_core::sync::Arc;
use x02_admission_core::sync::atomic::{AtomicUsize, Ordering};

const HANG: &str = "the loom model did not finish: does a report over the limit wait for a \
                    place instead of being refused?";

/// Two reports ask to run at the same moment on a server that runs none yet. Each one that is
/// admitted keeps its place until both have had their answer, so the two admitted (if both
/// are) really run at once. Returns how many were admitted, and the count once both finished.
fn two_ask_at_once(limit: usize) -> (usize, usize) {
    let shared = Arc::new((Admission::new(limit), AtomicUsize::new(0)));
    let other = Arc::clone(&shared);
    let dashboard = loom::thread::spawn(move || ask_and_hold(&other.0, &other.1));
    let admitted = ask_and_hold(&shared.0, &shared.1);
    let admitted = usize::from(admitted) + usize::from(dashboard.join().unwrap());
    (admitted, shared.0.in_flight())
}

/// Asks for a place; if admitted, holds it until both reports have asked, then gives it back.
fn ask_and_hold(admission: &Admission, asked: &AtomicUsize) -> bool {
    let place = admission.try_admit();
    asked.fetch_add(1, Ordering::SeqCst);
    if place.is_some() {
        while asked.load(Ordering::SeqCst) < 2 {
            loom::thread::yield_now();
        }
    }
    place.is_some()
}

// ANCHOR: model
/// With room for one report, two ask at the same moment: exactly one runs. Two would put
/// more queries on the replica than it was sized for; none would refuse both dashboards
/// while the replica sits idle.
#[test]
fn never_more_reports_than_the_limit() {
    // loom runs this closure once per possible interleaving of the two threads.
    model_in_child("never_more_reports_than_the_limit", || {
        let (admitted, _) = two_ask_at_once(1);
        assert!(
            admitted <= 1,
            "with a limit of one, two reports asking at the same moment were both admitted: \
             both saw a free place before either had taken it, and two queries ran on a \
             replica sized for one. Looking at the count and taking a place must be one atomic \
             step"
        );
        assert_eq!(
            admitted, 1,
            "with a limit of one and nothing running, two reports asking at the same moment \
             were both refused: the replica sat idle while both dashboards got 503"
        );
    });
}
// ANCHOR_END: model

/// With room for two reports, two ask at the same moment: both run. A refusal is for a server
/// that is full, not for one that was merely busy admitting someone else.
#[test]
fn room_for_two_admits_two() {
    model_in_child("room_for_two_admits_two", || {
        let (admitted, in_flight_after) = two_ask_at_once(2);
        assert_eq!(
            admitted, 2,
            "with a limit of two and nothing running, two reports asking at the same moment \
             got {admitted} place(s): one was refused with a place still free. A \
             compare-and-swap that fails means the count changed, not that the server is \
             full: read the new count and decide again (or dropping a permit does not give \
             its place back, and the second report found the first one's place still taken)"
        );
        assert_eq!(
            in_flight_after, 0,
            "two reports ran side by side and finished, and the gauge still counts \
             {in_flight_after} running: the count lost a step. Two admissions that each read \
             the same count and wrote it plus one count as one, and the two releases then take \
             it below zero (it wraps to a huge number); a release written as a load and a \
             store loses a step the same way, and so does a permit whose drop does not give \
             its place back at all"
        );
    });
}

/// With room for one, two reports ask, run if admitted, and finish. Afterwards nothing runs,
/// the gauge says 0, and the next report is admitted: every place taken was given back, once.
#[test]
fn every_place_is_given_back() {
    model_in_child("every_place_is_given_back", || {
        let admission = Arc::new(Admission::new(1));
        let other = Arc::clone(&admission);
        let dashboard = loom::thread::spawn(move || drop(other.try_admit()));
        drop(admission.try_admit());
        dashboard.join().unwrap();
        let in_flight = admission.in_flight();
        assert_eq!(
            in_flight,
            0,
            "two reports asked, ran if admitted and finished, and the gauge still counts \
             {in_flight} running. {}",
            if in_flight > 1 << 32 {
                "It went below zero and wrapped: more places were given back than were \
                 counted taken (two admissions counted as one, each giving its place back)"
            } else {
                "A place was taken and never given back: a refused report counted itself \
                 and did not uncount, or dropping a permit does not give its place back. Each \
                 such place is lost for good, until every report gets 503"
            }
        );
        assert!(
            admission.try_admit().is_some(),
            "after every report finished, the next one was refused: capacity leaked"
        );
    });
}

/// With room for two, one report runs; it finishes while a second report is being admitted.
/// The second must be admitted, and once it has finished too the count must be back to 0: a
/// release that lands between an admission's look and its write must not be lost, whichever
/// of the two is locked or atomic.
#[test]
fn a_release_during_an_admission_is_counted() {
    model_in_child("a_release_during_an_admission_is_counted", || {
        let admission = Arc::new(Admission::new(2));
        let running = admission
            .try_admit()
            .expect("an empty server admits a report");
        let other = Arc::clone(&admission);
        let dashboard = loom::thread::spawn(move || other.try_admit().is_some());
        drop(running);
        let admitted = dashboard.join().unwrap();
        assert!(
            admitted,
            "with room for two and one report running (and finishing), a second was refused: \
             a refusal must mean the server is full"
        );
        let in_flight = admission.in_flight();
        assert_eq!(
            in_flight, 0,
            "one report finished while a second was being admitted, and once both had \
             finished the gauge counts {in_flight} running: the release and the admission \
             each wrote over the other's step. Every change to the count must be one atomic \
             step, or made under the same lock: an admission under a lock is not protected \
             from a release that does not take it"
        );
    });
}

/// With room for one, one report runs. A second dashboard asks while the first report
/// finishes, and the first dashboard then asks for its next report. Whatever the timing, one
/// of the two must be admitted: the place is free, and neither asker is running. A report
/// that counts itself before looking and uncounts when over the limit briefly holds a place
/// it never runs in, and the other asker is refused with nothing running.
#[test]
fn a_freed_place_is_given_to_an_asker() {
    model_in_child("a_freed_place_is_given_to_an_asker", || {
        let admission = Arc::new(Admission::new(1));
        let running = admission
            .try_admit()
            .expect("an empty server admits a report");
        let other = Arc::clone(&admission);
        let dashboard = loom::thread::spawn(move || other.try_admit().is_some());
        drop(running);
        let next = admission.try_admit().is_some();
        let second = dashboard.join().unwrap();
        assert!(
            next || second,
            "with room for one, a report finished while another asked, and its dashboard \
             asked again: both were refused, with nothing running. A refused report held a \
             place for a moment (counted itself, saw it was over, then uncounted), and the \
             other asker was refused because of a report that never ran. A refusal must mean \
             the limit's worth of reports are running: look at the count and take a place in \
             one step, and take it only if there is room"
        );
    });
}

/// loom switches threads only at operations on its own types. An admission built from `std`
/// types runs unseen: every `try_admit` runs start to finish without a switch inside it, and
/// the models above pass whatever it does. So no file of `src/` may name a `std` lock, atomic or
/// spin hint (nor tokio's or `futures`' synchronisation, nor a `std` `Arc`'s count), `src/sync.rs`
/// only on the normal build's side of its switch (read whole statements at a time by
/// `harness::loom_shim`, with `Forbid::WHOLE_CORE`); and since loom's types refuse to run on a
/// thread loom does not control (they panic there), each step of the admission, tried on a plain
/// thread, must fail.
#[test]
fn loom_can_see_the_admission() {
    let unseen = sync_outside_the_shim(Path::new(env!("CARGO_MANIFEST_DIR")), Forbid::WHOLE_CORE);
    assert!(
        unseen.is_empty(),
        "the admission uses synchronisation that is not the shim's:\n  {}\nloom switches \
         threads only at operations on its own types, the ones `src/sync.rs` exports under the \
         `loom` feature. A `std` atomic or lock (or tokio's or `futures`' synchronisation, or a \
         `std` `Arc`'s count) is invisible to it: a load and a store on a \
         `std` counter run as one step in every interleaving loom tries, so the models pass a \
         race they never see. Import every atomic and lock from `crate::sync` (add what you \
         need there, for both the `loom` and the normal build: in `src/sync.rs` a `std` type \
         belongs only in a statement marked `#[cfg(not(feature = \"loom\"))]`, with its loom \
         twin on the other side of the switch).",
        unseen.join("\n  ")
    );
    model_in_child("loom_can_see_the_admission", || {
        let admission = Admission::new(1);
        let unseen: Vec<&str> = [
            ("Admission::new", runs_unseen(|| Admission::new(1))),
            ("try_admit", runs_unseen(|| drop(admission.try_admit()))),
            ("in_flight", runs_unseen(|| admission.in_flight())),
            ("set_limit", runs_unseen(|| admission.set_limit(2))),
        ]
        .into_iter()
        .filter_map(|(step, unseen)| unseen.then_some(step))
        .collect();
        assert!(
            unseen.is_empty(),
            "{unseen:?} ran on a thread loom does not control: the admission is not built \
             from the types of `crate::sync`, so loom cannot see inside it and the models \
             prove nothing about it"
        );
    });
}

/// Set in the child process that runs a model for its parent.
const IN_CHILD: &str = "X02_LOOM_MODEL_IN_CHILD";

/// Runs the loom `model` of the check `name` in a child process: this same test binary, asked
/// to run just that check. A model can end in ways a test thread does not survive (loom
/// reports a deadlock by panicking, and a lock guard dropped while that unwinds aborts the
/// process); the parent reads what the child printed and fails with a message that says what
/// happened.
fn model_in_child(name: &str, model: impl Fn() + Sync + Send + 'static) {
    if std::env::var_os(IN_CHILD).is_some() {
        check(HANG).run(move || loom::model(model));
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
    if printed.contains("Model exceeded maximum number of branches") {
        panic!(
            "in some interleaving a report never got its answer: it kept retrying while \
             another report held a place, and the holder was waiting for it to be answered \
             (loom gave up: \"Model exceeded maximum number of branches\"). A report must get \
             its answer at once, a place or a refusal: a compare-and-swap retried with the \
             count read before the loop fails for as long as the count differs from that stale \
             value, so it waits for the other report to leave. On a real server that request \
             spins on a runtime thread instead of running or answering 503."
        );
    }
    if let Some(report) = printed
        .lines()
        .find(|line| line.contains("deadlock; threads"))
    {
        panic!(
            "loom found a deadlock: in some interleaving every thread was waiting for a lock \
             that would never be released ({report}). A thread that takes a lock it already \
             holds (the count's lock, again, from inside `try_admit` or a permit's drop) waits \
             for itself. On a real server, admissions would hang."
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

/// Whether `step` runs to the end on a plain `std` thread, outside loom's control.
fn runs_unseen<T: Send>(step: impl FnOnce() -> T + Send) -> bool {
    std::thread::scope(|plain| plain.spawn(step).join().is_ok())
}
