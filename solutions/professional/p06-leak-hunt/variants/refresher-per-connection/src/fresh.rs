//! Middleware that keeps the service token valid while a request runs: an export can take
//! longer than a token lives.

use std::sync::Arc;
use std::task::{Context, Poll};

use tokio_util::task::AbortOnDropHandle;
use tower::{Layer, Service};

use crate::Tokens;

/// Wraps a service so that the shared token is refreshed before it expires.
#[derive(Debug, Clone)]
pub struct KeepTokenFresh<S> {
    inner: S,
    // One refresher per connection, aborted when the connection's service is dropped.
    _refresher: Arc<AbortOnDropHandle<()>>,
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
        let tokens = self.tokens.clone();
        let refresher = AbortOnDropHandle::new(tokio::spawn(async move {
            loop {
                tokio::time::sleep_until(tokens.refresh_due()).await;
                tokens.refresh().await;
            }
        }));
        KeepTokenFresh {
            inner,
            _refresher: Arc::new(refresher),
        }
    }
}

impl<S, R> Service<R> for KeepTokenFresh<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.inner.call(request)
    }
}
