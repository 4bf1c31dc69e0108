//! `logsearch`: full-text search over the log archive, behind the edge proxy.
//!
//! `GET /search?q=WORDS` scans the archive and answers `q=WORDS hits=N`. A scan reads the
//! archive for seconds and the storage team bills us by the byte read, so the on-call
//! dashboard shows a gauge of scans in flight: each scan holds one guard of `scans`.
//!
//! The edge proxy multiplexes every user's searches onto a few HTTP/2 connections to us, so
//! one connection carries the streams of many users. When a user refines a query, the UI
//! aborts the old fetch and the proxy resets that stream (RST_STREAM).
//!
//! On a deploy the server's shutdown token is cancelled: each connection stops taking new
//! streams, scans in flight stop, and their clients get a 503 with `retry-after`, which the
//! proxy retries on another replica.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use harness::leak::Gauge;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

/// How long one scan of the archive takes.
pub const SCAN: Duration = Duration::from_secs(10);

/// The log archive, and the gauge of scans reading it.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    /// One guard per scan in flight.
    pub scans: Gauge,
}

impl Archive {
    /// Stands in for the scan: slow, with a count of hits that depends only on the query.
    async fn scan(&self, query: &str) -> usize {
        tokio::time::sleep(SCAN).await;
        query.len() * 7
    }
}

/// Serves one HTTP/2 connection (the proxy's) until it closes or the server shuts down.
pub async fn serve_connection<IO>(
    io: IO,
    archive: Archive,
    shutdown: CancellationToken,
) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Everything this connection starts stops when the server shuts down.
    let connection = shutdown.child_token();
    let service = service_fn(move |request| search(request, archive.clone(), connection.clone()));
    let serving =
        http2::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(io), service);
    tokio::pin!(serving);
    tokio::select! {
        result = serving.as_mut() => result,
        () = shutdown.cancelled() => {
            // No new streams (GOAWAY); the ones in flight get their answer, then we close.
            serving.as_mut().graceful_shutdown();
            serving.await
        }
    }
}

async fn search(
    request: Request<Incoming>,
    archive: Archive,
    connection: CancellationToken,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(query) = query_param(request.uri()) else {
        return Ok(text(StatusCode::BAD_REQUEST, "missing ?q=WORDS\n".into()));
    };
    let this_search = connection.child_token();
    // The scan gets a task of its own, beside the stream's.
    let scan = tokio::spawn(scan_until_cancelled(archive, query.clone(), connection));
    // When the client resets the stream, hyper drops this future: stop the scan with it.
    let stop_scan_if_dropped = this_search.drop_guard();
    let outcome = scan.await;
    stop_scan_if_dropped.disarm();
    Ok(match outcome {
        Ok(Some(hits)) => text(StatusCode::OK, format!("q={query} hits={hits}\n")),
        Ok(None) => retry_elsewhere(),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "scan failed\n".into()),
    })
}

/// Scans the archive for `query`, or gives up with `None` as soon as `stop` is cancelled.
async fn scan_until_cancelled(
    archive: Archive,
    query: String,
    stop: CancellationToken,
) -> Option<usize> {
    let _in_flight = archive.scans.guard();
    stop.run_until_cancelled(archive.scan(&query)).await
}

fn query_param(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("q="))
        .filter(|words| !words.is_empty())
        .map(str::to_owned)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// A scan stopped by the shutdown: the proxy retries a 503 on another replica.
fn retry_elsewhere() -> Response<Full<Bytes>> {
    let mut response = text(
        StatusCode::SERVICE_UNAVAILABLE,
        "scan stopped, retry\n".into(),
    );
    let retry_after = hyper::header::HeaderValue::from_static("1");
    response.headers_mut().insert("retry-after", retry_after);
    response
}
