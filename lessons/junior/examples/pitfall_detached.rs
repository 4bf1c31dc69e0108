//! Dropping a `JoinHandle` does not cancel its task: it detaches it. The task runs to the end
//! (or until the runtime shuts down) whether anyone still wants its result or not.
//!
//! Run it: `cargo run -p lessons-junior --example pitfall_detached`.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

// ANCHOR: detached
/// Sends a receipt in the background. The caller drops the handle at once.
pub fn send_receipt_detached(sent: oneshot::Sender<&'static str>) {
    let handle = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await; // the mail server is slow
        let _ = sent.send("receipt sent");
    });
    drop(handle); // detaches: the task keeps running
}
// ANCHOR_END: detached

// ANCHOR: owned
/// The same work, owned: dropping the returned handle aborts the task.
pub fn send_receipt_owned(sent: oneshot::Sender<&'static str>) -> AbortOnDropHandle<()> {
    AbortOnDropHandle::new(tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = sent.send("receipt sent");
    }))
}
// ANCHOR_END: owned

#[tokio::main]
async fn main() {
    let (tx, rx) = oneshot::channel();
    send_receipt_detached(tx);
    println!("detached: {:?}", rx.await);

    let (tx, rx) = oneshot::channel();
    drop(send_receipt_owned(tx));
    // The aborted task dropped its sender without sending.
    println!("owned, then dropped: {:?}", rx.await);
}
