//! A configuration reloaded while a request is using it.
//!
//! Backs R28 of the bank: a handler that reads the shared configuration twice, with an
//! `.await` between the reads, can combine two versions when a reload lands in between; a
//! handler that clones the `Arc<Config>` once sees one version from start to end, and that
//! old version stays alive for it after the reload.

use std::sync::{Arc, RwLock};

use tokio::sync::oneshot;

#[derive(Debug)]
struct Config {
    upstream: &'static str,
    api_key: &'static str,
}

type Shared = Arc<RwLock<Arc<Config>>>;

fn version(n: u8) -> Arc<Config> {
    match n {
        1 => Arc::new(Config {
            upstream: "billing-v1",
            api_key: "key-v1",
        }),
        _ => Arc::new(Config {
            upstream: "billing-v2",
            api_key: "key-v2",
        }),
    }
}

/// Picks the upstream, awaits something (an auth lookup), then reads the key: two reads.
async fn route_reading_twice(config: &Shared, lookup: oneshot::Receiver<()>) -> (String, String) {
    let upstream = config.read().unwrap().upstream.to_owned();
    lookup.await.unwrap();
    let api_key = config.read().unwrap().api_key.to_owned();
    (upstream, api_key)
}

/// The same, from one snapshot taken at the start of the request.
async fn route_from_a_snapshot(config: &Shared, lookup: oneshot::Receiver<()>) -> (String, String) {
    let snapshot = Arc::clone(&config.read().unwrap());
    lookup.await.unwrap();
    (snapshot.upstream.to_owned(), snapshot.api_key.to_owned())
}

/// Starts a request, reloads the configuration while it waits on its lookup, then lets it
/// finish: the reload is certain to land between the two reads.
async fn reload_during<F, Fut>(route: F) -> (String, String)
where
    F: FnOnce(Shared, oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = (String, String)> + Send + 'static,
{
    let config: Shared = Arc::new(RwLock::new(version(1)));
    let (lookup_done, lookup) = oneshot::channel();
    let mut request = tokio::spawn(route(config.clone(), lookup));
    // Let the request reach its lookup; on this current-thread runtime a yield is enough, and
    // the assertion below proves it (the request has not finished).
    tokio::task::yield_now().await;
    assert!(futures::poll!(&mut request).is_pending());
    *config.write().unwrap() = version(2);
    lookup_done.send(()).unwrap();
    request.await.unwrap()
}

#[tokio::test]
async fn reading_twice_across_an_await_can_mix_two_versions() {
    let seen = reload_during(|c, l| async move { route_reading_twice(&c, l).await }).await;
    assert_eq!(seen, ("billing-v1".to_owned(), "key-v2".to_owned()));
}

#[tokio::test]
async fn one_snapshot_per_request_sees_one_version() {
    let seen = reload_during(|c, l| async move { route_from_a_snapshot(&c, l).await }).await;
    assert_eq!(seen, ("billing-v1".to_owned(), "key-v1".to_owned()));
}
