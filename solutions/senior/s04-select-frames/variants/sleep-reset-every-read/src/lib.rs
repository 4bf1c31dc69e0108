//! `fleetd`: ingests telemetry from the delivery vans.
//!
//! Each van keeps one `POST /ingest` open for its whole shift and streams its readings in the
//! chunked body as they are taken. The body is a sequence of records, each a big-endian `u16`
//! length followed by that many bytes of UTF-8 (`van-17 52.5200 13.4050`). Records are written
//! to the time-series store in batches, once every [`FLUSH_EVERY`], so that the dispatchers'
//! map is never more than a second behind a van; the store bills per write, so batching is
//! what keeps the bill down. When a van ends its upload, it gets `stored N records`.

pub mod store;

use std::convert::Infallible;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_util::io::StreamReader;

pub use store::Store;

/// How often what has arrived is written to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The longest record a van sends; a longer length means the stream is corrupt.
pub const MAX_RECORD: usize = 1024;

/// Serves one van's connection until it goes away.
pub async fn serve_connection<IO>(io: IO, store: Store) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(request, store.clone()));
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
}

async fn handle(
    request: Request<Incoming>,
    store: Store,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::POST || request.uri().path() != "/ingest" {
        return Ok(text(StatusCode::NOT_FOUND, "no such endpoint\n".into()));
    }
    let body = request
        .into_body()
        .into_data_stream()
        .map_err(io::Error::other);
    match ingest(StreamReader::new(body), &store).await {
        Ok(stored) => Ok(text(StatusCode::OK, format!("stored {stored} records\n"))),
        Err(err) => Ok(text(StatusCode::BAD_REQUEST, format!("{err}\n"))),
    }
}

/// Reads records from `body` until it ends, writing them to `store` once every
/// [`FLUSH_EVERY`] and once more at the end. Returns how many records were stored.
pub async fn ingest<R>(mut body: R, store: &Store) -> io::Result<usize>
where
    R: AsyncRead + Unpin,
{
    let mut batch = Vec::new();
    let mut stored = 0;
    let mut pending = bytes::BytesMut::with_capacity(4096);
    loop {
        while let Some(record) = next_record(&mut pending)? {
            batch.push(record);
        }
        tokio::select! {
            read = body.read_buf(&mut pending) => {
                if read? == 0 {
                    break;
                }
            }
            // Flush once the van has been quiet for a second.
            () = tokio::time::sleep(FLUSH_EVERY) => stored += store.write(std::mem::take(&mut batch)),
        }
    }
    Ok(stored + store.write(batch))
}

/// Takes one whole record off the front of `pending`, if it holds one.
fn next_record(pending: &mut bytes::BytesMut) -> io::Result<Option<String>> {
    use bytes::Buf;
    let Some(head) = pending.get(..2) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
    if len > MAX_RECORD {
        return Err(corrupt(format!(
            "a record of {len} bytes is longer than {MAX_RECORD}"
        )));
    }
    if pending.len() < 2 + len {
        return Ok(None);
    }
    pending.advance(2);
    let record = pending.split_to(len);
    String::from_utf8(record.to_vec())
        .map(Some)
        .map_err(|_| corrupt("a record is not UTF-8".into()))
}

fn corrupt(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
