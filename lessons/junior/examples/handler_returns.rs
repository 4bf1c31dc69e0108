//! Handlers return responses: what replaces Go's `ResponseWriter` rules.
//!
//! Two routes:
//! - `POST /upload` collects the body (with a size limit) into `Bytes`, then shares it with
//!   a background task: cloning `Bytes` copies a pointer, not the data.
//! - `GET /ticks` streams one line a second through a bounded channel until the client
//!   leaves; the producer notices because its next send fails.
//!
//! The two routes return different body types; `handle` boxes both into one.
//!
//! Run it with `cargo run -p lessons-junior --example handler_returns`, then:
//!
//! ```console
//! curl --data-binary 'hello' http://127.0.0.1:3000/upload
//! curl -N http://127.0.0.1:3000/ticks     # press Ctrl-C after a few ticks
//! ```

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// The largest upload we accept.
pub const UPLOAD_LIMIT: usize = 1024 * 1024;

/// Background work started by handlers, tracked so that a shutdown can wait for it.
#[derive(Clone, Debug, Default)]
pub struct App {
    pub background: TaskTracker,
}

fn text(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}

// ANCHOR: upload
async fn upload(app: App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    // The handler owns the body: read it here, once, with a limit.
    let upload = match Limited::new(request.into_body(), UPLOAD_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "upload too large\n".into());
        }
    };

    // `Bytes` is reference-counted: this clone shares the same memory, and the task
    // owns its handle, so it may outlive the request.
    let for_audit = upload.clone();
    app.background.spawn(async move {
        tracing::info!("audit: {} bytes uploaded", for_audit.len());
    });

    text(StatusCode::OK, format!("stored {} bytes\n", upload.len()))
}
// ANCHOR_END: upload

// ANCHOR: ticks
fn ticks(app: App) -> Response<impl Body<Data = Bytes, Error = Infallible>> {
    // A bounded channel: the producer can run at most 4 chunks ahead of the client.
    let (tx, rx) = mpsc::channel::<Bytes>(4);

    app.background.spawn(async move {
        for n in 1u64.. {
            // The receiving end lives in the response body, which hyper drops when
            // the connection ends. From then on every send fails: stop producing.
            if tx.send(Bytes::from(format!("tick {n}\n"))).await.is_err() {
                tracing::info!("ticks: the client left after {} ticks", n - 1);
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });

    // The handler returns at once: hyper writes the head now, and each chunk as the
    // producer sends it.
    Response::new(channel_body(rx))
}
// ANCHOR_END: ticks

// ANCHOR: channel_body
/// A response body that yields, as data frames, the chunks sent into `chunks`, and
/// ends when every `Sender` is gone.
pub fn channel_body(
    mut chunks: mpsc::Receiver<Bytes>,
) -> impl Body<Data = Bytes, Error = Infallible> {
    // hyper polls the body for a frame, the body polls the channel for a chunk:
    // Ready(Some(chunk)), Ready(None) once every sender is gone, or Pending.
    let frames = futures::stream::poll_fn(move |cx| {
        chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    });
    StreamBody::new(frames)
}
// ANCHOR_END: channel_body

// ANCHOR: routes
/// Every response body of this server, whatever produced it, boxed to one type.
pub type BoxedBody = BoxBody<Bytes, Infallible>;

pub async fn handle(
    app: App,
    request: Request<Incoming>,
) -> Result<Response<BoxedBody>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::POST, "/upload") => upload(app, request).await.map(BodyExt::boxed),
        (&Method::GET, "/ticks") => ticks(app).map(BodyExt::boxed),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()).map(BodyExt::boxed),
    };
    Ok(response)
}
// ANCHOR_END: routes

pub async fn serve_connection<IO>(io: IO, app: App)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(app.clone(), request));
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without a timestamp, so that they read like the book's transcripts.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    tracing::info!("try: curl --data-binary 'hello' http://127.0.0.1:3000/upload");
    tracing::info!(" or: curl -N http://127.0.0.1:3000/ticks   (then Ctrl-C)");
    let app = App::default();
    loop {
        // A demo: `first_server.rs` shows an accept loop that survives accept errors.
        let (stream, _peer) = listener.accept().await?;
        tokio::spawn(serve_connection(stream, app.clone()));
    }
}
