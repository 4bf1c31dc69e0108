//! Claims of the chapter "Connection metrics": drop-guard gauges stay right on every path out
//! of a connection or a request, and the connection future's `Result` says how it ended.

mod support {
    pub mod metrics;
}

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use harness::duplex::ServerSide;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use support::metrics::settles;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/metrics_gauges.rs"]
mod metrics_gauges;

use metrics_gauges::{HEADER_TIMEOUT, Metrics};

/// Long enough, in virtual time, for everything that can happen to have happened.
const QUIET: Duration = Duration::from_secs(60);

type Server = ServerSide<hyper::Result<()>>;

/// Serves one in-memory connection with the example's routes and the tracked wrapper.
fn serve(metrics: &Metrics) -> (DuplexStream, Server) {
    serve_with(metrics, metrics_gauges::handle)
}

/// Serves one in-memory connection with `handler` behind the tracked wrapper.
fn serve_with<H, Fut>(metrics: &Metrics, handler: H) -> (DuplexStream, Server)
where
    H: Fn(Metrics, Request<Incoming>) -> Fut + Send + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let metrics = metrics.clone();
    harness::duplex::raw(move |io| {
        let handler_metrics = metrics.clone();
        metrics_gauges::serve_tracked(io, metrics, move |request| {
            handler(handler_metrics.clone(), request)
        })
    })
}

async fn read_all(client: &mut DuplexStream) -> String {
    let mut seen = Vec::new();
    client.read_to_end(&mut seen).await.unwrap();
    String::from_utf8_lossy(&seen).into_owned()
}

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// How many connection endings were recorded, of every kind.
fn endings_recorded(metrics: &Metrics) -> u64 {
    let endings = &metrics.endings;
    [
        &endings.clean,
        &endings.client_left,
        &endings.malformed,
        &endings.timed_out,
        &endings.other,
    ]
    .into_iter()
    .map(count)
    .sum()
}

#[test]
fn the_gauges_follow_a_connection_and_its_request() {
    check("the gauges never settled").paused(|| async {
        let metrics = Metrics::default();
        let (client, server) = serve(&metrics);
        let mut connection = harness::server::H1Connection::handshake(client).await;
        assert!(settles(&metrics.open_connections, 1, QUIET).await);

        let request = tokio::spawn(async move {
            let response = connection.get("/slow").await.unwrap();
            (connection, response)
        });
        assert!(settles(&metrics.in_flight, 1, QUIET).await);
        let (connection, response) = request.await.unwrap();
        assert_eq!(response.text(), "slow\n");
        // The request is done; the connection stays open for the next one.
        assert!(settles(&metrics.in_flight, 0, QUIET).await);
        assert_eq!(metrics.open_connections.load(Ordering::Relaxed), 1);

        connection.close().await;
        assert!(settles(&metrics.open_connections, 0, QUIET).await);
        assert!(server.task.await.unwrap().is_ok());
        assert_eq!(count(&metrics.endings.clean), 1);
    });
}

#[test]
fn a_client_leaving_mid_request_drops_the_handler_and_both_gauges_fall() {
    check("the gauges never settled").paused(|| async {
        let metrics = Metrics::default();
        let (mut client, server) = serve(&metrics);
        client
            .write_all(b"GET /slow HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        assert!(settles(&metrics.in_flight, 1, QUIET).await);
        let start = Instant::now();
        drop(client);
        assert!(settles(&metrics.in_flight, 0, QUIET).await);
        assert!(settles(&metrics.open_connections, 0, QUIET).await);
        // Well before the handler's one second was up: it was dropped, not finished.
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(
            server
                .task
                .await
                .unwrap()
                .unwrap_err()
                .is_incomplete_message()
        );
        assert_eq!(count(&metrics.endings.client_left), 1);
    });
}

#[test]
fn a_panicking_handler_still_releases_both_gauges() {
    check("the gauges never settled").paused(|| async {
        let metrics = Metrics::default();
        let (mut client, server) = serve_with(&metrics, |_, _| async {
            panic!("the handler hit a bug");
        });
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        // The panic unwinds the connection task, dropping both guards on its way out...
        assert!(server.task.await.unwrap_err().is_panic());
        assert_eq!(metrics.in_flight.load(Ordering::Relaxed), 0);
        assert_eq!(metrics.open_connections.load(Ordering::Relaxed), 0);
        // ...but the line after `serve_connection` never ran: no ending was recorded.
        assert_eq!(endings_recorded(&metrics), 0);
        assert_eq!(read_all(&mut client).await, "");
    });
}

#[test]
fn aborting_the_connection_task_releases_both_gauges() {
    check("the gauges never settled").paused(|| async {
        let metrics = Metrics::default();
        let (mut client, server) = serve(&metrics);
        client
            .write_all(b"GET /slow HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        assert!(settles(&metrics.in_flight, 1, QUIET).await);
        // A forced shutdown: the connection task is aborted at its next `.await`.
        server.task.abort();
        assert!(server.task.await.unwrap_err().is_cancelled());
        assert_eq!(metrics.in_flight.load(Ordering::Relaxed), 0);
        assert_eq!(metrics.open_connections.load(Ordering::Relaxed), 0);
        // The future was dropped before it completed: there is no `Result` to record.
        assert_eq!(endings_recorded(&metrics), 0);
    });
}

#[derive(Debug)]
struct BadRequest;

fn parse_id(request: &Request<Incoming>) -> Result<u64, BadRequest> {
    let id = request.uri().path().trim_start_matches("/items/");
    id.parse().map_err(|_| BadRequest)
}

// ANCHOR: manual
/// The gauge kept by hand: an increment at the top, a decrement at the bottom.
async fn lookup(
    in_flight: Arc<AtomicUsize>,
    request: Request<Incoming>,
) -> Result<u64, BadRequest> {
    in_flight.fetch_add(1, Ordering::Relaxed);
    let id = parse_id(&request)?; // an early return skips the decrement...
    tokio::time::sleep(Duration::from_secs(1)).await; // ...and so does being dropped here
    in_flight.fetch_sub(1, Ordering::Relaxed);
    Ok(id)
}
// ANCHOR_END: manual

#[test]
fn a_hand_kept_gauge_drifts_on_every_early_way_out() {
    check("the requests were never answered").paused(|| async {
        let metrics = Metrics::default();
        let by_hand = Arc::new(AtomicUsize::new(0));
        let (client, _server) = serve_with(&metrics, {
            let by_hand = Arc::clone(&by_hand);
            move |_, request| {
                let by_hand = Arc::clone(&by_hand);
                async move {
                    let status = match lookup(by_hand, request).await {
                        Ok(_) => StatusCode::OK,
                        Err(BadRequest) => StatusCode::BAD_REQUEST,
                    };
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = status;
                    response
                }
            }
        });
        let mut connection = harness::server::H1Connection::handshake(client).await;
        let response = connection.get("/items/7").await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        // `?` returned before the decrement:
        let response = connection.get("/items/seven").await.unwrap();
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        assert_eq!(by_hand.load(Ordering::Relaxed), 1);
        // The client leaves during the sleep: the future is dropped before the decrement.
        let request = tokio::spawn(async move { connection.get("/items/8").await });
        assert!(settles(&by_hand, 2, QUIET).await);
        request.abort();
        assert!(settles(&metrics.open_connections, 0, QUIET).await);

        // The guard-kept gauge is back at zero; the hand-kept one says two requests are
        // in flight on a server with no connections at all.
        assert_eq!(metrics.in_flight.load(Ordering::Relaxed), 0);
        assert_eq!(by_hand.load(Ordering::Relaxed), 2);
    });
}

#[test]
fn a_client_that_leaves_mid_head_is_an_incomplete_message() {
    check("the connection never ended").paused(|| async {
        let metrics = Metrics::default();
        let (mut client, server) = serve(&metrics);
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: wor")
            .await
            .unwrap();
        tokio::task::yield_now().await;
        drop(client);
        assert!(
            server
                .task
                .await
                .unwrap()
                .unwrap_err()
                .is_incomplete_message()
        );
        // Leaving before sending anything at all is a clean end.
        let (client, server) = serve(&metrics);
        drop(client);
        assert!(server.task.await.unwrap().is_ok());
        assert_eq!(count(&metrics.endings.client_left), 1);
        assert_eq!(count(&metrics.endings.clean), 1);
    });
}

#[test]
fn garbage_gets_a_400_from_hyper_and_a_parse_error() {
    check("the connection never ended").paused(|| async {
        let metrics = Metrics::default();
        let called = Arc::new(AtomicUsize::new(0));
        let (mut client, server) = serve_with(&metrics, {
            let called = Arc::clone(&called);
            move |metrics, request| {
                called.fetch_add(1, Ordering::Relaxed);
                metrics_gauges::handle(metrics, request)
            }
        });
        client.write_all(b"HELLO THERE\r\n\r\n").await.unwrap();
        let answer = read_all(&mut client).await;
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(server.task.await.unwrap().unwrap_err().is_parse());
        assert_eq!(count(&metrics.endings.malformed), 1);
        // hyper answered on its own: the service was never called.
        assert_eq!(called.load(Ordering::Relaxed), 0);
    });
}

#[test]
fn a_half_sent_head_times_out_with_no_response() {
    check("the header timeout never fired").paused(|| async {
        let metrics = Metrics::default();
        let (mut client, server) = serve(&metrics);
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: wor")
            .await
            .unwrap();
        let start = Instant::now();
        assert_eq!(read_all(&mut client).await, "", "hyper sends no 408");
        assert_eq!(start.elapsed(), HEADER_TIMEOUT);
        assert!(server.task.await.unwrap().unwrap_err().is_timeout());
        assert_eq!(count(&metrics.endings.timed_out), 1);
    });
}

#[test]
fn an_idle_keep_alive_connection_ends_with_the_same_timeout() {
    check("the idle connection was never closed").paused(|| async {
        let metrics = Metrics::default();
        let (client, server) = serve(&metrics);
        let mut connection = harness::server::H1Connection::handshake(client).await;
        assert_eq!(connection.get("/").await.unwrap().text(), "ok\n");
        let start = Instant::now();
        // The client keeps the connection and sends nothing more.
        let ended = server.task.await.unwrap();
        assert_eq!(start.elapsed(), HEADER_TIMEOUT);
        assert!(ended.unwrap_err().is_timeout());
        // Routine, but counted with the slow clients: split them if the difference matters.
        assert_eq!(count(&metrics.endings.timed_out), 1);
    });
}

#[test]
fn a_client_leaving_mid_body_on_a_pipe_is_a_failed_write() {
    check("the connection never ended").paused(|| async {
        let metrics = Metrics::default();
        let (mut client, server) = serve(&metrics);
        let head = "POST /upload HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 100\r\n\r\n";
        client.write_all(head.as_bytes()).await.unwrap();
        client.write_all(b"0123456789").await.unwrap();
        assert!(settles(&metrics.in_flight, 1, QUIET).await);
        drop(client);
        // The handler's read fails, it answers 400, and writing that answer finds no reader.
        let error = server.task.await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), "error writing a body to connection");
        assert_eq!(count(&metrics.endings.client_left), 1);
    });
}

#[test]
fn a_client_leaving_mid_body_on_tcp_is_not_counted_as_ours() {
    check("the connection never ended").real(|| async {
        let metrics = Metrics::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn({
            let metrics = metrics.clone();
            async move {
                let (stream, _) = listener.accept().await.unwrap();
                let handler_metrics = metrics.clone();
                metrics_gauges::serve_tracked(stream, metrics, move |request| {
                    metrics_gauges::handle(handler_metrics.clone(), request)
                })
                .await
            }
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = "POST /upload HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 100\r\n\r\n";
        client.write_all(head.as_bytes()).await.unwrap();
        client.write_all(b"0123456789").await.unwrap();
        assert!(settles(&metrics.in_flight, 1, Duration::from_secs(10)).await);
        drop(client);
        // The 400 lands in the kernel's send buffer, so the write usually succeeds and the
        // connection ends `Ok(())`; a reset that wins the race counts as the client leaving.
        let _ = server.await.unwrap();
        assert_eq!(count(&metrics.endings.other), 0);
        assert_eq!(
            count(&metrics.endings.clean) + count(&metrics.endings.client_left),
            1
        );
    });
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Waits until the runtime's alive-task count is `want`.
async fn alive_settles(want: usize) -> bool {
    tokio::time::timeout(QUIET, async {
        while alive_tasks() != want {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .is_ok()
}

/// Three clients, one request each, then all of them close.
async fn three_clients(metrics: &Metrics, leaky: bool) {
    for _ in 0..3 {
        let (client, _server) = serve_with(metrics, move |metrics, request| async move {
            if leaky {
                // A background refresh with no end and no owner.
                tokio::spawn(std::future::pending::<()>());
            }
            metrics_gauges::handle(metrics, request).await
        });
        let mut connection = harness::server::H1Connection::handshake(client).await;
        connection.get("/").await.unwrap();
        connection.close().await;
    }
}

#[test]
fn the_alive_task_count_returns_to_its_baseline_when_nothing_leaks() {
    check("the alive-task count never settled").paused(|| async {
        let metrics = Metrics::default();
        let baseline = alive_tasks();
        three_clients(&metrics, false).await;
        assert!(alive_settles(baseline).await);
        assert!(settles(&metrics.open_connections, 0, QUIET).await);
    });
}

#[test]
fn a_task_leaked_per_request_shows_in_the_alive_task_count() {
    check("the alive-task count never settled").paused(|| async {
        let metrics = Metrics::default();
        let baseline = alive_tasks();
        three_clients(&metrics, true).await;
        // Every connection is gone, and three tasks are still alive: one per request.
        assert!(settles(&metrics.open_connections, 0, QUIET).await);
        assert!(alive_settles(baseline + 3).await);
        // A quiet minute later they are still there (on the paused clock, an exact wait).
        tokio::time::sleep(QUIET).await;
        assert_eq!(alive_tasks(), baseline + 3);
    });
}

#[test]
fn a_task_tracker_s_len_counts_the_connection_tasks_it_spawned() {
    check("the connections never closed").paused(|| async {
        let metrics = Metrics::default();
        let tracker = TaskTracker::new();
        let mut clients = Vec::new();
        for _ in 0..3 {
            let (client, server) = tokio::io::duplex(harness::duplex::PIPE_BYTES);
            let metrics = metrics.clone();
            tracker.spawn(async move {
                let handler_metrics = metrics.clone();
                metrics_gauges::serve_tracked(server, metrics, move |request| {
                    metrics_gauges::handle(handler_metrics.clone(), request)
                })
                .await
            });
            clients.push(client);
        }
        assert_eq!(tracker.len(), 3);
        drop(clients);
        tracker.close();
        tracker.wait().await;
        assert_eq!(tracker.len(), 0);
        assert_eq!(count(&metrics.endings.clean), 3);
    });
}
