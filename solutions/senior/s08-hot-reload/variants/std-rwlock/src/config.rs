//! The mirror configuration, reloaded while the server runs.

use std::sync::{Arc, RwLock};

/// Where downloads are served from, and the key the mirror checks their links with.
///
/// The two go together: each mirror knows only its own key, so a link to one mirror signed
/// with another's key is refused there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// Base URL of the mirror, without a trailing slash.
    pub mirror: String,
    /// The secret shared with that mirror.
    pub signing_key: String,
}

/// The configuration in force. Every request reads it; the operator's reload replaces it.
///
/// A reload never edits the configuration a request may be reading: it puts a whole new one
/// in its place. A request takes one snapshot (an `Arc` clone, under the lock for an instant)
/// and reads every field from it, so all it uses comes from one version.
#[derive(Debug)]
pub struct LiveConfig {
    current: RwLock<Arc<MirrorConfig>>,
}

impl LiveConfig {
    pub fn new(config: MirrorConfig) -> Self {
        Self {
            current: RwLock::new(Arc::new(config)),
        }
    }

    /// Puts `config` in force for every request from now on.
    pub fn reload(&self, config: MirrorConfig) {
        let config = Arc::new(config);
        *self.current.write().unwrap() = config;
    }

    /// The configuration in force now, whole. Read every field a request needs from this one
    /// snapshot; a reload meanwhile does not change it.
    pub fn snapshot(&self) -> Arc<MirrorConfig> {
        Arc::clone(&self.current.read().unwrap())
    }

    /// The mirror downloads go to (also shown on the status page).
    pub fn mirror(&self) -> String {
        self.snapshot().mirror.clone()
    }

    /// The link that lets a client fetch `file` from the mirror.
    pub fn signed_link(&self, file: &str) -> String {
        let config = self.snapshot();
        let signature = sign(&config.signing_key, file);
        format!("{}/{file}?sig={signature}", config.mirror)
    }
}

/// The signature a mirror expects on a link to `file`, given its key. (A stand-in for an
/// HMAC: deterministic, and different for every key.)
pub fn sign(key: &str, file: &str) -> String {
    // FNV-1a over the key, a separator and the file name.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes().chain([0]).chain(file.bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
