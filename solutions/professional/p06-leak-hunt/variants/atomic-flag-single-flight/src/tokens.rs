//! The service token the billing API asks for, issued by the identity provider.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How long a token is valid once issued.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// How long before its expiry a token is replaced, so that no call carries one that expires
/// on the way.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// How long the identity provider takes to issue a token.
const ISSUE_TIME: Duration = Duration::from_millis(50);

/// A bearer token and the instant it stops being accepted.
#[derive(Debug, Clone)]
pub struct Token {
    /// What goes into the `authorization` header.
    pub value: String,
    /// From this instant the billing API answers 401.
    pub expires_at: Instant,
}

/// The current token, shared by every request.
#[derive(Debug, Clone)]
pub struct Tokens {
    current: Arc<Mutex<Token>>,
    // The identity provider rate-limits us: the on-call dashboard shows how many tokens we asked for.
    issued: Arc<AtomicU64>,
    // Set while one caller is asking the identity provider, so that the others do not.
    refreshing: Arc<AtomicBool>,
}

impl Tokens {
    /// Starts with a freshly issued token.
    pub fn new() -> Self {
        let issued = Arc::new(AtomicU64::new(0));
        let first = issue(&issued);
        Self {
            current: Arc::new(Mutex::new(first)),
            issued,
            refreshing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The token to put on a call now, replaced first if it is about to expire. The first
    /// caller to find it due raises the flag and asks; the others use the current token, still
    /// good for the refresh margin.
    pub async fn current(&self) -> Token {
        if Instant::now() >= self.refresh_due() && !self.refreshing.swap(true, Ordering::SeqCst) {
            self.refresh().await;
            self.refreshing.store(false, Ordering::SeqCst);
        }
        self.latest()
    }

    fn latest(&self) -> Token {
        self.current.lock().unwrap().clone()
    }

    /// When the current token should be replaced.
    pub fn refresh_due(&self) -> Instant {
        self.current.lock().unwrap().expires_at - REFRESH_MARGIN
    }

    /// Asks the identity provider for a new token and uses it from now on.
    pub async fn refresh(&self) {
        tokio::time::sleep(ISSUE_TIME).await;
        let token = issue(&self.issued);
        *self.current.lock().unwrap() = token;
    }

    /// How many tokens the identity provider has issued to us.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }
}

impl Default for Tokens {
    fn default() -> Self {
        Self::new()
    }
}

fn issue(issued: &AtomicU64) -> Token {
    let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
    Token {
        value: format!("svc-token-{n}"),
        expires_at: Instant::now() + TOKEN_LIFETIME,
    }
}
