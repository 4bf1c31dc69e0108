//! Checks for M04: price feeds over in-memory connections on a paused clock, with a gauge of
//! live feeds and the exchange's count of billed quotes. Virtual time makes a minute of ticks
//! cost nothing, and "the feed was still running a tick and a half after the client left" a
//! fact rather than a race.

use std::pin::Pin;
use std::time::Duration;

use harness::duplex;
use harness::watchdog::check;
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use m04_sse_orphan::{Exchange, FEED_BUFFER, Market, TICK, price_feed, serve_connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const HANG: &str =
    "the check never got past waiting on the feed; does the stream still send an event every tick?";

/// How long a feed may outlive its client. A feed that stops at its first failed send stops
/// one tick after the hang-up (the next send is the first to fail); one that waits on the
/// channel's closing stops at once. The extra half tick keeps the verdict clear of the very
/// instant the next tick fires.
const STOPS_WITHIN: Duration = Duration::from_millis(TICK.as_millis() as u64 * 3 / 2);

/// How long a client waits for the next event before it calls the feed silent: a feed that
/// runs sends one every tick.
const SILENT_AFTER: Duration = Duration::from_secs(5 * TICK.as_secs());

/// How many clients each hang-up check sends away, one after another. Client `n` hangs up
/// after `events_before_hang_up(n)` events, every count from 3 to 7 in turn: a feed that looks
/// for its client only every few ticks stops in time only when the hang-up happens to fall
/// just before one of its looks, and some count here always misses it.
///
/// Thirty, not five, because of a fix whose timing is chance: a `select!` between the send and
/// `Sender::closed()` finds both ready once the client is gone, and tokio polls a `select!`'s
/// branches in a random order, so such a feed stops in time with probability 1/2 per hang-up.
/// No check can make that pick certain (the runtime's random generator can be seeded only in
/// tokio's unstable builds), but thirty hang-ups on the paused clock cost milliseconds and
/// leave it a chance of 2^-30, below one in a billion, of passing.
const HANG_UPS: usize = 30;

/// How long the stalled reader stops reading: three hours, far past any send timeout, because
/// a dashboard behind a laptop lid closed for a long meeting is still a dashboard: the README
/// promises a slow reader no deadline. A feed that waits for room costs nothing meanwhile (the
/// paused clock jumps); only a feed that keeps ticking pays for the hours, a few thousand
/// turns of its loop.
const STALL: Duration = Duration::from_secs(3 * 60 * 60 * TICK.as_secs());

fn events_before_hang_up(client: usize) -> usize {
    3 + client % 5
}

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

    /// The next whole event, without its blank line; `None` if the body ended. A feed that
    /// sends nothing for a while fails the check here, on the virtual clock, rather than
    /// leaving it to the real-time watchdog.
    async fn next(&mut self) -> Option<String> {
        tokio::time::timeout(SILENT_AFTER, self.next_event())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the feed sent nothing for {} ticks while its reader waited, and did not end \
                     either: is the producer still running?",
                    SILENT_AFTER.as_secs() / TICK.as_secs()
                )
            })
    }

    async fn next_event(&mut self) -> Option<String> {
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

/// How client `n` of a hang-up check goes away: even clients close their socket (a closed
/// dashboard tab); odd ones see the server drop their connection's task (a shutdown, a
/// connection limit aborting it), which no `serve_connection(..).await` ever returns from.
fn server_drops_the_connection(client: usize) -> bool {
    client % 2 == 1
}

fn how_it_left(server_dropped_it: bool) -> &'static str {
    if server_dropped_it {
        "lost its connection (the server aborted the task serving it)"
    } else {
        "hung up"
    }
}

/// A client subscribes to ACME over a raw connection, reads `events` events, then goes away:
/// it closes its socket, or the server aborts the task serving it. Returns the market, whose
/// gauge counts live feeds, and the client's end if it is still open (keep it so until the
/// verdict: the feed must stop because its connection is gone, not because the client left).
async fn hang_up_after(events: usize, drop_connection: bool) -> (Market, Option<DuplexStream>) {
    let market = Market::default();
    let for_server = market.clone();
    let (mut client, server) = duplex::raw(move |io| serve_connection(io, for_server));
    client.write_all(FEED_REQUEST).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let got = String::from_utf8_lossy(&seen)
            .matches("event: price")
            .count();
        if got >= events {
            break;
        }
        let mut chunk = [0; 1024];
        let Ok(read) = tokio::time::timeout(SILENT_AFTER, client.read(&mut chunk)).await else {
            panic!(
                "a client still connected got {got} event(s), then nothing for {} ticks: the feed \
                 ended or stalled before its client left (is the producer stopped, or aborted, \
                 as soon as the response is returned?)",
                SILENT_AFTER.as_secs() / TICK.as_secs()
            );
        };
        let n = read.unwrap();
        assert!(
            n > 0,
            "the server closed the connection after {got} event(s), while its client was reading"
        );
        seen.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(
        market.feeds.live(),
        1,
        "a client is reading its feed, so the gauge should count one live feed"
    );
    if drop_connection {
        server.task.abort();
        (market, Some(client))
    } else {
        drop(client);
        (market, None)
    }
}

/// Clients read a few prices, then go away (they close their socket, or the server drops their
/// connection): every feed must stop within a tick.
#[test]
fn the_feed_stops_when_the_client_hangs_up() {
    check(HANG).paused(|| async {
        for client in 0..HANG_UPS {
            let events = events_before_hang_up(client);
            let gone = server_drops_the_connection(client);
            let (market, _client) = hang_up_after(events, gone).await;
            let billed = market.exchange.calls();
            let stopped = market.feeds.settles_to(0, STOPS_WITHIN).await;
            assert!(
                stopped,
                "client {} of {HANG_UPS} {} after {events} events, yet its feed was still \
                 running {:.1} ticks later and had bought {} more quote(s): once the response \
                 body is gone every send fails at once, and the feed must stop at the first \
                 failure (or as soon as the channel closes), not ignore it, look only every few \
                 ticks, leave it to chance, or wait for a connection's end that a dropped task \
                 never reaches",
                client + 1,
                how_it_left(gone),
                STOPS_WITHIN.as_secs_f64() / TICK.as_secs_f64(),
                market.exchange.calls() - billed,
            );
        }
    });
}

/// The same hang-ups, judged by the runtime instead of the gauge: once a client is gone, every
/// task the server started for it must end, wherever the gauge's guard is kept.
#[test]
fn no_task_outlives_the_client() {
    check(HANG).paused(|| async {
        // The paused runtime is this check's own and runs on this thread only, so its count of
        // alive tasks is exact: the connection's task, and whatever the server spawned.
        let runtime = tokio::runtime::Handle::current().metrics();
        for client in 0..HANG_UPS {
            let before = runtime.num_alive_tasks();
            let events = events_before_hang_up(client);
            let gone = server_drops_the_connection(client);
            let (_market, _client) = hang_up_after(events, gone).await;

            // No event announces that a task ended, so look again every ten virtual
            // milliseconds: on the paused clock this costs no real time, and the verdict does
            // not depend on speed.
            let settled = tokio::time::timeout(STOPS_WITHIN, async {
                while runtime.num_alive_tasks() > before {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .is_ok();
            assert!(
                settled,
                "client {} of {HANG_UPS} {} after {events} events, yet {} task(s) the \
                 server started were still alive {:.1} ticks later: the producer (or a task \
                 watching for the connection's end) runs on, whatever the gauge says",
                client + 1,
                how_it_left(gone),
                runtime.num_alive_tasks() - before,
                STOPS_WITHIN.as_secs_f64() / TICK.as_secs_f64(),
            );
        }
    });
}

/// Opens a connection and subscribes to ACME's feed, as a dashboard does.
async fn subscribe(market: &Market) -> Events<hyper::body::Incoming> {
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
    Events::new(response.into_body())
}

/// Two dashboards watch ACME at once, each on its own connection, and both stay: each gets
/// every price, in order, with nothing missing.
#[test]
fn a_client_that_stays_gets_every_price_in_order() {
    check(HANG).paused(|| async {
        let market = Market::default();
        let mut first = subscribe(&market).await;
        let mut second = subscribe(&market).await;
        for id in 1..=10 {
            for (dashboard, events) in [("first", &mut first), ("second", &mut second)] {
                let Some(event) = events.next().await else {
                    panic!(
                        "the {dashboard} of two dashboards watching ACME got {} event(s), then \
                         its feed ended while it was still connected: a feed must stop only \
                         when its own client is gone, and two clients may watch the same symbol",
                        id - 1
                    );
                };
                assert_eq!(
                    event,
                    expected_event(id),
                    "a client that stays connected must get every price in order"
                );
            }
        }
    });
}

/// A dashboard stops reading for hours (a laptop lid closed, a stalled proxy) but keeps its
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
                Some(expected_event(id).as_str()),
                "before any stall, a reader that keeps reading must get prices 1, 2 and 3 in order"
            );
        }

        // Nobody reads for three hours. On the paused clock time moves only while every task
        // is idle, so by the end the producer has had every chance to run ahead: what it
        // bought by then is all it will ever buy, on any machine.
        tokio::time::sleep(STALL).await;
        let limit = 3 + FEED_BUFFER as u64 + 1;
        assert!(
            market.exchange.calls() <= limit,
            "while the reader stalled, the feed bought {} quotes for the 3 events read: it ran \
             ahead of its reader instead of waiting for room in a bounded buffer (at most {limit})",
            market.exchange.calls(),
        );

        for id in 4..=15 {
            let Some(event) = events.next().await else {
                panic!(
                    "the reader stalled for {} ticks, then read again, but the feed ended after \
                     price {}: it gave up on a slow reader (a send timeout, of any length: a \
                     reader may pause longer; a full buffer taken for a client that left). A \
                     slow reader is still a reader: wait for room, and stop only when the \
                     channel is closed",
                    STALL.as_secs() / TICK.as_secs(),
                    id - 1
                );
            };
            assert_eq!(
                event,
                expected_event(id),
                "after a stall the reader must get the next price, not a gap: a feed may wait \
                 for a slow reader, but it must not drop events"
            );
        }
    });
}
