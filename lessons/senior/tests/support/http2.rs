//! Helpers shared by the two HTTP/2 chapters' checks: hyper's and h2's clients over an
//! in-memory pipe, and a switch that parks handlers until a check lets them go.

#![allow(dead_code)] // each test file uses its own subset

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::DuplexStream;
use tokio::sync::watch;

/// Room in each direction of an in-memory connection: more than any check writes at once.
pub const PIPE: usize = 1024 * 1024;

/// hyper's HTTP/2 client (prior knowledge) over `io`, its connection task spawned.
pub async fn hyper_client(io: DuplexStream) -> SendRequest<Empty<Bytes>> {
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .expect("HTTP/2 client handshake");
    tokio::spawn(connection);
    sender
}

/// `GET path` on a stream of its own: the status and the whole body.
pub async fn get(sender: &SendRequest<Empty<Bytes>>, path: &str) -> hyper::Result<(u16, String)> {
    let mut sender = sender.clone();
    sender.ready().await?;
    let request = Request::get(format!("http://workshop.test{path}"))
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A `GET /` for the raw `h2` client.
pub fn h2_request() -> Request<()> {
    Request::get("http://workshop.test/").body(()).unwrap()
}

/// The h2 error under a hyper error, if it is an HTTP/2 reset, GOAWAY or protocol error.
pub fn h2_error(error: &hyper::Error) -> Option<&h2::Error> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            return Some(h2);
        }
        source = cause.source();
    }
    None
}

/// The h2 reason a hyper error carries, if it is an HTTP/2 reset or GOAWAY.
pub fn h2_reason(error: &hyper::Error) -> Option<h2::Reason> {
    h2_error(error).and_then(h2::Error::reason)
}

/// Parks handlers until the check opens it; handlers that arrive later pass straight through.
#[derive(Clone)]
pub struct Gate(watch::Sender<bool>);

impl Gate {
    pub fn closed() -> Self {
        Gate(watch::Sender::new(false))
    }

    pub fn open(&self) {
        self.0.send_replace(true);
    }

    pub async fn pass(&self) {
        let mut open = self.0.subscribe();
        open.wait_for(|open| *open)
            .await
            .expect("the sender lives in self");
    }
}

pub const OK: u16 = StatusCode::OK.as_u16();
