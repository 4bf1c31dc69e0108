//! A tokio mutex guard held while writing to a client that does not read.
//!
//! Backs R29 of the bank: `write_all` to a slow client waits for the client, and a guard held
//! across it makes every other task that needs the lock wait for that client too. Copying
//! what to send under the lock and writing after the guard is gone leaves the lock free.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, oneshot};

/// The shared report: a few KiB that every download sends and every update rewrites.
struct Report {
    bytes: Vec<u8>,
}

/// Sends the report while holding the lock.
async fn download_locked(
    report: &Mutex<Report>,
    client: &mut (impl AsyncWrite + Unpin),
    writing: oneshot::Sender<()>,
) {
    let report = report.lock().await;
    writing.send(()).unwrap();
    let _ = client.write_all(&report.bytes).await;
}

/// Copies the report under the lock, and sends the copy after the guard is dropped.
async fn download_copy(
    report: &Mutex<Report>,
    client: &mut (impl AsyncWrite + Unpin),
    writing: oneshot::Sender<()>,
) {
    let bytes = report.lock().await.bytes.clone();
    writing.send(()).unwrap();
    let _ = client.write_all(&bytes).await;
}

/// Starts one download to a client that never reads (a 64-byte pipe), waits until it is
/// writing, and returns whether an update could take the lock within a minute.
async fn update_during_a_slow_download(locked: bool) -> bool {
    let report = Arc::new(Mutex::new(Report {
        bytes: vec![b'x'; 4096],
    }));
    let (mut to_client, _client_never_reads) = tokio::io::duplex(64);
    let (writing_tx, writing) = oneshot::channel();
    let download = {
        let report = report.clone();
        tokio::spawn(async move {
            if locked {
                download_locked(&report, &mut to_client, writing_tx).await;
            } else {
                download_copy(&report, &mut to_client, writing_tx).await;
            }
        })
    };
    writing.await.unwrap();
    // Virtual time: the minute passes only once nothing else can make progress.
    let update = tokio::time::timeout(Duration::from_secs(60), report.lock()).await;
    download.abort();
    update.is_ok()
}

#[tokio::test(start_paused = true)]
async fn a_guard_held_across_write_all_makes_the_update_wait_for_the_slow_client() {
    assert!(!update_during_a_slow_download(true).await);
}

#[tokio::test(start_paused = true)]
async fn a_copy_taken_under_the_lock_leaves_the_lock_free_during_the_write() {
    assert!(update_during_a_slow_download(false).await);
}
