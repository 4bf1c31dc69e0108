//! `invoiced`: renders customers' invoices as PDF for the billing portal.
//!
//! `GET /invoices/{id}.pdf` renders one invoice. A render takes [`RENDER_TIME`] and holds a
//! few hundred megabytes of the renderer's memory, so [`app`] lets at most `max_renders` run
//! at once. The on-call dashboard shows a gauge of renders in progress: each render holds one
//! guard of `renders` while it runs.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use harness::leak::Gauge;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Service, ServiceBuilder};

/// How long the renderer takes to render one invoice.
pub const RENDER_TIME: Duration = Duration::from_secs(2);

/// The whole application as one tower service: every connection serves a clone of it.
pub type App = BoxCloneSyncService<Request<Incoming>, Response<Full<Bytes>>, BoxError>;

/// Builds the application once, for every connection to share: the renderer behind its
/// middleware.
pub fn app(max_renders: usize, renders: Gauge) -> App {
    let stack = ServiceBuilder::new()
        // The renderer's memory is sized for `max_renders` renders at once.
        .concurrency_limit(max_renders)
        .service_fn(move |request| render(request, renders.clone()));
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
            .serve_connection(
                TokioIo::new(io),
                hyper::service::service_fn(move |request| {
                    // hyper never asks a service whether it is ready: ask once, for this request,
                    // on a clone of its own, and refuse rather than wait if it is not.
                    let mut app = app.clone();
                    async move {
                        match std::future::poll_fn(|cx| Poll::Ready(app.poll_ready(cx))).await {
                            Poll::Ready(Ok(())) => app.call(request).await,
                            Poll::Ready(Err(err)) => Err(err),
                            Poll::Pending => Ok(busy()),
                        }
                    }
                }),
            ),
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

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
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
