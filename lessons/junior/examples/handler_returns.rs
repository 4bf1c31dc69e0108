//! Handlers return responses: what replaces Go's `ResponseWriter` rules.
//!
//! Two routes:
//! - `POST /upload` collects the body (with a size limit) into `Bytes`, then shares it with
//!   a background task: cloning `Bytes` copies a pointer, not the data.
//! - `GET /ticks` streams one line a second through a bounded channel until the client
//!   leaves; the producer notices because its next send fails.
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
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// Every response body of this server: a full buffer or a stream, boxed to one type.
pub type Body = BoxBody<Bytes, Infallible>;

/// The largest upload we accept.
pub const UPLOAD_LIMIT: usize = 1024 * 1024;

/// Background work started by handlers, tracked so that a shutdown can wait for it.
#[derive(Clone, Debug, Default)]
pub struct App {
    pub background: TaskTracker,
}

pub async fn handle(app: App, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::POST, "/upload") => upload(app, request).await,
        (&Method::GET, "/ticks") => ticks(app),
        _ => text(StatusCode::NOT_FOUND, "no such route\n".to_owned()),
    };
    Ok(response)
}

fn text(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(text)).boxed());
    *response.status_mut() = status;
    response
}

// ANCHOR: upload
async fn upload(app: App, request: Request<Incoming>) -> Response<Body> {
    // The handler owns the body: read it here, once, with a limit.
    let upload = match Limited::new(request.into_body(), UPLOAD_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "upload too large\n".into()),
    };

    // `Bytes` is reference-counted: this clone shares the same memory, and the task
    // owns its handle, so it may outlive the request.
    let for_audit = upload.clone();
    app.background.spawn(async move {
        println!("audit: {} bytes uploaded", for_audit.len());
    });

    text(StatusCode::OK, format!("stored {} bytes\n", upload.len()))
}
// ANCHOR_END: upload

// ANCHOR: ticks
fn ticks(app: App) -> Response<Body> {
    // A bounded channel: the producer can run at most 4 frames ahead of the client.
    let (tx, mut rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);

    app.background.spawn(async move {
        for n in 1u64.. {
            let frame = Frame::data(Bytes::from(format!("tick {n}\n")));
            // The receiving end lives in the response body, which hyper drops when the
            // connection ends. From then on every send fails: stop producing.
            if tx.send(Ok(frame)).await.is_err() {
                println!("ticks: the client left after {} ticks", n - 1);
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });

    // The handler returns at once: hyper writes the head now and the body frames as the
    // producer sends them.
    let body = StreamBody::new(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    Response::new(body.boxed())
}
// ANCHOR_END: ticks

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
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    println!("try: curl --data-binary 'hello' http://127.0.0.1:3000/upload");
    println!(" or: curl -N http://127.0.0.1:3000/ticks   (then Ctrl-C)");
    let app = App::default();
    loop {
        // A demo: `first_server.rs` shows an accept loop that survives accept errors.
        let (stream, _peer) = listener.accept().await?;
        tokio::spawn(serve_connection(stream, app.clone()));
    }
}
