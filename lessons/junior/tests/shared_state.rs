//! Claims of the shared-state chapter: one state for all connections, atomics and mutexes,
//! std vs tokio mutexes, poisoning, RwLock.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use harness::server::TestServer;
use harness::watchdog::check;
use tokio::net::TcpListener;

#[allow(dead_code)]
#[path = "../examples/shared_state.rs"]
mod example;

use example::AppState;

const HANG: &str = "a request never finished: is a lock held forever, or across an .await?";

#[test]
fn concurrent_clients_share_one_state() {
    check(HANG).real(|| async {
        let server = TestServer::start(|listener: TcpListener| async move {
            let _ = example::serve(listener, Arc::new(AppState::default())).await;
        })
        .await;
        // 40 requests at once, from 8 separate clients (so over several connections).
        let mut requests = tokio::task::JoinSet::new();
        for client in 0..8 {
            let client_http = reqwest::Client::new();
            let url = server.url("/docs");
            for _ in 0..5 {
                let (client_http, url) = (client_http.clone(), url.clone());
                requests.spawn(async move {
                    let text = client_http.get(url).send().await?.text().await?;
                    Ok::<_, reqwest::Error>((client, text))
                });
            }
        }
        let mut numbers = HashSet::new();
        let mut hit_counts = HashSet::new();
        while let Some(answer) = requests.join_next().await {
            let (_client, text) = answer.unwrap().unwrap();
            // "request #N; /docs seen M times"
            let number: u64 = text["request #".len()..text.find(';').unwrap()]
                .parse()
                .unwrap();
            let hits: u64 = text[text.find("seen ").unwrap() + 5..text.find(" times").unwrap()]
                .parse()
                .unwrap();
            numbers.insert(number);
            hit_counts.insert(hits);
        }
        // Every request got its own number and its own hit count: no update was lost,
        // no two requests saw the same value.
        assert_eq!(numbers, (1..=40).collect());
        assert_eq!(hit_counts, (1..=40).collect());
    });
}

#[test]
fn fetch_add_gives_every_caller_a_different_number() {
    check(HANG).run(|| {
        let state = Arc::new(AppState::default());
        let numbers: Vec<u64> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| (0..1000).map(|_| state.next_request()).collect::<Vec<_>>())
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let distinct: HashSet<u64> = numbers.iter().copied().collect();
        assert_eq!(distinct.len(), 8000);
        assert_eq!(distinct, (1..=8000).collect());
    });
}

#[test]
fn a_std_mutex_is_poisoned_when_its_holder_panics() {
    check(HANG).run(|| {
        let hits = Arc::new(Mutex::new(0u64));
        let holder = Arc::clone(&hits);
        let panicked = std::thread::spawn(move || {
            let mut count = holder.lock().unwrap();
            *count += 1;
            panic!("the handler panicked while holding the lock");
        })
        .join();
        assert!(panicked.is_err());
        // Every later `lock().unwrap()` would now panic too...
        let poisoned = hits.lock().unwrap_err();
        // ...unless the code decides the data is still fine and takes it anyway.
        assert_eq!(*poisoned.into_inner(), 1);
    });
}

#[test]
fn a_tokio_mutex_is_not_poisoned_by_a_panicking_task() {
    check(HANG).paused(|| async {
        let hits = Arc::new(tokio::sync::Mutex::new(0u64));
        let holder = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            let mut count = holder.lock().await;
            *count += 1;
            panic!("the handler panicked while holding the lock");
        });
        assert!(task.await.unwrap_err().is_panic());
        assert_eq!(
            *hits.lock().await,
            1,
            "the guard was released while unwinding"
        );
    });
}

// ANCHOR: tokio_mutex_across_await
#[test]
fn a_tokio_mutex_guard_may_be_held_across_an_await() {
    check(HANG).paused(|| async {
        let pending = Arc::new(tokio::sync::Mutex::new(vec!["line".to_owned()]));
        let flusher = Arc::clone(&pending);
        // The compile-fail listing's task, with tokio's mutex: it compiles, because
        // tokio's guard is Send, and while it waits it blocks no thread.
        let task = tokio::spawn(async move {
            let mut lines = flusher.lock().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            lines.clear();
        });
        task.await.unwrap();
        assert!(pending.lock().await.is_empty());
    });
}
// ANCHOR_END: tokio_mutex_across_await

#[test]
fn an_rwlock_lets_readers_share_and_makes_a_writer_wait() {
    check(HANG).run(|| {
        let config = RwLock::new("v1".to_owned());
        let reader_a = config.read().unwrap();
        let reader_b = config.try_read();
        assert!(reader_b.is_ok(), "two readers at once are fine");
        assert!(
            config.try_write().is_err(),
            "a writer must wait for every reader"
        );
        drop(reader_b);
        drop(reader_a);
        *config.try_write().expect("no reader left") = "v2".to_owned();
        assert_eq!(*config.read().unwrap(), "v2");
    });
}
