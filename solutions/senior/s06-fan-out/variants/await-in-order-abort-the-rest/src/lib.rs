//! `catalog-search`: product search for the shop, over the catalogue's shards.
//!
//! The catalogue is split by product id into shards, each with a search service of its own.
//! `GET /search?q=WORDS` asks every shard at once, merges their hits and answers one product
//! per line, best match first. A search that cannot hear from every shard answers 502: a
//! partial answer would hide products, and the shop's front end retries a 502.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One shard of the catalogue, as the search service sees it.
pub trait Shard: Send + Sync + 'static {
    /// Searches this shard for `query` (in production, an HTTP call to the shard's service).
    fn search(&self, query: String) -> BoxFuture<'static, Result<Vec<Hit>, ShardError>>;
}

/// A product that matches a query, with how well it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The product's name, as the shop shows it.
    pub product: String,
    /// How well it matches: higher is better.
    pub score: u32,
}

/// Why a shard could not answer.
#[derive(Debug)]
pub struct ShardError(pub String);

impl fmt::Display for ShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every shard of the catalogue.
pub type Shards = Arc<[Arc<dyn Shard>]>;

/// Accepts connections and serves searches over `shards` until the task is dropped.
pub async fn serve(listener: TcpListener, shards: Shards) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shards = Arc::clone(&shards);
        tokio::spawn(async move {
            let service = service_fn(move |request| search(request, Arc::clone(&shards)));
            // A client that goes away mid-request is not the server's failure.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn search(
    request: Request<Incoming>,
    shards: Shards,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(query) = query_param(request.uri()) else {
        return Ok(text(StatusCode::BAD_REQUEST, "missing ?q=WORDS\n".into()));
    };
    Ok(match ask_every_shard(&shards, query).await {
        Ok(hits) => {
            let lines: String = hits
                .iter()
                .map(|hit| format!("{}\n", hit.product))
                .collect();
            text(StatusCode::OK, lines)
        }
        Err(error) => text(StatusCode::BAD_GATEWAY, format!("{error}\n")),
    })
}

/// Asks every shard at once and merges their hits, best first; the first failure fails all.
async fn ask_every_shard(shards: &Shards, query: String) -> Result<Vec<Hit>, String> {
    // One task per shard: the calls run in parallel, parsing a shard's page of hits can use
    // every worker thread, and a bug that panics in a shard's client fails that call's task
    // (a 502), not the handler and the client's connection with it.
    let mut calls: Vec<_> = shards
        .iter()
        .map(|shard| tokio::spawn(shard.search(query.clone())))
        .collect();
    let mut pages = Vec::new();
    for n in 0..calls.len() {
        let failure = match (&mut calls[n]).await {
            Ok(Ok(page)) => {
                pages.push(page);
                continue;
            }
            Ok(Err(error)) => format!("shard {n}: {error}"),
            Err(_) => format!("shard {n}: the call panicked"),
        };
        // The search has failed: stop the calls we have not waited for yet.
        for rest in &calls[n + 1..] {
            rest.abort();
        }
        return Err(failure);
    }
    let mut hits: Vec<Hit> = pages.into_iter().flatten().collect();
    hits.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| a.product.cmp(&b.product))
    });
    Ok(hits)
}

fn query_param(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("q="))
        .filter(|words| !words.is_empty())
        .map(str::to_owned)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
