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
            if io.write_all(response.as_bytes()).await.is_err() {
                return;
            }
            idle_since = Instant::now();
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

/// After a busy minute, the shop goes quiet for 30 s (exactly the inventory's keep-alive), or
/// 45 s: every kind of call that comes next must succeed.
#[test]
fn every_call_after_a_quiet_spell_succeeds() {
    check(HANG).paused(|| async {
        for quiet in [KEEP_ALIVE, Duration::from_secs(45)] {
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
                    "{operation} after a quiet spell of {} s failed: the inventory closes a \
                     connection once it has been idle for 30 s, and the client reused a \
                     connection idle that long (\"connection closed before message \
                     completed\"). A pool that keeps idle connections exactly as long as the \
                     server does still races it; and a retry alone cannot save a call that is \
                     not safe to send twice",
                    quiet.as_secs()
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
        let (inventory, upstream) = inventory();
        call(&inventory, "GET /stock/sku-1").await;
        *upstream.log() = Log {
            crash_after_applying: 1,
            ..Log::default()
        };
        let outcome = call(&inventory, "POST /holds").await;
        let log = upstream.log();
        writeln!(
            table,
            "{:<40} -> {outcome:<24} saw {}, carried out {}",
            "carried out, then crashed: POST /holds", log.requests, log.applied
        )
        .unwrap();
        insta::assert_snapshot!(table);
    });
}

/// Calls a second apart, as in a busy minute: they share one connection. A pool that keeps
/// nothing idle (or for less than a second) avoids stale connections by never reusing any.
#[test]
fn busy_calls_share_one_connection() {
    check(HANG).paused(|| async {
        let (inventory, upstream) = inventory();
        for _ in 0..3 {
            for operation in OPERATIONS {
                assert!(call(&inventory, operation).await.starts_with("ok"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        let connections = upstream.log().connections;
        assert_eq!(
            connections, 1,
            "nine calls a second apart opened {connections} connections to the inventory: \
             the pool must keep an idle connection for a while (just less than the \
             inventory's 30 s), not drop it at once; every new connection is a handshake, and \
             behind TLS a TLS handshake too"
        );
    });
}

/// An inventory that crashes right after carrying out each of the next ten requests: a
/// stock lookup is tried a few times at most, not until the inventory recovers.
#[test]
fn a_crashing_inventory_is_not_retried_without_end() {
    check(HANG).paused(|| async {
        let (inventory, upstream) = inventory();
        call(&inventory, "GET /stock/sku-1").await;
        *upstream.log() = Log {
            crash_after_applying: 10,
            ..Log::default()
        };
        call(&inventory, "GET /stock/sku-1").await;
        let requests = upstream.log().requests;
        assert!(
            requests <= 3,
            "one stock lookup sent {requests} requests to an inventory that kept crashing: a \
             retry needs a limit (one or two retries; reqwest's default policy allows two), or \
             every caller multiplies the load on a service that is already failing"
        );
    });
}
