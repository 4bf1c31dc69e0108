//! A hop of a call chain: it reads the caller's remaining budget from a header, spends some of
//! it, and calls its upstream with what is left; retries stay inside that deadline, inside a
//! budget, and only for requests that may be repeated.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use hyper::header::HeaderMap;
use hyper::{Method, StatusCode};
use tokio::time::Instant;
use tower::retry::Policy;
use tower::retry::budget::{Budget, TpsBudget};

/// The header that carries the caller's remaining budget, in milliseconds.
pub const BUDGET: &str = "x-budget-ms";

/// An outbound call as the retry logic sees it: enough to decide whether it may be repeated.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    pub headers: HeaderMap,
}

/// An upstream: anything that answers a call with a status, after some time.
pub type Upstream = Arc<dyn Fn(Call) -> BoxFuture<'static, StatusCode> + Send + Sync>;

// ANCHOR: deadline
/// This hop's deadline: now plus the budget the caller sent, or `default` at the edge.
pub fn deadline_from(headers: &HeaderMap, default: Duration) -> Instant {
    let budget = headers
        .get(BUDGET)
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .map_or(default, Duration::from_millis);
    Instant::now() + budget
}

/// Below this, an attempt cannot do useful work: do not start it.
const MIN_ATTEMPT: Duration = Duration::from_millis(10);

/// Calls `upstream`, retrying 503s with back-off, never starting an attempt after `deadline`
/// and always telling the upstream how much of it is left.
pub async fn call_before(
    upstream: &Upstream,
    mut call: Call,
    deadline: Instant,
) -> Option<StatusCode> {
    for attempt in 0..MAX_ATTEMPTS {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < MIN_ATTEMPT {
            return None; // the caller has given up, or is about to: 504 from here
        }
        call.headers
            .insert(BUDGET, (left.as_millis() as u64).into());
        let status = tokio::time::timeout(left, upstream(call.clone()))
            .await
            .ok()?;
        if status != StatusCode::SERVICE_UNAVAILABLE || !may_retry(&call) {
            return Some(status);
        }
        tokio::time::sleep(backoff(attempt).min(left)).await;
    }
    None
}
// ANCHOR_END: deadline

const MAX_ATTEMPTS: u32 = 5;

/// Back-off without jitter, for the deadline check: 100 ms, 200 ms, 400 ms...
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100) * 2u32.pow(attempt)
}

// ANCHOR: may_retry
/// Only calls that may be repeated: an idempotent method, or a key the upstream dedupes on.
pub fn may_retry(call: &Call) -> bool {
    call.method.is_idempotent() || call.headers.contains_key("idempotency-key")
}
// ANCHOR_END: may_retry

// ANCHOR: jitter
/// "Full jitter": a delay drawn uniformly from zero to the exponential bound, so that clients
/// that failed together do not retry together.
pub fn full_jitter(attempt: u32, base: Duration, cap: Duration, random: &mut Random) -> Duration {
    let bound = (base * 2u32.saturating_pow(attempt)).min(cap);
    bound.mul_f64(random.unit())
}
// ANCHOR_END: jitter

/// A small seeded generator (xorshift64*): jitter needs spread, not cryptographic quality,
/// and a seed keeps the checks deterministic.
#[derive(Clone, Debug)]
pub struct Random(u64);

impl Random {
    pub fn seeded(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        bits as f64 / (1u64 << 53) as f64
    }
}

// ANCHOR: policy
/// tower's retry policy for outbound calls: at most `max_attempts`, only calls that may be
/// repeated, and only while the shared budget allows.
#[derive(Clone)]
pub struct Budgeted {
    pub budget: Arc<TpsBudget>,
    pub max_attempts: u32,
    /// Attempts made for this request: tower clones the policy per request.
    pub attempts: u32,
    pub random: Arc<Mutex<Random>>,
}

impl<E> Policy<Call, StatusCode, E> for Budgeted {
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _: &mut Call, result: &mut Result<StatusCode, E>) -> Option<Self::Future> {
        self.attempts += 1;
        if self.attempts == 1 {
            self.budget.deposit(); // every request earns a fraction of a retry
        }
        let failed = !matches!(result, Ok(status) if *status != StatusCode::SERVICE_UNAVAILABLE);
        if !failed || self.attempts >= self.max_attempts || !self.budget.withdraw() {
            return None;
        }
        let (base, cap) = (Duration::from_millis(1), Duration::from_millis(8));
        let delay = full_jitter(self.attempts, base, cap, &mut self.random.lock().unwrap());
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, call: &Call) -> Option<Call> {
        // `None` means "never retry this one": tower does not keep a copy to send again.
        may_retry(call).then(|| call.clone())
    }
}
// ANCHOR_END: policy

// ANCHOR: naive
/// A layer that retries every failure up to `tries` times, the way each team adds "just three
/// tries" to its own client.
pub fn with_tries(upstream: Upstream, tries: u32) -> Upstream {
    Arc::new(move |call: Call| {
        let upstream = upstream.clone();
        Box::pin(async move {
            let mut status = StatusCode::SERVICE_UNAVAILABLE;
            for _ in 0..tries {
                status = upstream(call.clone()).await;
                if status != StatusCode::SERVICE_UNAVAILABLE {
                    break;
                }
            }
            status
        })
    })
}
// ANCHOR_END: naive
