//! `guestbook`: the landing page of a small community site.
//!
//! `GET /` greets each visitor with their number: `welcome, visitor #N`, where `N` counts the
//! page views this server has served since it started, this one included. Every other path is
//! a 404 and is not counted. Marketing quotes the number in the weekly newsletter, and the
//! front-end keeps connections alive, so one reader's browser can view the page many times on
//! one connection while other readers arrive on connections of their own.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Page views since start-up: one count, created on first use.
static VISITS: LazyLock<Arc<AtomicU64>> = LazyLock::new(|| Arc::new(AtomicU64::new(0)));

/// Accepts connections on `listener` forever, one task per connection. Each call is one
/// server with its own visitor count, starting from zero.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;

        // Created once, the first time any connection needs it, then shared by all of them.
        let visits = Arc::clone(&VISITS);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&visits)));
            // A client that hangs up mid-request is routine, not a server error.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    visits: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/" {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(response);
    }
    // `fetch_add` returns the value before the increment, so this visitor's number is one more.
    let number = visits.fetch_add(1, Ordering::Relaxed) + 1;
    let body = format!("welcome, visitor #{number}\n");
    Ok(Response::new(Full::new(Bytes::from(body))))
}
