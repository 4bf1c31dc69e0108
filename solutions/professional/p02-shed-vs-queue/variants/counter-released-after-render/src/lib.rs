//! `invoiced`: renders customers' invoices as PDF for the billing portal.
//!
//! `GET /invoices/{id}.pdf` renders one invoice. A render takes [`RENDER_TIME`] and holds a
//! few hundred megabytes of the renderer's memory, so [`app`] lets at most `max_renders` run
//! at once. The on-call dashboard shows a gauge of renders in progress: each render holds one
//! guard of `renders` while it runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use harness::leak::Gauge;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tower::BoxError;
use tower::util::BoxCloneSyncService;

/// How long the renderer takes to render one invoice.
pub const RENDER_TIME: Duration = Duration::from_secs(2);

/// The whole application as one tower service: every connection serves a clone of it.
pub type App = BoxCloneSyncService<Request<Incoming>, Response<Full<Bytes>>, BoxError>;

/// Builds the application once, for every connection to share: the renderer behind its
/// middleware.
pub fn app(max_renders: usize, renders: Gauge) -> App {
    // Renders in progress, shared by every clone of the app.
    let in_progress = Arc::new(AtomicUsize::new(0));
    let stack = tower::service_fn(move |request| {
        let (in_progress, renders) = (Arc::clone(&in_progress), renders.clone());
        async move {
            // Takes a slot only if one is free, in one atomic step: no refusal takes a slot.
            let admitted = in_progress
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < max_renders).then_some(n + 1)
                })
                .is_ok();
            if !admitted {
                return Ok(busy());
            }
            let response = render(request, renders).await;
            in_progress.fetch_sub(1, Ordering::SeqCst);
            response
        }
    });
    BoxCloneSyncService::new(stack)
}

/// Serves one client connection until the client goes away.
pub fn serve_connection<IO>(io: IO, app: App) -> impl Future<Output = hyper::Result<()>> + Send
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Boxed, so the future is proven `Send` here, once, with its types spelled out.
    let connection: Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>> = Box::pin(
        http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(app)),
    );
    connection
}

/// `GET /invoices/{id}.pdf`: renders the invoice.
async fn render(
    request: Request<Incoming>,
    renders: Gauge,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let Some(id) = request
        .uri()
        .path()
        .strip_prefix("/invoices/")
        .and_then(|file| file.strip_suffix(".pdf"))
    else {
        return Ok(text(StatusCode::NOT_FOUND, "no such invoice\n".into()));
    };
    let _rendering = renders.guard();
    // Stands in for the renderer: a slow call that holds its memory until it is done.
    tokio::time::sleep(RENDER_TIME).await;
    Ok(text(StatusCode::OK, format!("%PDF-1.7 invoice {id}\n")))
}

/// 503 Service Unavailable, with a hint of when to come back.
fn busy() -> Response<Full<Bytes>> {
    let mut response = text(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many invoices being rendered; try again shortly\n".into(),
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("2"));
    response
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
