//! Blocking the executor (tokio 1.54): what stalls, what `spawn_blocking` and
//! `block_in_place` change, and what a runtime's shutdown waits for.
//!
//! Every check is a handshake: a blocked thread waits for an event that only another task can
//! produce, with a short real-time limit. Blocked, the event cannot happen and the wait runs
//! out; free, it happens and the wait ends early. No verdict depends on how long anything took.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use harness::server::TestServer;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::{Request, Response};
use tokio::runtime::{Builder, Runtime};

const HANG: &str = "a runtime deadlocked: a blocked thread was never released";
/// How long a blocked thread waits for something that cannot happen while it blocks.
const CANNOT_HAPPEN: Duration = Duration::from_millis(300);
/// How long a free thread may wait for something that will happen.
const WILL_HAPPEN: Duration = Duration::from_secs(10);

fn one_worker() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn a_blocked_task_stalls_a_current_thread_runtime_completely() {
    check(HANG).run(|| {
        current_thread().block_on(async {
            let (tx, rx) = mpsc::channel();
            let neighbour = tokio::spawn(async move { tx.send(()).unwrap() });
            // The only thread waits for the neighbour, which needs that thread to run.
            assert_eq!(
                rx.recv_timeout(CANNOT_HAPPEN),
                Err(RecvTimeoutError::Timeout)
            );
            neighbour.await.unwrap(); // the neighbour runs once the thread is given back
        });
    });
}

#[test]
fn block_in_place_panics_on_a_current_thread_runtime() {
    let outcome = check(HANG).run(|| {
        std::panic::catch_unwind(|| {
            current_thread().block_on(async { tokio::task::block_in_place(|| ()) })
        })
    });
    let message = outcome.unwrap_err();
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("multi-threaded runtime"), "{message}");
}

// ANCHOR: timeout
#[test]
fn a_timeout_around_a_blocking_call_cannot_fire_before_the_call_returns() {
    check(HANG).run(|| {
        current_thread().block_on(async {
            let (_never, rx) = mpsc::channel::<()>();
            let blocking = async move { rx.recv_timeout(CANNOT_HAPPEN) };
            // The deadline passes 299 ms before the call returns, and nobody polls the timer:
            // the call's own result comes back, not `Elapsed`.
            let outcome = tokio::time::timeout(Duration::from_millis(1), blocking).await;
            assert_eq!(outcome, Ok(Err(RecvTimeoutError::Timeout)));
        });
    });
}
// ANCHOR_END: timeout

/// What the handshake handler shares: `/report` tells the test it has started, then waits
/// (blocking its thread) for `/health` to have been served.
struct Handshake {
    started: tokio::sync::mpsc::UnboundedSender<()>,
    health_served: mpsc::Sender<()>,
    health_seen: Mutex<mpsc::Receiver<()>>,
    offload: bool,
    wait: Duration,
}

impl Handshake {
    /// A stand-in for a synchronous call (a legacy client, a C library): it blocks its thread.
    fn render_report(&self) -> &'static str {
        match self.health_seen.lock().unwrap().recv_timeout(self.wait) {
            Ok(()) => "health seen",
            Err(_) => "health never served",
        }
    }
}

async fn handle(
    state: Arc<Handshake>,
    request: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let body = match request.uri().path() {
        "/health" => {
            state.health_served.send(()).unwrap();
            "ok"
        }
        _ => {
            state.started.send(()).unwrap();
            if state.offload {
                let state = state.clone();
                tokio::task::spawn_blocking(move || state.render_report())
                    .await
                    .unwrap()
            } else {
                state.render_report()
            }
        }
    };
    Response::new(Full::new(Bytes::from_static(body.as_bytes())))
}

/// Serves `/report` and `/health` on a one-worker runtime, starts `/report`, and once it has
/// started asks for `/health` on a second connection. Returns `/report`'s answer.
fn report_while_health_is_asked(offload: bool, wait: Duration) -> String {
    check(HANG).run(move || {
        let server_runtime = one_worker();
        let (started, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
        let (health_served, health_seen) = mpsc::channel();
        let state = Arc::new(Handshake {
            started,
            health_served,
            health_seen: Mutex::new(health_seen),
            offload,
            wait,
        });
        let server = server_runtime.block_on(TestServer::serve(move |request| {
            handle(state.clone(), request)
        }));
        let answer = current_thread().block_on(async {
            let mut first = server.connect().await;
            let report = tokio::spawn(async move { first.get("/report").await.unwrap().text() });
            started_rx.recv().await.unwrap();
            let mut second = server.connect().await;
            let health = tokio::spawn(async move { second.get("/health").await.unwrap().text() });
            let answer = report.await.unwrap();
            assert_eq!(health.await.unwrap(), "ok");
            answer
        });
        drop(server);
        server_runtime.shutdown_background();
        answer
    })
}

// ANCHOR: handshake
#[test]
fn a_handler_that_blocks_its_only_worker_keeps_every_other_request_out() {
    let answer = report_while_health_is_asked(false, CANNOT_HAPPEN);
    assert_eq!(answer, "health never served");
}

#[test]
fn the_same_call_in_spawn_blocking_lets_the_worker_serve_the_other_request() {
    let answer = report_while_health_is_asked(true, WILL_HAPPEN);
    assert_eq!(answer, "health seen");
}
// ANCHOR_END: handshake

/// A runtime with one `spawn_blocking` closure running, and the gate that releases it.
fn runtime_with_a_running_closure() -> (Runtime, mpsc::Sender<()>, mpsc::Receiver<()>) {
    let runtime = one_worker();
    let (gate, gate_rx) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let (finished_tx, finished) = mpsc::channel();
    runtime.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        let _ = gate_rx.recv();
        finished_tx.send(()).unwrap();
    });
    started.recv_timeout(WILL_HAPPEN).unwrap();
    (runtime, gate, finished)
}

#[test]
fn dropping_a_runtime_waits_for_a_running_spawn_blocking_closure() {
    check(HANG).run(|| {
        let (runtime, gate, finished) = runtime_with_a_running_closure();
        let (dropped_tx, dropped) = mpsc::channel();
        std::thread::spawn(move || {
            drop(runtime);
            dropped_tx.send(()).unwrap();
        });
        assert_eq!(
            dropped.recv_timeout(CANNOT_HAPPEN),
            Err(RecvTimeoutError::Timeout)
        );
        gate.send(()).unwrap();
        finished.recv_timeout(WILL_HAPPEN).unwrap();
        dropped.recv_timeout(WILL_HAPPEN).unwrap();
    });
}

#[test]
fn shutdown_background_returns_while_the_closure_keeps_running() {
    check(HANG).run(|| {
        let (runtime, gate, finished) = runtime_with_a_running_closure();
        runtime.shutdown_background(); // returns at once...
        assert!(
            finished.try_recv().is_err(),
            "...with the closure still blocked"
        );
        gate.send(()).unwrap();
        finished.recv_timeout(WILL_HAPPEN).unwrap(); // it ran on, with no runtime around it
    });
}
