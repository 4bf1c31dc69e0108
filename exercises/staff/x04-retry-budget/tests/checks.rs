//! Checks for X04: a storefront that retries a failing inventory service.
//!
//! The inventory service is an in-process fake that records when each lookup reached it and
//! how much time it was told was left. The checks run on the paused clock with in-memory
//! connections, so "250 ms after the request" is an exact instant, not a measurement.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::TestResponse;
use harness::duplex;
use harness::server::{H1Connection, request};
use harness::watchdog::check;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};
use x04_retry_budget::{
    DEADLINE_HEADER, DEFAULT_DEADLINE, Inventory, StockQuery, Storefront, UpstreamError,
    serve_connection,
};

const HANG: &str = "a request was never answered: does the storefront keep retrying, or wait for \
                    the inventory service with no deadline?";

/// The retry budget of the README: 10 retries per 10 s, plus one for every 5 requests.
const FLOOR: usize = 10;
const RATIO_DIVISOR: usize = 5;
/// Budgets differ in how they round and refill (a rolling window, a bucket that refills every
/// second): the checks tolerate this many retries beyond the README's figure. Far below what
/// even one unbudgeted retry per request adds. Measured: `TpsBudget` and a rolling log of
/// instants add exactly the README's figure, a token bucket of 10 refilled every second 4 more.
const SLACK: usize = 10;

/// One lookup, as the inventory service saw it.
#[derive(Debug, Clone)]
struct Lookup {
    sku: String,
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

/// A fake inventory service that answers after `latency`, or fails when `fails(sku, first, n)`
/// says so (`first`: the first lookup of that SKU; `n`: the lookup's number, from 0, over the
/// whole service). Like a real service that reads its caller's deadline, it gives up, failing,
/// once the time it was told is left has run out.
fn inventory(
    latency: Duration,
    fails: impl Fn(&str, bool, usize) -> bool + Send + Sync + 'static,
) -> (Inventory, Log) {
    fake(latency, true, fails)
}

/// A fake inventory service that does not read `time_left`: a version that predates the
/// header, or a proxy that drops it. Every lookup takes `latency`, then fails.
fn deaf_inventory(latency: Duration) -> (Inventory, Log) {
    fake(latency, false, |_, _, _| true)
}

fn fake(
    latency: Duration,
    reads_time_left: bool,
    fails: impl Fn(&str, bool, usize) -> bool + Send + Sync + 'static,
) -> (Inventory, Log) {
    let log = Log::default();
    let fails = Arc::new(fails);
    let seen = log.clone();
    let service = tower::service_fn(move |query: StockQuery| {
        let (seen, fails) = (seen.clone(), fails.clone());
        async move {
            let (first, n) = {
                let mut seen = seen.lock().unwrap();
                seen.lookups.push(Lookup {
                    sku: query.sku.clone(),
                    at: Instant::now(),
                    time_left: query.time_left,
                });
                (seen.skus.insert(query.sku.clone()), seen.lookups.len() - 1)
            };
            let work = match query.time_left {
                Some(left) if reads_time_left => left.min(latency),
                _ => latency,
            };
            tokio::time::sleep(work).await;
            if work < latency || fails(&query.sku, first, n) {
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

/// For the messages: if a lookup was told more time than its caller had left, says why that
/// happens. The storefront's deadline is then not the caller's, or it is kept on a clock that
/// the checks' paused one does not move.
fn clock_note(seen: &[Lookup], sent: Instant, deadline: Instant) -> String {
    let overstated = seen.iter().enumerate().find_map(|(n, lookup)| {
        let left = deadline.saturating_duration_since(lookup.at);
        lookup
            .time_left
            .filter(|told| *told > left)
            .map(|told| (n + 1, ms(lookup.at - sent), ms(told), ms(left)))
    });
    match overstated {
        Some((n, at, told, left)) => format!(
            "\nLookup {n} ({at} ms after the request) was told it had {told} ms when {left} ms \
             were left: the deadline the storefront counts down is not the caller's. Either it \
             is not read from `{DEADLINE_HEADER}`, or it is a `std::time::Instant`: these checks \
             run on tokio's paused clock, which `std::time::Instant` does not follow. Use \
             `tokio::time::Instant` (the real clock in production, the paused one here)"
        ),
        None => String::new(),
    }
}

/// Runs `clients` side by side, each on a connection of its own, and re-raises the first
/// client's panic (a failed assertion) as the check's.
async fn run_clients<F, Fut>(storefront: &Storefront, clients: usize, client: F)
where
    F: Fn(usize, H1Connection) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut running = JoinSet::new();
    for c in 0..clients {
        let conn = connect(storefront).await;
        running.spawn(client(c, conn));
    }
    while let Some(client) = running.join_next().await {
        if let Err(failed) = client {
            std::panic::resume_unwind(failed.into_panic());
        }
    }
}

/// The inventory service is down: every lookup fails after 10 ms. 15 s earlier it was healthy
/// and served 300 requests, out of any 10 s window by the time it fails. Then 100 requests
/// arrive over 4.5 s, from 10 connections side by side, one per connection every 450 ms. The
/// inventory service may see those 100 lookups plus the retries the budget allows: about
/// 10 + 100 / 5. Not 3 or 4 lookups per request, which is what turns a failing dependency into a
/// dead one; and not the retries a healthy past earned, nor a floor that refills every second.
#[test]
fn a_dead_inventory_sees_a_bounded_number_of_lookups() {
    check(HANG).paused(|| async {
        const CONNECTIONS: usize = 10;
        const HEALTHY_PER_CONNECTION: usize = 30;
        const PER_CONNECTION: usize = 10;
        let outage = Instant::now() + Duration::from_secs(15);
        let (inventory, log) = inventory(Duration::from_millis(10), move |_, _, _| {
            Instant::now() >= outage
        });
        let storefront = Storefront::new(inventory);
        run_clients(&storefront, CONNECTIONS, |c, mut conn| async move {
            for r in 0..HEALTHY_PER_CONNECTION {
                let response = stock(&mut conn, &format!("sku-{c}-{r}"), None).await;
                assert_eq!(
                    response.status, 200,
                    "the inventory service was healthy, yet the storefront answered {}",
                    response.status
                );
            }
            for r in 0..PER_CONNECTION {
                let at = outage + ONE_EVERY / 10 * c as u32 + ONE_EVERY * r as u32;
                tokio::time::sleep_until(at).await;
                let response = stock(&mut conn, &format!("sku-{c}-down-{r}"), None).await;
                assert!(
                    response.status.is_server_error(),
                    "the inventory service failed every lookup, yet the storefront answered {}",
                    response.status
                );
            }
        })
        .await;
        let requests = CONNECTIONS * PER_CONNECTION;
        let sent = lookups(&log).iter().filter(|l| l.at >= outage).count();
        let budget = requests + FLOOR + requests / RATIO_DIVISOR;
        assert!(
            sent <= budget + SLACK,
            "while the inventory service was down, {requests} requests over 4.5 s became {sent} \
             lookups ({:.1} per request); the retry budget allows about {budget} ({FLOOR} \
             retries per 10 s, plus one for every {RATIO_DIVISOR} requests received in those \
             10 s).\nA service under an outage gets its normal load times the number of \
             attempts, from every caller at once. Among the causes: retries limited per request \
             (a cap on attempts) or not at all; a budget that each request, connection or clone \
             of the storefront has for itself; a budget bigger than the README's, such as a \
             floor of {FLOOR} retries a second instead of per 10 s (`TpsBudget::default()`, or \
             a 1 s window), or one that still counts the 300 healthy requests of 15 s earlier \
             (a budget with no window: a quiet past buys an outage its retries)",
            sent as f64 / requests as f64
        );
    });
}

/// How often each client of the dead-inventory check sends a request (the partial-outage check
/// twice as often): its 100 requests take 4.5 s. Long enough for a floor that refills every
/// second to show (ten times the README's), short enough to fit in one window of tower's
/// `TpsBudget`: its ring of ten slots can move two slots at once when calls come a little more
/// than a slot apart, so under steady traffic it forgets sooner than its 10 s (measured: with a
/// call every 90 ms, its floor of 10 retries came back after 6.5 s). Spread over 9 s, this
/// check's outage made 139 lookups with it instead of 130.
const ONE_EVERY: Duration = Duration::from_millis(450);

/// The report's first minutes: the inventory service fails one lookup in three (every third
/// lookup it receives, after 10 ms). 200 requests over 4.5 s from 10 connections: retrying every
/// failure would add a retry for every second request; the budget allows about 10 + 200 / 5.
#[test]
fn a_partial_outage_gets_only_the_budgets_retries() {
    check(HANG).paused(|| async {
        const CONNECTIONS: usize = 10;
        const PER_CONNECTION: usize = 20;
        let start = Instant::now();
        let (inventory, log) = inventory(Duration::from_millis(10), |_, _, n| n % 3 == 2);
        let storefront = Storefront::new(inventory);
        run_clients(&storefront, CONNECTIONS, |c, mut conn| async move {
            for r in 0..PER_CONNECTION {
                let at = start + ONE_EVERY / 20 * c as u32 + ONE_EVERY / 2 * r as u32;
                tokio::time::sleep_until(at).await;
                let sku = format!("sku-{c}-{r}");
                let response = stock(&mut conn, &sku, None).await;
                assert!(
                    response.status == 200 || response.status.is_server_error(),
                    "asked for {sku}, the storefront answered {}",
                    response.status
                );
            }
        })
        .await;
        let requests = CONNECTIONS * PER_CONNECTION;
        let sent = lookups(&log).len();
        let budget = requests + FLOOR + requests / RATIO_DIVISOR;
        assert!(
            sent <= budget + SLACK,
            "while the inventory service failed one lookup in three, {requests} requests over \
             4.5 s became {sent} lookups; the retry budget allows about {budget} ({FLOOR} retries \
             per 10 s, plus one for every {RATIO_DIVISOR} requests).\nThis is how the outage of \
             the report began: a partial failure, and retries that add half the load again to \
             the service that is struggling. Something that stops retries only once everything \
             fails (a count of failures in a row, a circuit breaker) never trips while a third \
             fails; the budget is what bounds the extra load at every failure rate"
        );
    });
}

/// The inventory service is down and slow: every lookup fails after 120 ms. A caller allows
/// 250 ms. No lookup may start once those 250 ms are over (the check waits a second more before
/// it reads the inventory service's log), each lookup must carry the time that is really left,
/// and the caller must have its answer (an error) by its deadline.
#[test]
fn no_lookup_after_the_callers_deadline() {
    check(HANG).paused(|| async {
        const DEADLINE_MS: u64 = 250;
        let (inventory, log) = inventory(Duration::from_millis(120), |_, _, _| true);
        let storefront = Storefront::new(inventory);
        let mut conn = connect(&storefront).await;
        let sent = Instant::now();
        let deadline = sent + Duration::from_millis(DEADLINE_MS);
        let response = stock(&mut conn, "sku-1", Some(DEADLINE_MS)).await;
        let answered = sent.elapsed();
        // Work the request started may go on after its answer: give it time to show.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let seen = lookups(&log);
        // Numbered from 1, with the time since the request, for the messages.
        let numbered = || {
            seen.iter()
                .enumerate()
                .map(|(n, lookup)| (n + 1, ms(lookup.at - sent), lookup))
        };
        let clock_note = clock_note(&seen, sent, deadline);
        for (n, at, lookup) in numbered() {
            let after_answer = if lookup.at > sent + answered {
                format!(
                    "\nThe caller had its answer {} ms after the request; this lookup came \
                     later, so the retries went on without it: work the request started that \
                     nothing stops at the deadline (a task spawned for it and left running?)",
                    ms(answered)
                )
            } else {
                String::new()
            };
            assert!(
                lookup.at < deadline,
                "lookup {n} reached the inventory service {at} ms after a request whose caller \
                 allowed {DEADLINE_MS} ms: nobody is waiting for its answer any more, and the \
                 inventory service does the work anyway.\nThe caller's `{DEADLINE_HEADER}` is \
                 the time it will wait; a retry that cannot finish before it is pure \
                 load{after_answer}{clock_note}"
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
                 the moment of the lookup, not the caller's original figure{clock_note}",
                ms(told),
                ms(left)
            );
        }
        assert!(
            answered <= Duration::from_millis(DEADLINE_MS + 5),
            "the caller allowed {DEADLINE_MS} ms and got its answer after {} ms: by then it had \
             given up, and the answer is wasted work{clock_note}",
            ms(answered)
        );
        assert!(
            response.status.is_server_error(),
            "every lookup failed, yet the storefront answered {}",
            response.status
        );
    });
}

/// The inventory service hangs and does not read `time_left`: every lookup takes an hour. A
/// caller that allows 250 ms, then one that sends no `x-deadline-ms` (1 s by default), must
/// each have an answer (an error) by its deadline all the same.
#[test]
fn a_hung_inventory_does_not_hold_the_caller() {
    check(HANG).paused(|| async {
        let (inventory, log) = deaf_inventory(Duration::from_secs(3600));
        let storefront = Storefront::new(inventory);
        for (sku, deadline_ms) in [("sku-told", Some(250)), ("sku-untold", None)] {
            let allowed = deadline_ms.map_or(DEFAULT_DEADLINE, Duration::from_millis);
            let who = match deadline_ms {
                Some(ms) => format!("a caller that allowed {ms} ms"),
                None => format!(
                    "a caller that sent no `{DEADLINE_HEADER}` (so it gets the default, {} ms)",
                    ms(DEFAULT_DEADLINE)
                ),
            };
            let mut conn = connect(&storefront).await;
            let sent = Instant::now();
            let answer = timeout(GIVE_UP, stock(&mut conn, sku, deadline_ms)).await;
            let answered = sent.elapsed();
            let Ok(response) = answer else {
                panic!(
                    "the inventory service hung (it does not read `time_left`), and {who} had \
                     no answer after {} s.\nThe time left that a lookup carries asks the next \
                     hop to give up in time; nothing makes it. Whatever the inventory service \
                     does, the storefront has to stop waiting at the caller's deadline \
                     itself{}",
                    GIVE_UP.as_secs(),
                    if deadline_ms.is_none() {
                        ", and a request without the header has a deadline too"
                    } else {
                        ""
                    }
                )
            };
            let mine: Vec<Lookup> = lookups(&log).into_iter().filter(|l| l.sku == sku).collect();
            let clock_note = clock_note(&mine, sent, sent + allowed);
            assert!(
                answered <= allowed + Duration::from_millis(5),
                "the inventory service hung, and {who} got its answer after {} ms: by then it \
                 had given up{clock_note}",
                ms(answered)
            );
            assert!(
                response.status.is_server_error(),
                "every lookup hung, yet the storefront answered {}",
                response.status
            );
        }
        for lookup in lookups(&log).iter().filter(|l| l.sku == "sku-untold") {
            assert!(
                lookup
                    .time_left
                    .is_some_and(|told| told <= DEFAULT_DEADLINE),
                "a lookup for a request without `{DEADLINE_HEADER}` told the inventory service \
                 it had {:?}: that request's deadline is the default, {} ms, and the next hop \
                 should hear what is left of it",
                lookup.time_left,
                ms(DEFAULT_DEADLINE)
            );
        }
    });
}

/// How long the hung-inventory check waits for an answer before it calls the caller stuck.
const GIVE_UP: Duration = Duration::from_secs(10);

/// The inventory service is healthy but has blips: the first lookup of some products fails,
/// the next one succeeds. First a busy 30 s, a request every 100 ms, one in ten with a blip
/// (the budget's share of the requests pays for those retries); then a quiet minute, a request
/// a second, one in two with a blip (only the floor, 10 retries per 10 s, pays for those).
/// Every request must be answered 200. A budget is a limit on retries, not a ban on them.
#[test]
fn a_healthy_inventory_still_gets_its_retries() {
    check(HANG).paused(|| async {
        // (requests, one every, one in how many has a blip)
        const PHASES: [(u32, Duration, u32); 2] = [
            (300, Duration::from_millis(100), 10),
            (60, Duration::from_secs(1), 2),
        ];
        let (inventory, log) = inventory(Duration::from_millis(5), |sku, first, _| {
            first && sku.ends_with("-blip")
        });
        let storefront = Storefront::new(inventory);
        let mut conn = connect(&storefront).await;
        let (mut requests, mut blips) = (0, 0);
        for (phase, (count, every, one_in)) in PHASES.into_iter().enumerate() {
            let start = Instant::now();
            for n in 0..count {
                tokio::time::sleep_until(start + every * n).await;
                let blip = n % one_in == 0;
                let sku = format!("sku-{phase}-{n}{}", if blip { "-blip" } else { "" });
                let response = stock(&mut conn, &sku, None).await;
                let when = if phase == 0 {
                    format!("a request every {} ms", ms(every))
                } else {
                    format!("a quiet spell, a request every {} ms", ms(every))
                };
                assert_eq!(
                    response.status, 200,
                    "in {when}, a request met a blip (the first lookup of {sku} failed, the next \
                     one would have succeeded) and its caller got an error. One request in \
                     {one_in} had a blip; the budget allows {FLOOR} retries per 10 s plus one \
                     for every {RATIO_DIVISOR} requests. A storefront that never retries, or \
                     whose floor of {FLOOR} retries does not come back every 10 s (the quiet \
                     times live on it), turns blips into error pages"
                );
                requests += 1;
                blips += u32::from(blip);
            }
        }
        let sent = lookups(&log).len();
        assert_eq!(
            sent,
            (requests + blips) as usize,
            "{requests} requests, {blips} of them with one blip, should make one lookup each plus \
             one retry per blip"
        );
    });
}
