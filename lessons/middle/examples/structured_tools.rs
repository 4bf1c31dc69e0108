//! Structured concurrency: four ways to start work on another task, and what each one does
//! when its owner goes away.
//!
//! Run it with `cargo run -p lessons-middle --example structured_tools`.

use std::future::Future;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

// ANCHOR: together
/// Reads the upload and opens the session at the same time, inside the caller's own future.
/// `try_join!` returns at the first error and drops the other future there and then: a read
/// that fails because the client left cancels the session being opened.
pub async fn upload_with_session<B, S>(
    read_body: impl Future<Output = Result<B, &'static str>>,
    open_session: impl Future<Output = Result<S, &'static str>>,
) -> Result<(B, S), &'static str> {
    tokio::try_join!(read_body, open_session)
}
// ANCHOR_END: together

// ANCHOR: first_answer
/// Asks every replica at once and keeps the first answer. The replicas still working are
/// aborted when `asks` is dropped: on return, or when the caller itself is dropped.
pub async fn first_answer<F>(replicas: impl IntoIterator<Item = F>) -> Option<String>
where
    F: Future<Output = String> + Send + 'static,
{
    let mut asks = JoinSet::new();
    for replica in replicas {
        asks.spawn(replica);
    }
    // `join_next` yields in completion order, not in spawn order.
    while let Some(joined) = asks.join_next().await {
        match joined {
            Ok(answer) => return Some(answer),
            Err(error) => tracing::warn!(%error, "a replica task failed; waiting for the next"),
        }
    }
    None
}
// ANCHOR_END: first_answer

// ANCHOR: prefetch
/// Starts loading the cart while the session is checked. If the session is bad, the early
/// return drops `cart`, and with it the load: nobody will read that cart.
pub async fn checkout<S, C>(session_valid: S, load_cart: C) -> Result<String, &'static str>
where
    S: Future<Output = bool>,
    C: Future<Output = String> + Send + 'static,
{
    let cart = AbortOnDropHandle::new(tokio::spawn(load_cart));
    if !session_valid.await {
        return Err("session expired");
    }
    cart.await.map_err(|_| "the cart lookup failed")
}
// ANCHOR_END: prefetch

// ANCHOR: report
/// Renders a report on a task of its own and sends it back through `reply`. The sender's
/// `closed()` resolves once the receiver is dropped: the renderer stops there instead of
/// finishing pages nobody will read.
pub async fn render_report(pages: u32, mut reply: oneshot::Sender<String>) {
    let render = async {
        for _page in 0..pages {
            // Stands in for rendering one page.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        format!("report of {pages} pages")
    };
    tokio::select! {
        report = render => {
            // `send` never waits; a receiver that left gets nothing, and that is fine.
            let _ = reply.send(report);
        }
        () = reply.closed() => tracing::info!("the requester left; report abandoned"),
    }
}
// ANCHOR_END: report

// ANCHOR: tracker
/// Writes an audit line in the background. It must finish even if the request is gone, so it
/// is detached, but on a tracker: shutdown can wait for it.
pub fn audit(tracker: &TaskTracker, line: String) {
    tracker.spawn(async move {
        // Stands in for a write to an audit store.
        tokio::time::sleep(Duration::from_millis(50)).await;
        tracing::info!(%line, "audit line written");
    });
}

/// At shutdown: no new audit tasks, then wait for the ones running.
pub async fn drain_audits(tracker: &TaskTracker) {
    tracker.close();
    tracker.wait().await;
}
// ANCHOR_END: tracker

/// A replica that answers after `millis` milliseconds.
async fn replica(name: &'static str, millis: u64) -> String {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    format!("{name} answered after {millis} ms")
}

#[tokio::main]
async fn main() {
    // Log lines without a timestamp, so that they read like the book's transcripts.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();

    let read = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err::<String, _>("the client left mid-upload")
    };
    let open = async { Ok(replica("session", 3_600_000).await) };
    let upload = upload_with_session(read, open).await;
    tracing::info!(
        ?upload,
        "the read failed; the session being opened was dropped"
    );

    let answer = first_answer([replica("eu", 300), replica("us", 100), replica("ap", 200)]).await;
    tracing::info!(
        ?answer,
        "first answer; the two slower replicas were aborted"
    );

    let cart = checkout(async { false }, replica("cart", 100)).await;
    tracing::info!(
        ?cart,
        "checkout with a bad session; the cart load was aborted"
    );

    let (reply, report) = oneshot::channel();
    let renderer = tokio::spawn(render_report(50, reply));
    tokio::time::sleep(Duration::from_millis(250)).await;
    drop(report); // the requester gives up
    renderer.await.expect("the renderer panicked");

    let tracker = TaskTracker::new();
    audit(&tracker, "user 7 checked out".to_owned());
    tracing::info!(running = tracker.len(), "shutting down; waiting for audits");
    drain_audits(&tracker).await;
    tracing::info!(running = tracker.len(), "every audit line is written");
}
