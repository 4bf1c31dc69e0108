//! `invoiced`: renders customers' invoices as PDF for the billing portal.
//!
//! `GET /invoices/{id}.pdf` renders one invoice. A render takes [`RENDER_TIME`] and holds a
//! few hundred megabytes of the renderer's memory, so [`app`] lets at most `max_renders` run
//! at once. The on-call dashboard shows a gauge of renders in progress: each render holds one
//! guard of `renders` while it runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
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
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::error::Overloaded;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder};

/// How long the renderer takes to render one invoice.
pub const RENDER_TIME: Duration = Duration::from_secs(2);

/// The whole application as one tower service: every connection serves a clone of it.
pub type App = BoxCloneSyncService<Request<Incoming>, Response<Full<Bytes>>, BoxError>;

/// Builds the application once, for every connection to share: the renderer behind its
/// middleware.
pub fn app(max_renders: usize, renders: Gauge) -> App {
    // One limit for the whole replica, whoever builds the app.
    static RENDER_SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    let slots = RENDER_SLOTS.get_or_init(|| Arc::new(Semaphore::new(max_renders)));
    let stack = ServiceBuilder::new()
        // Outermost: the overload error becomes the answer a client can act on.
        .map_result(refuse_when_overloaded)
        // Refuses a request at once when the limit below is not ready, instead of waiting
        // for it.
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(Arc::clone(
            slots,
        )))
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

/// How long a refused client should wait before it tries again: about one render.
const RETRY_AFTER_SECONDS: &str = "2";

/// Turns `load_shed`'s `Overloaded` error into 503 Service Unavailable with `Retry-After`;
/// any other error goes on to hyper.
fn refuse_when_overloaded(
    result: Result<Response<Full<Bytes>>, BoxError>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    match result {
        Err(err) if err.is::<Overloaded>() => {
            let mut response = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many invoices being rendered; try again shortly\n".into(),
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
            Ok(response)
        }
        other => other,
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
