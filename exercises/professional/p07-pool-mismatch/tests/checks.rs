//! Checks for P07: the cart's inventory client survives quiet spells longer than the
//! inventory service keeps an idle connection open, without sending a hold twice, without
//! giving up connection reuse, and without retrying a broken inventory without end.
//!
//! Everything runs on the paused clock over in-memory connections: a 45-second quiet spell
//! costs no real time, and the client's pool (on tokio's timer) and the inventory's idle
//! timer see exactly the same instants.
//!
//! How the inventory closes an idle connection matters. A real server whose idle timer fires
//! closes the connection, and if that close reaches the client while the connection sits in
//! the pool, hyper notices and never reuses it. The failure happens when the close and the
//! next request cross on the wire: the request is sent on a connection the server is just
//! closing. Here that crossing is made certain: the inventory closes an idle connection at
//! the moment the next request's first bytes arrive, if it has been idle for 30 s or more,
//! as a server whose timer fired at that very instant does.
//!
//! And the network between them takes 100 ms each way: the inventory's idle clock starts when
//! its answer leaves, the pool's when that answer has arrived, and the next request reaches
//! the inventory 100 ms after it left the pool. A connection the pool has held idle for
//! 29.85 s has been idle for 30.05 s at the inventory.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::watchdog::check;
use hyper::Uri;
use hyper_util::rt::TokioIo;
use p07_pool_mismatch::Inventory;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

const HANG: &str = "a call to the inventory service never finished: is a retry loop waiting \
                    for something, or retrying without end?";

/// How long the inventory service keeps an idle keep-alive connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// How long bytes take from the cart to the inventory, and back.
const LATENCY: Duration = Duration::from_millis(100);

/// What the inventory service saw, and what it will do to the next requests.
#[derive(Debug, Default)]
struct Log {
    /// Connections the client opened.
    connections: usize,
    /// Requests whose first bytes arrived, applied or not.
    requests: usize,
    /// Requests the inventory carried out.
    applied: usize,
    /// How many of the next requests are carried out and then left unanswered, the
    /// connection dropped: a process that crashes right after committing.
    crash_after_applying: usize,
}

/// The inventory service, in memory.
#[derive(Debug, Clone, Default)]
struct Upstream(Arc<Mutex<Log>>);

impl Upstream {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.lock().unwrap()
    }

    /// Serves one connection: HTTP/1 keep-alive, closed when a request arrives after 30 s of
    /// idleness (the crossing described at the top of this file).
    async fn serve(self, mut io: DuplexStream) {
        let mut idle_since = Instant::now();
        loop {
            let mut received = Vec::new();
            let mut chunk = [0; 4096];
            let n = io.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            // The request's first bytes have been on the way this long.
            tokio::time::sleep(LATENCY).await;
            self.log().requests += 1;
            if idle_since.elapsed() >= KEEP_ALIVE {
                return;
            }
            received.extend_from_slice(&chunk[..n]);
            let (method, path) = loop {
                if let Some(parsed) = parse(&received) {
                    break parsed;
                }
                let n = io.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                received.extend_from_slice(&chunk[..n]);
            };
            let (status, body) = {
                let mut log = self.log();
                log.applied += 1;
                if log.crash_after_applying > 0 {
                    log.crash_after_applying -= 1;
                    return;
                }
                match method.as_str() {
                    "GET" => ("200 OK", "12 in stock".to_owned()),
                    "POST" => ("201 Created", format!("hold-{}", log.applied)),
                    _ => (
                        "200 OK",
                        format!("released {}", path.rsplit('/').next().unwrap()),
                    ),
                }
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            // The connection is idle from the moment the answer leaves; it reaches the
            // client's pool a `LATENCY` later.
            idle_since = Instant::now();
            tokio::time::sleep(LATENCY).await;
            if io.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

/// The method and path of a complete request (head, and a body of `content-length` bytes).
fn parse(received: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(received);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(str::to_owned)
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    if body.len() < length {
        return None;
    }
    let mut words = head.split(' ');
    Some((words.next()?.to_owned(), words.next()?.to_owned()))
}

/// A connection the client's pool can hold: an in-memory pipe to the inventory.
struct Pipe(TokioIo<DuplexStream>);

impl hyper_util::client::legacy::connect::Connection for Pipe {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new()
    }
}

impl hyper::rt::Read for Pipe {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Pipe {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The cart's client, connected to a fresh in-memory inventory service.
fn inventory() -> (
    Inventory<impl hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static>,
    Upstream,
) {
    let upstream = Upstream::default();
    let serving = upstream.clone();
    let connector = tower::service_fn(move |_uri: Uri| {
        let (client, server) = tokio::io::duplex(64 * 1024);
        serving.log().connections += 1;
        tokio::spawn(serving.clone().serve(server));
        // Ready at once: the connector's future must be `Unpin`.
        std::future::ready(Ok::<_, std::io::Error>(Pipe(TokioIo::new(client))))
    });
    (
        Inventory::with_connector(connector, "http://inventory.test"),
        upstream,
    )
}

/// One call of the cart, by its operation's name.
async fn call<C>(inventory: &Inventory<C>, operation: &str) -> String
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let result = match operation {
        "GET /stock/sku-1" => inventory.stock("sku-1").await,
        "POST /holds" => inventory.place_hold("sku-1").await,
        _ => inventory.release_hold("hold-1").await,
    };
    match result {
        Ok(answer) => format!("ok {answer:?}"),
        Err(_) => "error".to_owned(),
    }
}

const OPERATIONS: [&str; 3] = ["GET /stock/sku-1", "POST /holds", "DELETE /holds/hold-1"];

/// After a busy minute, the shop goes quiet for 29.85 s (30.05 s at the inventory, with the
/// latency), 30 s (exactly the inventory's keep-alive), or 45 s: every kind of call that
/// comes next must succeed.
#[test]
fn every_call_after_a_quiet_spell_succeeds() {
    check(HANG).paused(|| async {
        let quiet_spells = [
            KEEP_ALIVE - Duration::from_millis(150),
            KEEP_ALIVE,
            Duration::from_secs(45),
        ];
        for quiet in quiet_spells {
            let (inventory, _upstream) = inventory();
            assert_eq!(
                call(&inventory, "GET /stock/sku-1").await,
                "ok \"12 in stock\""
            );
            for operation in OPERATIONS {
                tokio::time::sleep(quiet).await;
                let outcome = call(&inventory, operation).await;
                assert!(
                    outcome.starts_with("ok"),
                    "{operation} after a quiet spell of {quiet:?} failed: the inventory closes \
                     a connection once it has been idle for 30 s by its own clock, and the \
                     pool reused one idle that long (\"connection closed before message \
                     completed\"). The inventory's idle clock starts when its answer leaves, \
                     and the next request takes 100 ms to reach it: a pool timeout of 30 s, or \
                     a hair under it, still races the server; leave a margin of seconds. A \
                     retry alone cannot save a call that is not safe to send twice. And if \
                     you removed `.pool_timer(...)`: the pool then measures idleness on the \
                     system clock, which these checks' paused clock does not move, and \
                     hyper-util documents the timer as required for `pool_idle_timeout`; keep \
                     it"
                );
            }
        }
    });
}

/// What each call does to the inventory after a quiet spell, and what happens to a hold
/// that the inventory placed and then crashed before answering: a table of outcomes, with
/// how many requests the inventory saw and how many it carried out.
#[test]
fn retries_only_what_is_safe_to_send_twice() {
    check(HANG).paused(|| async {
        let mut table = String::new();
        for quiet in [30, 45, 600] {
            for operation in OPERATIONS {
                let (inventory, upstream) = inventory();
                call(&inventory, "GET /stock/sku-1").await;
                *upstream.log() = Log::default();
                tokio::time::sleep(Duration::from_secs(quiet)).await;
                let outcome = call(&inventory, operation).await;
                let log = upstream.log();
                writeln!(
                    table,
                    "{:<40} -> {outcome:<24} saw {}, carried out {}",
                    format!("quiet {quiet:>3} s, then {operation}"),
                    log.requests,
                    log.applied
                )
                .unwrap();
            }
        }
        for quiet in [0, 40] {
            let (inventory, upstream) = inventory();
            call(&inventory, "GET /stock/sku-1").await;
            tokio::time::sleep(Duration::from_secs(quiet)).await;
            *upstream.log() = Log {
                crash_after_applying: 1,
                ..Log::default()
            };
            let outcome = call(&inventory, "POST /holds").await;
            let log = upstream.log();
            writeln!(
                table,
                "{:<40} -> {outcome:<24} saw {}, carried out {}",
                format!("quiet {quiet:>3} s, carried out, crashed: POST"),
                log.requests,
                log.applied
            )
            .unwrap();
        }
        insta::assert_snapshot!(table);
    });
}

/// Calls 2.5 s apart, as in a busy minute: they share one connection. A pool that keeps
/// nothing idle, or keeps it a second or two, avoids stale connections by hardly ever
/// reusing any.
#[test]
fn busy_calls_share_one_connection() {
    check(HANG).paused(|| async {
        let (inventory, upstream) = inventory();
        for _ in 0..3 {
            for operation in OPERATIONS {
                assert!(call(&inventory, operation).await.starts_with("ok"));
                tokio::time::sleep(Duration::from_millis(2500)).await;
            }
        }
        let connections = upstream.log().connections;
        assert_eq!(
            connections, 1,
            "nine calls 2.5 s apart opened {connections} connections to the inventory: the \
             pool must keep an idle connection for most of the inventory's 30 s (well under \
             it, with a margin of seconds), not a second or two; every new connection is a \
             handshake, and behind TLS a TLS handshake too"
        );
    });
}

/// A burst of two holds opens two connections; then one call every 10 s for a minute keeps
/// one of them busy while the other sits idle in the pool, 60 s by then. The client as a
/// whole was never quiet, and the next burst of two holds must still both succeed: idleness
/// belongs to each connection, not to the client.
#[test]
fn a_connection_left_idle_in_a_busy_pool_is_not_reused() {
    check(HANG).paused(|| async {
        let (inventory, upstream) = inventory();
        let burst = || async {
            let (first, second) = tokio::join!(
                call(&inventory, "POST /holds"),
                call(&inventory, "POST /holds")
            );
            [first, second]
        };
        for outcome in burst().await {
            assert!(
                outcome.starts_with("ok"),
                "the first burst of two holds: {outcome}"
            );
        }
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let outcome = call(&inventory, "GET /stock/sku-1").await;
            assert!(
                outcome.starts_with("ok"),
                "a stock lookup 10 s after the last call: {outcome}"
            );
        }
        let opened = upstream.log().connections;
        for outcome in burst().await {
            assert!(
                outcome.starts_with("ok"),
                "after a minute of one call every 10 s, a burst of two holds got {outcome:?}: \
                 {opened} connections were open, and the one the lookups did not use had sat \
                 idle in the pool for 60 s, twice the inventory's keep-alive. The client was \
                 busy all along, but each pooled connection has its own idle time: only the \
                 pool's idle timeout (per connection) retires it (on the pool's timer: keep \
                 `.pool_timer(...)`)"
            );
        }
    });
}

/// An inventory that crashes right after carrying out each of the next ten requests: a
/// call of any kind (a lookup, a hold, a release) is tried a few times at most, not until the
/// inventory recovers.
#[test]
fn a_crashing_inventory_is_not_retried_without_end() {
    check(HANG).paused(|| async {
        for operation in OPERATIONS {
            let (inventory, upstream) = inventory();
            call(&inventory, "GET /stock/sku-1").await;
            *upstream.log() = Log {
                crash_after_applying: 10,
                ..Log::default()
            };
            call(&inventory, operation).await;
            let requests = upstream.log().requests;
            assert!(
                requests <= 3,
                "one {operation} sent {requests} requests to an inventory that kept crashing: \
                 a retry needs a limit for every method (one or two retries; reqwest's \
                 default policy allows two), or every caller multiplies the load on a service \
                 that is already failing"
            );
        }
    });
}
