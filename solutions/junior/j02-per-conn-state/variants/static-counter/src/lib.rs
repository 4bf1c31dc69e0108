//! `guestbook`: the landing page of a small community site.
//!
//! `GET /` greets each visitor with their number: `welcome, visitor #N`, where `N` counts the
//! page views this server has served since it started, this one included. Every other path is
//! a 404 and is not counted. Marketing quotes the number in the weekly newsletter, and the
//! front-end keeps connections alive, so one reader's browser can view the page many times on
//! one connection while other readers arrive on connections of their own.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Accepts connections on `listener` forever, one task per connection. Each call is one
/// server with its own visitor count, starting from zero.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;

        tokio::spawn(async move {
            let service = service_fn(handle);
            // A client that hangs up mid-request is routine, not a server error.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Page views since start-up, shared by every connection.
static VISITS: AtomicU64 = AtomicU64::new(0);

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/" {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(response);
    }
    // `fetch_add` returns the value before the increment, so this visitor's number is one more.
    let number = VISITS.fetch_add(1, Ordering::Relaxed) + 1;
    let body = format!("welcome, visitor #{number}\n");
    Ok(Response::new(Full::new(Bytes::from(body))))
}
