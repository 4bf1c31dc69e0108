//! Tests for the claims of `book/src/junior/patterns.md`. Each test runs the listing the
//! chapter shows (the example files are compiled in here as modules).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use harness::duplex;
use harness::leak::Gauge;
use harness::server::{H1Connection, TestServer, request};
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

#[allow(dead_code)]
#[path = "../examples/pattern_server.rs"]
mod pattern_server;

#[allow(dead_code)]
#[path = "../examples/pattern_scope_guard.rs"]
mod pattern_scope_guard;

#[allow(dead_code)]
#[path = "../examples/pattern_fan_out_body.rs"]
mod pattern_fan_out_body;

#[allow(dead_code)]
#[path = "../examples/pattern_abort_on_drop.rs"]
mod pattern_abort_on_drop;

#[allow(dead_code)]
#[path = "../examples/pattern_graceful.rs"]
mod pattern_graceful;

use pattern_graceful::{Shutdown, shut_down};
use pattern_server::AppState;

const SERVER_HANG: &str =
    "the server stopped answering: is the accept loop still spawning one task per connection?";

async fn start_pattern_server() -> TestServer {
    TestServer::start(|listener| pattern_server::serve(listener, Arc::new(AppState::default())))
        .await
}

#[test]
fn requests_are_counted_in_the_service() {
    check(SERVER_HANG).real(|| async {
        let server = start_pattern_server().await;
        let mut connection = server.connect().await;
        connection.get("/").await.unwrap();
        connection.get("/").await.unwrap();
        let stats = connection.get("/stats").await.unwrap().text();
        assert_eq!(stats, "connections=1 requests=3\n");
    });
}

#[test]
fn state_created_once_is_shared_by_every_connection() {
    check(SERVER_HANG).real(|| async {
        let server = start_pattern_server().await;
        let mut first = server.connect().await;
        first.get("/").await.unwrap();
        first.close().await;
        let mut second = server.connect().await;
        let stats = second.get("/stats").await.unwrap().text();
        // The second connection sees the first connection's request: one shared state.
        assert_eq!(stats, "connections=2 requests=2\n");
    });
}

#[test]
fn builder_with_timer_closes_half_sent_headers_after_the_timeout() {
    check("the half-sent request was never closed: is the timer on the builder?").paused(
        || async {
            let state = Arc::new(AppState::default());
            let (mut client, server) = duplex::raw(move |io: DuplexStream| async move {
                let service =
                    service_fn(move |request| pattern_server::handle(request, Arc::clone(&state)));
                pattern_server::builder()
                    .serve_connection(TokioIo::new(io), service)
                    .await
                    .map_err(|error| error.to_string())
            });
            let start = Instant::now();
            client
                .write_all(b"GET / HTTP/1.1\r\nhost: workshop.test\r\n")
                .await
                .unwrap();
            let ended = server.task.await.unwrap();
            assert!(
                ended.is_err(),
                "the connection should end with a timeout error"
            );
            let waited = start.elapsed();
            assert!(
                waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
                "closed after {waited:?}, configured 5 s"
            );
        },
    );
}

#[test]
fn scope_guard_runs_when_the_future_is_dropped() {
    check("the report future never finished nor was dropped").paused(|| async {
        let metrics = Arc::new(pattern_scope_guard::Metrics::default());
        let report = pattern_scope_guard::report(Arc::clone(&metrics), Duration::from_secs(10));
        // Dropping the future mid-`.await` is what hyper does when the client leaves.
        let outcome = tokio::time::timeout(Duration::from_secs(1), report).await;
        assert!(
            outcome.is_err(),
            "the report should still be running after 1 s"
        );
        assert_eq!(metrics.in_flight.load(Ordering::Relaxed), 0, "Drop ran");
        assert_eq!(
            metrics.finished.load(Ordering::Relaxed),
            0,
            "the line after the .await never ran"
        );
    });
}

#[test]
fn decrement_after_await_drifts_when_the_future_is_dropped() {
    check("the report future never finished nor was dropped").paused(|| async {
        let metrics = Arc::new(pattern_scope_guard::Metrics::default());
        let report =
            pattern_scope_guard::report_drifting(Arc::clone(&metrics), Duration::from_secs(10));
        let outcome = tokio::time::timeout(Duration::from_secs(1), report).await;
        assert!(outcome.is_err());
        assert_eq!(
            metrics.in_flight.load(Ordering::Relaxed),
            1,
            "the decrement after the .await never ran: the gauge is off by one for good"
        );
    });
}

#[test]
fn scope_guard_also_runs_on_the_normal_path() {
    check("the report future never finished").paused(|| async {
        let metrics = Arc::new(pattern_scope_guard::Metrics::default());
        let body = pattern_scope_guard::report(Arc::clone(&metrics), Duration::from_secs(1)).await;
        assert_eq!(body, "report ready\n");
        assert_eq!(metrics.in_flight.load(Ordering::Relaxed), 0);
        assert_eq!(metrics.finished.load(Ordering::Relaxed), 1);
    });
}

async fn upload_connection() -> H1Connection {
    let (connection, _server) = duplex::http1(|io: DuplexStream| async move {
        let _ = auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(io), service_fn(pattern_fan_out_body::upload))
            .await;
    })
    .await;
    connection
}

#[test]
fn collected_body_fans_out_to_every_task() {
    check("the upload never answered: is a replica task stuck?").paused(|| async {
        let mut connection = upload_connection().await;
        let response = connection
            .send(request("POST", "/upload", "hello"))
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.text(), "stored 3 copies of 5 bytes\n");
    });
}

#[test]
fn cloning_bytes_shares_the_buffer() {
    check("cloning Bytes hung").run(|| {
        let body = Bytes::from(vec![7u8; 1024]);
        let copy = body.clone();
        // Same memory: the clone is a new handle on the same buffer, not a copy of the data.
        assert_eq!(body.as_ptr(), copy.as_ptr());
    });
}

#[test]
fn oversized_upload_is_rejected_with_413() {
    check("the oversized upload never answered").paused(|| async {
        let mut connection = upload_connection().await;
        let too_big = vec![b'x'; pattern_fan_out_body::MAX_UPLOAD + 1];
        let response = connection
            .send(request("POST", "/upload", too_big))
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    });
}

#[test]
fn join_set_aborts_its_tasks_when_dropped() {
    check("the JoinSet's tasks were never aborted").paused(|| async {
        let gauge = Gauge::new();
        let mut set = JoinSet::new();
        for _ in 0..3 {
            let guard = gauge.guard();
            set.spawn(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            });
        }
        assert_eq!(gauge.live(), 3);
        drop(set);
        assert!(
            gauge.settles_to(0, Duration::from_secs(1)).await,
            "dropping a JoinSet aborts every task in it"
        );
    });
}

#[test]
fn abort_on_drop_handle_stops_owned_background_work() {
    check("the refresher task was never aborted").paused(|| async {
        let gauge = Gauge::new();
        let guard = gauge.guard();
        let fetched = Arc::new(tokio::sync::Notify::new());
        let fetched_in_task = Arc::clone(&fetched);
        let price = pattern_abort_on_drop::LivePrice::start(Duration::from_secs(1), move || {
            let _still_alive = &guard; // the task owns the closure, the closure owns the guard
            fetched_in_task.notify_one();
            42
        });
        tokio::time::timeout(Duration::from_secs(5), fetched.notified())
            .await
            .expect("the refresher runs");
        drop(price);
        assert!(
            gauge.settles_to(0, Duration::from_secs(1)).await,
            "dropping the owner aborts the refresher task"
        );
    });
}

/// A service whose handler holds a guard of `gauge` and takes `took` to answer.
async fn timed(
    _request: Request<Incoming>,
    gauge: Gauge,
    took: Duration,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _working = gauge.guard();
    tokio::time::sleep(took).await;
    Ok(Response::new(Full::new(Bytes::from("done\n"))))
}

/// Opens one in-memory connection served like `pattern_graceful::serve` does it: watched by
/// `graceful`, its task owned by `connections`.
async fn watched_connection(
    graceful: &GracefulShutdown,
    connections: &mut JoinSet<()>,
    gauge: &Gauge,
    took: Duration,
) -> H1Connection {
    let (client, server) = tokio::io::duplex(duplex::PIPE_BYTES);
    let gauge = gauge.clone();
    let service = service_fn(move |request| timed(request, gauge.clone(), took));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    let connection = graceful.watch(
        builder
            .serve_connection(TokioIo::new(server), service)
            .into_owned(),
    );
    connections.spawn(async move {
        let _ = connection.await;
    });
    H1Connection::handshake(client).await
}

#[test]
fn graceful_shutdown_lets_in_flight_requests_finish() {
    check("graceful shutdown did not return although the request finishes in 3 s").paused(
        || async {
            let gauge = Gauge::new();
            let graceful = GracefulShutdown::new();
            let mut connections = JoinSet::new();
            let mut client =
                watched_connection(&graceful, &mut connections, &gauge, Duration::from_secs(3))
                    .await;
            let in_flight = tokio::spawn(async move { client.get("/export").await });
            assert!(gauge.reaches_started(1, Duration::from_secs(1)).await);

            let start = Instant::now();
            let outcome = shut_down(graceful, &mut connections, Duration::from_secs(10)).await;
            assert_eq!(outcome, Shutdown::Graceful);
            assert!(start.elapsed() < Duration::from_secs(10));
            let response = in_flight
                .await
                .unwrap()
                .expect("the in-flight request completes");
            assert_eq!(response.text(), "done\n");
        },
    );
}

#[test]
fn graceful_shutdown_has_no_deadline_of_its_own() {
    check("this test bounds shutdown with its own timeout; it should not hang").paused(|| async {
        let gauge = Gauge::new();
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        let mut client =
            watched_connection(&graceful, &mut connections, &gauge, Duration::MAX).await;
        let _stuck = tokio::spawn(async move { client.get("/export").await });
        assert!(gauge.reaches_started(1, Duration::from_secs(1)).await);

        let waited = tokio::time::timeout(Duration::from_secs(3600), graceful.shutdown()).await;
        assert!(
            waited.is_err(),
            "an hour later, shutdown() is still waiting for the stuck handler"
        );
    });
}

#[test]
fn timeout_bounds_graceful_shutdown_and_closes_the_rest() {
    check("shutdown did not come back after the grace period").paused(|| async {
        let gauge = Gauge::new();
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        let mut client =
            watched_connection(&graceful, &mut connections, &gauge, Duration::MAX).await;
        let stuck = tokio::spawn(async move { client.get("/export").await });
        assert!(gauge.reaches_started(1, Duration::from_secs(1)).await);

        let start = Instant::now();
        let outcome = shut_down(graceful, &mut connections, Duration::from_secs(10)).await;
        assert_eq!(outcome, Shutdown::Forced);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert!(
            gauge.settles_to(0, Duration::from_secs(1)).await,
            "closing the connection dropped the stuck handler"
        );
        assert!(
            stuck.await.unwrap().is_err(),
            "the client sees its connection closed, with no response"
        );
    });
}
