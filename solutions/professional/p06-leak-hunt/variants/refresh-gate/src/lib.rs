//! `invoiced`: customers read their invoices, one at a time or as a CSV export, from the
//! billing API. Every call to the billing API carries a short-lived service token, replaced
//! when a call finds it about to expire.
//!
//! - `GET /invoices/{n}`: one invoice, one call to the billing API.
//! - `GET /export?pages=N`: N invoices, one call per page; the billing API serves one page a
//!   second, so a large export runs for minutes, longer than a token lives.

mod billing;
mod tokens;

use std::convert::Infallible;

pub use billing::{Billing, PAGE_TIME, Unauthorized};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
pub use tokens::{REFRESH_MARGIN, TOKEN_LIFETIME, Token, Tokens};
use tokio::io::{AsyncRead, AsyncWrite};

/// What every connection shares: the service token and the billing API's client.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The service token the billing API wants, and its refreshing.
    pub tokens: Tokens,
    /// The billing API.
    pub billing: Billing,
}

impl Gateway {
    /// Starts the gateway: asks the identity provider for a first token.
    pub fn new() -> Self {
        Self {
            tokens: Tokens::new(),
            billing: Billing::default(),
        }
    }
}

impl Default for Gateway {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves one client connection until the client goes away.
pub async fn serve_connection<IO>(io: IO, gateway: Gateway) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = tower::service_fn(move |request| handle(request, gateway.clone()));
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .await
}

async fn handle(
    request: Request<Incoming>,
    gateway: Gateway,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    let pages = if let Some(n) = path.strip_prefix("/invoices/") {
        n.parse().ok().map(|n: u64| n..n + 1)
    } else if path == "/export" {
        pages_param(request.uri().query()).map(|pages| 0..pages)
    } else {
        return Ok(answer(StatusCode::NOT_FOUND, "no such page\n".into()));
    };
    let Some(pages) = pages else {
        return Ok(answer(
            StatusCode::BAD_REQUEST,
            "bad invoice number\n".into(),
        ));
    };

    let mut csv = String::new();
    for page in pages {
        let token = gateway.tokens.current().await;
        match gateway.billing.invoice(&token, page).await {
            Ok(line) => csv.push_str(&line),
            Err(Unauthorized) => {
                return Ok(answer(
                    StatusCode::BAD_GATEWAY,
                    "billing refused our token\n".into(),
                ));
            }
        }
    }
    Ok(answer(StatusCode::OK, csv))
}

fn answer(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(body));
    *response.status_mut() = status;
    response
}

fn pages_param(query: Option<&str>) -> Option<u64> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("pages="))?
        .parse()
        .ok()
}
