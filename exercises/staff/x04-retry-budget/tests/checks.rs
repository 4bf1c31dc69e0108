//! Checks for X04: a storefront that retries a failing inventory service.
//!
//! The inventory service is an in-process fake that records when each lookup reached it and
//! how much time it was told was left. The checks run on the paused clock with in-memory
//! connections, so "250 ms after the request" is an exact instant, not a measurement.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::TestResponse;
use harness::duplex;
use harness::server::{H1Connection, request};
use harness::watchdog::check;
use tokio::task::JoinSet;
use tokio::time::Instant;
use x04_retry_budget::{
    DEADLINE_HEADER, Inventory, StockQuery, Storefront, UpstreamError, serve_connection,
};

const HANG: &str = "a request was never answered: does the storefront keep retrying, or wait for \
                    the inventory service with no deadline?";

/// The retry budget of the README: 10 retries per 10 s, plus one for every 5 requests.
const FLOOR: usize = 10;
const RATIO_DIVISOR: usize = 5;
/// Budgets differ in how they round and refill (a rolling window, a bucket that refills every
/// second): the check tolerates this many retries beyond the README's figure. Far below what
/// even one unbudgeted retry per request adds.
const SLACK: usize = 10;

/// One lookup, as the inventory service saw it.
#[derive(Debug, Clone, Copy)]
struct Lookup {
    at: Instant,
    time_left: Option<Duration>,
}

/// What the fake inventory service saw.
#[derive(Debug, Default)]
struct Seen {
    lookups: Vec<Lookup>,
    skus: HashSet<String>,
}

type Log = Arc<Mutex<Seen>>;

/// A fake inventory service that answers after `latency`, or fails when `fails(sku, first)`
/// says so (`first`: the first lookup of that SKU). Like a real service that reads its
/// caller's deadline, it gives up, failing, once the time it was told is left has run out.
fn inventory(
    latency: Duration,
    fails: impl Fn(&str, bool) -> bool + Send + Sync + 'static,
) -> (Inventory, Log) {
    let log = Log::default();
    let fails = Arc::new(fails);
    let seen = log.clone();
    let service = tower::service_fn(move |query: StockQuery| {
        let (seen, fails) = (seen.clone(), fails.clone());
        async move {
            let first = {
                let mut seen = seen.lock().unwrap();
                seen.lookups.push(Lookup {
                    at: Instant::now(),
                    time_left: query.time_left,
                });
                seen.skus.insert(query.sku.clone())
            };
            let work = query.time_left.map_or(latency, |left| left.min(latency));
            tokio::time::sleep(work).await;
            if work < latency || fails(&query.sku, first) {
                Err(UpstreamError)
            } else {
                Ok(7)
            }
        }
    });
    (Inventory::new(service), log)
}

fn lookups(log: &Log) -> Vec<Lookup> {
    log.lock().unwrap().lookups.clone()
}

/// A new client connection, served by a clone of `storefront` as `main`'s accept loop does.
async fn connect(storefront: &Storefront) -> H1Connection {
    let storefront = storefront.clone();
    duplex::http1(move |io| serve_connection(io, storefront))
        .await
        .0
}

/// `GET /stock/{sku}`, with `x-deadline-ms` if `deadline_ms` is given.
async fn stock(conn: &mut H1Connection, sku: &str, deadline_ms: Option<u64>) -> TestResponse {
    let mut get = request("GET", &format!("/stock/{sku}"), "");
    if let Some(ms) = deadline_ms {
        get.headers_mut()
            .insert(DEADLINE_HEADER, ms.to_string().parse().unwrap());
    }
    conn.send(get)
        .await
        .expect("the connection failed instead of answering")
}

fn ms(duration: Duration) -> u128 {
    duration.as_millis()
}

/// The inventory service is down: every lookup fails after 10 ms. 100 requests arrive over
/// 10 connections (10 each, the connections side by side). The inventory service may see the
/// 100 first lookups plus the retries the budget allows: about 10 + 100 / 5. Not 3 or 4
/// lookups per request, which is what turns a failing dependency into a dead one.
#[test]
fn a_dead_inventory_sees_a_bounded_number_of_lookups() {
    check(HANG).paused(|| async {
        const CONNECTIONS: usize = 10;
        const PER_CONNECTION: usize = 10;
        let (inventory, log) = inventory(Duration::from_millis(10), |_, _| true);
        let storefront = Storefront::new(inventory);
        let mut clients = JoinSet::new();
        for c in 0..CONNECTIONS {
            let mut conn = connect(&storefront).await;
            clients.spawn(async move {
                for r in 0..PER_CONNECTION {
                    let response = stock(&mut conn, &format!("sku-{c}-{r}"), None).await;
                    assert!(
                        response.status.is_server_error(),
                        "the inventory service failed every lookup, yet the storefront answered \
                         {}",
                        response.status
                    );
                }
            });
        }
        while let Some(client) = clients.join_next().await {
            if let Err(failed) = client {
                std::panic::resume_unwind(failed.into_panic());
            }
        }
        let requests = CONNECTIONS * PER_CONNECTION;
        let sent = lookups(&log).len();
        let budget = requests + FLOOR + requests / RATIO_DIVISOR;
        assert!(
            sent <= budget + SLACK,
            "while the inventory service was down, {requests} requests became {sent} lookups \
             ({:.1} per request); the retry budget allows about {budget} ({FLOOR} retries, plus \
             one for every {RATIO_DIVISOR} requests).\nA service under an outage gets its normal \
             load times the number of attempts, from every caller at once. A cap on attempts \
             per request does not change that: only a budget that all requests share (every \
             connection, every clone of the storefront) does",
            sent as f64 / requests as f64
        );
    });
}

/// The inventory service is down and slow: every lookup fails after 120 ms. A caller allows
/// 250 ms. No lookup may start once those 250 ms are over, each lookup must carry the time
/// that is really left, and the caller must have its answer (an error) by its deadline.
#[test]
fn no_lookup_after_the_callers_deadline() {
    check(HANG).paused(|| async {
        const DEADLINE_MS: u64 = 250;
        let (inventory, log) = inventory(Duration::from_millis(120), |_, _| true);
        let storefront = Storefront::new(inventory);
        let mut conn = connect(&storefront).await;
        let sent = Instant::now();
        let deadline = sent + Duration::from_millis(DEADLINE_MS);
        let response = stock(&mut conn, "sku-1", Some(DEADLINE_MS)).await;
        let answered = sent.elapsed();
        let seen = lookups(&log);
        // Numbered from 1, with the time since the request, for the messages.
        let numbered = || {
            seen.iter()
                .enumerate()
                .map(|(n, lookup)| (n + 1, ms(lookup.at - sent), lookup))
        };
        for (n, at, lookup) in numbered() {
            assert!(
                lookup.at < deadline,
                "lookup {n} reached the inventory service {at} ms after a request whose caller \
                 allowed {DEADLINE_MS} ms: nobody is waiting for its answer any more, and the \
                 inventory service does the work anyway.\nThe caller's `{DEADLINE_HEADER}` is \
                 the time it will wait; a retry that cannot finish before it is pure load"
            );
        }
        for (n, at, lookup) in numbered() {
            let left = deadline - lookup.at;
            let Some(told) = lookup.time_left else {
                panic!(
                    "lookup {n} ({at} ms after the request) did not tell the inventory service \
                     how long it has: it works on, at full length, for a caller that gives up at \
                     {DEADLINE_MS} ms. Pass on the time left (`time_left`), what the next hop \
                     reads as its own `{DEADLINE_HEADER}`"
                )
            };
            assert!(
                told <= left && !told.is_zero(),
                "lookup {n} ({at} ms after the request) told the inventory service it had {} ms, \
                 when {} ms of the caller's {DEADLINE_MS} ms were left: pass on what is left at \
                 the moment of the lookup, not the caller's original figure",
                ms(told),
                ms(left)
            );
        }
        assert!(
            answered <= Duration::from_millis(DEADLINE_MS + 5),
            "the caller allowed {DEADLINE_MS} ms and got its answer after {} ms: by then it had \
             given up, and the answer is wasted work",
            ms(answered)
        );
        assert!(
            response.status.is_server_error(),
            "every lookup failed, yet the storefront answered {}",
            response.status
        );
    });
}

/// The inventory service is healthy but has blips: the first lookup of one product in ten
/// fails, the next one succeeds. Over 30 s, a request every 100 ms: every request must be
/// answered 200. A budget is a limit on retries, not a ban on them.
#[test]
fn a_healthy_inventory_still_gets_its_retries() {
    check(HANG).paused(|| async {
        const REQUESTS: u32 = 300;
        let (inventory, log) = inventory(Duration::from_millis(5), |sku, first| {
            first && sku.ends_with('0')
        });
        let storefront = Storefront::new(inventory);
        let mut conn = connect(&storefront).await;
        let start = Instant::now();
        for n in 0..REQUESTS {
            tokio::time::sleep_until(start + Duration::from_millis(100) * n).await;
            let sku = format!("sku-{n}");
            let response = stock(&mut conn, &sku, None).await;
            assert_eq!(
                response.status,
                200,
                "request {} met a blip (the first lookup of {sku} failed, the next one would \
                 have succeeded) and its caller got an error. The budget allows {FLOOR} retries \
                 per 10 s plus one for every {RATIO_DIVISOR} requests, and one request in ten \
                 had a blip: a storefront that never retries, or whose budget never refills, \
                 turns every blip into an error page",
                n + 1
            );
        }
        let sent = lookups(&log).len();
        assert_eq!(
            sent,
            (REQUESTS + REQUESTS / 10) as usize,
            "{REQUESTS} requests, {} of them with one blip, should make one lookup each plus one \
             retry per blip",
            REQUESTS / 10
        );
    });
}
