//! The fleet timeline of "Shutdown as system design", on a real port: on SIGTERM (or Ctrl-C)
//! readiness fails at once, the listener keeps accepting for a 5 s linger, then the HTTP
//! drain, the sessions and the workers each get their own deadline.
//!
//! ```console
//! cargo run -p lessons-staff --example shutdown_design_fleet
//! kill -TERM $(pgrep -x shutdown_design_fleet)
//! curl -i http://127.0.0.1:3000/ready     # within 5 s: 503 draining
//! curl -i http://127.0.0.1:3000/orders    # within 5 s: 200, still served
//! ```

use std::time::Duration;

use tokio::net::TcpListener;
use tracing::info;

// The same server the checks run, so that what this prints is what they prove.
#[allow(dead_code)]
#[path = "../tests/support/shutdown_design.rs"]
mod design;

use design::{App, Deadlines, Events, serve, tcp};

// ANCHOR: numbers
/// Chosen from the platform's numbers: the balancer checks readiness every 2 s and needs two
/// failures (4 s), the grace period is 30 s.
const LINGER: Duration = Duration::from_secs(5);
const DEADLINES: Deadlines = Deadlines {
    drain: Duration::from_secs(10),
    sessions: Duration::from_secs(5),
    workers: Duration::from_secs(5),
};
const GRACE: Duration = Duration::from_secs(30);
// ANCHOR_END: numbers

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let budget = LINGER + DEADLINES.total();
    assert!(budget < GRACE, "the phases do not fit in the grace period");
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    info!("listening on http://127.0.0.1:3000; try: curl -i http://127.0.0.1:3000/ready");
    info!("shutdown budget {budget:?} of a {GRACE:?} grace period");
    let app = App::new(Duration::from_secs(5));
    let linger = || tokio::time::sleep(LINGER);
    serve(
        tcp(listener),
        app,
        sigterm(),
        linger,
        DEADLINES,
        Events::new(),
    )
    .await;
    Ok(())
}

/// SIGTERM is what an orchestrator sends; Ctrl-C is for a terminal.
async fn sigterm() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        result = tokio::signal::ctrl_c() => result.expect("installing a Ctrl-C handler"),
    }
}
