//! When hyper notices that a client left, seen from an upload handler that reads its body
//! first, under a limit, and only then does its slow work.
//!
//! Run it with `cargo run -p lessons-middle --example disconnects_upload`. It starts a server
//! on a free port, plays two clients that give up, logs what the handler saw, and exits:
//!
//! - client 1 announces 100 bytes, sends 10 and leaves: the handler's body read fails;
//! - client 2 sends its whole body and leaves while the handler works: hyper, which now reads
//!   the socket again, sees the end of the stream and drops the handler.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The largest upload the handler accepts.
pub const MAX_UPLOAD: usize = 64 * 1024;

/// How long storing an upload takes (a slow disk, a remote store).
pub const STORE_TIME: Duration = Duration::from_secs(10);

/// Logs, and reports to `events`, how a handler ended, when it is dropped.
pub struct Report {
    pub events: mpsc::UnboundedSender<String>,
    pub outcome: &'static str,
}

impl Drop for Report {
    fn drop(&mut self) {
        tracing::info!("upload: {}", self.outcome);
        let _ = self.events.send(self.outcome.to_owned());
    }
}

// ANCHOR: handler
/// Reads the whole upload first, then stores it.
pub async fn upload(
    request: Request<Incoming>,
    events: mpsc::UnboundedSender<String>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut report = Report {
        events,
        outcome: "dropped while reading the body",
    };
    // 1. Read the body, bounded. A client that leaves half-way shows up here, as an error:
    //    this read is the only reason hyper reads the socket while the body is unfinished.
    let body = match Limited::new(request.into_body(), MAX_UPLOAD)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            report.outcome = "the body read failed: the client left mid-upload";
            return Ok(answer(StatusCode::BAD_REQUEST, "incomplete upload\n"));
        }
    };

    // 2. The body is complete, so hyper watches the socket again while we work: if the
    //    client leaves now, this future is dropped at the `.await` below.
    tracing::info!("upload: received {} bytes, storing", body.len());
    let _ = report.events.send("storing".to_owned());
    report.outcome = "dropped while storing: the client left";
    tokio::time::sleep(STORE_TIME).await;
    report.outcome = "stored";
    Ok(answer(
        StatusCode::OK,
        &format!("stored {} bytes\n", body.len()),
    ))
}
// ANCHOR_END: handler

fn answer(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
    *response.status_mut() = status;
    response
}

/// Serves one connection with the upload handler.
pub async fn serve_connection<IO>(io: IO, events: mpsc::UnboundedSender<String>)
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request| upload(request, events.clone()));
    let _ = http1::Builder::new().serve_connection(io, service).await;
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let (events, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve_connection(TokioIo::new(stream), events.clone()));
        }
    });

    // Client 1: 10 of the 100 announced bytes, then it leaves.
    tracing::info!("client 1: sends 10 of 100 bytes, then leaves");
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let head = "POST /upload HTTP/1.1\r\nhost: demo\r\ncontent-length: 100\r\n\r\n";
    client.write_all(head.as_bytes()).await.expect("write");
    client.write_all(b"0123456789").await.expect("write");
    drop(client);
    seen.recv().await;

    // Client 2: the whole body, then it leaves while the handler is storing it.
    tracing::info!("client 2: sends all 10 bytes, then leaves");
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let head = "POST /upload HTTP/1.1\r\nhost: demo\r\ncontent-length: 10\r\n\r\n";
    client.write_all(head.as_bytes()).await.expect("write");
    client.write_all(b"0123456789").await.expect("write");
    // Leave once the handler has the body and is storing it.
    assert_eq!(seen.recv().await.as_deref(), Some("storing"));
    drop(client);
    seen.recv().await;
}
