//! `let _ = make_value()` drops the new value at the end of that statement (a `_` pattern binds
//! nothing, and an existing binding is not moved by it); `let _name = make_value()` keeps it to
//! the end of the scope.
//! With a permit, a lock guard or any RAII guard, the difference is the whole point.
//!
//! Run it: `cargo run -p lessons-junior --example pitfall_let_underscore`.

use std::sync::Arc;

use tokio::sync::Semaphore;

// ANCHOR: let_underscore
/// Meant to hold one of the `limit` permits while the work runs. It does not: `let _ = ..`
/// drops the permit on the spot, and the limit limits nothing.
pub async fn limited_work_wrong(limit: Arc<Semaphore>) -> usize {
    let _ = limit.try_acquire().expect("a permit");
    limit.available_permits() // what other requests see while we "work"
}

/// Right: a named binding (`_permit`) keeps the permit until the end of the function.
pub async fn limited_work(limit: Arc<Semaphore>) -> usize {
    let _permit = limit.try_acquire().expect("a permit");
    limit.available_permits()
}
// ANCHOR_END: let_underscore

#[tokio::main]
async fn main() {
    let limit = Arc::new(Semaphore::new(1));
    println!(
        "wrong: {} permits left while working",
        limited_work_wrong(limit.clone()).await
    );
    println!(
        "right: {} permits left while working",
        limited_work(limit).await
    );
}
