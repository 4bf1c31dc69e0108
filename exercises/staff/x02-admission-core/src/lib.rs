//! `reportd`: runs analytics reports for the customer dashboard.
//!
//! `GET /reports/<name>` runs one report: a heavy query on the reporting replica that takes
//! about [`REPORT_TIME`]. The replica stays healthy with a bounded number of report queries
//! at once, so every report must first be admitted by the shared [`Admission`]; a report
//! over the limit is refused at once with `503 Service Unavailable` and `Retry-After: 1`, and
//! the dashboard tries again a second later. The limit lives in [`admission`], built from the
//! types in [`sync`], so that a loom model can check it on its own (loom cannot model sockets
//! or tokio).

pub mod admission;
pub mod sync;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
// The server's own sharing is plain `std`: only the admission's insides switch to loom.
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

pub use admission::{Admission, Permit};

/// How long the reporting replica takes to run one report.
pub const REPORT_TIME: Duration = Duration::from_secs(2);

/// Accepts connections on `listener` forever, one task per connection, all admitted through
/// the one `admission`.
pub async fn serve(listener: TcpListener, admission: Arc<Admission>) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        // A client that goes away mid-request is routine, not a server error.
        tokio::spawn(serve_connection(stream, Arc::clone(&admission)));
    }
}

/// Serves one client connection until the client goes away.
pub fn serve_connection<IO>(
    io: IO,
    admission: Arc<Admission>,
) -> impl Future<Output = hyper::Result<()>> + Send
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| report(request, Arc::clone(&admission)));
    // Boxed, so the future is proven `Send` here, once, with its types spelled out.
    let connection: Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>> = Box::pin(
        http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(io), service),
    );
    connection
}

/// `GET /reports/<name>`: runs the report if the replica has room for it.
async fn report(
    request: Request<Incoming>,
    admission: Arc<Admission>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(name) = request.uri().path().strip_prefix("/reports/") else {
        return Ok(text(StatusCode::NOT_FOUND, "no such page\n".to_owned()));
    };
    let Some(_running) = admission.try_admit() else {
        let mut busy = text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many reports running, try again shortly\n".to_owned(),
        );
        busy.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return Ok(busy);
    };
    // Stands in for the query on the reporting replica.
    tokio::time::sleep(REPORT_TIME).await;
    Ok(text(StatusCode::OK, format!("report {name}: 42 rows\n")))
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
