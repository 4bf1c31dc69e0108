//! `guestbook`: the landing page of a small community site.
//!
//! `GET /` greets each visitor with their number: `welcome, visitor #N`, where `N` counts the
//! page views this server has served since it started, this one included. Every other path is
//! a 404 and is not counted. Marketing quotes the number in the weekly newsletter, and the
//! front-end keeps connections alive, so one reader's browser can view the page many times on
//! one connection while other readers arrive on connections of their own.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The landing page as a hyper service. Cloning it (once per connection) clones the handle,
/// not the count: every clone made from one `serve` call shares the same `visits`.
#[derive(Debug, Clone, Default)]
struct LandingPage {
    visits: Arc<AtomicU64>,
}

impl Service<Request<Incoming>> for LandingPage {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Self::Error>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        if request.uri().path() != "/" {
            let mut response = Response::new(Full::new(Bytes::from_static(b"not found\n")));
            *response.status_mut() = StatusCode::NOT_FOUND;
            return ready(Ok(response));
        }
        let number = self.visits.fetch_add(1, Ordering::Relaxed) + 1;
        let body = format!("welcome, visitor #{number}\n");
        ready(Ok(Response::new(Full::new(Bytes::from(body)))))
    }
}

/// Accepts connections on `listener` forever, one task per connection. Each call is one
/// server with its own visitor count, starting from zero.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let page = LandingPage::default();
    loop {
        let (stream, _peer) = listener.accept().await?;

        let page = page.clone();
        tokio::spawn(async move {
            // A client that hangs up mid-request is routine, not a server error.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), page)
                .await;
        });
    }
}
