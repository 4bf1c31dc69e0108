//! `thumbd`: takes photos from the mobile app and renders their thumbnails in the background.
//!
//! `POST /photos/NAME` with the photo as its body answers `202 Accepted` at once and puts the
//! photo in a queue. One renderer works through the queue a photo at a time (rendering is
//! slow: five seconds a photo) and publishes each thumbnail on the `rendered` channel, which
//! stands in for the object store the app downloads thumbnails from. The app uploads a whole
//! camera roll over one keep-alive connection, one photo after another.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// How long rendering one thumbnail takes.
pub const RENDER_TIME: Duration = Duration::from_secs(5);

/// The largest photo the renderer takes.
pub const MAX_PHOTO: usize = 16 * 1024 * 1024;

/// Photos waiting for the renderer; past this, uploads are refused with 503.
pub const QUEUE_DEPTH: usize = 64;

/// What the renderer publishes for each photo: its name, and the size and checksum of the
/// bytes it rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub name: String,
    pub bytes: usize,
    pub fnv: u64,
}

/// A photo waiting to be rendered: its name and every byte of it.
type Job = (String, Bytes);

/// The intake side of the render queue. Cheap to clone: every connection holds one.
#[derive(Debug, Clone)]
pub struct Queue {
    jobs: mpsc::Sender<Job>,
}

/// Starts the renderer, which publishes every thumbnail on `rendered`.
pub fn start_renderer(rendered: mpsc::UnboundedSender<Thumbnail>) -> Queue {
    let (jobs, queued) = mpsc::channel(QUEUE_DEPTH);
    tokio::spawn(render_queued(queued, rendered));
    Queue { jobs }
}

/// Serves one client connection until the client goes away.
pub async fn serve_connection<IO>(io: IO, queue: Queue) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| accept(request, queue.clone()));
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
}

async fn accept(
    request: Request<Incoming>,
    queue: Queue,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::POST {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n"));
    }
    let Some(name) = photo_name(&request) else {
        return Ok(text(StatusCode::NOT_FOUND, "POST /photos/NAME\n"));
    };
    // Take the whole photo in before answering: only then is it really ours.
    let mut body = request.into_body();
    let mut photo = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Ok(text(StatusCode::BAD_REQUEST, "upload cut short\n"));
        };
        if let Ok(data) = frame.into_data() {
            if photo.len() + data.len() > MAX_PHOTO {
                return Ok(text(StatusCode::PAYLOAD_TOO_LARGE, "photo too large\n"));
            }
            photo.extend_from_slice(&data);
        }
    }
    // Wait briefly for room rather than bouncing the phone straight away.
    match tokio::time::timeout(
        Duration::from_millis(500),
        queue.jobs.send((name, photo.freeze())),
    )
    .await
    {
        Ok(Ok(())) => Ok(text(StatusCode::ACCEPTED, "queued\n")),
        _ => Ok(text(StatusCode::SERVICE_UNAVAILABLE, "render queue full\n")),
    }
}

async fn render_queued(
    mut queued: mpsc::Receiver<Job>,
    rendered: mpsc::UnboundedSender<Thumbnail>,
) {
    while let Some((name, photo)) = queued.recv().await {
        let _ = rendered.send(render(name, photo).await);
    }
}

/// Stands in for the thumbnail renderer: slow, with a result that depends only on the photo.
async fn render(name: String, photo: Bytes) -> Thumbnail {
    tokio::time::sleep(RENDER_TIME).await;
    Thumbnail {
        name,
        bytes: photo.len(),
        fnv: fnv1a(&photo),
    }
}

/// The object store's checksum: 64-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn photo_name<B>(request: &Request<B>) -> Option<String> {
    request
        .uri()
        .path()
        .strip_prefix("/photos/")
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .map(str::to_owned)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}
