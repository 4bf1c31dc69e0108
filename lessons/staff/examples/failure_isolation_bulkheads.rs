//! The bulkheads of "Failure isolation": payments hangs and holds four calls; a request that
//! only needs the catalog arrives, with a 1 s deadline. Once with one pool shared by every
//! dependency, once with a pool per dependency. Paused clock: the times printed are exact.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

#[allow(dead_code)]
#[path = "../tests/support/failure_isolation.rs"]
mod isolation;

use isolation::Outbound;

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let dependencies = &["payments", "catalog"];
    let timeout = Duration::from_secs(2);
    let layouts = [
        ("shared", Outbound::shared(dependencies, 4, timeout)),
        (
            "per dependency",
            Outbound::per_dependency(dependencies, 4, timeout),
        ),
    ];
    for (layout, outbound) in layouts {
        let outbound = Arc::new(outbound);
        for _ in 0..4 {
            let outbound = Arc::clone(&outbound);
            // Payments is down: its calls never answer (until their own timeout).
            tokio::spawn(async move {
                let _ = outbound
                    .call("payments", std::future::pending::<()>())
                    .await;
            });
        }
        tokio::task::yield_now().await;
        let start = Instant::now();
        let catalog = outbound.call("catalog", tokio::time::sleep(Duration::from_millis(10)));
        match tokio::time::timeout(Duration::from_secs(1), catalog).await {
            Ok(_) => info!(layout, at = ?start.elapsed(), "GET /product served"),
            Err(_) => info!(layout, at = ?start.elapsed(), "GET /product: caller gave up"),
        }
        // Let the hung payments calls reach their timeout before the next layout.
        tokio::time::sleep(timeout).await;
    }
}
