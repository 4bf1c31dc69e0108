//! Shared pieces of the tower chapter's tests: a handler that can be held open, and ways to
//! serve a tower service on a real socket or an in-memory pipe.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use harness::leak::Gauge;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::DuplexStream;
use tokio::sync::Semaphore;
use tower::{BoxError, Service};

/// A handler that counts its calls in `entered` and, for `/hold`, waits until the test opens
/// the gate: a request the test can keep inside the handler for as long as it likes.
#[derive(Clone, Debug)]
pub struct Held {
    /// One guard per call, alive while the handler runs.
    pub entered: Gauge,
    /// Closed (no permits) until the test adds permits.
    pub gate: Arc<Semaphore>,
}

impl Held {
    pub fn new() -> Self {
        Self {
            entered: Gauge::new(),
            gate: Arc::new(Semaphore::new(0)),
        }
    }

    /// Lets every held request finish.
    pub fn open(&self) {
        self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    /// The handler, as a tower service.
    pub fn service(
        &self,
    ) -> impl Service<
        Request<Incoming>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future: Send + 'static,
    >
    + Clone
    + Send
    + 'static
    + use<> {
        let held = self.clone();
        tower::service_fn(move |request: Request<Incoming>| {
            let held = held.clone();
            async move {
                let _running = held.entered.guard();
                if request.uri().path() == "/hold" {
                    let _ = held.gate.acquire().await;
                }
                Ok(Response::new(Full::new(Bytes::from("done\n"))))
            }
        })
    }
}

/// Serves one in-memory connection with HTTP/1, through hyper-util's adapter.
pub async fn serve_h1<S>(io: DuplexStream, service: S) -> hyper::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<Full<Bytes>>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .await
}

/// Serves one in-memory connection with HTTP/1, whatever the response body.
pub async fn serve_any<S, B>(io: DuplexStream, service: S) -> hyper::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .await
}
