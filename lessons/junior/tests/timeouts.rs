//! Claims of the timeouts chapter, measured against hyper 1.12 on the paused clock.
//!
//! Every connection here is an in-memory pipe (`harness::duplex`), so hours of virtual time
//! pass in microseconds and every timer fires at an exact virtual instant.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::stream;
use harness::duplex;
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

fn as_hyper<'a>(error: &'a (dyn std::error::Error + 'static)) -> &'a hyper::Error {
    error.downcast_ref().expect("a hyper::Error")
}

#[test]
fn without_a_timer_the_header_timeout_is_off() {
    check(HANG).paused(|| async {
        let (mut client, server) = duplex::raw(|io| async move {
            // The documented default is 30 s, but with no timer hyper cannot apply it.
            http1::Builder::new()
                .serve_connection(TokioIo::new(io), service_fn(hello))
                .await
        });
        client.write_all(HALF_SENT).await.unwrap();
        assert!(
            read_until_closed(&mut client, DAY).await.is_none(),
            "half-sent headers should hold the connection open for a whole day"
        );
        assert!(!server.is_finished());
    });
}

#[test]
fn the_auto_builder_without_a_timer_has_no_header_timeout_either() {
    check(HANG).paused(|| async {
        let (mut client, server) = duplex::raw(|io| async move {
            auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service_fn(hello))
                .await
        });
        client.write_all(HALF_SENT).await.unwrap();
        assert!(read_until_closed(&mut client, DAY).await.is_none());
        assert!(!server.is_finished());
    });
}

#[test]
fn with_a_timer_the_default_header_timeout_is_30_s() {
    check(HANG).paused(|| async {
        let (mut client, server) = duplex::raw(|io| async move {
            http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(io), service_fn(hello))
                .await
        });
        client.write_all(HALF_SENT).await.unwrap();
        let (sent, after) = read_until_closed(&mut client, DAY).await.expect("closed");
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
        let (mut client, server) = duplex::raw(|io| async move {
            example::builder()
                .serve_connection(TokioIo::new(io), service_fn(hello))
                .await
        });
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
        let error = server.task.await.unwrap().unwrap_err();
        // The timer runs from the start of the head, whatever arrives afterwards.
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert!(as_hyper(&*error).is_timeout(), "{error:?}");
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
        let (mut client, server) = duplex::raw(|io| async move {
            example::builder()
                .serve_connection(TokioIo::new(io), service_fn(hello))
                .await
        });
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        assert!(
            read_response(&mut client)
                .await
                .starts_with("HTTP/1.1 200 OK")
        );

        // The client keeps the connection alive and sends nothing more.
        let (_, after) = read_until_closed(&mut client, DAY).await.expect("closed");
        assert_eq!(after, Duration::from_secs(5));
        // hyper reports this routine close as a header timeout.
        let error = server.task.await.unwrap().unwrap_err();
        assert!(as_hyper(&*error).is_timeout(), "{error:?}");
    });
}

#[test]
fn without_a_timer_an_idle_keep_alive_connection_stays_open() {
    check(HANG).paused(|| async {
        let (mut client, server) = duplex::raw(|io| async move {
            auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service_fn(hello))
                .await
        });
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        assert!(
            read_response(&mut client)
                .await
                .starts_with("HTTP/1.1 200 OK")
        );
        assert!(read_until_closed(&mut client, DAY).await.is_none());
        assert!(!server.is_finished());
    });
}

#[test]
fn the_header_timeout_does_not_cover_a_slow_body() {
    check(HANG).paused(|| async {
        let (mut client, server) = duplex::raw(|io| async move {
            example::builder()
                .serve_connection(TokioIo::new(io), service_fn(hello))
                .await
        });
        // The head is complete; the body promises 10 bytes and delivers 2.
        client
            .write_all(
                b"POST /upload HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 10\r\n\r\nab",
            )
            .await
            .unwrap();
        assert!(
            read_until_closed(&mut client, DAY).await.is_none(),
            "hyper has no body read timeout: the handler waits as long as the client does"
        );
        assert!(!server.is_finished());
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
            let (mut client, server) = duplex::raw(|io| async move {
                example::builder()
                    .serve_connection(TokioIo::new(io), service_fn(hello))
                    .await
            });
            client.write_all(opening).await.unwrap();
            assert!(read_until_closed(&mut client, DAY).await.is_none());
            assert!(!server.is_finished());
        }
    });
}

#[test]
fn http1_only_times_out_a_client_that_sends_nothing() {
    check(HANG).paused(|| async {
        let (mut client, server) = duplex::raw(|io| async move {
            example::http1_only_builder()
                .serve_connection(TokioIo::new(io), service_fn(hello))
                .await
        });
        let (sent, after) = read_until_closed(&mut client, DAY).await.expect("closed");
        assert_eq!(after, Duration::from_secs(5));
        assert!(sent.is_empty());
        let error = server.task.await.unwrap().unwrap_err();
        assert!(as_hyper(&*error).is_timeout(), "{error:?}");
    });
}
