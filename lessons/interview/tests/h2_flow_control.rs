//! HTTP/2 flow control in hyper: the receiver's window decides how much the sender may send.
//!
//! Backs Q17 and Q30 of the bank. A download (the server sends) is capped by the *client's*
//! receive window: the server's window settings change nothing about it. An upload (the client
//! sends) is capped by the *server's* window, which is what `initial_stream_window_size`,
//! `initial_connection_window_size` and `adaptive_window` on the server builder shape.
//!
//! Each case runs on the paused clock over an in-memory pipe: a peer that never reads, a body
//! that would produce for ever, and the number of bytes the body was asked for once the
//! connection has nothing left to do.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use harness::watchdog::check;
use http_body_util::{Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http2 as client_h2;
use hyper::server::conn::http2 as server_h2;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

const HANG: &str = "a paused-clock check spun without yielding";
const CHUNK: usize = 16 * 1024;
const KIB: u32 = 1024;

/// An endless body of 16 KiB chunks that counts every byte it hands out.
fn counting_body(
    produced: Arc<AtomicUsize>,
) -> StreamBody<impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    StreamBody::new(futures::stream::repeat_with(move || {
        produced.fetch_add(CHUNK, Ordering::SeqCst);
        Ok(Frame::data(chunk.clone()))
    }))
}

/// Windows of one side of the connection (stream and connection set alike).
#[derive(Clone, Copy)]
struct Windows {
    server: u32,
    client: u32,
}

/// Lets the paused runtime run until every task waits on something that will not come: the
/// clock only jumps once nothing can make progress, so the stall is complete when this
/// returns. (Deterministic: the pipe is in memory and no timer is involved.)
async fn until_stalled() {
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

/// A download the client never reads: how many bytes the server's body produced.
async fn download(windows: Windows) -> usize {
    let produced = Arc::new(AtomicUsize::new(0));
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let body_count = produced.clone();
    tokio::spawn(async move {
        server_h2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(windows.server)
            .initial_connection_window_size(windows.server)
            .serve_connection(
                TokioIo::new(server_io),
                service_fn(move |_: Request<Incoming>| {
                    let body = counting_body(body_count.clone());
                    async move { Ok::<_, Infallible>(Response::new(body)) }
                }),
            )
            .await
    });
    let (mut sender, connection) = client_h2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(windows.client)
        .initial_connection_window_size(windows.client)
        .handshake(TokioIo::new(client_io))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get("http://bank.test/export")
        .body(Empty::<Bytes>::new())
        .unwrap();
    // The head arrives; the body is never read, so the client grants no more window.
    let _response = sender.send_request(request).await.unwrap();
    until_stalled().await;
    produced.load(Ordering::SeqCst)
}

/// An upload the server's handler never reads: how many bytes the client's body produced.
async fn upload(windows: Windows) -> usize {
    let produced = Arc::new(AtomicUsize::new(0));
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        server_h2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(windows.server)
            .initial_connection_window_size(windows.server)
            .serve_connection(
                TokioIo::new(server_io),
                service_fn(|request: Request<Incoming>| async move {
                    // Holds the body without reading it: no window goes back to the client.
                    std::future::pending::<()>().await;
                    drop(request);
                    Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
                }),
            )
            .await
    });
    let (mut sender, connection) = client_h2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(windows.client)
        .initial_connection_window_size(windows.client)
        .handshake(TokioIo::new(client_io))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::post("http://bank.test/upload")
        .body(counting_body(produced.clone()))
        .unwrap();
    tokio::spawn(async move { sender.send_request(request).await });
    until_stalled().await;
    produced.load(Ordering::SeqCst)
}

/// Whether `produced` bytes is the window the receiver granted, give or take the one chunk the
/// sender's body had already handed over when the window ran out.
fn about(produced: usize, window: u32) -> bool {
    let window = window as usize;
    (window..=window + CHUNK).contains(&produced)
}

const SMALL: u32 = 64 * KIB;
const LARGE: u32 = 1024 * KIB;

#[test]
fn a_download_is_capped_by_the_clients_window_not_the_servers() {
    check(HANG).paused(|| async {
        for server in [SMALL, LARGE] {
            for client in [SMALL, LARGE] {
                let produced = download(Windows { server, client }).await;
                assert!(
                    about(produced, client),
                    "server window {server}, client window {client}: the server sent {produced}"
                );
            }
        }
    });
}

#[test]
fn an_upload_is_capped_by_the_servers_window_not_the_clients() {
    check(HANG).paused(|| async {
        for server in [SMALL, LARGE] {
            for client in [SMALL, LARGE] {
                let produced = upload(Windows { server, client }).await;
                assert!(
                    about(produced, server),
                    "server window {server}, client window {client}: the client sent {produced}"
                );
            }
        }
    });
}
