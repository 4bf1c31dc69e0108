//! `labeld`: shipping labels for the warehouse's packing stations.
//!
//! `GET /labels/{order}` answers the order's label as a PDF, rendered by the carrier. The
//! carrier ships a synchronous SDK only: every call is a blocking HTTPS round trip that usually
//! takes a few hundred milliseconds, and sometimes, when the carrier is having a bad day, a
//! minute. A packing station gives up after a few seconds, so the service answers
//! `504 Gateway Timeout` once a label takes longer than [`Labels::deadline`], and the station
//! prints a fallback label instead.
//!
//! `GET /health` is what the load balancer polls; it must answer while labels are slow.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The carrier's SDK, as the service sees it. Its calls block the calling thread until the
/// carrier answers.
pub trait Carrier: Send + Sync + 'static {
    /// Renders the shipping label of `order`, as PDF bytes.
    fn render_label(&self, order: &str) -> Result<Vec<u8>, String>;
}

/// What the label endpoint needs.
#[derive(Clone)]
pub struct Labels {
    /// The carrier's SDK, shared by every request.
    pub carrier: Arc<dyn Carrier>,
    /// How long a packing station waits for a label before it prints a fallback one.
    pub deadline: Duration,
}

/// Accepts connections until the task is dropped, one task per connection.
pub async fn serve(listener: TcpListener, labels: Labels) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let labels = labels.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, labels.clone()));
            // A station that hangs up mid-request is not the server's failure.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    labels: Labels,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    if request.method() != Method::GET {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, "GET only\n"));
    }
    if path == "/health" {
        return Ok(reply(StatusCode::OK, "ok\n"));
    }
    let Some(order) = path.strip_prefix("/labels/").filter(|o| !o.is_empty()) else {
        return Ok(reply(StatusCode::NOT_FOUND, "no such page\n"));
    };
    let order = order.to_owned();
    match tokio::time::timeout(labels.deadline, render(&labels, &order)).await {
        Ok(Ok(pdf)) => {
            let mut response = Response::new(Full::from(pdf));
            response
                .headers_mut()
                .insert("content-type", "application/pdf".parse().unwrap());
            Ok(response)
        }
        Ok(Err(error)) => Ok(reply(
            StatusCode::BAD_GATEWAY,
            &format!("carrier: {error}\n"),
        )),
        Err(_) => Ok(reply(
            StatusCode::GATEWAY_TIMEOUT,
            "the carrier is slow: print a fallback label\n",
        )),
    }
}

/// A runtime of its own for the carrier's calls, so that they never hold the server's workers.
fn carrier_runtime() -> &'static tokio::runtime::Runtime {
    static CARRIER: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    CARRIER.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("carrier")
            .build()
            .expect("building the carrier's runtime")
    })
}

async fn render(labels: &Labels, order: &str) -> Result<Vec<u8>, String> {
    let carrier = Arc::clone(&labels.carrier);
    let order = order.to_owned();
    carrier_runtime()
        .spawn(async move { carrier.render_label(&order) })
        .await
        .map_err(|failed| format!("the carrier's SDK failed: {failed}"))?
}

fn reply(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(text.to_owned()));
    *response.status_mut() = status;
    response
}
