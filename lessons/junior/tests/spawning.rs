//! Claims of the chapter "Spawning tasks from handlers": what outlives what.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use harness::leak::Gauge;
use harness::server::request;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/spawn.rs"]
mod spawn;

use spawn::{App, Backend};

/// Long enough, in virtual time, for everything that can happen to have happened.
const QUIET: Duration = Duration::from_secs(60);

fn backend(name: &'static str, secs: u64, fails: bool) -> Backend {
    Backend {
        name,
        delay: Duration::from_secs(secs),
        fails,
    }
}

/// A task body that counts itself on `gauge` and waits for a permit of `release`.
async fn parked(gauge: Gauge, release: Arc<Semaphore>) {
    let _guard = gauge.guard();
    release.acquire().await.unwrap().forget();
}

#[test]
fn a_join_set_fan_out_takes_as_long_as_the_slowest_lookup() {
    check("the fan-out never finished").paused(|| async {
        let start = Instant::now();
        let answers = spawn::fan_out(vec![
            backend("users", 1, false),
            backend("orders", 3, false),
            backend("stock", 2, false),
        ])
        .await
        .unwrap();
        assert_eq!(answers, ["orders: ok", "stock: ok", "users: ok"]);
        // 3 s of virtual time, not 1 + 3 + 2: the lookups ran at the same time.
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    });
}

#[test]
fn a_join_set_fan_out_returns_at_the_first_failure() {
    check("the fan-out never finished").paused(|| async {
        let start = Instant::now();
        let result = spawn::fan_out(vec![
            backend("users", 1, false),
            backend("orders", 2, true),
            backend("stock", 3600, false),
        ])
        .await;
        assert_eq!(result, Err("orders is unavailable".to_owned()));
        // It did not wait an hour for `stock`.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    });
}

#[test]
fn the_summary_handler_answers_and_records_the_visit_in_the_background() {
    check("the summary was never answered").paused(|| async {
        let app = App {
            backends: vec![backend("users", 1, false), backend("stock", 2, false)],
            visits: Arc::new(AtomicU64::new(0)),
        };
        let (mut connection, _server) = harness::duplex::http1({
            let app = app.clone();
            move |io| spawn::serve_connection(io, app)
        })
        .await;

        let response = connection.get("/summary").await.unwrap();
        assert_eq!(response.text(), "stock: ok\nusers: ok\n");

        // The detached task finishes on its own, after the response.
        let recorded = tokio::time::timeout(QUIET, async {
            while app.visits.load(Ordering::Relaxed) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        assert!(recorded.await.is_ok(), "the visit was never recorded");
    });
}

#[test]
fn the_checksum_runs_on_the_blocking_pool_and_answers() {
    check("the checksum was never answered").real(|| async {
        let (mut connection, _server) = harness::duplex::http1(|io| {
            let app = App {
                backends: Vec::new(),
                visits: Arc::new(AtomicU64::new(0)),
            };
            spawn::serve_connection(io, app)
        })
        .await;
        let response = connection
            .send(request("POST", "/checksum", "hello"))
            .await
            .unwrap();
        // FNV-1a 64 of "hello".
        assert_eq!(response.text(), "a430d84680aabd0b\n");
    });
}

#[test]
fn dropping_a_join_handle_detaches_the_task() {
    check("the detached task never finished").paused(|| async {
        let gauge = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let handle = tokio::spawn(parked(gauge.clone(), Arc::clone(&release)));
        assert!(gauge.reaches_started(1, QUIET).await);

        drop(handle);
        assert!(
            !gauge.settles_to(0, QUIET).await,
            "dropping the JoinHandle cancelled the task"
        );

        // It is still running, and finishes when it can.
        release.add_permits(1);
        assert!(gauge.settles_to(0, QUIET).await);
    });
}

#[test]
fn abort_stops_a_task_at_its_next_await() {
    check("the aborted task never stopped").paused(|| async {
        let gauge = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let handle = tokio::spawn(parked(gauge.clone(), Arc::clone(&release)));
        assert!(gauge.reaches_started(1, QUIET).await);

        handle.abort();
        // The task's future is dropped, its guard with it.
        assert!(gauge.settles_to(0, QUIET).await);
        assert!(handle.await.unwrap_err().is_cancelled());
    });
}

#[test]
fn dropping_a_join_set_aborts_its_tasks() {
    check("the JoinSet's tasks were never aborted").paused(|| async {
        let gauge = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let mut set = JoinSet::new();
        for _ in 0..3 {
            set.spawn(parked(gauge.clone(), Arc::clone(&release)));
        }
        assert!(gauge.reaches_started(3, QUIET).await);

        drop(set);
        assert!(
            gauge.settles_to(0, QUIET).await,
            "tasks outlived their JoinSet"
        );
    });
}

/// Serves a handler that fans out three parked lookups and waits for all of them, either in
/// a `JoinSet` or with plain `tokio::spawn` handles.
fn fan_out_server(
    lookups: Gauge,
    release: Arc<Semaphore>,
    use_join_set: bool,
) -> impl FnOnce(DuplexStream) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    move |io| {
        let service = service_fn(move |_request: Request<Incoming>| {
            let (lookups, release) = (lookups.clone(), Arc::clone(&release));
            async move {
                if use_join_set {
                    let mut set = JoinSet::new();
                    for _ in 0..3 {
                        set.spawn(parked(lookups.clone(), Arc::clone(&release)));
                    }
                    while set.join_next().await.is_some() {}
                } else {
                    let handles: Vec<_> = (0..3)
                        .map(|_| tokio::spawn(parked(lookups.clone(), Arc::clone(&release))))
                        .collect();
                    for handle in handles {
                        let _ = handle.await;
                    }
                }
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("done\n"))))
            }
        });
        Box::pin(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service)
                .await;
        })
    }
}

const GET: &[u8] = b"GET /summary HTTP/1.1\r\nhost: workshop.test\r\n\r\n";

#[test]
fn a_client_leaving_aborts_a_join_set_fan_out() {
    check("the lookups were never aborted").paused(|| async {
        let lookups = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let (mut client, server) =
            harness::duplex::raw(fan_out_server(lookups.clone(), Arc::clone(&release), true));
        client.write_all(GET).await.unwrap();
        assert!(lookups.reaches_started(3, QUIET).await);

        // Client leaves -> hyper drops the handler -> the handler drops its JoinSet.
        drop(client);
        server.task.await.unwrap();
        assert!(
            lookups.settles_to(0, QUIET).await,
            "lookups outlived the request"
        );
    });
}

#[test]
fn a_client_leaving_does_not_stop_tasks_behind_plain_join_handles() {
    check("the lookups never finished").paused(|| async {
        let lookups = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let (mut client, server) =
            harness::duplex::raw(fan_out_server(lookups.clone(), Arc::clone(&release), false));
        client.write_all(GET).await.unwrap();
        assert!(lookups.reaches_started(3, QUIET).await);

        // The handler is dropped, and with it the JoinHandles: that only detaches.
        drop(client);
        server.task.await.unwrap();
        assert!(
            !lookups.settles_to(0, QUIET).await,
            "the lookups stopped with the handler"
        );
        release.add_permits(3);
        assert!(lookups.settles_to(0, QUIET).await);
    });
}

#[test]
fn spawn_blocking_cannot_be_aborted_once_it_runs() {
    check("the blocking task never finished").real(|| async {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (go_on_tx, go_on_rx) = std::sync::mpsc::channel::<()>();
        let handle = tokio::task::spawn_blocking(move || {
            started_tx.send(()).unwrap();
            // Blocks this pool thread until the check lets it go.
            go_on_rx.recv().unwrap();
            "ran to the end"
        });
        // Wait (off the runtime's threads) until the closure is running.
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();

        handle.abort();
        go_on_tx.send(()).unwrap();
        // `abort` had no effect: the closure finished and its value came back.
        assert_eq!(handle.await.unwrap(), "ran to the end");
    });
}

#[test]
fn a_oneshot_send_never_waits_for_the_receiver() {
    check("a oneshot send blocked").paused(|| async {
        let (tx, rx) = oneshot::channel::<u32>();
        // The receiver is gone (say, its handler was dropped): `send` is not even
        // `async`, it returns the value at once instead of waiting for a reader.
        drop(rx);
        assert_eq!(tx.send(7), Err(7));
    });
}

/// Sends on `tx` when dropped: tells a blocked closure that the runtime has begun to drop its
/// tasks.
struct SignalOnDrop(std::sync::mpsc::Sender<()>);

impl Drop for SignalOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[test]
fn dropping_the_runtime_waits_for_a_running_spawn_blocking_closure() {
    check("dropping the runtime never returned").run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = std::sync::mpsc::channel();
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));

        // A closure that, once running, can only finish after the runtime has begun to shut
        // down: it waits for the signal below.
        runtime.spawn_blocking({
            let finished = Arc::clone(&finished);
            move || {
                started_tx.send(()).unwrap();
                shutdown_rx.recv().unwrap();
                // The rest of the work: long enough that a shutdown that did not wait would
                // be over well before it.
                std::thread::sleep(Duration::from_millis(50));
                finished.store(true, Ordering::SeqCst);
            }
        });
        // An async task that never finishes. The runtime drops it when it shuts down, and
        // its guard tells the closure so.
        let signal = SignalOnDrop(shutdown_tx);
        runtime.spawn(async move {
            let _signal = signal;
            std::future::pending::<()>().await;
        });
        started_rx.recv().unwrap();

        drop(runtime);
        // The pending task was dropped, not waited for; the closure was waited for.
        assert!(
            finished.load(Ordering::SeqCst),
            "the runtime was gone before the blocking closure finished"
        );
    });
}

#[test]
fn shutdown_timeout_stops_waiting_and_leaves_the_closure_running() {
    check("shutdown_timeout never returned").run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (go_on_tx, go_on_rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        runtime.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            // Blocks until the check lets it go, which is after the shutdown returned.
            go_on_rx.recv().unwrap();
            done_tx.send(()).unwrap();
        });
        started_rx.recv().unwrap();

        runtime.shutdown_timeout(Duration::from_millis(10));
        // The shutdown returned although the closure cannot have finished: it is still
        // blocked, on a thread nobody waits for any more.
        assert!(done_rx.try_recv().is_err());
        go_on_tx.send(()).unwrap();
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the abandoned closure still runs to its end");
    });
}
