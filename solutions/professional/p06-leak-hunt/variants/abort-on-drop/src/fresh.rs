//! Middleware that keeps the service token valid while a request runs: an export can take
//! longer than a token lives.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio_util::task::AbortOnDropHandle;
use tower::{Layer, Service};

use crate::Tokens;

/// Wraps a service so that the shared token is refreshed before it expires.
#[derive(Debug, Clone)]
pub struct KeepTokenFresh<S> {
    inner: S,
    tokens: Tokens,
}

impl KeepTokenFresh<()> {
    /// The layer to put in a `ServiceBuilder`.
    pub fn layer(tokens: Tokens) -> KeepTokenFreshLayer {
        KeepTokenFreshLayer { tokens }
    }
}

/// Builds [`KeepTokenFresh`] around a service.
#[derive(Debug, Clone)]
pub struct KeepTokenFreshLayer {
    tokens: Tokens,
}

impl<S> Layer<S> for KeepTokenFreshLayer {
    type Service = KeepTokenFresh<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KeepTokenFresh {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

impl<S, R> Service<R> for KeepTokenFresh<S>
where
    S: Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let tokens = self.tokens.clone();
        // The request's future owns its refresher: however the request ends (answered, or
        // dropped with its connection), dropping the future aborts the task.
        let refresher = AbortOnDropHandle::new(tokio::spawn(async move {
            loop {
                tokio::time::sleep_until(tokens.refresh_due()).await;
                tokens.refresh().await;
            }
        }));
        let response = self.inner.call(request);
        Box::pin(async move {
            let _refresher = refresher;
            response.await
        })
    }
}
