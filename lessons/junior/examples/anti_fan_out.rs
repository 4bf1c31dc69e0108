//! Go's "fan out, return on the first error" in Rust. With plain `tokio::spawn` handles, the
//! early return drops the handles, which detaches the other lookups: they keep running. A
//! `JoinSet` aborts its tasks when it is dropped.
//!
//! Run it: `cargo run -p lessons-junior --example anti_fan_out`.

use std::future::Future;

use tokio::task::JoinSet;

// ANCHOR: detached
/// Wrong: on the first error we return, and the handles of the others are dropped:
/// their tasks go on running, for nobody.
pub async fn first_error_detached<F>(lookups: Vec<F>) -> Result<Vec<u32>, String>
where
    F: Future<Output = Result<u32, String>> + Send + 'static,
{
    let handles: Vec<_> = lookups.into_iter().map(tokio::spawn).collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.map_err(|e| e.to_string())??);
    }
    Ok(results)
}
// ANCHOR_END: detached

// ANCHOR: join_set
/// Right: the early return drops the JoinSet, which aborts the lookups still running.
pub async fn first_error<F>(lookups: Vec<F>) -> Result<Vec<u32>, String>
where
    F: Future<Output = Result<u32, String>> + Send + 'static,
{
    let mut set: JoinSet<_> = lookups.into_iter().collect();
    let mut results = Vec::new();
    while let Some(joined) = set.join_next().await {
        results.push(joined.map_err(|e| e.to_string())??);
    }
    Ok(results)
}
// ANCHOR_END: join_set

/// Stands for one upstream lookup.
async fn lookup(id: u32, fails: bool) -> Result<u32, String> {
    tokio::task::yield_now().await;
    if fails {
        Err(format!("lookup {id} failed"))
    } else {
        Ok(id)
    }
}

#[tokio::main]
async fn main() {
    let lookups = vec![lookup(1, false), lookup(2, true), lookup(3, false)];
    println!("JoinSet: {:?}", first_error(lookups).await);
    let lookups = vec![lookup(1, false), lookup(2, false), lookup(3, false)];
    println!(
        "detached handles: {:?}",
        first_error_detached(lookups).await
    );
}
