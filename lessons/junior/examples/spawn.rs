//! Spawning tasks from handlers: fan-out with `JoinSet`, fire-and-forget with `tokio::spawn`,
//! CPU work with `spawn_blocking`.
//!
//! Run it with `cargo run -p lessons-junior --example spawn`, then:
//!
//! ```console
//! curl http://127.0.0.1:3000/summary
//! curl --data-binary @Cargo.toml http://127.0.0.1:3000/checksum
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// A backend we ask for part of the summary. Simulated: it answers after `delay`.
#[derive(Clone, Debug)]
pub struct Backend {
    pub name: &'static str,
    pub delay: Duration,
    pub fails: bool,
}

impl Backend {
    async fn lookup(self) -> Result<String, String> {
        tokio::time::sleep(self.delay).await;
        if self.fails {
            Err(format!("{} is unavailable", self.name))
        } else {
            Ok(format!("{}: ok", self.name))
        }
    }
}

// ANCHOR: fan_out
/// Asks every backend at once. Returns every answer, or the first failure.
pub async fn fan_out(backends: Vec<Backend>) -> Result<Vec<String>, String> {
    let mut lookups = JoinSet::new();
    for backend in backends {
        // Each lookup is a task of its own: they run at the same time.
        lookups.spawn(backend.lookup());
    }

    let mut answers = Vec::new();
    // `join_next` yields results in the order the tasks finish.
    while let Some(joined) = lookups.join_next().await {
        match joined {
            Ok(Ok(answer)) => answers.push(answer),
            // Returning drops `lookups`, which aborts the lookups still running.
            Ok(Err(failure)) => return Err(failure),
            Err(join_error) => return Err(format!("a lookup failed: {join_error}")),
        }
    }
    answers.sort();
    Ok(answers)
}
// ANCHOR_END: fan_out

/// State shared by every handler.
#[derive(Clone, Debug)]
pub struct App {
    pub backends: Vec<Backend>,
    pub visits: Arc<AtomicU64>,
}

// ANCHOR: fire_and_forget
/// Records a visit in the background. The handler does not wait for it, and nothing
/// cancels it: it gets a time budget of its own instead.
fn record_visit(visits: Arc<AtomicU64>) {
    tokio::spawn(async move {
        let write = async {
            // Stands in for a call to a metrics service.
            tokio::time::sleep(Duration::from_millis(5)).await;
            visits.fetch_add(1, Ordering::Relaxed);
        };
        if tokio::time::timeout(Duration::from_secs(2), write)
            .await
            .is_err()
        {
            tracing::warn!("recording a visit took too long; gave up");
        }
    });
    // The `JoinHandle` returned by `spawn` is dropped here: that detaches the task,
    // it does not stop it.
}
// ANCHOR_END: fire_and_forget

// ANCHOR: blocking
/// CPU-bound work goes to the blocking pool, so that it does not hold up the other
/// tasks of this worker thread. Once it has started, it cannot be cancelled.
async fn checksum(data: Bytes) -> u64 {
    tokio::task::spawn_blocking(move || {
        // FNV-1a, standing in for any computation that takes a while.
        data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        })
    })
    .await
    .expect("the checksum computation panicked")
}
// ANCHOR_END: blocking

pub async fn handle(
    app: App,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, text) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/summary") => {
            record_visit(Arc::clone(&app.visits));
            match fan_out(app.backends.clone()).await {
                Ok(answers) => (StatusCode::OK, answers.join("\n") + "\n"),
                Err(failure) => (StatusCode::BAD_GATEWAY, failure + "\n"),
            }
        }
        (&Method::POST, "/checksum") => {
            match Limited::new(request.into_body(), 1024 * 1024)
                .collect()
                .await
            {
                Ok(body) => {
                    let sum = checksum(body.to_bytes()).await;
                    (StatusCode::OK, format!("{sum:016x}\n"))
                }
                Err(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too large\n".to_owned()),
            }
        }
        _ => (StatusCode::NOT_FOUND, "no such route\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    Ok(response)
}

pub async fn serve_connection<IO>(io: IO, app: App)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(app.clone(), request));
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// The backends of the demo: three healthy ones, the slowest taking 300 ms.
pub fn demo_backends() -> Vec<Backend> {
    [("users", 100), ("orders", 300), ("stock", 200)]
        .into_iter()
        .map(|(name, millis)| Backend {
            name,
            delay: Duration::from_millis(millis),
            fails: false,
        })
        .collect()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without a timestamp, so that they read like the book's transcripts.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    tracing::info!("try: curl http://127.0.0.1:3000/summary");
    let app = App {
        backends: demo_backends(),
        visits: Arc::new(AtomicU64::new(0)),
    };
    loop {
        // A demo: `first_server.rs` shows an accept loop that survives accept errors.
        let (stream, _peer) = listener.accept().await?;
        tokio::spawn(serve_connection(stream, app.clone()));
    }
}
