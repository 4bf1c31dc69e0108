//! Checks for M04: price feeds over in-memory connections on a paused clock, with a gauge of
//! live feeds and the exchange's count of billed quotes. Virtual time makes a minute of ticks
//! cost nothing, and "the feed was still running three ticks after the client left" a fact
//! rather than a race.

use std::pin::Pin;
use std::time::Duration;

use harness::duplex;
use harness::watchdog::check;
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use m04_sse_orphan::{Exchange, FEED_BUFFER, Market, TICK, price_feed, serve_connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HANG: &str =
    "the check never got past waiting on the feed; does the stream still send an event every tick?";

/// How long a feed may outlive its client: a few ticks, in virtual time.
const STOPS_WITHIN: Duration = Duration::from_secs(3 * TICK.as_secs());

const FEED_REQUEST: &[u8] = b"GET /prices?symbol=ACME HTTP/1.1\r\nhost: workshop.test\r\n\r\n";

/// The event a feed of ACME must send with id `id`.
fn expected_event(id: u64) -> String {
    let cents = Exchange::default().quote("ACME", id);
    format!(
        "id: {id}\nevent: price\ndata: ACME {}.{:02}",
        cents / 100,
        cents % 100
    )
}

/// Reads a feed's body event by event (an event ends with a blank line).
struct Events<B> {
    // Pinned in a box, so that any body type will do, whether or not it is `Unpin`.
    body: Pin<Box<B>>,
    pending: String,
}

impl<B: Body<Data = bytes::Bytes>> Events<B>
where
    B::Error: std::fmt::Debug,
{
    fn new(body: B) -> Self {
        Self {
            body: Box::pin(body),
            pending: String::new(),
        }
    }

    /// The next whole event, without its blank line; `None` if the body ended.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let event = self.pending[..end].to_owned();
                self.pending.drain(..end + 2);
                return Some(event);
            }
            let frame = self.body.frame().await?.expect("reading the feed's body");
            if let Ok(data) = frame.into_data() {
                self.pending
                    .push_str(std::str::from_utf8(&data).expect("UTF-8 events"));
            }
        }
    }
}

/// A client subscribes to ACME over a raw connection, reads three events, then closes its
/// socket (a closed dashboard tab). Returns the market, whose gauge counts live feeds.
async fn hang_up_after_three_events() -> Market {
    let market = Market::default();
    let for_server = market.clone();
    let (mut client, _server) = duplex::raw(move |io| serve_connection(io, for_server));
    client.write_all(FEED_REQUEST).await.unwrap();
    let mut seen = Vec::new();
    while String::from_utf8_lossy(&seen)
        .matches("event: price")
        .count()
        < 3
    {
        let mut chunk = [0; 1024];
        let n = client.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed the feed before its third event");
        seen.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(market.feeds.live(), 1, "one feed should be running");
    drop(client);
    market
}

/// A client reads three prices, then closes its connection.
#[test]
fn the_feed_stops_when_the_client_hangs_up() {
    check(HANG).paused(|| async {
        let market = hang_up_after_three_events().await;
        let billed = market.exchange.calls();
        assert!(
            market.feeds.settles_to(0, STOPS_WITHIN).await,
            "the client hung up, yet its feed was still running {} ticks later and had bought {} \
             more quotes: once the response body is gone every send fails at once, and a \
             producer that ignores the error loops forever",
            STOPS_WITHIN.as_secs() / TICK.as_secs(),
            market.exchange.calls() - billed,
        );
    });
}

/// The same hang-up, judged by the runtime instead of the gauge: once the client is gone, every
/// task the server started for it must end, wherever the gauge's guard is kept.
#[test]
fn no_task_outlives_the_client() {
    check(HANG).paused(|| async {
        // The paused runtime is this check's own and runs on this thread only, so its count of
        // alive tasks is exact: the connection's task, and whatever the server spawned.
        let runtime = tokio::runtime::Handle::current().metrics();
        let before = runtime.num_alive_tasks();
        hang_up_after_three_events().await;

        // No event announces that a task ended, so look again every virtual millisecond: on
        // the paused clock this costs no real time, and the verdict does not depend on speed.
        let settled = tokio::time::timeout(STOPS_WITHIN, async {
            while runtime.num_alive_tasks() > before {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .is_ok();
        assert!(
            settled,
            "the client hung up, yet {} task(s) the server started were still alive {} ticks \
             later: the producer runs on, whatever the gauge says",
            runtime.num_alive_tasks() - before,
            STOPS_WITHIN.as_secs() / TICK.as_secs(),
        );
    });
}

/// A client that stays connected gets every price, in order, with nothing missing.
#[test]
fn a_client_that_stays_gets_every_price_in_order() {
    check(HANG).paused(|| async {
        let market = Market::default();
        let for_server = market.clone();
        let (io, _server) = duplex::raw(move |io| serve_connection(io, for_server));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .expect("HTTP/1 client handshake");
        tokio::spawn(connection);
        let response = sender
            .send_request(harness::server::get("/prices?symbol=ACME"))
            .await
            .expect("the server closed the connection instead of answering");
        assert_eq!(response.status(), 200, "a feed starts with 200 OK");
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "a browser's EventSource accepts only text/event-stream"
        );
        let mut events = Events::new(response.into_body());
        for id in 1..=10 {
            let event = events.next().await;
            assert_eq!(
                event.as_deref(),
                Some(expected_event(id).as_str()),
                "a client that stays connected must get every price in order: the feed must stop \
                 only when the client is gone"
            );
        }
    });
}

/// A dashboard stops reading for a minute (a laptop lid closed, a stalled proxy) but keeps its
/// connection. The feed must wait for it: buy no more quotes than its buffer holds, and resume
/// with the next event when the reader does. The body is read directly, as hyper would, so
/// only the feed's own buffer sits between the producer and the reader.
#[test]
fn a_stalled_reader_holds_the_feed_back() {
    check(HANG).paused(|| async {
        let market = Market::default();
        let mut events = Events::new(price_feed("ACME".into(), market.clone()).into_body());
        for id in 1..=3 {
            assert_eq!(
                events.next().await.as_deref(),
                Some(expected_event(id).as_str())
            );
        }

        // Nobody reads for sixty ticks. On the paused clock time moves only while every task
        // is idle, so by the end of the minute the producer has had every chance to run ahead:
        // what it bought by then is all it will ever buy, on any machine.
        tokio::time::sleep(60 * TICK).await;
        let limit = 3 + FEED_BUFFER as u64 + 1;
        assert!(
            market.exchange.calls() <= limit,
            "while the reader stalled, the feed bought {} quotes for the 3 events read: it ran \
             ahead of its reader instead of waiting for room in a bounded buffer (at most {limit})",
            market.exchange.calls(),
        );

        for id in 4..=15 {
            assert_eq!(
                events.next().await.as_deref(),
                Some(expected_event(id).as_str()),
                "after a stall the reader must get the next price, not a gap: a feed may wait \
                 for a slow reader, but it must not drop events"
            );
        }
    });
}
