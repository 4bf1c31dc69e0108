//! Stopping CPU work that runs on tokio's blocking pool.
//!
//! Backs R19 of the bank (tokio 1.54): `abort()` has no effect on a `spawn_blocking` closure
//! that has started (tokio's `JoinHandle::abort` docs say so, and the closure runs to its end
//! here); the closure stops early only if it looks at a cancellation signal between steps, and
//! a `DropGuard` held by the handler pulls that signal when the handler is dropped.
//! Every step waits for the test's go-ahead, so no verdict depends on timing.

use std::sync::mpsc;

use harness::watchdog::check;
use tokio_util::sync::CancellationToken;

const HANG: &str = "a blocking closure waited for a step that never came";

#[test]
fn abort_does_not_stop_a_spawn_blocking_closure_that_has_started() {
    check(HANG).real(|| async {
        let (started_tx, started) = mpsc::channel();
        let (go, go_rx) = mpsc::channel::<()>();
        let handle = tokio::task::spawn_blocking(move || {
            started_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            "finished"
        });
        tokio::task::spawn_blocking(move || started.recv().unwrap())
            .await
            .unwrap();
        handle.abort();
        // Only now may the closure go on: if abort() could stop it, it would not get here.
        go.send(()).unwrap();
        assert_eq!(handle.await.unwrap(), "finished");
    });
}

#[test]
fn a_token_checked_between_steps_stops_the_closure_when_the_handler_is_dropped() {
    check(HANG).real(|| async {
        let token = CancellationToken::new();
        // What a handler holds while it awaits the result: dropping it cancels the token.
        let guard = token.clone().drop_guard();
        let (step, step_rx) = mpsc::channel::<()>();
        let (done_tx, done) = mpsc::channel();
        let handle = tokio::task::spawn_blocking(move || {
            let mut steps = 0;
            // Each step waits for the test's go-ahead, then looks at the token before working.
            while step_rx.recv().is_ok() {
                if token.is_cancelled() {
                    break;
                }
                steps += 1;
                done_tx.send(()).unwrap();
            }
            steps
        });
        step.send(()).unwrap();
        let done = tokio::task::spawn_blocking(move || {
            done.recv().unwrap();
            done
        })
        .await
        .unwrap();
        drop(guard); // hyper drops the handler: the client left
        step.send(()).unwrap(); // the closure's next step would run if it did not look
        assert_eq!(
            handle.await.unwrap(),
            1,
            "the closure ran on after the cancel"
        );
        assert!(done.try_recv().is_err());
    });
}
