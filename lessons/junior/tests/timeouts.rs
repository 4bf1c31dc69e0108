//! Claims of the timeouts chapter, measured against hyper 1.12 on the paused clock.
//!
//! Every connection here is an in-memory pipe (`harness::duplex`), so hours of virtual time
//! pass in microseconds and every timer fires at an exact virtual instant.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::stream;
use harness::duplex::{self, ServerSide};
use harness::leak::Gauge;
use harness::watchdog::check;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

#[allow(dead_code)]
#[path = "../examples/timeouts.rs"]
mod example;

const HANG: &str = "a paused-clock check spun without yielding: is something busy-looping?";
const DAY: Duration = Duration::from_secs(24 * 3600);
const HALF_SENT: &[u8] = b"GET /report HTTP/1.1\r\nhost: workshop.test\r\n";

/// What the auto builder's `serve_connection` returns.
type Served = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn hello(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Reads the body, so that a slow body keeps the handler waiting.
    let body = request.into_body().collect().await;
    let text = if body.is_ok() {
        "hello\n"
    } else {
        "body failed\n"
    };
    Ok(Response::new(Full::new(Bytes::from(text))))
}

/// Reads until the server closes the connection, for at most `limit` of virtual time.
/// Returns what the server sent and when it closed, or `None` if it never did.
async fn read_until_closed(
    client: &mut DuplexStream,
    limit: Duration,
) -> Option<(Vec<u8>, Duration)> {
    let start = Instant::now();
    let mut received = Vec::new();
    match tokio::time::timeout(limit, client.read_to_end(&mut received)).await {
        Ok(_) => Some((received, start.elapsed())),
        Err(_elapsed) => None,
    }
}

/// Reads one response head and body (small responses only) from a raw connection.
async fn read_response(client: &mut DuplexStream) -> String {
    let mut buf = vec![0; 4096];
    let n = client.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Waits for the server to close the connection, for at most a virtual day; fails if it never
/// does. Returns what the server sent and when it closed.
async fn wait_for_close(client: &mut DuplexStream) -> (Vec<u8>, Duration) {
    read_until_closed(client, DAY).await.expect("closed")
}

/// Asserts that a whole virtual day later the server has neither closed the connection nor
/// ended its task: nothing timed out. `why` says what that shows.
async fn assert_open_after_a_day<T>(client: &mut DuplexStream, server: &ServerSide<T>, why: &str) {
    assert!(read_until_closed(client, DAY).await.is_none(), "{why}");
    assert!(!server.is_finished(), "{why}");
}

/// Sends `GET /` on the raw connection and checks that it is answered with a 200.
async fn get_ok(client: &mut DuplexStream) {
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(client).await.starts_with("HTTP/1.1 200 OK"));
}

/// Serves `hello` with the auto builder `builder` on a new in-memory connection, and returns
/// the raw client end.
fn serve_hello(builder: auto::Builder<TokioExecutor>) -> (DuplexStream, ServerSide<Served>) {
    duplex::raw(|io| async move {
        builder
            .serve_connection(TokioIo::new(io), service_fn(hello))
            .await
    })
}

/// The same with hyper's own HTTP/1 builder.
fn serve_hello_http1(builder: http1::Builder) -> (DuplexStream, ServerSide<hyper::Result<()>>) {
    duplex::raw(|io| async move {
        builder
            .serve_connection(TokioIo::new(io), service_fn(hello))
            .await
    })
}

/// Waits for the connection task to end, and checks that it ended with hyper's timeout error.
async fn assert_ended_by_timeout(server: ServerSide<Served>) {
    let error = server.task.await.unwrap().unwrap_err();
    assert!(as_hyper(&*error).is_timeout(), "{error:?}");
}

fn as_hyper<'a>(error: &'a (dyn std::error::Error + 'static)) -> &'a hyper::Error {
    error.downcast_ref().expect("a hyper::Error")
}

#[test]
fn without_a_timer_the_header_timeout_is_off() {
    check(HANG).paused(|| async {
        // The documented default is 30 s, but with no timer hyper cannot apply it.
        let (mut client, server) = serve_hello_http1(http1::Builder::new());
        client.write_all(HALF_SENT).await.unwrap();
        assert_open_after_a_day(
            &mut client,
            &server,
            "half-sent headers should hold the connection open for a whole day",
        )
        .await;
    });
}

#[test]
fn the_auto_builder_without_a_timer_has_no_header_timeout_either() {
    check(HANG).paused(|| async {
        let (mut client, server) = serve_hello(auto::Builder::new(TokioExecutor::new()));
        client.write_all(HALF_SENT).await.unwrap();
        assert_open_after_a_day(
            &mut client,
            &server,
            "half-sent headers hold the connection",
        )
        .await;
    });
}

#[test]
fn with_a_timer_the_default_header_timeout_is_30_s() {
    check(HANG).paused(|| async {
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new());
        let (mut client, server) = serve_hello_http1(builder);
        client.write_all(HALF_SENT).await.unwrap();
        let (sent, after) = wait_for_close(&mut client).await;
        assert_eq!(after, Duration::from_secs(30));
        assert!(sent.is_empty(), "no response at all, not even a 408");
        let error = server.task.await.unwrap().unwrap_err();
        assert!(error.is_timeout(), "serve_connection reports: {error:?}");
    });
}

// ANCHOR: header_timeout_test
#[test]
fn the_configured_header_timeout_closes_half_sent_headers() {
    check(HANG).paused(|| async {
        let (mut client, server) = duplex::raw(|io| async move {
            example::builder()
                .serve_connection(TokioIo::new(io), service_fn(hello))
                .await
        });
        client.write_all(HALF_SENT).await.unwrap();

        // On the paused clock these 5 s cost no real time, and the close happens at an exact
        // virtual instant.
        let (sent, after) = read_until_closed(&mut client, DAY).await.expect("closed");
        assert_eq!(after, Duration::from_secs(5));
        assert!(sent.is_empty(), "hyper closes without answering: no 408");
        let error = server.task.await.unwrap().unwrap_err();
        assert!(as_hyper(&*error).is_timeout(), "{error:?}");
    });
}
// ANCHOR_END: header_timeout_test

#[test]
fn trickling_header_bytes_does_not_extend_the_header_timeout() {
    check(HANG).paused(|| async {
        let (mut client, server) = serve_hello(example::builder());
        // A slowloris client: one byte every second, never finishing the head.
        tokio::spawn(async move {
            for byte in HALF_SENT.iter().cycle() {
                if client.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let start = Instant::now();
        assert_ended_by_timeout(server).await;
        // The timer runs from the start of the head, whatever arrives afterwards.
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    });
}

#[test]
fn setting_a_header_timeout_without_a_timer_panics() {
    check(HANG).paused(|| async {
        // The usual layout: serve_connection is called inside the connection task.
        let connection_task = tokio::spawn(async move {
            let (_client, io) = tokio::io::duplex(1024);
            http1::Builder::new()
                .header_read_timeout(std::time::Duration::from_secs(5))
                .serve_connection(TokioIo::new(io), service_fn(hello))
                .await
        });
        let failure = connection_task.await.unwrap_err();
        assert!(failure.is_panic());
        let message = failure.into_panic();
        assert_eq!(
            message.downcast_ref::<String>().map(String::as_str),
            Some("timeout `header_read_timeout` set, but no timer set")
        );
    });
}

#[test]
fn the_header_timer_also_closes_idle_keep_alive_connections() {
    check(HANG).paused(|| async {
        let (mut client, server) = serve_hello(example::builder());
        get_ok(&mut client).await;

        // The client keeps the connection alive and sends nothing more.
        let (_, after) = wait_for_close(&mut client).await;
        assert_eq!(after, Duration::from_secs(5));
        // hyper reports this routine close as a header timeout.
        assert_ended_by_timeout(server).await;
    });
}

#[test]
fn without_a_timer_an_idle_keep_alive_connection_stays_open() {
    check(HANG).paused(|| async {
        let (mut client, server) = serve_hello(auto::Builder::new(TokioExecutor::new()));
        get_ok(&mut client).await;
        assert_open_after_a_day(&mut client, &server, "the idle connection stays open").await;
    });
}

#[test]
fn the_header_timeout_does_not_cover_a_slow_body() {
    check(HANG).paused(|| async {
        let (mut client, server) = serve_hello(example::builder());
        // The head is complete; the body promises 10 bytes and delivers 2.
        client
            .write_all(
                b"POST /upload HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 10\r\n\r\nab",
            )
            .await
            .unwrap();
        assert_open_after_a_day(
            &mut client,
            &server,
            "hyper has no body read timeout: the handler waits as long as the client does",
        )
        .await;
    });
}

#[test]
fn nothing_times_out_a_client_that_never_reads() {
    check(HANG).paused(|| async {
        let (mut client, server) = duplex::raw(|io| async move {
            let service = service_fn(|_request: Request<Incoming>| async {
                // 1 MiB: far more than the in-memory pipe buffers.
                let big = Bytes::from(vec![b'x'; 1 << 20]);
                Ok::<_, Infallible>(Response::new(Full::new(big)))
            });
            example::builder()
                .serve_connection(TokioIo::new(io), service)
                .await
        });
        client
            .write_all(b"GET /export HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        // The client never reads. hyper has no write timeout: the connection task waits.
        let mut server_task = server.task;
        assert!(tokio::time::timeout(DAY, &mut server_task).await.is_err());
        drop(client);
    });
}

#[test]
fn a_handler_deadline_answers_504_and_drops_the_work() {
    check(HANG).paused(|| async {
        let work = Gauge::new();
        let guard = work.guard();
        let slow = async move {
            let _working = guard;
            tokio::time::sleep(Duration::from_secs(10)).await;
            Response::new(Full::new(Bytes::from("late\n")))
        };
        let start = Instant::now();
        let response = example::with_deadline(Duration::from_secs(2), slow).await;
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert_eq!(
            work.live(),
            0,
            "the timed-out future was dropped with its guard"
        );
    });
}

#[test]
fn a_deadline_on_the_handler_does_not_cover_the_response_body() {
    check(HANG).paused(|| async {
        let (mut client, _server) = duplex::http1(|io| async move {
            let service = service_fn(|_request: Request<Incoming>| async {
                // The deadline is around the future that produces the Response...
                let response = tokio::time::timeout(Duration::from_secs(1), async {
                    // ...but this body takes 5 s to stream, one chunk per second.
                    let chunks = stream::unfold(0, |sent| async move {
                        if sent == 5 {
                            return None;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        let frame = Frame::data(Bytes::from("chunk\n"));
                        Some((Ok::<_, Infallible>(frame), sent + 1))
                    });
                    Response::new(StreamBody::new(chunks))
                })
                .await
                .expect("the response head is ready at once");
                Ok::<_, Infallible>(response)
            });
            example::builder()
                .serve_connection(TokioIo::new(io), service)
                .await
        })
        .await;
        let start = Instant::now();
        let response = client.get("/stream").await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.text().lines().count(), 5);
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(5),
            "well past the 1 s deadline"
        );
    });
}

#[test]
fn the_auto_builder_does_not_time_out_a_client_that_sends_nothing() {
    check(HANG).paused(|| async {
        // Nothing at all, or the first byte of the HTTP/2 preface: the auto builder is still
        // reading to decide between HTTP/1 and HTTP/2, and that wait has no timer.
        for opening in [&b""[..], b"P"] {
            let (mut client, server) = serve_hello(example::builder());
            client.write_all(opening).await.unwrap();
            assert_open_after_a_day(&mut client, &server, "nothing times out the version read")
                .await;
        }
    });
}

#[test]
fn http1_only_times_out_a_client_that_sends_nothing() {
    check(HANG).paused(|| async {
        let (mut client, server) = serve_hello(example::http1_only_builder());
        let (sent, after) = wait_for_close(&mut client).await;
        assert_eq!(after, Duration::from_secs(5));
        assert!(sent.is_empty());
        assert_ended_by_timeout(server).await;
    });
}
