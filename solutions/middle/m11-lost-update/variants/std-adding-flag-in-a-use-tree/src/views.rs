//! Page views per article: the one map every request handler shares.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
};

use crate::sync::RwLock;
use crate::sync::atomic::AtomicU64;

/// How many times each article was viewed since the server started.
///
/// Almost every view is of an article that was viewed before, so the common path takes only
/// the read lock and bumps that article's atomic; readers do not wait for each other.
#[derive(Debug)]
pub struct ViewCounter {
    views: RwLock<HashMap<String, AtomicU64>>,
    /// Raised while one reader adds a new article, so two first readers do not both add it.
    adding: AtomicBool,
}

impl ViewCounter {
    pub fn new() -> Self {
        Self {
            views: RwLock::new(HashMap::new()),
            adding: AtomicBool::new(false),
        }
    }

    /// Counts one view of `article`.
    pub fn record(&self, article: &str) {
        let views = self.views.read().unwrap();
        if let Some(count) = views.get(article) {
            count.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // The map cannot grow under a read lock: release it and take the write lock, one new
        // article at a time.
        drop(views);
        while self.adding.load(Ordering::Acquire) {
            crate::sync::hint::spin_loop();
        }
        self.adding.store(true, Ordering::Release);
        // Someone may have added it while we waited for our turn.
        if let Some(count) = self.views.read().unwrap().get(article) {
            count.fetch_add(1, Ordering::Relaxed);
        } else {
            self.views
                .write()
                .unwrap()
                .insert(article.to_owned(), AtomicU64::new(1));
        }
        self.adding.store(false, Ordering::Release);
    }

    /// How many views `article` has had (0 for one never viewed).
    pub fn views(&self, article: &str) -> u64 {
        let views = self.views.read().unwrap();
        views
            .get(article)
            .map_or(0, |count| count.load(Ordering::Relaxed))
    }
}

impl Default for ViewCounter {
    fn default() -> Self {
        Self::new()
    }
}
