//! The first-bytes deadline on the paused clock: hyper-util's auto builder reads the first
//! bytes with no timer of its own (see the bank's protocol-detection tests); wrapped in
//! `FirstBytesDeadline`, a client that stays undecided is closed at exactly the timeout.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use harness::duplex::{self, ServerSide};
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use lessons_professional::first_bytes::FirstBytesDeadline;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

const HANG: &str = "a paused-clock check spun without yielding";
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const DAY: Duration = Duration::from_secs(24 * 3600);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from("hello\n"))))
}

/// The template's connection setup, on an in-memory pipe.
fn template_connection() -> (DuplexStream, ServerSide<Result<(), BoxError>>) {
    duplex::raw(|io| async move {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        builder.http2().timer(TokioTimer::new());
        let io = FirstBytesDeadline::new(io, HEADER_TIMEOUT);
        builder
            .serve_connection(TokioIo::new(io), service_fn(hello))
            .await
    })
}

/// When the server closed the connection, or `None` if it did not within a virtual day.
async fn closed_after(client: &mut DuplexStream, start: Instant) -> Option<Duration> {
    let mut sink = Vec::new();
    tokio::time::timeout(DAY, client.read_to_end(&mut sink))
        .await
        .ok()
        .map(|_| start.elapsed())
}

#[test]
fn a_client_that_sends_nothing_is_closed_at_the_timeout() {
    check(HANG).paused(|| async {
        let (mut client, server) = template_connection();
        assert_eq!(
            closed_after(&mut client, Instant::now()).await,
            Some(HEADER_TIMEOUT)
        );
        assert!(server.task.await.unwrap().is_err());
    });
}

#[test]
fn a_client_that_stops_inside_the_h2_preface_is_closed_at_the_timeout() {
    check(HANG).paused(|| async {
        let (mut client, _server) = template_connection();
        let start = Instant::now();
        client.write_all(b"P").await.unwrap();
        assert_eq!(closed_after(&mut client, start).await, Some(HEADER_TIMEOUT));
    });
}

#[test]
fn a_late_first_byte_hands_over_to_hypers_header_timer() {
    check(HANG).paused(|| async {
        let (mut client, _server) = template_connection();
        let start = Instant::now();
        // "G" decides HTTP/1 just before the deadline; hyper's header timer starts then, so a
        // head is bounded by at most twice the timeout from accept.
        tokio::time::sleep(HEADER_TIMEOUT - Duration::from_secs(1)).await;
        client.write_all(b"G").await.unwrap();
        let closed = closed_after(&mut client, start).await;
        assert_eq!(closed, Some(HEADER_TIMEOUT * 2 - Duration::from_secs(1)));
    });
}

#[test]
fn a_complete_h2_preface_disarms_the_deadline() {
    check(HANG).paused(|| async {
        let (client, server) = template_connection();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client))
                .await
                .unwrap();
        tokio::spawn(connection);
        // Idle for far longer than the deadline, then a request still works.
        tokio::time::sleep(HEADER_TIMEOUT * 3).await;
        let request = Request::get("http://x/")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        assert_eq!(sender.send_request(request).await.unwrap().status(), 200);
        assert!(!server.is_finished());
    });
}
