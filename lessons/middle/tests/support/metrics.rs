//! Waiting for a gauge that is a plain atomic, on tokio's clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Waits until `gauge` reads `want`, checking every millisecond of tokio time. Returns `false`
/// if that did not happen within `deadline` (virtual time on a paused runtime).
pub async fn settles(gauge: &Arc<AtomicUsize>, want: usize, deadline: Duration) -> bool {
    tokio::time::timeout(deadline, async {
        while gauge.load(Ordering::Relaxed) != want {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .is_ok()
}
