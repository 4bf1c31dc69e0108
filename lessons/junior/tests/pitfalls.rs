//! Tests for the claims of `book/src/junior/pitfalls.md` (and the mental models chapter).
//! Connections are in memory on a paused clock unless a test needs nothing of the kind; the
//! handler under test is the one of worked example 2 (`worked_disconnect.rs`), which reports
//! whether it finished or was dropped, and after how many one-second steps.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use harness::duplex;
use harness::server::H1Connection;
use harness::watchdog::check;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

#[allow(dead_code)]
#[path = "../examples/worked_disconnect.rs"]
mod worked_disconnect;

#[allow(dead_code)]
#[path = "../examples/pitfall_detached.rs"]
mod pitfall_detached;

#[allow(dead_code)]
#[path = "../examples/pitfall_builders.rs"]
mod pitfall_builders;

#[allow(dead_code)]
#[path = "../examples/pitfall_let_underscore.rs"]
mod pitfall_let_underscore;

#[allow(dead_code)]
#[path = "../examples/pitfall_blocking.rs"]
mod pitfall_blocking;

#[allow(dead_code)]
#[path = "../examples/pitfall_state_per_connection.rs"]
mod pitfall_state_per_connection;

#[allow(dead_code)]
#[path = "../examples/pattern_server.rs"]
mod pattern_server;

use worked_disconnect::Ended;

const GET: &[u8] = b"GET /report HTTP/1.1\r\nhost: workshop.test\r\n\r\n";

/// How the client leaves.
enum Leave {
    /// Drops its socket.
    Drop,
    /// Shuts down its write half and keeps reading.
    HalfClose,
}

/// Serves worked example 2's handler on an in-memory connection with `builder`, writes
/// `bytes`, leaves half a second later, and reports how the handler ended and when.
async fn client_leaves(bytes: &'static [u8], leave: Leave, half_close: bool) -> (Ended, Duration) {
    let (events, mut ended) = mpsc::unbounded_channel();
    let (mut client, _server) = duplex::raw(move |io: DuplexStream| async move {
        let service = service_fn(move |request| worked_disconnect::report(request, events.clone()));
        let _ = http1::Builder::new()
            .half_close(half_close)
            .serve_connection(TokioIo::new(io), service)
            .await;
    });
    client.write_all(bytes).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = Instant::now();
    let _kept_open = match leave {
        Leave::Drop => {
            drop(client);
            None
        }
        Leave::HalfClose => {
            client.shutdown().await.unwrap();
            Some(client)
        }
    };
    let how = ended
        .recv()
        .await
        .expect("the handler reports how it ended");
    (how, left.elapsed())
}

const DISCONNECT_HANG: &str = "the handler neither finished nor was dropped";

#[test]
fn get_client_disconnect_drops_the_handler() {
    check(DISCONNECT_HANG).paused(|| async {
        let (how, after) = client_leaves(GET, Leave::Drop, false).await;
        assert_eq!(how, Ended::ClientLeft { after_steps: 0 });
        assert_eq!(
            after,
            Duration::ZERO,
            "dropped at once, not at the next step"
        );
    });
}

#[test]
fn get_client_half_close_drops_the_handler() {
    check(DISCONNECT_HANG).paused(|| async {
        let (how, after) = client_leaves(GET, Leave::HalfClose, false).await;
        assert_eq!(how, Ended::ClientLeft { after_steps: 0 });
        assert_eq!(after, Duration::ZERO);
    });
}

#[test]
fn with_half_close_enabled_the_handler_runs_to_completion() {
    check(DISCONNECT_HANG).paused(|| async {
        let (how, _) = client_leaves(GET, Leave::HalfClose, true).await;
        assert_eq!(how, Ended::Finished);
    });
}

#[test]
fn partly_sent_unread_post_body_keeps_the_handler_running() {
    check(DISCONNECT_HANG).paused(|| async {
        let post = b"POST /report HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 100\r\n\r\nfirst bytes";
        let (how, after) = client_leaves(post, Leave::Drop, false).await;
        assert_eq!(how, Ended::Finished, "nobody noticed the client left");
        assert!(after >= Duration::from_secs(9), "it ran all ten steps: {after:?}");
    });
}

#[test]
fn fully_sent_unread_post_body_drops_the_handler() {
    check(DISCONNECT_HANG).paused(|| async {
        let post =
            b"POST /report HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 5\r\n\r\nhello";
        let (how, after) = client_leaves(post, Leave::Drop, false).await;
        assert_eq!(how, Ended::ClientLeft { after_steps: 0 });
        assert_eq!(after, Duration::ZERO);
    });
}

#[test]
fn pipelined_request_keeps_the_handler_running() {
    check(DISCONNECT_HANG).paused(|| async {
        let two = b"GET /report HTTP/1.1\r\nhost: workshop.test\r\n\r\nGET /report HTTP/1.1\r\nhost: workshop.test\r\n\r\n";
        let (how, _) = client_leaves(two, Leave::Drop, false).await;
        assert_eq!(
            how,
            Ended::Finished,
            "the buffered second request keeps hyper from reading the EOF behind it"
        );
    });
}

#[test]
fn dropping_a_join_handle_does_not_cancel_the_task() {
    check("the detached task never sent its receipt").paused(|| async {
        let (sent, receipt) = oneshot::channel();
        pitfall_detached::send_receipt_detached(sent);
        // The handle is gone, yet the task runs to its end and sends.
        assert_eq!(receipt.await, Ok("receipt sent"));
    });
}

#[test]
fn dropping_an_abort_on_drop_handle_cancels_the_task() {
    check("the aborted task never dropped its sender").paused(|| async {
        let (sent, receipt) = oneshot::channel();
        drop(pitfall_detached::send_receipt_owned(sent));
        assert!(
            receipt.await.is_err(),
            "the task was aborted: its sender was dropped unsent"
        );
    });
}

#[test]
fn abort_does_not_stop_spawn_blocking() {
    check("the blocking closure never finished").real(|| async {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let handle = tokio::task::spawn_blocking(move || {
            let _ = started_tx.send(());
            let _ = released.recv();
            let _ = done_tx.send("finished anyway");
        });
        started.await.unwrap();
        handle.abort();
        release.send(()).unwrap();
        assert_eq!(done.await, Ok("finished anyway"));
    });
}

/// Serves a plain `ok` handler on an in-memory connection with `builder`.
fn serve_with(
    builder: auto::Builder<TokioExecutor>,
) -> (DuplexStream, duplex::ServerSide<Result<(), String>>) {
    duplex::raw(move |io: DuplexStream| async move {
        builder
            .serve_connection(TokioIo::new(io), service_fn(ok))
            .await
            .map_err(|error| error.to_string())
    })
}

async fn ok(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from("ok\n"))))
}

const HALF_SENT: &[u8] = b"GET / HTTP/1.1\r\nhost: workshop.test\r\n";

#[test]
fn without_a_timer_half_sent_headers_hold_the_connection() {
    check("this test bounds its wait with a timeout; it should not hang").paused(|| async {
        let (mut client, mut server) = serve_with(pitfall_builders::builder_without_timer());
        client.write_all(HALF_SENT).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_secs(3600), &mut server.task).await;
        assert!(
            waited.is_err(),
            "an hour later the connection is still open"
        );
    });
}

#[test]
fn with_a_timer_the_default_header_timeout_is_30_s() {
    check("the half-sent request was never closed").paused(|| async {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new());
        let (mut client, server) = serve_with(builder);
        let start = Instant::now();
        client.write_all(HALF_SENT).await.unwrap();
        let ended = server.task.await.unwrap();
        assert!(ended.is_err(), "closed with a header timeout error");
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    });
}

#[test]
fn header_read_timeout_without_a_timer_panics_in_the_connection_task() {
    check("the connection task neither panicked nor ended").paused(|| async {
        let (mut client, server) =
            serve_with(pitfall_builders::builder_with_timeout_but_no_timer());
        // The builder is fine until a connection starts speaking HTTP/1 with it.
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        let joined = server.task.await;
        let panic = joined
            .expect_err("the connection task panicked")
            .into_panic();
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(message.contains("no timer set"), "panic message: {message}");
    });
}

#[test]
fn with_a_timer_idle_keep_alive_connections_close_after_30_s() {
    check("the idle connection was never closed").paused(|| async {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new());
        let (client, server) = serve_with(builder);
        let mut connection = H1Connection::handshake(client).await;
        connection.get("/").await.unwrap();
        let idle_since = Instant::now();
        let _ = server.task.await.unwrap();
        assert_eq!(idle_since.elapsed(), Duration::from_secs(30));
    });
}

async fn which_task(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let id = tokio::task::try_id()
        .map(|id| id.to_string())
        .unwrap_or_default();
    Ok(Response::new(Full::new(Bytes::from(id))))
}

#[test]
fn h1_requests_on_one_connection_run_in_the_connection_task() {
    check("the HTTP/1 connection stopped answering").paused(|| async {
        let (mut connection, server) = duplex::http1(|io: DuplexStream| async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service_fn(which_task))
                .await;
        })
        .await;
        let connection_task = server.task.id().to_string();
        for _ in 0..3 {
            let handled_in = connection.get("/").await.unwrap().text();
            assert_eq!(
                handled_in, connection_task,
                "polled inside the connection task"
            );
        }
    });
}

#[test]
fn h2_requests_run_in_their_own_tasks() {
    check("the HTTP/2 connection stopped answering").paused(|| async {
        let (client, server) = duplex::raw(|io: DuplexStream| async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service_fn(which_task))
                .await;
        });
        let connection_task = server.task.id().to_string();
        let (mut sender, driver) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client))
                .await
                .unwrap();
        tokio::spawn(driver);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let request = Request::builder()
                .uri("http://workshop.test/")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let handled_in = String::from_utf8(body.to_vec()).unwrap();
            assert_ne!(
                handled_in, connection_task,
                "each stream is spawned as a task"
            );
            assert!(!seen.contains(&handled_in), "a new task per stream");
            seen.push(handled_in);
        }
    });
}

#[test]
fn keep_alive_requests_are_served_one_at_a_time() {
    check("the pipelined requests were never both answered").paused(|| async {
        let (events, mut log) = mpsc::unbounded_channel::<String>();
        let (mut client, _server) = duplex::raw(move |io: DuplexStream| async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let events = events.clone();
                async move {
                    let path = request.uri().path().to_owned();
                    let _ = events.send(format!("start {path}"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let _ = events.send(format!("end {path}"));
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok\n"))))
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(io), service)
                .await;
        });
        // Both requests at once, in one write: HTTP/1.1 pipelining.
        client
            .write_all(b"GET /a HTTP/1.1\r\nhost: w\r\n\r\nGET /b HTTP/1.1\r\nhost: w\r\n\r\n")
            .await
            .unwrap();
        let mut order = Vec::new();
        for _ in 0..4 {
            order.push(log.recv().await.unwrap());
        }
        assert_eq!(order, ["start /a", "end /a", "start /b", "end /b"]);
    });
}

#[test]
fn unread_body_already_received_keeps_the_connection() {
    check("the second request on the connection was never answered").paused(|| async {
        let (client, server) = serve_with(auto::Builder::new(TokioExecutor::new()));
        let mut connection = H1Connection::handshake(client).await;
        let first = connection
            .send(harness::server::request("POST", "/", "small body"))
            .await
            .unwrap();
        assert_eq!(first.text(), "ok\n", "answered without reading the body");
        let second = connection.get("/").await.unwrap();
        assert_eq!(second.text(), "ok\n", "same connection, next request");
        assert!(!server.is_finished());
    });
}

#[test]
fn unread_body_still_arriving_closes_the_connection() {
    check("the connection with an unread body was never closed").paused(|| async {
        let (mut client, server) = serve_with(auto::Builder::new(TokioExecutor::new()));
        client
            .write_all(
                b"POST / HTTP/1.1\r\nhost: w\r\ncontent-length: 1000000\r\n\r\nthe first bytes",
            )
            .await
            .unwrap();
        let mut received = Vec::new();
        let mut chunk = [0u8; 1024];
        while !received.ends_with(b"ok\n") {
            let n = client.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before the response");
            received.extend_from_slice(&chunk[..n]);
        }
        assert!(received.starts_with(b"HTTP/1.1 200 OK"));
        // hyper does not read the rest of a megabyte for us: it closes the connection.
        let ended = tokio::time::timeout(Duration::from_secs(60), server.task)
            .await
            .expect("the server closed the connection")
            .unwrap();
        assert_eq!(ended, Ok(()));
    });
}

#[test]
fn let_underscore_drops_the_permit_at_once() {
    check("a semaphore call hung").paused(|| async {
        let limit = Arc::new(Semaphore::new(1));
        let left = pitfall_let_underscore::limited_work_wrong(Arc::clone(&limit)).await;
        assert_eq!(left, 1, "`let _ =` released the permit before the work");
        let left = pitfall_let_underscore::limited_work(limit).await;
        assert_eq!(left, 0, "`let _permit =` holds it");
    });
}

#[test]
fn state_created_in_the_accept_loop_is_per_connection() {
    check("the server stopped answering").real(|| async {
        let server = harness::server::TestServer::start(pitfall_state_per_connection::serve).await;
        for _ in 0..2 {
            let mut connection = server.connect().await;
            assert_eq!(connection.get("/").await.unwrap().text(), "visit 1\n");
            assert_eq!(connection.get("/").await.unwrap().text(), "visit 2\n");
            connection.close().await;
        }
    });
}

#[test]
fn a_blocking_call_holds_the_thread_an_await_does_not() {
    check("the race on one thread never finished").run(|| {
        assert_eq!(
            pitfall_blocking::race_on_one_thread(true),
            ["slow done", "quick done"],
            "the quick task waited for the blocked thread"
        );
        assert_eq!(
            pitfall_blocking::race_on_one_thread(false),
            ["quick done", "slow done"],
            "while the slow task awaited, the quick one ran"
        );
    });
}

/// Serves worked example 2's handler with the `auto` builder (HTTP/2 by prior knowledge) on
/// an in-memory connection, and returns an HTTP/2 client for it.
async fn h2_report_connection() -> (
    hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
    mpsc::UnboundedReceiver<Ended>,
) {
    let (events, ended) = mpsc::unbounded_channel();
    let (client, _server) =
        duplex::raw(move |io: DuplexStream| worked_disconnect::serve_connection(io, events));
    let (sender, driver) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client))
            .await
            .unwrap();
    (sender, tokio::spawn(driver), ended)
}

fn h2_get(path: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .uri(format!("http://workshop.test{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[test]
fn h2_stream_reset_drops_only_that_handler() {
    check(DISCONNECT_HANG).paused(|| async {
        let (mut sender, _driver, mut ended) = h2_report_connection().await;
        let first = sender.send_request(h2_get("/report"));
        let second = tokio::spawn(sender.send_request(h2_get("/report")));
        // Give up on the first request: dropping its response future resets the stream.
        let gave_up = tokio::time::timeout(Duration::from_millis(500), first).await;
        assert!(gave_up.is_err());
        let left = Instant::now();
        assert_eq!(
            ended.recv().await.unwrap(),
            Ended::ClientLeft { after_steps: 0 }
        );
        assert_eq!(left.elapsed(), Duration::ZERO, "dropped at once");
        // The other stream, on the same connection, carries on to the end.
        let response = second
            .await
            .unwrap()
            .expect("the sibling stream is answered");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "report: 10 steps\n");
        assert_eq!(ended.recv().await.unwrap(), Ended::Finished);
    });
}

#[test]
fn h2_connection_closed_drops_the_handler() {
    check(DISCONNECT_HANG).paused(|| async {
        let (mut sender, driver, mut ended) = h2_report_connection().await;
        let request = tokio::spawn(sender.send_request(h2_get("/report")));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let left = Instant::now();
        // Close the whole connection: the client's connection task owns the socket.
        driver.abort();
        request.abort();
        assert_eq!(
            ended.recv().await.unwrap(),
            Ended::ClientLeft { after_steps: 0 }
        );
        assert_eq!(left.elapsed(), Duration::ZERO);
    });
}

#[test]
fn without_a_timer_idle_keep_alive_connections_stay_open() {
    check("this test bounds its wait with a timeout; it should not hang").paused(|| async {
        let (client, mut server) = serve_with(pitfall_builders::builder_without_timer());
        let mut connection = H1Connection::handshake(client).await;
        connection.get("/").await.unwrap();
        let waited = tokio::time::timeout(Duration::from_secs(3600), &mut server.task).await;
        assert!(
            waited.is_err(),
            "an hour idle, and the connection is still open"
        );
    });
}

#[test]
fn without_keep_alive_the_connection_closes_after_one_response() {
    check("the connection was never closed").paused(|| async {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().keep_alive(false);
        let (client, server) = serve_with(builder);
        let mut connection = H1Connection::handshake(client).await;
        let response = connection.get("/").await.unwrap();
        assert_eq!(response.header("connection"), Some("close"));
        assert_eq!(
            server.task.await.unwrap(),
            Ok(()),
            "closed by the server after one response"
        );
    });
}

#[test]
fn dropping_the_listener_leaves_open_connections_serving() {
    check("the open connection stopped answering").real(|| async {
        let state = Arc::new(pattern_server::AppState::default());
        let server =
            harness::server::TestServer::start(|listener| pattern_server::serve(listener, state))
                .await;
        let addr = server.addr();
        let mut connection = server.connect().await;
        assert_eq!(connection.get("/").await.unwrap().text(), "hello\n");
        // Stop the accept loop: its task owned the listener, which is dropped with it.
        server.shutdown().await;
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "new clients are refused"
        );
        let stats = connection.get("/stats").await.unwrap().text();
        assert_eq!(
            stats, "connections=1 requests=2\n",
            "the connection accepted before goes on serving"
        );
    });
}
