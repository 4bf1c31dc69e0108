//! Queue or shed under overload: the same arrivals, the same capacity, on tokio's paused
//! clock, so the latencies it prints are exact and the same on every machine.
//!
//! ```console
//! cargo run -p lessons-professional --example admission_queue_vs_shed
//! ```
use std::time::Duration;

use tower::limit::ConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};

// ANCHOR: setup
/// Two requests at a time, 100 ms each: a capacity of 20 requests a second.
pub const CAPACITY: usize = 2;
pub const WORK: Duration = Duration::from_millis(100);
/// One request every 30 ms: about 33 a second, two thirds more than the capacity.
pub const EVERY: Duration = Duration::from_millis(30);
pub const REQUESTS: usize = 40;

/// What one request experienced: its latency, or `None` if it was refused.
pub type Outcome = Option<Duration>;

async fn backend(_request: usize) -> Result<&'static str, BoxError> {
    tokio::time::sleep(WORK).await;
    Ok("ok")
}

/// Sends `REQUESTS` requests, one every `EVERY`, each on its own clone of `service` (as
/// hyper-util's adapter does), and returns each one's outcome.
pub async fn drive<S>(service: S) -> Vec<Outcome>
where
    S: Service<usize, Response = &'static str, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send,
{
    let mut requests = Vec::new();
    for i in 0..REQUESTS {
        let service = service.clone();
        requests.push(tokio::spawn(async move {
            let arrived = tokio::time::Instant::now();
            match service.oneshot(i).await {
                Ok(_) => Some(arrived.elapsed()),
                Err(_overloaded) => None,
            }
        }));
        tokio::time::sleep(EVERY).await;
    }
    let mut outcomes = Vec::new();
    for request in requests {
        outcomes.push(request.await.expect("a request task panicked"));
    }
    outcomes
}

pub async fn queueing() -> Vec<Outcome> {
    let service = ServiceBuilder::new()
        .layer(ConcurrencyLimitLayer::new(CAPACITY))
        .service(service_fn(backend));
    drive(service).await
}

pub async fn shedding() -> Vec<Outcome> {
    let service = ServiceBuilder::new()
        .layer(LoadShedLayer::new())
        .layer(ConcurrencyLimitLayer::new(CAPACITY))
        .service(service_fn(backend));
    drive(service).await
}
// ANCHOR_END: setup

/// Served count, refused count, median and worst latency of the served requests.
pub fn summary(outcomes: &[Outcome]) -> (usize, usize, Duration, Duration) {
    let mut served: Vec<Duration> = outcomes.iter().flatten().copied().collect();
    served.sort();
    let refused = outcomes.len() - served.len();
    (
        served.len(),
        refused,
        served[served.len() / 2],
        served[served.len() - 1],
    )
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    for (name, outcomes) in [("queue", queueing().await), ("shed", shedding().await)] {
        let (served, refused, median, worst) = summary(&outcomes);
        tracing::info!(
            "{name}: {served} served, {refused} refused; served in {} ms median, {} ms worst",
            median.as_millis(),
            worst.as_millis()
        );
    }
}
