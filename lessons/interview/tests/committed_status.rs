//! Once the head is written, the status cannot change.
//!
//! Backs R21 of the bank (hyper 1.12): hyper writes a response's head (status and headers)
//! before it polls the body, so the client holds the 200 before the first row is produced; a
//! body that fails halfway can only end the HTTP/1 connection early, and the client's read of
//! the body fails while the status it already has still says 200. On the paused clock, over an
//! in-memory connection.

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use futures::StreamExt;
use harness::duplex;
use harness::watchdog::check;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

const HANG: &str = "the export's response never arrived";

/// An export whose first row is produced only when `release` fires, and whose second row fails
/// validation: the body ends with an error.
async fn export(io: tokio::io::DuplexStream, release: oneshot::Receiver<()>) {
    let release = std::sync::Mutex::new(Some(release));
    let service = service_fn(move |_: Request<hyper::body::Incoming>| {
        let release = release.lock().unwrap().take().expect("one request");
        let rows = futures::stream::once(async move {
            let _ = release.await;
            Ok::<_, io::Error>(Frame::data(Bytes::from_static(b"id,amount\n1,20\n")))
        })
        .chain(futures::stream::once(async {
            Err(io::Error::other("row 2: amount is not a number"))
        }));
        async move { Ok::<_, Infallible>(Response::new(StreamBody::new(rows.boxed()))) }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

#[test]
fn the_client_has_the_200_before_the_first_row_exists_and_the_body_then_fails() {
    check(HANG).paused(|| async {
        let (release, released) = oneshot::channel();
        let (client, _server) = duplex::raw(move |io| export(io, released));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(client))
            .await
            .unwrap();
        tokio::spawn(connection);
        let response = sender
            .send_request(Request::new(Empty::<Bytes>::new()))
            .await
            .unwrap();
        // No row has been produced yet: the head, and its status, went out first.
        assert_eq!(response.status(), StatusCode::OK);
        release.send(()).unwrap();
        let body = response.into_body().collect().await;
        assert!(
            body.is_err(),
            "the truncated body reads as an error, under a 200"
        );
    });
}
