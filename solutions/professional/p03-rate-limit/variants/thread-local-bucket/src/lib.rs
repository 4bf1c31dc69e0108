//! `quotes-api`: public stock quotes, free tier.
//!
//! - `GET /quote?symbol=ACME` answers the latest quote.
//!
//! The free tier allows [`BURST`] requests at once and then [`PER_SECOND`] requests a second:
//! a token bucket. A request that finds the bucket empty is answered `429 Too Many Requests`
//! with a `Retry-After` header saying, in whole seconds, when a token will be back.
//!
//! `main` builds one [`QuotesApi`] and hands a clone to every connection it accepts.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::RETRY_AFTER;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tower::Service;

/// How many requests a client may make at once, after a quiet spell.
pub const BURST: u32 = 5;
/// How many tokens come back each second.
pub const PER_SECOND: u32 = 1;

/// The free tier's token bucket.
#[derive(Debug, Clone)]
struct TokenBucket {
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    fn full() -> Self {
        Self {
            tokens: f64::from(BURST),
            refilled_at: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is back.
    fn take(&mut self) -> Result<(), Duration> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(PER_SECOND)).min(f64::from(BURST));
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - self.tokens;
            Err(Duration::from_secs_f64(missing / f64::from(PER_SECOND)))
        }
    }
}

/// The quotes service, rate limit included.
#[derive(Debug, Clone)]
pub struct QuotesApi {
    _private: (),
}

thread_local! {
    /// One bucket for the service: every clone on this thread reads the same one.
    static BUCKET: RefCell<Option<TokenBucket>> = const { RefCell::new(None) };
}

impl QuotesApi {
    /// A service with a full bucket.
    pub fn new() -> Self {
        BUCKET.with(|b| *b.borrow_mut() = Some(TokenBucket::full()));
        Self { _private: () }
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
        let taken = BUCKET.with(|b| b.borrow_mut().get_or_insert_with(TokenBucket::full).take());
        let response = match taken {
            Ok(()) => quote(&request),
            Err(wait) => too_many_requests(wait),
        };
        ready(Ok(response))
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

fn too_many_requests(wait: Duration) -> Response<Full<Bytes>> {
    // Whole seconds, rounded up: a client that waits that long finds a token.
    let seconds = wait.as_secs_f64().ceil() as u64;
    Response::builder()
        .status(StatusCode::TOO_MANY_REQUESTS)
        .header(RETRY_AFTER, seconds)
        .body(Full::new(Bytes::from("slow down\n")))
        .expect("a valid response")
}

/// Serves one accepted connection with `api`.
pub async fn serve_connection<IO>(io: IO, api: QuotesApi) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(api))
        .await
}
