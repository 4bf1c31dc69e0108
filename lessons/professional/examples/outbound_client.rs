//! The outbound side of a service: one shared reqwest client with every timeout set, a pool that
//! lets idle connections go before the upstream does, retries only where they are safe, and a
//! fan-out to several upstreams with a concurrency bound and one deadline for the whole.
//!
//! Run it with `cargo run -p lessons-professional --example outbound_client`: it starts a small
//! price service on 127.0.0.1 and fans out to it, one of its prices stuck.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::time::Instant;

// ANCHOR: client
/// The upstream's idle keep-alive: hyper's server default (its header timer), 30 s.
pub const UPSTREAM_KEEP_ALIVE: Duration = Duration::from_secs(30);

/// Built once at start-up and cloned into every handler: clones share one pool.
pub fn upstream_client(retry_host: &'static str) -> reqwest::Client {
    reqwest::Client::builder()
        // reqwest sets none of these by default: a silent upstream holds a call forever.
        .connect_timeout(Duration::from_secs(1)) // TCP connect (and TLS, if any)
        .read_timeout(Duration::from_secs(2)) // each read; a trickle passes
        .timeout(Duration::from_secs(5)) // the whole call, body included
        // Let idle connections go well before the upstream closes them.
        .pool_idle_timeout(UPSTREAM_KEEP_ALIVE / 2)
        .pool_max_idle_per_host(32)
        .retry(idempotent_503s(retry_host))
        .build()
        .expect("a client with no TLS configuration to get wrong")
}
// ANCHOR_END: client

// ANCHOR: retry
/// Retry a 503 from this host, for methods that may be repeated, within reqwest's budget
/// (retries at most 20% on top of the calls, per 10 s window) and one retry per call.
pub fn idempotent_503s(host: &'static str) -> reqwest::retry::Builder {
    reqwest::retry::for_host(host)
        .max_retries_per_request(1)
        .classify_fn(|attempt| {
            let repeatable = matches!(
                *attempt.method(),
                Method::GET | Method::HEAD | Method::PUT | Method::DELETE
            );
            if repeatable && attempt.status() == Some(StatusCode::SERVICE_UNAVAILABLE) {
                attempt.retryable()
            } else {
                attempt.success()
            }
        })
}
// ANCHOR_END: retry

// ANCHOR: fan_out
/// Why one upstream's answer is missing from a fan-out.
#[derive(Debug)]
pub enum Missing {
    Failed(reqwest::Error),
    PastDeadline,
}

/// Fetches every URL, at most `limit` at a time, all within one `deadline`. Results come back
/// in the order of `urls`. A call still out at the deadline is dropped, which cancels it.
pub async fn fan_out(
    client: &reqwest::Client,
    urls: &[String],
    limit: usize,
    deadline: Duration,
) -> Vec<Result<String, Missing>> {
    let deadline = Instant::now() + deadline;
    let calls = urls.iter().enumerate().map(|(i, url)| async move {
        let call = async {
            client
                .get(url)
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        };
        let result = match tokio::time::timeout_at(deadline, call).await {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(error)) => Err(Missing::Failed(error)),
            Err(_) => Err(Missing::PastDeadline),
        };
        (i, result)
    });
    // `buffer_unordered` polls at most `limit` calls at once and starts the next as one ends.
    let mut done: Vec<_> = futures::stream::iter(calls)
        .buffer_unordered(limit)
        .collect()
        .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, result)| result).collect()
}
// ANCHOR_END: fan_out

/// A price service: `/price/N` answers after N × 10 ms, `/price/stuck` never.
async fn price(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let item = request
        .uri()
        .path()
        .trim_start_matches("/price/")
        .to_owned();
    let Ok(n) = item.parse::<u64>() else {
        std::future::pending::<()>().await;
        unreachable!("a stuck upstream never answers");
    };
    tokio::time::sleep(Duration::from_millis(10 * n)).await;
    Ok(Response::new(Full::new(Bytes::from(format!(
        "{}",
        100 + n
    )))))
}

async fn serve_prices(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(price);
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let base = format!("http://{}", listener.local_addr().expect("bound address"));
    tokio::spawn(serve_prices(listener));

    let client = upstream_client("127.0.0.1");
    let items = ["3", "stuck", "1", "5", "2"];
    let urls: Vec<String> = items.iter().map(|i| format!("{base}/price/{i}")).collect();
    let started = Instant::now();
    let results = fan_out(&client, &urls, 2, Duration::from_millis(300)).await;
    for (item, result) in items.iter().zip(results) {
        match result {
            Ok(price) => tracing::info!(item, price, "priced"),
            Err(missing) => tracing::warn!(item, ?missing, "no price"),
        }
    }
    let within = started.elapsed() < Duration::from_millis(400);
    tracing::info!(within, "fan-out returned by its deadline");
}
