//! Page views per article: the one map every request handler shares.

use std::collections::HashMap;

use crate::sync::RwLock;
use crate::sync::atomic::{AtomicU64, Ordering};

/// How many times each article was viewed since the server started.
///
/// Almost every view is of an article that was viewed before, so the common path takes only
/// the read lock and bumps that article's atomic; readers do not wait for each other.
#[derive(Debug)]
pub struct ViewCounter {
    views: RwLock<HashMap<String, AtomicU64>>,
}

impl ViewCounter {
    pub fn new() -> Self {
        Self {
            views: RwLock::new(HashMap::new()),
        }
    }

    /// Counts one view of `article`.
    pub fn record(&self, article: &str) {
        let views = self.views.read().unwrap();
        if let Some(count) = views.get(article) {
            count.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // The map cannot grow under a read lock: add the article under the write lock if it is
        // still missing, then count this view like any other, under the read lock.
        drop(views);
        self.views
            .write()
            .unwrap()
            .entry(article.to_owned())
            .or_insert_with(|| AtomicU64::new(0));
        let views = self.views.read().unwrap();
        let count = &views[article];
        count.store(count.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
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
