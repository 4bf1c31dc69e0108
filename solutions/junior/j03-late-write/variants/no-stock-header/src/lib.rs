//! `shelf`: the service behind the shop's item pages.
//!
//! `GET /items/{sku}` answers the item's name and price, and an `x-stock` header with how many
//! the warehouse holds: the page turns it into "only 2 left" or "sold out". Unknown items are
//! `404`. Names and prices are in memory; stock levels live in the warehouse system, one
//! network hop away, so looking one up takes a while.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// What the shop sells: sku, display name, price in cents.
const CATALOGUE: &[(&str, &str, u32)] = &[
    ("kettle", "Stovetop kettle", 3450),
    ("teapot", "Cast-iron teapot", 5900),
    ("mug", "Enamel mug", 990),
];

/// The warehouse system's view of the shelves.
#[derive(Debug)]
pub struct Warehouse {
    stock: HashMap<String, u32>,
    /// How long a lookup takes: a network hop and a query on the warehouse's side.
    latency: Duration,
}

impl Warehouse {
    /// A warehouse holding `stock[sku]` units of each item.
    pub fn new<'a>(stock: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        let stock = stock
            .into_iter()
            .map(|(sku, n)| (sku.to_owned(), n))
            .collect();
        Self {
            stock,
            latency: Duration::from_millis(20),
        }
    }

    /// The same warehouse on a slow day: every lookup takes `latency` to answer.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// How many units of `sku` are on the shelves. A remote call in production, hence slow.
    pub async fn stock(&self, sku: &str) -> u32 {
        tokio::time::sleep(self.latency).await;
        self.stock.get(sku).copied().unwrap_or(0)
    }
}

/// Accepts connections on `listener` forever, one task per connection.
pub async fn serve(listener: TcpListener, warehouse: Arc<Warehouse>) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        tokio::spawn(serve_connection(stream, Arc::clone(&warehouse)));
    }
}

/// Serves one connection until the client leaves.
///
/// Generic over the byte stream so that the same code serves a TCP socket in production and
/// an in-memory pipe in the checks.
pub async fn serve_connection<IO>(io: IO, warehouse: Arc<Warehouse>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| item_page(request, Arc::clone(&warehouse)));
    // A client that hangs up mid-request is routine, not a server error.
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

async fn item_page(
    request: Request<Incoming>,
    warehouse: Arc<Warehouse>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let sku = request.uri().path().strip_prefix("/items/").unwrap_or("");
    let Some(&(_, name, cents)) = CATALOGUE.iter().find(|(known, _, _)| *known == sku) else {
        let mut not_found = Response::new(Full::new(Bytes::from("no such item\n")));
        *not_found.status_mut() = StatusCode::NOT_FOUND;
        return Ok(not_found);
    };

    let page = format!("{name}: {}.{:02} EUR\n", cents / 100, cents % 100);
    let mut response = Response::new(Full::new(Bytes::from(page)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));

    // The stock level is added by the shop's front end later.
    Ok(response)
}
