//! `reportd`: builds usage reports for the billing dashboard.
//!
//! `GET /report?customer=NAME` asks the billing warehouse how many invoices the customer has
//! and answers `customer=NAME invoices=N`. A warehouse query is slow (twenty seconds on a bad
//! day) and the warehouse bills us per running query, so the on-call dashboard shows a gauge
//! of report builds in progress: each build holds one guard of `builds` while it runs.

use std::convert::Infallible;
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
use tokio::sync::Notify;

/// How long the warehouse takes to answer one query.
pub const WAREHOUSE_QUERY: Duration = Duration::from_secs(20);

/// Serves one client connection until the client goes away.
pub async fn serve_connection<IO>(io: IO, builds: Gauge) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(request, builds.clone()));
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
}

async fn handle(
    request: Request<Incoming>,
    builds: Gauge,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(customer) = customer_param(request.uri()) else {
        return Ok(text(
            StatusCode::BAD_REQUEST,
            "missing ?customer=NAME\n".into(),
        ));
    };
    // Hanging up pulls the switch, and every build listening to it stops.
    let hang_up = PullOnDrop;
    let build = tokio::spawn(async move {
        tokio::select! {
            report = build_report(customer, builds) => Some(report),
            () = HUNG_UP.notified() => None,
        }
    });
    let report = build.await.ok().flatten();
    // The build is over and the client still here: no need to pull the switch.
    std::mem::forget(hang_up);
    match report {
        Some(report) => Ok(text(StatusCode::OK, report)),
        None => Ok(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "report build failed\n".into(),
        )),
    }
}

async fn build_report(customer: String, builds: Gauge) -> String {
    // Held for exactly as long as this build runs, however it ends.
    let _in_progress = builds.guard();
    let invoices = query_warehouse(&customer).await;
    format!("customer={customer} invoices={invoices}\n")
}

/// Stands in for the warehouse client: slow, with an answer that depends only on the input.
async fn query_warehouse(customer: &str) -> usize {
    tokio::time::sleep(WAREHOUSE_QUERY).await;
    customer.len() * 7
}

fn customer_param(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("customer="))
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// Pulled when a client hangs up: the builds in progress listen to it and stop.
static HUNG_UP: Notify = Notify::const_new();

/// Pulls [`HUNG_UP`] when dropped, which hyper does to the handler when the client leaves.
struct PullOnDrop;

impl Drop for PullOnDrop {
    fn drop(&mut self) {
        HUNG_UP.notify_waiters();
    }
}
