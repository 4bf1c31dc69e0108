//! One HTTP/2 stream reset, and whom it cancels.
//!
//! Backs R24 of the bank: a handler that cancels its downstream work when hyper drops it (a
//! drop guard on a `CancellationToken`) cancels every sibling stream too if the token is the
//! connection's, and only its own work if it is a child token made per request.

use std::convert::Infallible;

use bytes::Bytes;
use harness::watchdog::check;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const HANG: &str = "a stream neither answered nor reported its query";

#[derive(Clone, Copy)]
enum TokenShape {
    /// The connection's token itself, cloned into every request (the bug).
    Shared,
    /// `child_token()` of the connection's token, one per request.
    ChildPerRequest,
}

/// A search handler: it starts a downstream query on its own task, and cancels that query if
/// hyper drops the handler (the client reset the stream). `release` lets a query finish.
async fn search(
    request: Request<Incoming>,
    connection: CancellationToken,
    shape: TokenShape,
    started: mpsc::UnboundedSender<String>,
    reports: mpsc::UnboundedSender<(String, &'static str)>,
    release: watch::Receiver<bool>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let token = match shape {
        TokenShape::Shared => connection.clone(),
        TokenShape::ChildPerRequest => connection.child_token(),
    };
    let _cancel_query_if_dropped = token.clone().drop_guard();
    let path = request.uri().path().to_owned();
    let query = tokio::spawn({
        let path = path.clone();
        async move {
            let mut release = release;
            let outcome = tokio::select! {
                // Cancellation first: once the token is cancelled, the query never finishes.
                biased;
                _ = token.cancelled() => "query cancelled",
                _ = release.wait_for(|go| *go) => "query finished",
            };
            reports.send((path, outcome)).unwrap();
            outcome
        }
    });
    started.send(path).unwrap();
    let outcome = query.await.unwrap();
    Ok(Response::new(Full::new(Bytes::from(outcome))))
}

/// Opens `/a` and `/b` on one HTTP/2 connection, resets `/a` once both handlers run, then lets
/// the queries finish, and returns what `/b` answered.
async fn sibling_after_a_reset(shape: TokenShape) -> String {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let (release_tx, release) = watch::channel(false);
    let connection_token = CancellationToken::new();
    let service = service_fn(move |request| {
        search(
            request,
            connection_token.clone(),
            shape,
            started_tx.clone(),
            reports_tx.clone(),
            release.clone(),
        )
    });
    tokio::spawn(
        http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(server_io), service),
    );

    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(client_io))
        .await
        .unwrap();
    tokio::spawn(connection);
    let get = |path: &str| {
        let request = Request::get(format!("http://bank.test{path}")).body(Empty::new());
        sender.clone().send_request(request.unwrap())
    };
    let a = tokio::spawn(get("/a"));
    let b = tokio::spawn(get("/b"));
    let mut running = vec![started.recv().await.unwrap(), started.recv().await.unwrap()];
    running.sort();
    assert_eq!(running, ["/a", "/b"]);

    // Dropping the response future resets stream /a; the server drops its handler, and the
    // drop guard cancels the handler's token: /a's query reports it.
    a.abort();
    loop {
        let (path, outcome) = reports.recv().await.unwrap();
        if path == "/a" {
            assert_eq!(outcome, "query cancelled");
            break;
        }
    }
    // Only now may the queries finish: whatever is cancelled by now was cancelled by the reset.
    release_tx.send(true).unwrap();
    let response = b.await.unwrap().unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[test]
fn a_child_token_per_request_keeps_a_reset_to_its_own_stream() {
    check(HANG).paused(|| async {
        assert_eq!(
            sibling_after_a_reset(TokenShape::ChildPerRequest).await,
            "query finished"
        );
    });
}

#[test]
fn a_shared_connection_token_lets_one_reset_cancel_the_sibling_streams() {
    check(HANG).paused(|| async {
        assert_eq!(
            sibling_after_a_reset(TokenShape::Shared).await,
            "query cancelled"
        );
    });
}
