//! Go's "close a channel from many goroutines" in Rust. A tokio `mpsc::Sender` has no
//! `close`: the channel closes when the last `Sender` is dropped, so closing twice cannot be
//! written. The Rust-shaped mistake is the opposite one: a `Sender` clone kept alive
//! somewhere, so the channel never closes and the worker waits forever.
//!
//! Run it: `cargo run -p lessons-junior --example anti_stray_sender`.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

// ANCHOR: worker
/// Starts a worker that counts the events it receives until the channel closes.
pub fn start_worker() -> (mpsc::Sender<String>, JoinHandle<usize>) {
    let (events, mut inbox) = mpsc::channel::<String>(16);
    let worker = tokio::spawn(async move {
        let mut handled = 0;
        // `recv` returns `None` once every Sender is gone and the buffer is empty.
        while let Some(_event) = inbox.recv().await {
            handled += 1;
        }
        handled
    });
    (events, worker)
}
// ANCHOR_END: worker

#[tokio::main]
async fn main() {
    let (events, worker) = start_worker();
    // ANCHOR: stray
    let audit_log = events.clone(); // kept "for later" by some other component
    events.send("login".into()).await.expect("worker alive");
    drop(events); // we think this closes the queue; `audit_log` still holds it open
    // ANCHOR_END: stray
    let waited = tokio::time::timeout(Duration::from_secs(1), worker).await;
    println!(
        "with a stray sender alive, worker finished within 1 s: {}",
        waited.is_ok()
    );
    drop(audit_log);
}
