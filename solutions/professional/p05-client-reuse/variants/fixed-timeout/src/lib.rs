//! `price-edge`: the public price endpoint of the shop, in front of the internal pricing
//! service.
//!
//! `GET /price/{sku}` asks the pricing service for `GET {upstream}/price/{sku}` and passes its
//! answer on: `200` with the price, `404` for an unknown SKU, `502 Bad Gateway` when the
//! pricing service cannot be reached or breaks off, and `504 Gateway Timeout` when it does not
//! answer within `upstream_timeout`. The storefront renders a page from several of these
//! calls, one after the other.

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

/// What the operators configure.
#[derive(Debug, Clone)]
pub struct Config {
    /// The pricing service, for example `http://pricing.internal:8080`.
    pub upstream: String,
    /// How long one call to the pricing service may take, from sending the request to the
    /// last byte of its answer, before the caller gets a 504.
    pub upstream_timeout: Duration,
}

/// Accepts connections on `listener` forever, one task per connection.
pub async fn serve(listener: TcpListener, config: Config) -> std::io::Result<()> {
    let client = reqwest::Client::builder()
        // Half a second is plenty for a call inside the data centre.
        .timeout(Duration::from_millis(500))
        .build()
        .map_err(std::io::Error::other)?;
    let config = Arc::new(config);
    loop {
        let (stream, _peer) = listener.accept().await?;
        let config = config.clone();
        let client = client.clone();
        tokio::spawn(async move {
            let service =
                service_fn(move |request| handle(request, config.clone(), client.clone()));
            // A storefront that hangs up mid-request is routine, not an error of ours.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    config: Arc<Config>,
    client: reqwest::Client,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(sku) = request.uri().path().strip_prefix("/price/") else {
        return Ok(reply(StatusCode::NOT_FOUND, Bytes::from("not found\n")));
    };
    if request.method() != Method::GET || sku.is_empty() || sku.contains('/') {
        return Ok(reply(StatusCode::NOT_FOUND, Bytes::from("not found\n")));
    }

    let url = format!("{}/price/{sku}", config.upstream);
    let answer = match client.get(url).send().await {
        Ok(response) => {
            let status = response.status();
            response.bytes().await.map(|body| (status, body))
        }
        Err(error) => Err(error),
    };
    Ok(match answer {
        Ok((status, body)) if status == reqwest::StatusCode::NOT_FOUND => {
            reply(StatusCode::NOT_FOUND, body)
        }
        Ok((status, body)) if status.is_success() => reply(StatusCode::OK, body),
        Err(error) if error.is_timeout() => reply(
            StatusCode::GATEWAY_TIMEOUT,
            Bytes::from("pricing timed out\n"),
        ),
        Ok(_) | Err(_) => reply(
            StatusCode::BAD_GATEWAY,
            Bytes::from("pricing unavailable\n"),
        ),
    })
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}
