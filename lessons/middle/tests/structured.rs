//! Claims of the chapter "Structured concurrency": what each tool does when its owner goes
//! away, and what `abort` can and cannot stop.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use harness::leak::Gauge;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::Response;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/structured_tools.rs"]
mod structured_tools;

/// Long enough, in virtual time, for everything that can happen to have happened.
const QUIET: Duration = Duration::from_secs(60);

/// A task body that counts itself on `gauge` until `release` gives it a permit.
async fn parked(gauge: Gauge, release: Arc<Semaphore>) {
    let _guard = gauge.guard();
    release.acquire().await.unwrap().forget();
}

/// A replica that answers after `secs` virtual seconds, counted on `gauge` while it works.
async fn replica(gauge: Gauge, name: &'static str, secs: u64) -> String {
    let _guard = gauge.guard();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    name.to_owned()
}

#[test]
fn a_dropped_join_handle_leaves_its_task_running() {
    check("the detached task never finished").paused(|| async {
        let gauge = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        drop(tokio::spawn(parked(gauge.clone(), Arc::clone(&release))));
        assert!(gauge.reaches_started(1, QUIET).await);
        // A minute later it is still there: nothing owns it any more, nothing stops it.
        assert!(!gauge.settles_to(0, QUIET).await);
        release.add_permits(1);
        assert!(gauge.settles_to(0, QUIET).await);
    });
}

#[test]
fn a_dropped_join_set_aborts_every_task_in_it() {
    check("the set's tasks were never aborted").paused(|| async {
        let gauge = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let mut set = JoinSet::new();
        for _ in 0..3 {
            set.spawn(parked(gauge.clone(), Arc::clone(&release)));
        }
        assert!(gauge.reaches_started(3, QUIET).await);
        drop(set);
        assert!(gauge.settles_to(0, QUIET).await);
    });
}

#[test]
fn an_abort_is_carried_out_when_the_scheduler_next_reaches_the_task() {
    check("the set's tasks were never aborted").paused(|| async {
        let gauge = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let mut set = JoinSet::new();
        for _ in 0..3 {
            set.spawn(parked(gauge.clone(), Arc::clone(&release)));
        }
        assert!(gauge.reaches_started(3, QUIET).await);
        drop(set);
        // `drop` only marked the tasks and queued them: their futures are still alive...
        assert_eq!(gauge.live(), 3);
        // ...until this task yields and the scheduler runs them, which drops them.
        tokio::task::yield_now().await;
        assert_eq!(gauge.live(), 0);
    });
}

#[test]
fn join_set_shutdown_aborts_every_task_and_waits_until_they_are_gone() {
    check("the set's tasks were never aborted").paused(|| async {
        let gauge = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let mut set = JoinSet::new();
        for _ in 0..3 {
            set.spawn(parked(gauge.clone(), Arc::clone(&release)));
        }
        assert!(gauge.reaches_started(3, QUIET).await);
        set.shutdown().await;
        // No yield needed: `shutdown` returned only once every task had been dropped.
        assert_eq!(gauge.live(), 0);
        assert!(set.is_empty());
    });
}

#[test]
fn try_join_returns_at_the_first_error_and_drops_the_other_future() {
    check("the joined futures never returned").paused(|| async {
        let gauge = Gauge::new();
        let start = Instant::now();
        let read = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err::<(), _>("the client left mid-upload")
        };
        let open = async { Ok(replica(gauge.clone(), "session", 3600).await) };
        let result = structured_tools::upload_with_session(read, open).await;
        assert_eq!(result, Err("the client left mid-upload"));
        // At the first error, not an hour later; and the session future is already gone.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!((gauge.started(), gauge.live()), (1, 0));

        // `join!` has no error path: it waits for every future, failed or not.
        let read = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err::<(), _>("the client left mid-upload")
        };
        let open = replica(gauge.clone(), "session", 3600);
        let (read, session) = tokio::join!(read, open);
        assert!(read.is_err() && session == "session");
        assert_eq!(start.elapsed(), Duration::from_secs(3601));
    });
}

#[test]
fn join_next_yields_results_in_completion_order() {
    check("the set never yielded its results").paused(|| async {
        let gauge = Gauge::new();
        let mut set = JoinSet::new();
        for (name, secs) in [("eu", 3), ("us", 1), ("ap", 2)] {
            set.spawn(replica(gauge.clone(), name, secs));
        }
        let mut order = Vec::new();
        while let Some(joined) = set.join_next().await {
            order.push(joined.unwrap());
        }
        assert_eq!(order, ["us", "ap", "eu"]);
    });
}

#[test]
fn the_first_answer_wins_and_the_slower_replicas_are_aborted() {
    check("the first answer never came").paused(|| async {
        let gauge = Gauge::new();
        let start = Instant::now();
        let answer = structured_tools::first_answer([
            replica(gauge.clone(), "eu", 3600),
            replica(gauge.clone(), "us", 1),
            replica(gauge.clone(), "ap", 3600),
        ])
        .await;
        assert_eq!(answer.as_deref(), Some("us"));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // Returning dropped the set: the two hour-long replicas go without any time passing.
        assert_eq!(gauge.started(), 3);
        assert!(gauge.settles_to(0, QUIET).await);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    });
}

#[test]
fn a_replica_that_panics_is_skipped_for_the_next_answer() {
    check("the first answer never came").paused(|| async {
        let gauge = Gauge::new();
        let broken: std::pin::Pin<Box<dyn Future<Output = String> + Send>> =
            Box::pin(async { panic!("the replica's client hit a bug") });
        let answer =
            structured_tools::first_answer([broken, Box::pin(replica(gauge.clone(), "us", 2))])
                .await;
        assert_eq!(answer.as_deref(), Some("us"));
    });
}

#[test]
fn a_dropped_abort_on_drop_handle_aborts_its_task() {
    check("the task behind the handle was never aborted").paused(|| async {
        let gauge = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let handle = AbortOnDropHandle::new(tokio::spawn(parked(gauge.clone(), release)));
        assert!(gauge.reaches_started(1, QUIET).await);
        drop(handle);
        assert!(gauge.settles_to(0, QUIET).await);
    });
}

#[test]
fn an_early_return_aborts_the_prefetched_cart() {
    check("the cart load was never aborted").paused(|| async {
        let gauge = Gauge::new();
        let cart = replica(gauge.clone(), "cart", 3600);
        let session = async {
            // The cart load has started by the time the session check fails.
            tokio::task::yield_now().await;
            false
        };
        let result = structured_tools::checkout(session, cart).await;
        assert_eq!(result, Err("session expired"));
        assert_eq!(gauge.started(), 1);
        let start = Instant::now();
        assert!(gauge.settles_to(0, QUIET).await);
        assert_eq!(start.elapsed(), Duration::ZERO);

        // With a valid session the handle is awaited like a `JoinHandle`.
        let cart = replica(gauge.clone(), "cart", 1);
        let result = structured_tools::checkout(async { true }, cart).await;
        assert_eq!(result, Ok("cart".to_owned()));
    });
}

#[test]
fn a_oneshot_sender_learns_that_its_receiver_is_gone() {
    check("the renderer never noticed its requester left").paused(|| async {
        let (reply, report) = oneshot::channel();
        let start = Instant::now();
        let renderer = tokio::spawn(structured_tools::render_report(50, reply));
        tokio::time::sleep(Duration::from_millis(250)).await;
        drop(report);
        // The renderer stops at once, not after the 5 s that 50 pages take.
        renderer.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(250));
    });
}

#[test]
fn a_oneshot_report_arrives_when_the_requester_waits() {
    check("the report never arrived").paused(|| async {
        let (reply, report) = oneshot::channel();
        tokio::spawn(structured_tools::render_report(3, reply));
        assert_eq!(report.await.unwrap(), "report of 3 pages");
    });
}

#[test]
fn abort_takes_effect_at_the_next_await_not_at_the_call() {
    check("the aborted task never ended").paused(|| async {
        let reached_await = Arc::new(AtomicBool::new(false));
        let after_await = Arc::new(AtomicBool::new(false));
        let (handle_tx, handle_rx) = oneshot::channel::<tokio::task::AbortHandle>();
        let task = tokio::spawn({
            let reached_await = Arc::clone(&reached_await);
            let after_await = Arc::clone(&after_await);
            async move {
                // The task aborts itself: `abort` only marks it, and the code goes on...
                handle_rx.await.unwrap().abort();
                reached_await.store(true, Ordering::SeqCst);
                // ...until this poll returns `Pending`; the task is never polled again.
                tokio::task::yield_now().await;
                after_await.store(true, Ordering::SeqCst);
            }
        });
        handle_tx.send(task.abort_handle()).unwrap();
        let joined = task.await;
        assert!(joined.unwrap_err().is_cancelled());
        assert!(reached_await.load(Ordering::SeqCst));
        assert!(!after_await.load(Ordering::SeqCst));
    });
}

#[test]
fn abort_cannot_stop_a_running_spawn_blocking_closure() {
    check("the blocking closure never finished").run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (started_tx, started_rx) = oneshot::channel();
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            let closure = tokio::task::spawn_blocking(move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                "finished anyway"
            });
            started_rx.await.unwrap();
            closure.abort();
            release_tx.send(()).unwrap();
            // The result is delivered as if nobody had asked to abort.
            assert_eq!(closure.await.unwrap(), "finished anyway");
        });
    });
}

#[test]
fn abort_stops_a_spawn_blocking_closure_that_has_not_started() {
    check("the blocking pool never freed its thread").run(|| {
        // One blocking thread: the second closure waits in the pool's queue.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        runtime.block_on(async {
            let (started_tx, started_rx) = oneshot::channel();
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            let first = tokio::task::spawn_blocking(move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            });
            started_rx.await.unwrap();

            let ran = Arc::new(AtomicBool::new(false));
            let queued = tokio::task::spawn_blocking({
                let ran = Arc::clone(&ran);
                move || ran.store(true, Ordering::SeqCst)
            });
            queued.abort();
            release_tx.send(()).unwrap();
            first.await.unwrap();
            assert!(queued.await.unwrap_err().is_cancelled());
            assert!(!ran.load(Ordering::SeqCst), "an aborted queued closure ran");
        });
    });
}

#[test]
fn a_task_tracker_counts_its_tasks_and_waits_for_them_after_close() {
    check("the tracker never finished waiting").paused(|| async {
        let tracker = TaskTracker::new();
        let start = Instant::now();
        structured_tools::audit(&tracker, "first".to_owned());
        structured_tools::audit(&tracker, "second".to_owned());
        assert_eq!(tracker.len(), 2);
        structured_tools::drain_audits(&tracker).await;
        assert_eq!(start.elapsed(), Duration::from_millis(50));
        assert!(tracker.is_empty());
    });
}

#[test]
fn a_task_tracker_does_not_finish_waiting_before_it_is_closed() {
    check("the tracker never finished waiting").paused(|| async {
        let tracker = TaskTracker::new();
        // Nothing was ever spawned, but the tracker is open: more may come.
        let waited = tokio::time::timeout(QUIET, tracker.wait()).await;
        assert!(waited.is_err(), "an open tracker finished waiting");
        tracker.close();
        tracker.wait().await;
    });
}

#[test]
fn dropping_a_task_tracker_neither_aborts_nor_waits() {
    check("the tracked task never finished").paused(|| async {
        let gauge = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let tracker = TaskTracker::new();
        tracker.spawn(parked(gauge.clone(), Arc::clone(&release)));
        assert!(gauge.reaches_started(1, QUIET).await);
        drop(tracker);
        // Tracked tasks are detached tasks: the tracker only counts them.
        assert!(!gauge.settles_to(0, QUIET).await);
        release.add_permits(1);
        assert!(gauge.settles_to(0, QUIET).await);
    });
}

/// A handler that fans out to two replicas in a `JoinSet`; one of them also spawns a
/// detached "cache warm-up" task with plain `tokio::spawn`.
async fn fan_out_handler(set_tasks: Gauge, detached: Gauge) -> Response<Full<Bytes>> {
    let mut asks = JoinSet::new();
    asks.spawn(parked(set_tasks.clone(), Arc::new(Semaphore::new(0))));
    asks.spawn(async move {
        tokio::spawn(parked(detached, Arc::new(Semaphore::new(0))));
        parked(set_tasks, Arc::new(Semaphore::new(0))).await;
    });
    while asks.join_next().await.is_some() {}
    Response::new(Full::new(Bytes::from_static(b"done\n")))
}

#[test]
fn the_tree_is_cut_at_the_first_plain_spawn() {
    check("the client's departure never reached the set's tasks").paused(|| async {
        let set_tasks = Gauge::new();
        let detached = Gauge::new();
        let (connection, _server) = harness::duplex::http1({
            let (set_tasks, detached) = (set_tasks.clone(), detached.clone());
            move |io| {
                let service = service_fn(move |_request| {
                    let response = fan_out_handler(set_tasks.clone(), detached.clone());
                    async move { Ok::<_, Infallible>(response.await) }
                });
                http1::Builder::new().serve_connection(TokioIo::new(io), service)
            }
        })
        .await;
        let mut connection = connection;
        let request = tokio::spawn(async move {
            let _ = connection.get("/quote").await;
            connection
        });
        assert!(set_tasks.reaches_started(2, QUIET).await);
        assert!(detached.reaches_started(1, QUIET).await);

        // The client leaves: hyper drops the handler, the handler's set aborts its tasks...
        request.abort();
        assert!(set_tasks.settles_to(0, QUIET).await);
        // ...but the task one of them spawned with `tokio::spawn` belongs to nobody.
        assert_eq!(detached.live(), 1);
        assert!(!detached.settles_to(0, QUIET).await);
    });
}
