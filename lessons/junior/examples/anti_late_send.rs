//! Go's "time.AfterFunc writes to w after the handler returned" in Rust. Writing to a
//! response you already returned does not compile (you moved it). What you can write is a
//! streaming body fed by a task through a channel; then the task must treat a failed send as
//! "the client is gone" and stop.
//!
//! Run it: `cargo run -p lessons-junior --example anti_late_send`, then
//! `curl -N http://127.0.0.1:3000/progress` and press Ctrl-C in curl after a few lines:
//! the server prints when the producer noticed.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How the producer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Producer {
    Finished,
    ClientLeft { after_steps: u32 },
}

// ANCHOR: stream
/// A response whose body a background task writes, one line per step. Returns the task's
/// handle too, so that a caller can see how it ended.
pub fn progress(
    steps: u32,
    every: Duration,
) -> (Response<BoxBody<Bytes, Infallible>>, JoinHandle<Producer>) {
    let (lines, mut body_side) = mpsc::channel::<Bytes>(1);
    let producer = tokio::spawn(async move {
        for step in 1..=steps {
            tokio::time::sleep(every).await;
            let line = Bytes::from(format!("step {step} of {steps}\n"));
            // Err means the receiver is gone: hyper dropped the body because the
            // connection closed. Stop working for nobody.
            if lines.send(line).await.is_err() {
                return Producer::ClientLeft {
                    after_steps: step - 1,
                };
            }
        }
        Producer::Finished // dropping `lines` ends the body
    });
    let frames = futures::stream::poll_fn(move |cx| {
        body_side
            .poll_recv(cx)
            .map(|line| line.map(|line| Ok(Frame::data(line))))
    });
    (Response::new(StreamBody::new(frames).boxed()), producer)
}
// ANCHOR_END: stream

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000");
    tracing::info!("try: curl -N http://127.0.0.1:3000/progress, Ctrl-C it after a few lines");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = service_fn(|_request| async {
                let (response, producer) = progress(20, Duration::from_secs(1));
                tokio::spawn(async move {
                    if let Ok(ended) = producer.await {
                        tracing::info!("producer: {ended:?}");
                    }
                });
                Ok::<_, Infallible>(response)
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
