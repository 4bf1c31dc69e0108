//! A handler that keeps an `Rc` alive across an `.await`, served by hyper-util's `auto`
//! builder. Over HTTP/2 each request's future is handed to `tokio::spawn`, so the builder
//! demands `Send` futures for every connection, HTTP/1 included.
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;

// ANCHOR: handler
async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // `Rc` is a cheap shared pointer, but its count is not atomic: it is not `Send`.
    let path = Rc::new(request.uri().path().to_owned());
    tokio::time::sleep(Duration::from_millis(10)).await; // `path` is alive across this
    Ok(Response::new(Full::new(Bytes::from(format!("{path}\n")))))
}

pub async fn serve(stream: TcpStream) {
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service_fn(handle))
        .await;
}
// ANCHOR_END: handler
