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
    // Answer at once and let the build finish in the background: the handler returns right
    // away, so there is nothing left for a client to hang up on.
    tokio::spawn(build_report(customer.clone(), builds));
    Ok(text(
        StatusCode::ACCEPTED,
        format!("customer={customer} report is being built\n"),
    ))
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
