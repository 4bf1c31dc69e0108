//! `checkoutd`: places orders for the web shop.
//!
//! `POST /checkout?sku=lamp` reserves one item with the warehouse, places the order, answers
//! `order 7: lamp`, and leaves the confirmation e-mail to a background task. The load balancer
//! gives each request an `x-request-id`; every log line of a request carries it, so that
//! support can pull one customer's checkout out of the logs.

mod warehouse;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
pub use warehouse::{Reservation, Warehouse};

/// How long the mail relay takes to accept a message.
pub const MAIL_TIME: Duration = Duration::from_millis(200);

/// What every request shares.
#[derive(Debug, Clone)]
pub struct Shop {
    /// Where stock is reserved.
    pub warehouse: Warehouse,
    orders: Arc<AtomicU64>,
}

impl Shop {
    /// A shop that reserves stock through `warehouse`.
    pub fn new(warehouse: Warehouse) -> Self {
        Self {
            warehouse,
            orders: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Serves one client connection until the client goes away.
pub async fn serve_connection<IO>(io: IO, shop: Shop) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| checkout(request, shop.clone()));
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
}

async fn checkout(
    request: Request<Incoming>,
    shop: Shop,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|id| id.to_str().ok())
        .unwrap_or("none")
        .to_owned();
    let Some(sku) = sku_param(request.uri().query()) else {
        return Ok(answer(
            StatusCode::BAD_REQUEST,
            "missing ?sku=NAME\n".into(),
        ));
    };

    let span = tracing::info_span!("request", request_id = %request_id);
    use tracing::Instrument;
    async move {
        tracing::info!(%sku, "checkout started");
        if !shop.warehouse.reserve(&sku).await {
            tracing::warn!(%sku, "out of stock");
            return Ok(answer(
                StatusCode::CONFLICT,
                format!("{sku} is out of stock\n"),
            ));
        }
        tracing::info!(%sku, "stock reserved");

        let order = shop.orders.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(%sku, order, "order placed");
        send_confirmation(order, sku.clone()).await;
        Ok(answer(StatusCode::OK, format!("order {order}: {sku}\n")))
    }
    .instrument(span)
    .await
}

/// Hands the confirmation e-mail to the mail relay.
async fn send_confirmation(order: u64, sku: String) {
    tokio::time::sleep(MAIL_TIME).await;
    tracing::info!(%sku, order, "confirmation sent");
}

fn answer(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(body));
    *response.status_mut() = status;
    response
}

fn sku_param(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("sku="))
        .filter(|sku| !sku.is_empty())
        .map(str::to_owned)
}
