//! A lock held across a slow write, and the snapshot that fixes it: an audit board is
//! exported to a client that stops reading after the request, and meanwhile another request
//! tries to record an event.
//!
//! ```console
//! cargo run -p lessons-senior --example locks_export
//! ```
use std::convert::Infallible;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

#[path = "../tests/support/locks.rs"]
#[allow(dead_code)] // `Board::len` is for the tests
mod locks;

use locks::{Board, Export};

#[derive(Clone, Copy, Debug)]
enum Way {
    HoldTheLock,
    Snapshot,
}

async fn export(board: &Board, way: Way) -> Response<Export> {
    match way {
        Way::HoldTheLock => board.export_locked(),
        Way::Snapshot => board.export_snapshot().await,
    }
}

/// Serves one export to a client that reads nothing, then lets another request record.
async fn slow_client_then_a_writer(way: Way) {
    let board = Board::default();
    for n in 0..2000 {
        board
            .record(format!("{n:>6} user=ana action=view path=/pricing"))
            .await;
    }
    // An in-memory connection of 16 KiB per direction stands in for the socket.
    let (mut client, server) = tokio::io::duplex(16 * 1024);
    let served = board.clone();
    tokio::spawn(async move {
        let service = service_fn(move |_: Request<hyper::body::Incoming>| {
            let board = served.clone();
            async move { Ok::<_, Infallible>(export(&board, way).await) }
        });
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(server), service)
            .await;
    });
    client
        .write_all(b"GET /export HTTP/1.1\r\nhost: audit.test\r\n\r\n")
        .await
        .unwrap();
    info!(?way, "a client asked for the export and stopped reading");
    tokio::time::sleep(Duration::from_millis(100)).await;

    let patience = Duration::from_millis(500);
    let record = board.record("user=bob action=login".to_owned());
    match tokio::time::timeout(patience, record).await {
        Ok(()) => info!(?way, "another request recorded its event at once"),
        Err(_) => warn!(
            ?way,
            "another request waited {patience:?} for the lock and gave up"
        ),
    }
    drop(client); // the export's next write fails, and its guard goes
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    slow_client_then_a_writer(Way::HoldTheLock).await;
    slow_client_then_a_writer(Way::Snapshot).await;
}
