//! Worked example 4: fan-out with a `JoinSet`.
//!
//! `GET /profile/{user}` asks three upstream services at once (account, orders,
//! recommendations) and combines their answers. The first failure answers 502 and cancels the
//! lookups still running; so does the client leaving. In a real service each lookup would be
//! an HTTP call through one shared `reqwest::Client`; here a simulated backend with a latency
//! per service keeps the example self-contained. Its orders service does not know `ghost`.
//!
//! Run it: `cargo run -p lessons-junior --example worked_fan_out`, then
//! `curl http://127.0.0.1:3000/profile/ada` (about 2 s) and
//! `curl http://127.0.0.1:3000/profile/ghost` (502 after 0.2 s: the slow lookup is cancelled).

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The three upstream services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Account,
    Orders,
    Recommendations,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Account, Source::Orders, Source::Recommendations];
}

/// A lookup that failed upstream.
#[derive(Debug)]
pub struct LookupError(pub Source);

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} lookup failed", self.0)
    }
}

/// The simulated upstreams: how long each takes, and how many calls are in flight right now.
#[derive(Debug, Default)]
pub struct Backend {
    /// Latency of account, orders and recommendations, in that order.
    pub latency: [Duration; 3],
    /// Calls in flight, readable by anyone who subscribes.
    pub in_flight: watch::Sender<usize>,
}

/// Counts one upstream call in flight until dropped (finished or aborted).
struct Call<'a>(&'a watch::Sender<usize>);

impl<'a> Call<'a> {
    fn start(in_flight: &'a watch::Sender<usize>) -> Self {
        in_flight.send_modify(|n| *n += 1);
        Call(in_flight)
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// One upstream lookup.
pub async fn lookup(
    backend: Arc<Backend>,
    source: Source,
    user: String,
) -> Result<(Source, String), LookupError> {
    let _call = Call::start(&backend.in_flight);
    tokio::time::sleep(backend.latency[source as usize]).await;
    if source == Source::Orders && user == "ghost" {
        return Err(LookupError(source));
    }
    Ok((source, format!("{source:?} of {user}")))
}

// ANCHOR: fan_out
/// Asks the three upstreams at once; the first failure wins.
pub async fn profile(user: String, backend: Arc<Backend>) -> Response<Full<Bytes>> {
    let mut lookups = JoinSet::new();
    for source in Source::ALL {
        lookups.spawn(lookup(Arc::clone(&backend), source, user.clone()));
    }
    let mut parts = Vec::new();
    while let Some(joined) = lookups.join_next().await {
        match joined {
            Ok(Ok(part)) => parts.push(part),
            // Returning drops `lookups`, and dropping a JoinSet aborts every task still in it.
            Ok(Err(failed)) => return text(StatusCode::BAD_GATEWAY, format!("{failed}\n")),
            Err(panicked) => {
                return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{panicked}\n"));
            }
        }
    }
    parts.sort();
    let lines: Vec<String> = parts.into_iter().map(|(_, line)| line).collect();
    text(StatusCode::OK, lines.join("\n") + "\n")
}
// ANCHOR_END: fan_out

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

async fn handle(
    request: Request<Incoming>,
    backend: Arc<Backend>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match request.uri().path().strip_prefix("/profile/") {
        Some(user) if !user.is_empty() => profile(user.to_owned(), backend).await,
        _ => text(StatusCode::NOT_FOUND, "try /profile/ada\n".to_owned()),
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let backend = Arc::new(Backend {
        latency: [
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_secs(2),
        ],
        in_flight: watch::Sender::new(0),
    });
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000");
    tracing::info!("try: curl http://127.0.0.1:3000/profile/ada and .../profile/ghost");
    loop {
        let (stream, _) = listener.accept().await?;
        let backend = Arc::clone(&backend);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&backend)));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
