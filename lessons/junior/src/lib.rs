//! Lessons of the junior level: the programs the book shows live in `examples/`, and every
//! claim the book makes about tokio or hyper behaviour is demonstrated by a test in `tests/`.
//!
//! Run one: `cargo run -p lessons-junior --example <name>`.

// ANCHOR: shutdown_signal
/// Resolves when the process is asked to stop: Ctrl-C in a terminal (SIGINT), or SIGTERM, which
/// is what `kill`, systemd, Docker and Kubernetes send on a deploy. Waiting for Ctrl-C alone
/// would let a deploy's SIGTERM kill the server with the default action, without a drain.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};

    // Installing the handler can only fail if the process cannot register signal handlers at
    // all; a server that cannot be stopped gracefully should not start.
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.expect("installing a Ctrl-C handler"),
        _ = terminate.recv() => {}
    }
}
// ANCHOR_END: shutdown_signal
