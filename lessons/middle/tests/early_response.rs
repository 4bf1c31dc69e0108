//! A response sent before the request body was read to its end (an early response), and what
//! becomes of that body when someone else reads it later: a worker that was handed the
//! `Incoming`, as M06's service does.
//!
//! hyper 1.12: once the response is out, the connection goes back to waiting for the next
//! head (`Dispatcher::poll_read` in `proto/h1/dispatch.rs` puts the body's sender back and
//! only `poll_read_head` replaces it), so a body bigger than hyper's first read hands over
//! every byte and then does not end: the next request's head ends it, and the connection
//! closing fails it with `IncompleteMessage`, although every byte arrived. A body that fits in
//! that first read (8 KiB, head included) ends at once. On the paused clock, over an
//! in-memory connection; the client writes raw bytes.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use harness::duplex;
use harness::watchdog::check;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

const HANG: &str = "the early-response scenario never got its first answer";
/// Long enough for anything that is going to happen on its own to have happened.
const QUIET: Duration = Duration::from_secs(10);

/// How reading a body that was answered early ended: with its length, or an error.
type Read = Result<usize, hyper::Error>;

/// Serves one connection whose POST handler hands the request to a worker and answers at once;
/// the worker reads the body to its end and reports how that went.
fn serve(io: DuplexStream, reads: mpsc::UnboundedSender<Read>) -> impl Future<Output = ()> {
    let (queue, mut queued) = mpsc::unbounded_channel::<Request<Incoming>>();
    tokio::spawn(async move {
        while let Some(request) = queued.recv().await {
            let read = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().len());
            let _ = reads.send(read);
        }
    });
    let service = service_fn(move |request: Request<Incoming>| {
        if request.method() == Method::POST {
            queue.send(request).unwrap();
        }
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"queued\n")))) }
    });
    async move {
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .await;
    }
}

/// Sends a POST with a whole body of `size` bytes, and returns the client's end and the
/// worker's reports.
async fn post_whole_body(size: usize) -> (DuplexStream, mpsc::UnboundedReceiver<Read>) {
    let (reads, reported) = mpsc::unbounded_channel();
    let (mut client, _server) = duplex::raw(move |io| serve(io, reads));
    let mut bytes = format!("POST /photos/a HTTP/1.1\r\nhost: x\r\ncontent-length: {size}\r\n\r\n")
        .into_bytes();
    bytes.extend(vec![7u8; size]);
    client.write_all(&bytes).await.unwrap();
    (client, reported)
}

#[test]
fn a_small_body_answered_early_ends_at_once() {
    check(HANG).paused(|| async {
        let (_client, mut reported) = post_whole_body(1000).await;
        let read = tokio::time::timeout(QUIET, reported.recv()).await;
        assert_eq!(read.expect("the body never ended").unwrap().unwrap(), 1000);
    });
}

#[test]
fn a_bigger_body_answered_early_waits_for_the_next_request_to_end() {
    check(HANG).paused(|| async {
        let (mut client, mut reported) = post_whole_body(16 * 1024).await;
        let read = tokio::time::timeout(QUIET, reported.recv()).await;
        assert!(
            read.is_err(),
            "every byte was sent, and the body had not ended"
        );

        client
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let read = tokio::time::timeout(QUIET, reported.recv()).await;
        assert_eq!(read.expect("still not ended").unwrap().unwrap(), 16 * 1024);
    });
}

#[test]
fn closing_the_connection_fails_a_body_answered_early_although_every_byte_arrived() {
    check(HANG).paused(|| async {
        let (client, mut reported) = post_whole_body(16 * 1024).await;
        let read = tokio::time::timeout(QUIET, reported.recv()).await;
        assert!(
            read.is_err(),
            "every byte was sent, and the body had not ended"
        );

        drop(client);
        let read = tokio::time::timeout(QUIET, reported.recv()).await;
        let error = read.expect("never ended").unwrap().unwrap_err();
        assert!(error.is_incomplete_message(), "{error:?}");
    });
}
