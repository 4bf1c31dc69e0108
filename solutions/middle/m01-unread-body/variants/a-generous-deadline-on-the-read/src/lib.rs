//! `vaultd`: files uploads in the cold-storage archive.
//!
//! `PUT /archive/NAME` with the file as its body opens an upload session with the archive,
//! sends the file into it and answers with the archive's receipt: `NAME bytes=N fnv=HEX`.
//! The archive is far away: opening a session takes twenty seconds on a bad day, and every
//! open session is billed until it is closed, so the on-call dashboard shows a gauge of open
//! sessions: each session holds one guard of `sessions` while it is open.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use harness::leak::{Gauge, Guard};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// How long the archive takes to open an upload session.
pub const OPEN_SESSION: Duration = Duration::from_secs(20);

/// The largest file the archive takes.
pub const MAX_FILE: usize = 8 * 1024 * 1024;

/// Serves one client connection until the client goes away.
pub async fn serve_connection<IO>(io: IO, archive: Archive) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(request, archive.clone()));
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
}

async fn handle(
    request: Request<Incoming>,
    archive: Archive,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::PUT {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "use PUT\n".into()));
    }
    let Some(name) = file_name(request.uri().path()) else {
        return Ok(text(StatusCode::NOT_FOUND, "PUT /archive/NAME\n".into()));
    };
    // Read the whole file first, but don't let a stalled client hold us forever.
    let file =
        match tokio::time::timeout(Duration::from_secs(30), read_file(request.into_body())).await {
            Ok(Ok(file)) => file,
            Ok(Err(refusal)) => return Ok(refusal),
            Err(_) => {
                return Ok(text(
                    StatusCode::REQUEST_TIMEOUT,
                    "upload too slow\n".into(),
                ));
            }
        };
    let session = archive.open_session(&name).await;
    Ok(text(StatusCode::OK, session.upload(file).await))
}

/// The whole file, or the answer that refuses it.
async fn read_file(body: Incoming) -> Result<Bytes, Response<Full<Bytes>>> {
    match Limited::new(body, MAX_FILE).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "file too large\n".into(),
        )),
        // The client stopped sending halfway: there is no file to archive.
        Err(_) => Err(text(StatusCode::BAD_REQUEST, "upload cut short\n".into())),
    }
}

/// Stands in for the archive's client: slow to open a session, exact about what it received.
#[derive(Debug, Clone)]
pub struct Archive {
    sessions: Gauge,
}

impl Archive {
    /// A client whose open sessions are counted by `sessions`.
    pub fn new(sessions: Gauge) -> Self {
        Self { sessions }
    }

    async fn open_session(&self, name: &str) -> Session {
        // Billed from the moment we ask, so counted from here until the session is dropped.
        let open = self.sessions.guard();
        tokio::time::sleep(OPEN_SESSION).await;
        Session {
            name: name.to_owned(),
            _open: open,
        }
    }
}

struct Session {
    name: String,
    _open: Guard,
}

impl Session {
    /// Sends the file and closes the session; the receipt says what the archive received.
    async fn upload(self, file: Bytes) -> String {
        format!(
            "{} bytes={} fnv={:016x}\n",
            self.name,
            file.len(),
            fnv1a(&file)
        )
    }
}

/// The archive's checksum: 64-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn file_name(path: &str) -> Option<String> {
    path.strip_prefix("/archive/")
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .map(str::to_owned)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
