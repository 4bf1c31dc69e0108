//! How far a producer gets when its client stops reading: a bounded channel, an unbounded
//! one, and a producer that sheds with `try_send`. Each feed is 500 events of about 1 KiB,
//! served over an in-memory connection of 16 KiB per direction.
//!
//! ```console
//! cargo run -p lessons-senior --example streaming_backpressure
//! ```
use std::convert::Infallible;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tracing::info;

#[path = "../tests/support/streaming.rs"]
#[allow(dead_code)] // the keep-alive feeds are for the tests
mod streaming;

use streaming::{Feed, Progress, bounded, shedding, unbounded};

const TOTAL: usize = 500;

/// Serves one feed to a client that sends its request and reads nothing, for a moment.
async fn stalled(feed: fn(Progress) -> Feed, progress: Progress) -> DuplexStream {
    let (mut client, server) = tokio::io::duplex(16 * 1024);
    tokio::spawn(async move {
        let service = service_fn(move |_: Request<hyper::body::Incoming>| {
            let body = feed(progress.clone());
            async move { Ok::<_, Infallible>(Response::new(body)) }
        });
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(server), service)
            .await;
    });
    client
        .write_all(b"GET /feed HTTP/1.1\r\nhost: feed.test\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    client
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();

    let progress = Progress::default();
    let mut client = stalled(|p| bounded(8, TOTAL, p), progress.clone()).await;
    info!(
        sent = progress.sent(),
        "bounded(8): the producer waits in send"
    );
    let mut buf = vec![0; 16 * 1024];
    // The client reads again: the buffers drain and the producer goes on to the end.
    while progress.sent() < TOTAL {
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed the connection early");
    }
    info!(
        sent = progress.sent(),
        "bounded(8): the client read, the producer went on"
    );

    let progress = Progress::default();
    let _client = stalled(|p| unbounded(TOTAL, p), progress.clone()).await;
    info!(
        sent = progress.sent(),
        "unbounded: everything queued in memory"
    );

    let progress = Progress::default();
    let _client = stalled(|p| shedding(8, TOTAL, p), progress.clone()).await;
    info!(
        sent = progress.sent(),
        shed = progress.shed(),
        "try_send(8): the rest was shed"
    );
}
