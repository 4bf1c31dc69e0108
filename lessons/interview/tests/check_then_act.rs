//! A read lock to check, a write lock to act: the gap between them loses updates.
//!
//! Backs R22 of the bank. Two threads count the first hit of the same key. A barrier holds
//! both between their check and their act, which is the interleaving a busy server eventually
//! produces on its own; here it is certain, so the verdict does not depend on luck.

use std::collections::HashMap;
use std::sync::{Arc, Barrier, RwLock};
use std::thread;

type Counts = RwLock<HashMap<String, u64>>;

/// Checks under the read lock, then inserts under the write lock: the state it checked may
/// have changed by the time it acts.
fn count_check_then_insert(counts: &Counts, key: &str, between: &Barrier) {
    let known = counts.read().unwrap().contains_key(key);
    between.wait();
    let mut map = counts.write().unwrap();
    if known {
        *map.get_mut(key).unwrap() += 1;
    } else {
        map.insert(key.to_owned(), 1);
    }
}

/// Decides and acts under one write lock: `entry` looks again, so no update is lost.
fn count_under_one_lock(counts: &Counts, key: &str, between: &Barrier) {
    between.wait();
    *counts.write().unwrap().entry(key.to_owned()).or_insert(0) += 1;
}

fn two_first_hits(count: fn(&Counts, &str, &Barrier)) -> u64 {
    let counts = Arc::new(Counts::default());
    let between = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (counts, between) = (counts.clone(), between.clone());
            thread::spawn(move || count(&counts, "/pricing", &between))
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let map = counts.read().unwrap();
    map["/pricing"]
}

#[test]
fn check_under_a_read_lock_then_insert_under_a_write_lock_loses_a_count() {
    assert_eq!(two_first_hits(count_check_then_insert), 1);
}

#[test]
fn deciding_and_acting_under_one_write_lock_keeps_both_counts() {
    assert_eq!(two_first_hits(count_under_one_lock), 2);
}
