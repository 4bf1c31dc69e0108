//! `invoiced`: renders invoices as PDFs for the billing web app.
//!
//! `GET /invoice?id=1042` loads the invoice from the billing database, renders it in the
//! headless-browser pool and answers the PDF. The pool has [`RENDER_SLOTS`] browser tabs; a
//! request that finds them all taken is refused at once with `503` and `retry-after: 1`, before
//! it touches the database, and the web app tries again a second later. The on-call dashboard
//! shows the slots in use ([`Invoicing::in_flight`]) and the renders running in the pool.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use harness::leak::Gauge;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// How many renders the browser pool runs at once: one per tab.
pub const RENDER_SLOTS: usize = 4;

/// How long loading an invoice from the billing database takes.
pub const LOAD_TIME: Duration = Duration::from_millis(200);

/// How long the browser pool takes to render one invoice.
pub const RENDER_TIME: Duration = Duration::from_secs(8);

/// What every request shares: the slots of the browser pool, and the pool's own gauge.
#[derive(Debug, Clone, Default)]
pub struct Invoicing {
    /// Requests holding a render slot, from admission until they are answered.
    in_flight: Arc<AtomicUsize>,
    /// One guard per render running in the browser pool (the pool's dashboard).
    pub renders: Gauge,
}

impl Invoicing {
    /// Render slots taken right now: what the 503 decision reads, and the dashboard shows.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// Serves one client connection until the client goes away.
pub async fn serve_connection<IO>(io: IO, invoicing: Invoicing) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(request, invoicing.clone()));
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
}

async fn handle(
    request: Request<Incoming>,
    invoicing: Invoicing,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(id) = invoice_param(request.uri()) else {
        return Ok(text(StatusCode::BAD_REQUEST, "missing ?id=NUMBER\n"));
    };
    if invoicing.in_flight.fetch_add(1, Ordering::SeqCst) >= RENDER_SLOTS {
        invoicing.in_flight.fetch_sub(1, Ordering::SeqCst);
        return Ok(busy());
    }
    let _slot = Slot(invoicing.in_flight.clone());
    let response = match load_invoice(id).await {
        Some(invoice) => pdf(render(&invoice, &invoicing.renders).await),
        None => text(StatusCode::NOT_FOUND, "no such invoice\n"),
    };
    release(&invoicing.in_flight);
    Ok(response)
}

/// Gives a slot back; never below zero, whichever path gets here first.
fn release(count: &AtomicUsize) {
    let _ = count.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
        Some(n.saturating_sub(1))
    });
}

struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        release(&self.0);
    }
}

/// An invoice as the billing database returns it.
#[derive(Debug)]
struct Invoice {
    id: u32,
    total_cents: u64,
}

/// Stands in for the billing database: invoice numbers start at 1000.
async fn load_invoice(id: u32) -> Option<Invoice> {
    tokio::time::sleep(LOAD_TIME).await;
    (id >= 1000).then(|| Invoice {
        id,
        total_cents: u64::from(id) * 37 % 100_000,
    })
}

/// Stands in for the browser pool: slow, with a result that depends only on the invoice.
async fn render(invoice: &Invoice, renders: &Gauge) -> String {
    let _rendering = renders.guard();
    tokio::time::sleep(RENDER_TIME).await;
    format!(
        "%PDF-1.7 invoice {} total {}.{:02} EUR\n",
        invoice.id,
        invoice.total_cents / 100,
        invoice.total_cents % 100
    )
}

fn invoice_param(uri: &Uri) -> Option<u32> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("id="))?
        .parse()
        .ok()
}

fn pdf(document: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(document)));
    response.headers_mut().insert(
        "content-type",
        "application/pdf".parse().expect("a valid header"),
    );
    response
}

/// The answer when every slot is taken: the web app retries after `retry-after` seconds.
fn busy() -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::SERVICE_UNAVAILABLE, "all renderers are busy\n");
    response
        .headers_mut()
        .insert("retry-after", "1".parse().expect("a valid header"));
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}
