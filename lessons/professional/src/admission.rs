//! Admission control inside the service stack: a token bucket shared by every clone, and the
//! mapping of "not admitted" errors (rate limit, load shed) to responses.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use tokio::time::Instant;
use tower::{BoxError, Layer, Service};

// ANCHOR: bucket
/// A token bucket on `tokio::time::Instant` (so a paused test clock drives it). `rate` tokens
/// per second refill it, up to `burst`; each request takes one.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket: `rate` per second, holding at most one second's worth.
    pub fn new(rate_per_second: u32) -> Self {
        let rate = f64::from(rate_per_second.max(1));
        TokenBucket {
            rate,
            burst: rate,
            tokens: rate,
            refilled_at: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn try_take(&mut self) -> Result<(), Duration> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// The layer holds the bucket behind an `Arc`, so every clone of the service (one per
/// connection) draws from the same bucket. A bucket created inside `layer()` or per clone
/// would give each connection its own limit: the per-clone trap.
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    bucket: Arc<Mutex<TokenBucket>>,
}
// ANCHOR_END: bucket

impl RateLimitLayer {
    /// `rate_per_second` requests per second across every connection.
    pub fn new(rate_per_second: u32) -> Self {
        RateLimitLayer {
            bucket: Arc::new(Mutex::new(TokenBucket::new(rate_per_second))),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            bucket: Arc::clone(&self.bucket),
        }
    }
}

/// See [`RateLimitLayer`].
#[derive(Clone, Debug)]
pub struct RateLimit<S> {
    inner: S,
    bucket: Arc<Mutex<TokenBucket>>,
}

/// The error a refused request carries up to [`not_admitted`].
#[derive(Debug)]
pub struct RateLimited {
    /// When a token will be there.
    pub retry_after: Duration,
}

impl std::fmt::Display for RateLimited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rate limited, retry after {:?}", self.retry_after)
    }
}

impl std::error::Error for RateLimited {}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let taken = self.bucket.lock().expect("bucket lock poisoned").try_take();
        match taken {
            Ok(()) => {
                let future = self.inner.call(request);
                Box::pin(async move { future.await.map_err(Into::into) })
            }
            Err(retry_after) => Box::pin(async move { Err(RateLimited { retry_after }.into()) }),
        }
    }
}

// ANCHOR: not_admitted
/// Turns the errors of the admission layers into answers a client can act on. tower's
/// `LoadShed` fails with `Overloaded` (an error, not a response): without this mapping hyper
/// would see a service error and close the connection with no answer at all.
pub fn not_admitted(
    result: Result<Response<Full<Bytes>>, BoxError>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let error = match result {
        Ok(response) => return Ok(response),
        Err(error) => error,
    };
    if error.is::<tower::load_shed::error::Overloaded>() {
        // One second: long enough for in-flight requests to finish, short enough not to
        // idle a client of a server that recovers at once.
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(1),
        ));
    }
    if let Some(limited) = error.downcast_ref::<RateLimited>() {
        return Ok(refuse(StatusCode::TOO_MANY_REQUESTS, limited.retry_after));
    }
    Err(error)
}
// ANCHOR_END: not_admitted

/// A refusal with `Retry-After` in whole seconds, rounded up (the header has no fractions).
fn refuse(status: StatusCode, retry_after: Duration) -> Response<Full<Bytes>> {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut response = Response::new(Full::from(status.canonical_reason().unwrap_or("")));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}
