//! A tokio mutex held across a slow write stalls every request that needs the lock.
//!
//! An audit board is exported as a streamed body while other requests keep recording events.
//! The export that holds the lock while it sends (`Board::export_locked`) waits on the client;
//! a client that stops reading leaves it waiting for ever, and every `record` waits behind it.
//! The export that copies the board in a scoped block and streams the copy lets `record` go
//! on. On the paused clock, over an in-memory connection whose client never reads.

mod support {
    pub mod locks;
}

use std::convert::Infallible;
use std::time::Duration;

use harness::duplex;
use harness::watchdog::check;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use support::locks::{Board, Export};
use tokio::io::{AsyncWriteExt, DuplexStream};

const HANG: &str = "a paused-clock check spun without yielding";

/// More than the pipe, hyper's write buffer and the channel hold together (about 200 KiB), so
/// an export to a client that reads nothing cannot finish.
const EVENTS: usize = 2000;

#[derive(Clone, Copy)]
enum Way {
    HoldTheLock,
    Snapshot,
}

async fn export(board: &Board, how: Way) -> Response<Export> {
    match how {
        Way::HoldTheLock => board.export_locked(),
        Way::Snapshot => board.export_snapshot().await,
    }
}

/// A board of `EVENTS` events, and a client that asked for the export and reads nothing.
async fn stalled_export(how: Way) -> (Board, DuplexStream) {
    let board = Board::default();
    for n in 0..EVENTS {
        board
            .record(format!(
                "{n:>6} user=ana action=view path=/pricing/enterprise plan=annual"
            ))
            .await;
    }
    let served = board.clone();
    let (mut client, _server) = duplex::raw(move |io| async move {
        let service = service_fn(move |_: Request<hyper::body::Incoming>| {
            let board = served.clone();
            async move { Ok::<_, Infallible>(export(&board, how).await) }
        });
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .await;
    });
    client
        .write_all(b"GET /export HTTP/1.1\r\nhost: audit.test\r\n\r\n")
        .await
        .unwrap();
    // The paused clock moves only when every task is idle: once this sleep returns, the
    // export has gone as far as it ever will (pipe, hyper's buffer and channel all full).
    tokio::time::sleep(Duration::from_millis(1)).await;
    (board, client)
}

/// Whether a request can record its event within a (virtual) hour.
async fn records_within_an_hour(board: &Board) -> bool {
    let hour = Duration::from_secs(3600);
    let record = board.record("user=bob action=login".to_owned());
    tokio::time::timeout(hour, record).await.is_ok()
}

#[test]
fn a_tokio_guard_held_across_a_slow_write_stalls_every_writer() {
    check(HANG).paused(|| async {
        let (board, _client) = stalled_export(Way::HoldTheLock).await;
        assert!(
            !records_within_an_hour(&board).await,
            "a request recorded its event while the export held the lock"
        );
    });
}

#[test]
fn a_snapshot_taken_in_a_scoped_block_lets_writers_go_on() {
    check(HANG).paused(|| async {
        let (board, _client) = stalled_export(Way::Snapshot).await;
        assert!(records_within_an_hour(&board).await);
        assert_eq!(board.len().await, EVENTS + 1);
    });
}

#[test]
fn the_stall_ends_only_when_the_slow_client_leaves() {
    check(HANG).paused(|| async {
        let (board, client) = stalled_export(Way::HoldTheLock).await;
        // hyper's next write fails, the body and its receiver are dropped, the producer's
        // `send` fails, it returns, and the guard goes with it.
        drop(client);
        assert!(records_within_an_hour(&board).await);
    });
}
