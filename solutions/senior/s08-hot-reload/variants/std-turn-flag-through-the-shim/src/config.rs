//! The mirror configuration, reloaded while the server runs.

use crate::sync::atomic::Ordering;
use crate::sync::{RwLock, TurnFlag, hint};

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
#[derive(Debug)]
pub struct LiveConfig {
    current: RwLock<MirrorConfig>,
    /// Raised while a request builds its link or a reload replaces the configuration, so that
    /// a reload never lands between a request's two reads.
    busy: TurnFlag,
}

impl LiveConfig {
    pub fn new(config: MirrorConfig) -> Self {
        Self {
            current: RwLock::new(config),
            busy: TurnFlag::new(false),
        }
    }

    /// Puts `config` in force for every request from now on.
    pub fn reload(&self, config: MirrorConfig) {
        self.wait_turn();
        *self.current.write().unwrap() = config;
        self.busy.store(false, Ordering::Release);
    }

    /// Waits until nobody is building a link or reloading, then raises the flag.
    fn wait_turn(&self) {
        while self.busy.load(Ordering::Acquire) {
            hint::spin_loop();
        }
        self.busy.store(true, Ordering::Release);
    }

    /// The mirror downloads go to (also shown on the status page).
    pub fn mirror(&self) -> String {
        self.current.read().unwrap().mirror.clone()
    }

    fn signing_key(&self) -> String {
        self.current.read().unwrap().signing_key.clone()
    }

    /// The link that lets a client fetch `file` from the mirror.
    pub fn signed_link(&self, file: &str) -> String {
        self.wait_turn();
        let mirror = self.mirror();
        let signature = sign(&self.signing_key(), file);
        self.busy.store(false, Ordering::Release);
        format!("{mirror}/{file}?sig={signature}")
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
