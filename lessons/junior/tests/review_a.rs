//! Claims of the chapter "Drop is cancellation" about what dropping or aborting a future does,
//! checked on plain futures and tasks, without a server in the way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use harness::watchdog::check;

/// Records its name in a shared log when it is dropped.
struct Noted {
    name: &'static str,
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl Drop for Noted {
    fn drop(&mut self) {
        self.log.lock().unwrap().push(self.name);
    }
}

#[test]
fn dropping_a_parked_future_skips_the_rest_and_drops_its_locals_in_reverse_order() {
    check("polling the future once never returned").run(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler = {
            let log = Arc::clone(&log);
            async move {
                let _first = Noted {
                    name: "first",
                    log: Arc::clone(&log),
                };
                let _second = Noted {
                    name: "second",
                    log: Arc::clone(&log),
                };
                // Parked here for good: a client that never answers, say.
                std::future::pending::<()>().await;
                log.lock().unwrap().push("after the await");
            }
        };

        // One poll runs the handler up to its `.await`; then the future is dropped.
        let mut handler = Box::pin(handler);
        assert!((&mut handler).now_or_never().is_none());
        assert!(log.lock().unwrap().is_empty(), "a local was dropped early");
        drop(handler);

        // Nothing after the `.await` ran, and the locals were dropped, last one first.
        assert_eq!(*log.lock().unwrap(), ["second", "first"]);
    });
}

#[test]
fn abort_cannot_interrupt_code_between_two_awaits() {
    check("the aborted task never ended: did its blocking stretch wait forever?").real(|| async {
        let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
        let (go_on_tx, go_on_rx) = std::sync::mpsc::channel::<()>();
        let between = Arc::new(AtomicBool::new(false));
        let after = Arc::new(AtomicBool::new(false));

        let task = tokio::spawn({
            let (between, after) = (Arc::clone(&between), Arc::clone(&after));
            async move {
                // A stretch with no `.await`: stands for a long computation.
                entered_tx.send(()).unwrap();
                go_on_rx.recv().unwrap();
                between.store(true, Ordering::SeqCst);
                // The first point where the task hands its thread back.
                tokio::task::yield_now().await;
                after.store(true, Ordering::SeqCst);
            }
        });

        // Wait, off the runtime's workers, until the task is inside that stretch.
        tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
            .await
            .unwrap();
        task.abort();
        go_on_tx.send(()).unwrap();

        // The abort waited for the stretch to end, and took effect at the next `.await`.
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(
            between.load(Ordering::SeqCst),
            "the code before the .await was interrupted"
        );
        assert!(
            !after.load(Ordering::SeqCst),
            "the code after the .await ran although the task was aborted"
        );
    });
}
