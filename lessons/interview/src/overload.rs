//! A tower middleware written by hand: overload becomes a `503 Service Unavailable` with a
//! `Retry-After`, instead of an error that hyper would turn into a dropped connection.
//!
//! It shows the two rules of a hand-written tower service (R11 of the bank):
//!
//! - `poll_ready` asks the inner service, because readiness may *reserve* something there
//!   (`ConcurrencyLimit` takes a semaphore permit in `poll_ready` and spends it in `call`);
//! - `call` moves the service that was made ready into the response future and leaves a fresh
//!   clone in its place ("clone and replace"): the clone has reserved nothing, the original
//!   has, and only the original may be called.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use tower::load_shed::error::Overloaded;
use tower::{BoxError, Layer, Service};

/// Wraps a service so that tower's `Overloaded` error (from `LoadShed`) is answered with a 503
/// and `Retry-After: 1`; every other error passes through unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct OverloadAs503Layer;

impl<S> Layer<S> for OverloadAs503Layer {
    type Service = OverloadAs503<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OverloadAs503 { inner }
    }
}

/// The service [`OverloadAs503Layer`] builds.
#[derive(Debug, Clone)]
pub struct OverloadAs503<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for OverloadAs503<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // `LoadShed` answers "ready" here and reports overload from `call`; other services may
        // fail here, and that error goes to hyper as it is.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Clone and replace: `ready` is the service `poll_ready` prepared; the clone left
        // behind will be made ready for the next request.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            match ready.call(request).await {
                Ok(response) => Ok(response),
                Err(error) => {
                    let error: BoxError = error.into();
                    if error.is::<Overloaded>() {
                        let mut response = Response::new(R::default());
                        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                        response
                            .headers_mut()
                            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                        Ok(response)
                    } else {
                        Err(error)
                    }
                }
            }
        })
    }
}
