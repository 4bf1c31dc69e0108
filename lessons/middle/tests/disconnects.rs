//! Claims of the chapter "When hyper notices a client left": the mechanism behind each row of
//! the junior cancellation table, measured against hyper 1.12.
//!
//! The rows themselves are checked in `lessons/junior/tests/cancellation.rs`; these checks
//! show *why*: hyper sees the end of the stream only by reading past every byte in front of
//! it, and it reads an unfinished body only as fast as the handler asks for it.
//!
//! All run on a paused clock over in-memory pipes: "still alive" means "still alive after a
//! minute of virtual time in which nothing else could happen".

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use harness::leak::Gauge;
use harness::watchdog::check;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use harness::counting::{CountingIo, pipe};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/disconnects_upload.rs"]
mod example;

/// Long enough, in virtual time, for everything that can happen to have happened.
const QUIET: Duration = Duration::from_secs(60);
const HANG: &str = "the handler never finished: is it still waiting to be released?";
const ONE_MIB: usize = 1024 * 1024;

/// What a parked handler does with its body before it parks.
#[derive(Clone, Copy, PartialEq)]
enum BodyPlan {
    /// Leaves it alone until released, then reads it to the end.
    ReadAfterRelease,
    /// Drops it unread, then parks.
    Drop,
}

/// Drop guards and a release valve for parked handlers.
#[derive(Clone)]
struct Probes {
    /// One guard per live handler future.
    alive: Gauge,
    /// Counts handlers that got past their `.await`.
    finished: Gauge,
    /// Counts handlers that dropped their body.
    dropped_body: Gauge,
    release: Arc<Semaphore>,
}

impl Probes {
    fn new() -> Self {
        Self {
            alive: Gauge::new(),
            finished: Gauge::new(),
            dropped_body: Gauge::new(),
            release: Arc::new(Semaphore::new(0)),
        }
    }
}

/// A handler that parks until released, treating its body according to `plan`, and answers
/// with the number of body bytes it read.
async fn parked(
    request: Request<Incoming>,
    probes: Probes,
    plan: BodyPlan,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _alive = probes.alive.guard();
    let body = request.into_body();
    let body = if plan == BodyPlan::Drop {
        drop(body);
        drop(probes.dropped_body.guard());
        None
    } else {
        Some(body)
    };
    probes.release.acquire().await.unwrap().forget();
    drop(probes.finished.guard());
    let read = match body {
        Some(body) => body.collect().await.map_or(0, |b| b.to_bytes().len()),
        None => 0,
    };
    Ok(Response::new(Full::new(Bytes::from(format!(
        "read {read}\n"
    )))))
}

/// Serves `io` with the parked handler through the auto builder's defaults.
fn serve(io: CountingIo, probes: &Probes, plan: BodyPlan) -> JoinHandle<()> {
    let probes = probes.clone();
    tokio::spawn(async move {
        let service = service_fn(move |request| parked(request, probes.clone(), plan));
        let _ = auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(io), service)
            .await;
    })
}

fn post_head(content_length: usize) -> Vec<u8> {
    format!(
        "POST /upload HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: {content_length}\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn hyper_reads_an_unread_body_only_one_buffer_ahead() {
    check(HANG).paused(|| async {
        let probes = Probes::new();
        // A pipe roomy enough for the whole request: the client is not held back.
        let (mut client, server, read) = pipe(2 * ONE_MIB);
        let _server = serve(server, &probes, BodyPlan::ReadAfterRelease);
        let head = post_head(ONE_MIB);
        client.write_all(&head).await.unwrap();
        client.write_all(&vec![b'x'; ONE_MIB]).await.unwrap();
        assert!(probes.alive.reaches_started(1, QUIET).await);

        // A quiet minute later, hyper has read the head and a first slice of the body, and
        // stopped: the rest waits in the pipe until the handler asks for it.
        tokio::time::sleep(QUIET).await;
        // (16 KiB with hyper 1.12 and hyper-util 0.1.21, head included.)
        assert_eq!(read.get(), 16 * 1024, "bytes hyper read of an unread body");

        // The handler reads its body: now hyper reads all of it.
        probes.release.add_permits(1);
        let mut answer = vec![0; 1024];
        let n = client.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.ends_with(&format!("read {ONE_MIB}\n")), "{answer}");
        assert_eq!(read.get(), head.len() + ONE_MIB);
    });
}

#[test]
fn a_whole_body_too_big_to_read_ahead_hides_the_disconnect() {
    check(HANG).paused(|| async {
        let probes = Probes::new();
        let (mut client, server, _read) = pipe(2 * ONE_MIB);
        let server = serve(server, &probes, BodyPlan::ReadAfterRelease);
        // Every byte of the body is sent, then the client leaves...
        client.write_all(&post_head(ONE_MIB)).await.unwrap();
        client.write_all(&vec![b'x'; ONE_MIB]).await.unwrap();
        assert!(probes.alive.reaches_started(1, QUIET).await);
        drop(client);

        // ...but the end of the stream is behind a megabyte hyper has not read: unnoticed.
        assert!(
            !probes.alive.settles_to(0, QUIET).await,
            "the handler was dropped: hyper saw the end of the stream"
        );
        probes.release.add_permits(1);
        assert!(probes.finished.reaches_started(1, QUIET).await);
        server.await.unwrap();
    });
}

#[test]
fn dropping_an_unread_body_does_not_bring_the_disconnect_back() {
    check(HANG).paused(|| async {
        let probes = Probes::new();
        let (mut client, server, _read) = pipe(64 * 1024);
        let _server = serve(server, &probes, BodyPlan::Drop);
        client.write_all(&post_head(100)).await.unwrap();
        client.write_all(b"only ten b").await.unwrap();
        assert!(probes.dropped_body.reaches_started(1, QUIET).await);

        // The handler let go of its body while 90 bytes were still to come: hyper gives up
        // on reading this request and stops reading the socket at all, so it never sees
        // the client go.
        drop(client);
        assert!(
            !probes.alive.settles_to(0, QUIET).await,
            "the handler was dropped: hyper saw the end of the stream"
        );
        probes.release.add_permits(1);
        assert!(probes.finished.reaches_started(1, QUIET).await);
    });
}

#[test]
fn a_client_leaving_mid_upload_fails_the_handlers_body_read() {
    check("the upload handler never saw the client leave").paused(|| async {
        let (events, mut seen) = mpsc::unbounded_channel();
        let (mut client, server, _read) = pipe(64 * 1024);
        let server = tokio::spawn(example::serve_connection(TokioIo::new(server), events));
        client.write_all(&post_head(100)).await.unwrap();
        client.write_all(b"only ten b").await.unwrap();
        drop(client);

        let outcome = seen.recv().await.unwrap();
        assert_eq!(outcome, "the body read failed: the client left mid-upload");
        server.await.unwrap();
    });
}

#[test]
fn once_the_body_is_read_a_client_leaving_drops_the_handler() {
    check("the upload handler was never dropped").paused(|| async {
        let (events, mut seen) = mpsc::unbounded_channel();
        let (mut client, server, _read) = pipe(64 * 1024);
        let server = tokio::spawn(example::serve_connection(TokioIo::new(server), events));
        client.write_all(&post_head(10)).await.unwrap();
        client.write_all(b"0123456789").await.unwrap();
        assert_eq!(seen.recv().await.unwrap(), "storing");

        // The whole body has been read, so hyper reads the socket again while the handler
        // works, and finds the end of the stream at once.
        let started = tokio::time::Instant::now();
        drop(client);
        assert_eq!(
            seen.recv().await.unwrap(),
            "dropped while storing: the client left"
        );
        assert!(started.elapsed() < example::STORE_TIME);
        server.await.unwrap();
    });
}

/// Answers with what `is_end_stream` said before and after reading the whole body.
async fn end_of_stream(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut body = request.into_body();
    let before = body.is_end_stream();
    while let Some(frame) = body.frame().await {
        frame.unwrap();
    }
    let after = body.is_end_stream();
    Ok(Response::new(Full::new(Bytes::from(format!(
        "before {before}, after {after}"
    )))))
}

#[test]
fn is_end_stream_says_when_a_sized_body_is_all_read_but_never_for_a_chunked_one() {
    check("the request was never answered").paused(|| async {
        let ask = |request: &'static [u8]| async move {
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(server), service_fn(end_of_stream))
                    .await;
            });
            client.write_all(request).await.unwrap();
            let mut answer = vec![0; 1024];
            let n = client.read(&mut answer).await.unwrap();
            String::from_utf8_lossy(&answer[..n]).into_owned()
        };

        let get = ask(b"GET / HTTP/1.1\r\nhost: workshop.test\r\n\r\n").await;
        assert!(get.ends_with("before true, after true"), "{get}");
        let sized =
            ask(b"POST / HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 5\r\n\r\nhello").await;
        assert!(sized.ends_with("before false, after true"), "{sized}");
        let chunked = ask(b"POST / HTTP/1.1\r\nhost: workshop.test\r\n\
            transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        .await;
        assert!(chunked.ends_with("before false, after false"), "{chunked}");
    });
}

/// Sends a whole body of `size` bytes that the handler never reads, then leaves; returns
/// whether the handler was dropped.
async fn whole_body_then_leave(size: usize) -> bool {
    let probes = Probes::new();
    let (mut client, server, _read) = pipe(2 * ONE_MIB);
    let _server = serve(server, &probes, BodyPlan::ReadAfterRelease);
    client.write_all(&post_head(size)).await.unwrap();
    client.write_all(&vec![b'x'; size]).await.unwrap();
    assert!(probes.alive.reaches_started(1, QUIET).await);
    drop(client);
    let dropped = probes.alive.settles_to(0, QUIET).await;
    probes.release.add_permits(1);
    dropped
}

#[test]
fn a_whole_body_is_noticed_only_if_it_fits_in_what_hyper_reads_ahead() {
    check(HANG).paused(|| async {
        // hyper reads 16 KiB ahead, head included (see the first check): a 15 KiB body
        // arrives within those reads, and the FIN right behind it is seen...
        assert!(
            whole_body_then_leave(15 * 1024).await,
            "15 KiB: not dropped"
        );
        // ...a 16 KiB body does not, and the FIN waits behind bytes nobody asked for.
        assert!(!whole_body_then_leave(16 * 1024).await, "16 KiB: dropped");
    });
}
