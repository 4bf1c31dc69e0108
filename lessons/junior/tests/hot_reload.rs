//! Claims of the hot-reload section: one snapshot per request is consistent, two reads per
//! request can mix versions, old versions live exactly as long as their last reader.
//!
//! Everything runs on the paused clock: the handlers' 100 ms "upstream call" and the test's
//! 50 ms pause are virtual, so the reload always lands at the same point of the request.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use harness::watchdog::check;
use tokio::sync::watch;

#[allow(dead_code)]
#[path = "../examples/hot_reload.rs"]
mod example;

use example::{Config, ConfigStore};

const HANG: &str = "a request never finished: is a lock held across the upstream call?";

/// Halfway through the request's 100 ms upstream call.
const MID_REQUEST: Duration = Duration::from_millis(50);

#[test]
fn reading_twice_per_request_can_mix_versions() {
    check(HANG).paused(|| async {
        let store = Arc::new(ConfigStore::new(Config::version(1)));
        let request = tokio::spawn({
            let store = Arc::clone(&store);
            async move { example::greet_reading_twice(&store, "ada").await }
        });
        tokio::time::sleep(MID_REQUEST).await;
        store.replace(Config::version(2));

        let answer = request.await.unwrap();
        assert_eq!(
            answer, "Hello (v1), ADA! -- the v2 team",
            "half old, half new"
        );
    });
}

#[test]
fn one_snapshot_per_request_sees_one_version() {
    check(HANG).paused(|| async {
        let store = Arc::new(ConfigStore::new(Config::version(1)));
        let request = tokio::spawn({
            let store = Arc::clone(&store);
            async move { example::greet(&store, "ada").await }
        });
        tokio::time::sleep(MID_REQUEST).await;
        store.replace(Config::version(2));

        assert_eq!(request.await.unwrap(), "Hello (v1), ADA! -- the v1 team");
        // The next request starts after the reload and sees only the new version.
        assert_eq!(
            example::greet(&store, "ada").await,
            "Hello (v2), ADA! -- the v2 team"
        );
    });
}

#[test]
fn the_old_version_lives_until_its_last_request_ends() {
    check(HANG).paused(|| async {
        let store = Arc::new(ConfigStore::new(Config::version(1)));
        let old = Arc::downgrade(&store.current());
        let request = tokio::spawn({
            let store = Arc::clone(&store);
            async move { example::greet(&store, "ada").await }
        });
        tokio::time::sleep(MID_REQUEST).await;
        store.replace(Config::version(2));
        assert!(
            old.upgrade().is_some(),
            "the in-flight request still holds version 1"
        );

        request.await.unwrap();
        assert!(
            old.upgrade().is_none(),
            "version 1 was freed with its last reader"
        );
    });
}

#[test]
fn a_watch_channel_gives_the_same_one_snapshot_per_request() {
    check(HANG).paused(|| async {
        let (reloader, config) = watch::channel(Arc::new(Config::version(1)));
        let request = tokio::spawn({
            let config = config.clone();
            async move { example::greet_watched(&config, "ada").await }
        });
        tokio::time::sleep(MID_REQUEST).await;
        reloader.send_replace(Arc::new(Config::version(2)));

        assert_eq!(request.await.unwrap(), "Hello (v1), ADA! -- the v1 team");
        assert_eq!(
            example::greet_watched(&config, "ada").await,
            "Hello (v2), ADA! -- the v2 team"
        );
    });
}

#[test]
fn an_arc_swap_gives_the_same_one_snapshot_per_request() {
    check(HANG).paused(|| async {
        let config = Arc::new(ArcSwap::from_pointee(Config::version(1)));
        let request = tokio::spawn({
            let config = Arc::clone(&config);
            async move { example::greet_swapped(&config, "ada").await }
        });
        tokio::time::sleep(MID_REQUEST).await;
        config.store(Arc::new(Config::version(2)));

        assert_eq!(request.await.unwrap(), "Hello (v1), ADA! -- the v1 team");
        assert_eq!(
            example::greet_swapped(&config, "ada").await,
            "Hello (v2), ADA! -- the v2 team"
        );
    });
}

#[test]
fn loading_an_arc_swap_twice_per_request_can_mix_versions() {
    check(HANG).paused(|| async {
        let config = Arc::new(ArcSwap::from_pointee(Config::version(1)));
        let request = tokio::spawn({
            let config = Arc::clone(&config);
            async move {
                // Atomic swaps do not make two loads one snapshot.
                let greeting = config.load().greeting.clone();
                tokio::time::sleep(2 * MID_REQUEST).await;
                let signature = config.load().signature.clone();
                format!("{greeting} -- {signature}")
            }
        });
        tokio::time::sleep(MID_REQUEST).await;
        config.store(Arc::new(Config::version(2)));

        assert_eq!(request.await.unwrap(), "Hello (v1) -- the v2 team");
    });
}
