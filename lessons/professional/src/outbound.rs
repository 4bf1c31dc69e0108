//! The one outbound HTTP client, shared by every request.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

use crate::routes::text;

// ANCHOR: client
/// Time to establish a TCP connection to the upstream. A refused or unroutable upstream fails
/// here, well before the total timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time for the whole exchange, connect to last body byte. Below the handler timeout (15 s),
/// so a slow upstream answers 504 from us rather than 503 from the timeout layer.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle pooled connection is kept. reqwest's default is 90 s, but a hyper server
/// closes an idle keep-alive connection after its 30 s header read timeout: a pooled
/// connection older than the upstream's idle limit is one the upstream may be closing as we
/// send on it. Stay below it.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// One `reqwest::Client` for the process: it owns the connection pool, so a client per
/// request would pay a TCP (and TLS) handshake per call and leak sockets in TIME_WAIT.
#[derive(Clone, Debug)]
pub struct Outbound {
    client: reqwest::Client,
    upstream: Option<Arc<str>>,
}

impl Outbound {
    /// Builds the client with the template's timeouts, `total` being the whole-call bound.
    pub fn new(upstream: Option<String>, total: Duration) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(total)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build()?;
        Ok(Outbound {
            client,
            upstream: upstream.map(Arc::from),
        })
    }
    // ANCHOR_END: client

    // ANCHOR: call
    /// `GET /upstream`: 200 with the upstream's status and size, 504 when it is too slow,
    /// 502 when it cannot be reached or breaks the exchange.
    pub async fn call(&self) -> Response<Full<Bytes>> {
        let Some(url) = self.upstream.as_deref() else {
            return text(StatusCode::NOT_FOUND, "no --upstream configured\n".into());
        };
        let result = async {
            let response = self.client.get(url).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body.len()))
        }
        .await;
        match result {
            Ok((status, len)) => text(StatusCode::OK, format!("upstream {status}, {len} bytes\n")),
            Err(error) if error.is_timeout() => {
                tracing::warn!(%error, "upstream timed out");
                text(StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n".into())
            }
            Err(error) => {
                tracing::warn!(%error, "upstream failed");
                text(StatusCode::BAD_GATEWAY, "upstream failed\n".into())
            }
        }
    }
    // ANCHOR_END: call
}
