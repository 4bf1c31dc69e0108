//! Page views per article: the one map every request handler shares.

use std::collections::HashMap;

use crate::sync::RwLock;

/// How many times each article was viewed since the server started.
#[derive(Debug)]
pub struct ViewCounter {
    views: RwLock<HashMap<String, u64>>,
}

impl ViewCounter {
    pub fn new() -> Self {
        Self {
            views: RwLock::new(HashMap::new()),
        }
    }

    /// Counts one view of `article`.
    pub fn record(&self, article: &str) {
        // One write lock for the whole read-modify-write: nobody can get in between.
        *self
            .views
            .write()
            .unwrap()
            .entry(article.to_owned())
            .or_default() += 1;
    }

    /// How many views `article` has had (0 for one never viewed).
    pub fn views(&self, article: &str) -> u64 {
        self.views
            .read()
            .unwrap()
            .get(article)
            .copied()
            .unwrap_or(0)
    }
}

impl Default for ViewCounter {
    fn default() -> Self {
        Self::new()
    }
}
