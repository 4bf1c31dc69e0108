//! Stands in for the billing API: it serves one invoice page a second per client and refuses
//! expired tokens.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::Token;

/// How long the billing API takes to serve one page.
pub const PAGE_TIME: Duration = Duration::from_secs(1);

/// The billing API's 401: the token had expired when the call arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

/// The billing API's client.
#[derive(Debug, Clone, Default)]
pub struct Billing {
    served: Arc<AtomicU64>,
}

impl Billing {
    /// Invoice `page` as one CSV line.
    pub async fn invoice(&self, token: &Token, page: u64) -> Result<String, Unauthorized> {
        tokio::time::sleep(PAGE_TIME).await;
        if Instant::now() >= token.expires_at {
            return Err(Unauthorized);
        }
        self.served.fetch_add(1, Ordering::SeqCst);
        Ok(format!(
            "INV-{page:05},{}.{:02}\n",
            100 + page % 900,
            page % 100
        ))
    }

    /// Pages served so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }
}
