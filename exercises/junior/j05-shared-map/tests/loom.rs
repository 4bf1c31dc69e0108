//! Loom models of the cache: two requests writing at the same moment, under every possible
//! interleaving of the two threads. A race that a real server shows once in a thousand runs
//! fails here every time.
//!
//! Run optimised (the workspace's `loom` profile), with the crate's `loom` feature, which
//! swaps `src/sync.rs` to loom's types:
//! `cargo test -p j05-shared-map --profile loom --features loom --test loom`.
//!
//! loom explores only the operations it can see: those on its own types. The last check makes
//! sure the cache is still built from them, or the models would pass whatever `put` does.

use std::path::Path;

use bytes::Bytes;
use harness::loom_shim::{Forbid, sync_outside_the_shim};
use harness::watchdog::check;
use j05_shared_map::cache::Cache;
use j05_shared_map::sync::Arc;

const HANG: &str = "the loom model did not finish: does a `Cache` method wait for a lock that \
                    is never released (a second lock of the same mutex, or two locks taken in \
                    opposite orders)?";

/// Stores `mine` on this thread while another thread stores `theirs`, and waits for both.
fn put_at_once(cache: &Arc<Cache>, mine: (&'static str, &'static str), theirs: (&str, &str)) {
    let (key, value) = (theirs.0.to_owned(), Bytes::from(theirs.1.to_owned()));
    let other = Arc::clone(cache);
    let writer = loom::thread::spawn(move || other.put(&key, value));
    cache.put(mine.0, Bytes::from_static(mine.1.as_bytes()));
    writer.join().unwrap();
}

/// The journal's lines, oldest first.
fn journal_lines(cache: &Cache) -> Vec<String> {
    cache.journal().lines().map(str::to_owned).collect()
}

/// Two requests store two different keys at the same moment: both values are kept, and the
/// journal holds one line for each.
#[test]
fn concurrent_puts_are_all_kept() {
    check(HANG).run(|| {
        // loom runs this closure once per possible interleaving of the two threads.
        loom::model(|| {
            let cache = Arc::new(Cache::default());
            put_at_once(&cache, ("colour", "blue"), ("size", "large"));

            let kept = (cache.get("colour"), cache.get("size"));
            assert_eq!(
                kept,
                (Some(Bytes::from("blue")), Some(Bytes::from("large"))),
                "two requests stored `colour` and `size` at the same moment, and afterwards \
                 the cache held {kept:?}: one write was lost. Did each request change its own \
                 copy of the map and put it back (the second copy back wins), or read and \
                 write the map under two separate lock sections?"
            );
            let mut lines = journal_lines(&cache);
            lines.sort_unstable();
            assert_eq!(
                lines,
                ["set colour blue", "set size large"],
                "two writes must leave exactly one whole journal line each"
            );
        });
    });
}

/// Two requests store the same key at the same moment. Whichever wins, the journal must say
/// the same: replaying it (the last line for a key wins) rebuilds what the cache holds.
#[test]
fn journal_replays_to_the_cache() {
    check(HANG).run(|| {
        loom::model(|| {
            let cache = Arc::new(Cache::default());
            put_at_once(&cache, ("colour", "green"), ("colour", "blue"));

            let held = cache.get("colour").expect("`colour` was stored twice");
            let held = String::from_utf8_lossy(&held).into_owned();
            let lines = journal_lines(&cache);
            assert_eq!(lines.len(), 2, "two writes, two journal lines: {lines:?}");
            let replayed = lines
                .last()
                .and_then(|line| line.strip_prefix("set colour "));
            assert_eq!(
                replayed,
                Some(held.as_str()),
                "two requests stored `colour` at the same moment. The cache holds {held:?}, \
                 but the journal {lines:?} replays to {replayed:?}: the two writes reached the \
                 map in one order and the journal in the other. A write and its journal line \
                 must happen under one lock, taken once"
            );
        });
    });
}

/// loom switches threads only at operations on its own types. A cache built from `std` types runs
/// unseen: every `put` runs start to finish without a switch inside it, and the models above pass
/// whatever it does. So no file of `src/` may name a `std` lock, atomic or spin hint (`src/sync.rs`
/// only in its items gated `#[cfg(not(feature = "loom"))]`, the normal build's side of the switch,
/// read whole statements at a time by `harness::loom_shim`); and since loom's types refuse to run
/// on a thread loom does not control (they panic there), every method of the cache, tried on a
/// plain thread, must fail.
#[test]
fn loom_can_see_the_cache() {
    let unseen = sync_outside_the_shim(Path::new(env!("CARGO_MANIFEST_DIR")), Forbid::STD);
    assert!(
        unseen.is_empty(),
        "the cache uses synchronisation that is not the shim's:\n  {}\nloom switches threads \
         only at operations on its own types, the ones `src/sync.rs` exports under the `loom` \
         feature. A `std` atomic, lock or spin hint is invisible to it: a check-then-set on a \
         `std` flag runs as one step in every interleaving loom tries, so the models pass a race \
         they never see. Import every lock, atomic and `hint` from `crate::sync` (add what you \
         need there, for both the `loom` and the normal build: in \
         `src/sync.rs` a `std` type belongs only in an item marked \
         `#[cfg(not(feature = \"loom\"))]`, the normal build's side).",
        unseen.join("\n  ")
    );
    check(HANG).run(|| {
        loom::model(|| {
            let cache = Cache::default();
            let unseen: Vec<&str> = [
                (
                    "put",
                    runs_unseen(|| cache.put("colour", Bytes::from("blue"))),
                ),
                ("get", runs_unseen(|| cache.get("colour"))),
                ("journal", runs_unseen(|| cache.journal())),
            ]
            .into_iter()
            .filter_map(|(method, unseen)| unseen.then_some(method))
            .collect();
            assert!(
                unseen.is_empty(),
                "{unseen:?} ran to the end on a thread loom does not control: the cache is \
                 built from types loom cannot see (`std::sync` ones instead of those in \
                 `crate::sync`, or `src/sync.rs` no longer switches to loom's). loom then never \
                 switches requests inside `put`, and the models prove nothing about it"
            );
        });
    });
}

/// Whether `step` runs to the end on a plain `std` thread, outside loom's control.
fn runs_unseen<T: Send>(step: impl FnOnce() -> T + Send) -> bool {
    std::thread::scope(|plain| plain.spawn(step).join().is_ok())
}
