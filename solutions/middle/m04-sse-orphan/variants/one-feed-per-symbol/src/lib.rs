//! `tickerd`: live prices for the trading dashboards, as server-sent events.
//!
//! `GET /prices?symbol=ACME` answers `text/event-stream`, then one event per tick:
//!
//! ```text
//! id: 1
//! event: price
//! data: ACME 100.37
//! ```
//!
//! Every event costs one call to the exchange's quote API, which bills per call, so the on-call
//! dashboard shows the quote bill and a gauge of live feeds: each feed's producer holds one
//! guard of `feeds` while it runs.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use harness::leak::{Gauge, Guard};
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// How often a feed sends a price.
pub const TICK: Duration = Duration::from_secs(1);

/// How many events a feed may hold ready for a client that is slow to read them.
pub const FEED_BUFFER: usize = 8;

/// What a feed needs: the exchange it buys quotes from, and the gauge of live feeds.
#[derive(Debug, Clone, Default)]
pub struct Market {
    /// Where quotes come from, and the bill for them.
    pub exchange: Exchange,
    /// One guard per running feed: what the on-call dashboard shows as live feeds.
    pub feeds: Gauge,
}

/// Serves one client connection until the client goes away.
pub async fn serve_connection<IO>(io: IO, market: Market) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(request, market.clone()));
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
}

type FeedOrError = Either<EventStream, Full<Bytes>>;

async fn handle(
    request: Request<Incoming>,
    market: Market,
) -> Result<Response<FeedOrError>, Infallible> {
    let Some(symbol) = symbol_param(request.uri()) else {
        let mut response = Response::new(Either::Right(Full::from("missing ?symbol=NAME\n")));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(response);
    };
    Ok(price_feed(symbol, market).map(Either::Left))
}

/// Starts a feed of `symbol`'s prices and returns the response that streams it.
pub fn price_feed(symbol: String, market: Market) -> Response<EventStream> {
    let (events, body) = mpsc::channel(FEED_BUFFER);
    // A reload opens a new feed for the same symbol: the old one is for a tab that is gone.
    static FEEDS: std::sync::Mutex<Vec<(String, tokio::task::AbortHandle)>> =
        std::sync::Mutex::new(Vec::new());
    let producer = tokio::spawn(produce(
        symbol.clone(),
        market.exchange,
        events,
        market.feeds.guard(),
    ));
    let mut feeds = FEEDS.lock().unwrap();
    feeds.retain(|(name, feed)| {
        if *name == symbol {
            feed.abort();
            false
        } else {
            !feed.is_finished()
        }
    });
    feeds.push((symbol, producer.abort_handle()));
    drop(feeds);
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(EventStream { events: body })
        .expect("a valid response head")
}

/// Buys one quote per tick and hands it to the client's stream.
async fn produce(symbol: String, exchange: Exchange, events: mpsc::Sender<Bytes>, _live: Guard) {
    let mut ticks = tokio::time::interval(TICK);
    for id in 1.. {
        ticks.tick().await;
        let cents = exchange.quote(&symbol, id);
        let event = format!(
            "id: {id}\nevent: price\ndata: {symbol} {}.{:02}\n\n",
            cents / 100,
            cents % 100
        );
        // A slow client makes this wait: the buffer holds at most FEED_BUFFER events.
        if events.send(Bytes::from(event)).await.is_err() {
            break;
        }
    }
}

/// The body of a feed's response: each event becomes one frame, which hyper writes and flushes
/// as soon as it has it. The body ends when the producer is gone.
pub struct EventStream {
    events: mpsc::Receiver<Bytes>,
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.events
            .poll_recv(cx)
            .map(|event| event.map(|event| Ok(Frame::data(event))))
    }
}

/// Stands in for the exchange's quote API: billed per call, with made-up prices that depend
/// only on the input.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    calls: Arc<AtomicU64>,
}

impl Exchange {
    /// The price of `symbol` at tick `id`, in cents. Each call is billed.
    pub fn quote(&self, symbol: &str, id: u64) -> u64 {
        self.calls.fetch_add(1, Ordering::SeqCst);
        10_000 + (id * 37 + symbol.len() as u64) % 500
    }

    /// Quotes billed so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

fn symbol_param(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("symbol="))
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}
