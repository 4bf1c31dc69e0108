//! Where a server says no: a connection limit before accept, a per-client rate limit (429),
//! and a concurrency limit that sheds (503), each answer carrying `Retry-After`.
//!
//! ```console
//! cargo run -p lessons-professional --example admission_server
//! for i in $(seq 8); do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:3000/; done
//! ```
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

// ANCHOR: bucket
/// A token bucket: holds up to `burst` tokens and gains `per_second` of them every second.
/// Each admitted request takes one. Time comes from `tokio::time::Instant`, which the paused
/// clock of a test controls; `std::time::Instant` would make the refill untestable.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub fn full(burst: u32, per_second: u32) -> Self {
        Self {
            burst: f64::from(burst),
            per_second: f64::from(per_second),
            tokens: f64::from(burst),
            updated: Instant::now(),
        }
    }

    /// Takes a token, or says how long until the next one.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }

    /// A full bucket says nothing a fresh one would not: it can be forgotten.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.updated = now;
    }
}

/// One bucket for the whole server. Cloning shares it: the state is behind the `Arc`, not in
/// the clone, which is what tower's own `RateLimit` gets wrong for a per-request clone.
#[derive(Clone)]
pub struct RateLimiter(Arc<Mutex<TokenBucket>>);

impl RateLimiter {
    pub fn new(burst: u32, per_second: u32) -> Self {
        Self(Arc::new(Mutex::new(TokenBucket::full(burst, per_second))))
    }

    pub fn check(&self) -> Result<(), Duration> {
        self.0.lock().unwrap().try_take(Instant::now())
    }
}
// ANCHOR_END: bucket

// ANCHOR: per_ip
/// One bucket per client address, with a bound on how many addresses it remembers.
#[derive(Clone)]
pub struct PerIpLimiter {
    buckets: Arc<Mutex<HashMap<IpAddr, TokenBucket>>>,
    burst: u32,
    per_second: u32,
    max_clients: usize,
}

impl PerIpLimiter {
    pub fn new(burst: u32, per_second: u32, max_clients: usize) -> Self {
        Self {
            buckets: Arc::default(),
            burst,
            per_second,
            max_clients,
        }
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let key = client_key(ip);
        let mut buckets = self.buckets.lock().unwrap();
        if !buckets.contains_key(&key) && buckets.len() >= self.max_clients {
            // Full: forget clients whose bucket has refilled. If none has, refuse the newcomer
            // rather than grow: the map is the memory an attacker gets to choose.
            buckets.retain(|_, bucket| !bucket.is_full(now));
            if buckets.len() >= self.max_clients {
                return Err(Duration::from_secs(1));
            }
        }
        let (burst, per_second) = (self.burst, self.per_second);
        buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::full(burst, per_second))
            .try_take(now)
    }

    pub fn clients(&self) -> usize {
        self.buckets.lock().unwrap().len()
    }
}

/// IPv4: the address. IPv6: its /64 prefix, since one client usually owns a whole /64 and
/// could otherwise rotate through 2^64 addresses, each with a fresh bucket.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::from(u64::MAX));
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}
// ANCHOR_END: per_ip

/// What every connection shares: the limits, and the backend the handler calls.
#[derive(Clone)]
pub struct Admission<W> {
    pub per_ip: PerIpLimiter,
    /// Requests allowed in the handler at once; the next one is shed, not queued.
    pub in_flight: Arc<Semaphore>,
    pub backend: W,
}

// ANCHOR: admit
async fn admit<W, F>(
    request: Request<Incoming>,
    peer: IpAddr,
    admission: Admission<W>,
) -> Response<Full<Bytes>>
where
    W: Fn() -> F,
    F: Future<Output = ()>,
{
    // Cheapest refusal first: a map lookup, no permit held.
    if let Err(wait) = admission.per_ip.check(peer) {
        tracing::info!("429 for {peer}: next token in {wait:?}");
        return refuse(StatusCode::TOO_MANY_REQUESTS, wait);
    }
    // `try_acquire_owned` never waits: a full server answers now instead of queueing.
    let Ok(_permit) = admission.in_flight.clone().try_acquire_owned() else {
        tracing::info!("503 for {peer}: every slot is busy");
        return refuse(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(1));
    };
    (admission.backend)().await;
    Response::new(Full::new(Bytes::from(format!(
        "ok {}\n",
        request.uri().path()
    ))))
}

/// A refusal the client can act on: when to come back, in whole seconds, rounded up.
fn refuse(status: StatusCode, wait: Duration) -> Response<Full<Bytes>> {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = Response::new(Full::new(Bytes::from(format!("{status}\n"))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}
// ANCHOR_END: admit

/// Serves one connection from `peer` through the admission checks.
pub async fn serve_one<IO, W, F>(io: IO, peer: IpAddr, admission: Admission<W>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    W: Fn() -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let service = service_fn(move |request| {
        let admission = admission.clone();
        async move { Ok::<_, Infallible>(admit(request, peer, admission).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    if let Err(error) = builder.serve_connection(TokioIo::new(io), service).await {
        tracing::debug!("connection from {peer}: {error}");
    }
}

// ANCHOR: accept
/// Accepts at most `max_connections` connections at a time.
pub async fn accept_loop<W, F>(
    listener: TcpListener,
    max_connections: usize,
    admission: Admission<W>,
    accepted: Arc<AtomicUsize>,
) where
    W: Fn() -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        // Take a slot *before* accepting. While none is free, this loop does not call
        // accept: new connections wait in the kernel's backlog, costing us no task, no buffer.
        let permit = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (stream, peer): (_, SocketAddr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors (EMFILE), say. The permit goes back at `continue`;
                // a pause keeps the loop from spinning until a descriptor frees.
                tracing::warn!("accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        let admission = admission.clone();
        tokio::spawn(async move {
            // Moved into the task, so the slot is held exactly as long as the connection.
            let _permit = permit;
            serve_one(stream, peer.ip(), admission).await;
        });
    }
}
// ANCHOR_END: accept

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000: 5 requests a second per client, burst 5");
    let admission = Admission {
        per_ip: PerIpLimiter::new(5, 5, 100_000),
        in_flight: Arc::new(Semaphore::new(64)),
        backend: || tokio::time::sleep(Duration::from_millis(20)),
    };
    accept_loop(listener, 1_000, admission, Arc::default()).await;
    Ok(())
}
