//! `storefront`: the product pages' backend.
//!
//! - `GET /stock/{sku}` answers how many of a product are in stock, which it asks the
//!   `inventory` service for.
//!
//! Callers say how long they are prepared to wait in the [`DEADLINE_HEADER`] header: the time
//! they have left, in milliseconds. A request without it gets [`DEFAULT_DEADLINE`]. The
//! inventory service has bad minutes, so a failed lookup is tried again after a short pause.
//!
//! `main` builds one [`Storefront`] and hands a clone to every connection it accepts.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

/// The header in which a caller says how many milliseconds it has left.
pub const DEADLINE_HEADER: &str = "x-deadline-ms";
/// The deadline of a request that does not say.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(1);
/// The pause before trying a failed lookup again.
pub const BACKOFF: Duration = Duration::from_millis(50);
/// Lookups per request, the first one included.
const MAX_ATTEMPTS: u32 = 4;

/// One lookup sent to the inventory service.
#[derive(Debug, Clone)]
pub struct StockQuery {
    /// The product.
    pub sku: String,
    /// How long the storefront will still wait for the answer. The inventory client sends it
    /// as the outbound request's own `x-deadline-ms`, so the inventory service can give up
    /// instead of working for a caller that has gone. `None`: wait as long as it takes.
    pub time_left: Option<Duration>,
}

/// The inventory service failed the lookup (an error status, a reset, a timeout).
#[derive(Debug, Clone)]
pub struct UpstreamError;

/// The client of the inventory service: one lookup in, a stock level out.
pub type Inventory = BoxCloneSyncService<StockQuery, u32, UpstreamError>;

/// The storefront service.
#[derive(Clone)]
pub struct Storefront {
    inventory: Inventory,
}

impl Storefront {
    /// A storefront that looks stock up through `inventory`.
    pub fn new(inventory: Inventory) -> Self {
        Self { inventory }
    }

    async fn handle(self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(sku) = request.uri().path().strip_prefix("/stock/") else {
            return reply(StatusCode::NOT_FOUND, "no such page\n".to_owned());
        };
        match self.stock(sku).await {
            Ok(count) => reply(StatusCode::OK, format!("{sku}: {count} in stock\n")),
            Err(UpstreamError) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "inventory unavailable\n".to_owned(),
            ),
        }
    }

    /// Asks the inventory service, and asks again if it fails.
    async fn stock(&self, sku: &str) -> Result<u32, UpstreamError> {
        let mut attempt = 1;
        loop {
            let query = StockQuery {
                sku: sku.to_owned(),
                time_left: None,
            };
            match self.inventory.clone().oneshot(query).await {
                Ok(count) => return Ok(count),
                Err(error) if attempt == MAX_ATTEMPTS => return Err(error),
                Err(UpstreamError) => {
                    attempt += 1;
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        }
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// Serves one accepted connection with `storefront`.
pub async fn serve_connection<IO>(io: IO, storefront: Storefront) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let storefront = storefront.clone();
        async move { Ok::<_, Infallible>(storefront.handle(request).await) }
    });
    http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), service)
        .await
}
