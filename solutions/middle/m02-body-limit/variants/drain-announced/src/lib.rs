//! `scan-inbox`: receives scanned documents from the office scanners and the mobile app.
//!
//! `POST /documents` stores the request body as one document and answers `stored N bytes`;
//! the OCR workers pick documents up from the store later. Scanners send a `content-length`;
//! the mobile app streams its uploads chunked, without one. The API reference promises that
//! a document may be up to 1 MiB, and that anything larger is refused with
//! `413 Payload Too Large`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// The documents waiting for OCR, shared by every connection.
#[derive(Debug, Default, Clone)]
pub struct Store {
    documents: Arc<Mutex<Vec<Bytes>>>,
}

impl Store {
    /// How many documents are waiting.
    pub fn len(&self) -> usize {
        self.documents.lock().unwrap().len()
    }

    /// Whether no document is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&self, document: Bytes) {
        self.documents.lock().unwrap().push(document);
    }
}

/// Accepts connections on `listener` forever, one task per connection.
pub async fn serve(listener: TcpListener, store: Store) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        let store = store.clone();
        tokio::spawn(async move {
            // A scanner that drops off the Wi-Fi mid-upload is routine, not a server error.
            let _ = serve_connection(stream, store).await;
        });
    }
}

/// Serves HTTP/1 on one connection: a TCP socket in production, an in-memory pipe in tests.
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
    if request.method() != Method::POST || request.uri().path() != "/documents" {
        return Ok(reply(StatusCode::NOT_FOUND, "not found\n".into()));
    }
    // Manual frame pump: refuse on the announced size, else count as frames arrive.
    const LIMIT: u64 = 1 << 20;
    let mut body = request.into_body();
    if hyper::body::Body::size_hint(&body).lower() > LIMIT {
        // A scanner told us its size: let it finish writing (discarding every byte, holding
        // none) so it reads our 413 instead of a connection reset mid-write.
        tokio::spawn(async move { while let Some(Ok(_)) = body.frame().await {} });
        return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE, "too large\n".into()));
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                "upload interrupted\n".into(),
            ));
        };
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > LIMIT {
                drop(body);
                return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE, "too large\n".into()));
            }
            buf.extend_from_slice(&data);
        }
    }
    let document = buf.freeze();
    let size = document.len();
    store.push(document);
    Ok(reply(StatusCode::OK, format!("stored {size} bytes\n")))
}

fn reply(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}
