//! Checks for S05: one HTTP/2 connection over an in-memory pipe on a paused clock, as the edge
//! proxy opens it, with many searches on it at once. The client is a raw HTTP/2 peer (`h2`)
//! that resets one stream on purpose. Virtual time makes a ten-second scan cost nothing, and
//! "the scan was still running a second after its stream was reset" a fact, not a race.

mod common;

use std::time::Duration;

use common::{Answer, Proxy, Search};
use harness::duplex;
use harness::heap;
use harness::watchdog::check;
use s05_h2_isolation::{Archive, SCAN, serve_connection};
use tokio_util::sync::CancellationToken;

// Counts the heap per thread, for what a connection keeps once its searches are over; the
// other checks do not look at it.
#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

const HANG: &str = "the check never got past waiting on the server; is a handler waiting for \
                    something that never comes?";

/// How long, in virtual time, a stopped scan may take to notice: a small fraction of a scan.
const STOPS_WITHIN: Duration = Duration::from_secs(1);

/// One connection from the proxy, and what the check needs to watch the server behind it.
struct Setup {
    proxy: Proxy,
    archive: Archive,
    shutdown: CancellationToken,
    server: duplex::ServerSide<hyper::Result<()>>,
}

async fn connect() -> Setup {
    let archive = Archive::default();
    let shutdown = CancellationToken::new();
    let (for_server, stop) = (archive.clone(), shutdown.clone());
    let (io, server) = duplex::raw(move |io| serve_connection(io, for_server, stop));
    let proxy = Proxy::connect(io).await;
    Setup {
        proxy,
        archive,
        shutdown,
        server,
    }
}

impl Setup {
    /// Sends one search per query, each on its own stream of the same connection, and waits
    /// until the server is scanning for all of them.
    async fn searching(&mut self, queries: &[&str]) -> Vec<Search> {
        let mut searches = Vec::new();
        for query in queries {
            searches.push(self.proxy.get(&format!("/search?q={query}")).await);
        }
        let scans = &self.archive.scans;
        assert!(
            scans.reaches_started(queries.len(), STOPS_WITHIN).await,
            "{} searches were sent on one connection, but only {} scan(s) started",
            queries.len(),
            scans.started(),
        );
        searches
    }
}

/// Waits for a search's answer, at most a scan and a half of virtual time.
async fn answer_of(search: Search, what: &str) -> Answer {
    tokio::time::timeout(SCAN + SCAN / 2, search.answer())
        .await
        .unwrap_or_else(|_| panic!("{what} got no answer within a scan and a half"))
        .unwrap_or_else(|error| panic!("{what}'s stream failed instead of answering: {error}"))
}

fn expected(query: &str) -> String {
    format!("q={query} hits={}\n", query.len() * 7)
}

/// Two users' searches share the proxy's connection; one user gives up. The other search must
/// still scan to the end and get its hits.
#[test]
fn a_reset_stream_leaves_its_siblings_alone() {
    check(HANG).paused(|| async {
        let mut setup = connect().await;
        let mut searches = setup.searching(&["timeout", "tim"]).await;
        let abandoned = searches.pop().unwrap();
        let staying = searches.pop().unwrap();
        abandoned.reset();
        // The reset stream's scan must stop now, while its sibling is still scanning. Read
        // the gauge before the answer: the answer's own verdict comes first, it is the lesson.
        let only_the_sibling_left = setup.archive.scans.settles_to(1, STOPS_WITHIN).await;
        let live = setup.archive.scans.live();

        let answer = answer_of(staying, "the search that stayed").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, expected("timeout").as_str()),
            "another user reset their stream on the same connection, and this search's scan \
             was stopped too: a reset must cancel the work of that one stream, not a token \
             every stream of the connection shares"
        );
        assert!(
            only_the_sibling_left,
            "a stream was reset while another search on the same connection was scanning, and \
             {live} scan(s) were still running {} s later, not 1: the reset stream's scan must \
             stop at once, whatever its siblings are doing, not when the last of them is done",
            STOPS_WITHIN.as_secs(),
        );
    });
}

/// One search, reset while its scan runs: the scan must stop, not read the archive for nobody.
#[test]
fn a_reset_stream_stops_its_own_scan() {
    check(HANG).paused(|| async {
        let mut setup = connect().await;
        let mut searches = setup.searching(&["timeout"]).await;
        searches.pop().unwrap().reset();
        assert!(
            setup.archive.scans.settles_to(0, STOPS_WITHIN).await,
            "the client reset its stream, yet its scan was still running {} s later (a scan \
             takes {} s): hyper dropped the handler, but the scan runs in a task of its own, \
             which nothing told to stop",
            STOPS_WITHIN.as_secs(),
            SCAN.as_secs(),
        );
    });
}

/// A reset must not poison the connection: the proxy keeps sending new searches on it.
#[test]
fn the_connection_serves_new_searches_after_a_reset() {
    check(HANG).paused(|| async {
        let mut setup = connect().await;
        let mut searches = setup.searching(&["tim"]).await;
        searches.pop().unwrap().reset();
        // Let the reset land first: wait until its scan is over, or for a second if it never
        // stops (that is another check's business; this one is about what comes next).
        let _ = setup.archive.scans.settles_to(0, STOPS_WITHIN).await;

        let later = setup.proxy.get("/search?q=timeout").await;
        let answer = answer_of(later, "a search sent after the reset").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, expected("timeout").as_str()),
            "one stream was reset earlier on this connection, and a search sent afterwards on \
             the same connection was stopped at once: the reset cancelled something that lives \
             as long as the connection, so every later stream on it is cancelled too"
        );
    });
}

/// A deploy: the server's shutdown token is cancelled while two searches are scanning. Both
/// must stop at once and answer 503 with `retry-after` (the proxy retries them elsewhere), and
/// the connection must then close.
#[test]
fn shutdown_stops_every_scan_in_flight() {
    check(HANG).paused(|| async {
        let mut setup = connect().await;
        let searches = setup.searching(&["timeout", "panic"]).await;
        setup.shutdown.cancel();

        for (search, query) in searches.into_iter().zip(["timeout", "panic"]) {
            let answer = tokio::time::timeout(STOPS_WITHIN, search.answer())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "the server is shutting down, yet the search for {query} had no answer \
                         {} s later (a scan takes {} s): its scan no longer hears the server's \
                         shutdown",
                        STOPS_WITHIN.as_secs(),
                        SCAN.as_secs(),
                    )
                })
                .unwrap_or_else(|error| panic!("the stream failed instead of answering: {error}"));
            assert_eq!(
                (answer.status, answer.retry_after.as_deref()),
                (503, Some("1")),
                "on shutdown, a search in flight must stop its scan and answer 503 with \
                 retry-after, so that the proxy retries it on another replica"
            );
        }
        assert!(
            setup.archive.scans.settles_to(0, STOPS_WITHIN).await,
            "the server shut down, yet a scan was still running"
        );
        // The connection ends once its streams are answered. Cleanly or with a broken pipe is
        // the client's affair (its side may close as soon as it has read the last answer).
        let closed = tokio::time::timeout(STOPS_WITHIN, &mut setup.server.task).await;
        assert!(
            closed.is_ok(),
            "every search was answered after shutdown, yet the connection was still being served \
             {} s later",
            STOPS_WITHIN.as_secs(),
        );
    });
}

/// The proxy's connections live for days and carry search after search: whatever a connection
/// keeps per stream after the stream is over, it keeps for good. Two hundred searches, one
/// after another, must leave the connection holding what it held after the first twenty.
#[test]
fn a_long_lived_connection_keeps_nothing_per_search() {
    // Enough searches for what a connection keeps per stream to stand far above the noise
    // (buffers that grow and shrink with traffic), few enough to cost a fraction of a second.
    const WARM_UP: usize = 20;
    const SEARCHES: usize = 200;
    // A cancellation token alone is about a hundred bytes: a quarter of that per search is
    // already far more than anything a connection legitimately keeps.
    const KEPT_PER_SEARCH: i64 = 24;

    check(HANG).paused(|| async {
        let mut setup = connect().await;
        for _ in 0..WARM_UP {
            one_search(&mut setup.proxy).await;
        }
        let before = heap::live_on_this_thread();
        for _ in 0..SEARCHES {
            one_search(&mut setup.proxy).await;
        }
        let kept = heap::live_on_this_thread() - before;
        assert!(
            kept <= SEARCHES as i64 * KEPT_PER_SEARCH,
            "after {SEARCHES} more searches, each answered and over, the connection held {kept} \
             more bytes ({} per search): something is kept per stream for as long as the \
             connection lives, and the proxy's connections live for days. Whatever a \
             request needs, it must go when the request does",
            kept / SEARCHES as i64,
        );
    });
}

/// One search, start to end, on a connection that stays open.
async fn one_search(proxy: &mut Proxy) {
    let answer = answer_of(proxy.get("/search?q=tim").await, "a search").await;
    assert_eq!(answer.status, 200, "a plain search must answer 200");
}
