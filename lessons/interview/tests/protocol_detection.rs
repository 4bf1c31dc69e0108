//! hyper-util's auto builder reads the first bytes of a connection to choose HTTP/1 or HTTP/2,
//! and that read has no timer, whatever the builder's HTTP/1 timer and header timeout say.
//!
//! Backs Q6, Q13 and R6 of the bank (hyper 1.12, hyper-util 0.1.21): a client that connects
//! and sends nothing, or only a prefix of the HTTP/2 preface, holds its connection for ever;
//! once the protocol is known, the header timeout runs as configured. hyper's own
//! `http1::Builder` has no detection step, so its header timeout covers a silent client too.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use harness::duplex::{self, ServerSide};
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

const HANG: &str = "a paused-clock check spun without yielding";
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const DAY: Duration = Duration::from_secs(24 * 3600);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from("hello\n"))))
}

/// The auto builder as a careful server configures it: a timer, and a 5 s header timeout.
fn auto_with_timer() -> (DuplexStream, ServerSide<Result<(), BoxError>>) {
    duplex::raw(|io| async move {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        builder
            .serve_connection(TokioIo::new(io), service_fn(hello))
            .await
    })
}

/// Reads until the server closes the connection, for at most a virtual day: when it closed,
/// or `None` if it never did.
async fn closed_after(client: &mut DuplexStream) -> Option<Duration> {
    let start = Instant::now();
    let mut sink = Vec::new();
    tokio::time::timeout(DAY, client.read_to_end(&mut sink))
        .await
        .ok()
        .map(|_| start.elapsed())
}

#[test]
fn the_auto_builder_never_times_out_a_client_that_sends_nothing() {
    check(HANG).paused(|| async {
        let (mut client, server) = auto_with_timer();
        assert_eq!(closed_after(&mut client).await, None);
        assert!(!server.is_finished());
    });
}

#[test]
fn the_auto_builder_never_times_out_a_client_that_stops_inside_the_h2_preface() {
    check(HANG).paused(|| async {
        let (mut client, server) = auto_with_timer();
        // A prefix of "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n": still undecided.
        client.write_all(b"PRI * HTTP/2").await.unwrap();
        assert_eq!(closed_after(&mut client).await, None);
        assert!(!server.is_finished());
    });
}

#[test]
fn once_the_auto_builder_knows_it_is_http1_the_header_timeout_runs() {
    check(HANG).paused(|| async {
        let (mut client, server) = auto_with_timer();
        // "G" is not the preface's first byte: HTTP/1 from here on, and the head is half sent.
        client.write_all(b"GET /report HTTP/1.1\r\n").await.unwrap();
        assert_eq!(closed_after(&mut client).await, Some(HEADER_TIMEOUT));
        let error = server.task.await.unwrap().unwrap_err();
        let error: &hyper::Error = error.downcast_ref().expect("a hyper::Error");
        assert!(error.is_timeout(), "{error:?}");
    });
}

#[test]
fn hypers_http1_builder_times_out_a_client_that_sends_nothing() {
    check(HANG).paused(|| async {
        let (mut client, server) = duplex::raw(|io| async move {
            http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(io), service_fn(hello))
                .await
        });
        assert_eq!(closed_after(&mut client).await, Some(HEADER_TIMEOUT));
        assert!(server.task.await.unwrap().unwrap_err().is_timeout());
    });
}
