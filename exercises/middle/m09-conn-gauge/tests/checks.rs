//! Checks for M09: in-memory connections on a paused clock, each served by `serve_connection`
//! in a task of its own, as `serve` does. Every check waits for the connection's task to be
//! over (or for its runtime to be gone) before it reads the gauge, so no verdict depends on
//! timing.

use std::sync::Arc;
use std::time::Duration;

use harness::duplex::{self, ServerSide};
use harness::watchdog::check;
use m09_conn_gauge::{Metrics, serve_connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HANG: &str = "the check never got past waiting on the server; does the connection task \
                    wait for something that never happens?";

/// Waits until the connection's task is over, whether it ended by itself or was aborted.
async fn finished<T>(server: ServerSide<T>) {
    let _ = server.task.await;
}

/// A browser asks for the forecast, then closes its connection.
async fn clean_visit(metrics: &Arc<Metrics>) {
    let metrics = Arc::clone(metrics);
    let (mut browser, server) = duplex::http1(|io| serve_connection(io, metrics)).await;
    let forecast = browser.get("/forecast").await.unwrap();
    assert_eq!(forecast.status, 200, "GET /forecast must be answered");
    browser.close().await;
    finished(server).await;
}

/// A client sends `bytes` and hangs up, with or without reading the answer: the connection
/// ends in an error.
async fn failed_visit(metrics: &Arc<Metrics>, bytes: &[u8], read_answer: bool) {
    let metrics = Arc::clone(metrics);
    let (mut client, server) = duplex::raw(|io| serve_connection(io, metrics));
    client.write_all(bytes).await.unwrap();
    if read_answer {
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert!(
            answer.starts_with(b"HTTP/1.1 400 "),
            "hyper answers a request it cannot parse with 400 Bad Request, and closes; got {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    drop(client);
    finished(server).await;
}

/// A client is served and stays connected; then the server shuts down, which drops the
/// connection's task (here: aborts it, as dropping `serve`'s `JoinSet` does). While it was
/// open, the gauge must have counted it.
async fn visit_cut_by_shutdown(metrics: &Arc<Metrics>) {
    let open_before = metrics.open_connections();
    let server_metrics = Arc::clone(metrics);
    let (mut browser, server) = duplex::http1(|io| serve_connection(io, server_metrics)).await;
    let forecast = browser.get("/forecast").await.unwrap();
    assert_eq!(forecast.status, 200, "GET /forecast must be answered");
    assert_eq!(
        metrics.open_connections(),
        open_before + 1,
        "a client is connected and was just served, yet the gauge does not count it: the \
         connection must count as open for as long as it is served"
    );
    server.task.abort();
    finished(server).await;
}

const GARBAGE: &[u8] = b"HELLO FROM A PORT SCANNER\r\n\r\n";
const HALF_A_REQUEST: &[u8] = b"GET /forecast HTTP/1.1\r\nhost: wea";

/// Waits until the gauge reads `expected`, on the paused clock: `false` if it still does not
/// after a virtual second. A connection task that has something to do does it long before the
/// clock moves (the paused clock only jumps when every task is waiting), and hyper itself would
/// wait 30 s for a request's head.
async fn gauge_reaches(metrics: &Metrics, expected: u64) -> bool {
    tokio::time::timeout(Duration::from_secs(1), async {
        while metrics.open_connections() != expected {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .is_ok()
}

fn assert_no_open_connections(metrics: &Metrics, after: &str) {
    assert_eq!(
        metrics.open_connections(),
        0,
        "{after}, and its task is over, yet the gauge still counts it as open"
    );
}

/// A connection that ends normally: served, then closed by the client.
#[test]
fn a_closed_connection_is_no_longer_counted() {
    check(HANG).paused(|| async {
        let metrics = Arc::new(Metrics::default());
        clean_visit(&metrics).await;
        assert_no_open_connections(&metrics, "a browser was served and closed its connection");
    });
}

/// Connections that end in an error: a request hyper cannot parse (it answers 400), and a
/// client that hangs up halfway through its request headers.
#[test]
fn a_connection_that_fails_is_no_longer_counted() {
    check(HANG).paused(|| async {
        let metrics = Arc::new(Metrics::default());
        failed_visit(&metrics, GARBAGE, true).await;
        assert_no_open_connections(
            &metrics,
            "a client sent bytes that are not HTTP and got a 400",
        );
        failed_visit(&metrics, HALF_A_REQUEST, false).await;
        assert_no_open_connections(&metrics, "a client hung up halfway through its request");
    });
}

/// Connections that have not sent a whole request yet: one that has sent nothing (a keep-alive
/// pool's spare connection, a port scanner that only connects), and one halfway through its
/// head. Each holds a socket and a task: the gauge must count them.
#[test]
fn a_connection_is_counted_before_its_first_request() {
    check(HANG).paused(|| async {
        let metrics = Arc::new(Metrics::default());
        let server_metrics = Arc::clone(&metrics);
        let (silent, silent_server) = duplex::raw(|io| serve_connection(io, server_metrics));
        assert!(
            gauge_reaches(&metrics, 1).await,
            "a client is connected and has sent nothing yet, and the gauge reads {}: a \
             connection is open from the moment it is accepted, not from its first request \
             (idle and slow connections hold sockets and tasks too; they are what a slowloris \
             attack is made of)",
            metrics.open_connections()
        );
        let server_metrics = Arc::clone(&metrics);
        let (mut slow, slow_server) = duplex::raw(|io| serve_connection(io, server_metrics));
        slow.write_all(HALF_A_REQUEST).await.unwrap();
        assert!(
            gauge_reaches(&metrics, 2).await,
            "a second client has sent half of its request head, and the gauge reads {}: it must \
             count both connections, requests or not",
            metrics.open_connections()
        );
        // How these connections end is `a_connection_that_fails_is_no_longer_counted`'s job.
        drop((silent, slow, silent_server, slow_server));
    });
}

/// A connection still open when the server shuts down: its task is dropped, not finished.
#[test]
fn a_connection_closed_by_shutdown_is_no_longer_counted() {
    check(HANG).paused(|| async {
        let metrics = Arc::new(Metrics::default());
        visit_cut_by_shutdown(&metrics).await;
        assert_no_open_connections(
            &metrics,
            "a connection was closed by the server's shutdown (its task was dropped)",
        );
    });
}

/// The runtime serving the connections stops while one is open (the end of `main`, a server
/// restarted on a fresh runtime) and the gauge outlives it, as it does when the metrics are
/// served or pushed from elsewhere. Dropping a runtime drops every task it still holds, the
/// connection's included: the gauge must be given back right there, by the drop itself.
#[test]
fn a_connection_open_when_its_runtime_stops_is_no_longer_counted() {
    check(HANG).run(|| {
        let metrics = Arc::new(Metrics::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("building the server's runtime");
        let server_metrics = Arc::clone(&metrics);
        let browser = runtime.block_on(async move {
            let (mut browser, _server) =
                duplex::http1(|io| serve_connection(io, server_metrics)).await;
            let forecast = browser.get("/forecast").await.unwrap();
            assert_eq!(forecast.status, 200, "GET /forecast must be answered");
            browser
        });
        assert_eq!(
            metrics.open_connections(),
            1,
            "a client is connected and was just served, yet the gauge does not count it"
        );
        drop(runtime);
        assert_eq!(
            metrics.open_connections(),
            0,
            "the runtime serving an open connection was dropped, which dropped the \
             connection's task, yet the gauge still counts it: the decrement must happen in \
             the drop itself. Work handed to another task (`tokio::spawn` in `Drop`) never runs \
             once the runtime is shutting down: tokio drops such a task unpolled"
        );
        drop(browser);
    });
}

/// What the monitoring system scrapes after a scripted morning: one clean visit, a port
/// scanner, a client that hung up mid-request and a connection cut by a shutdown, then the
/// scrape itself on a connection of its own.
#[test]
fn metrics_after_a_busy_morning() {
    check(HANG).paused(|| async {
        let metrics = Arc::new(Metrics::default());
        clean_visit(&metrics).await;
        failed_visit(&metrics, GARBAGE, true).await;
        failed_visit(&metrics, HALF_A_REQUEST, false).await;
        visit_cut_by_shutdown(&metrics).await;

        let scraper_metrics = Arc::clone(&metrics);
        let (mut scraper, _server) =
            duplex::http1(|io| serve_connection(io, scraper_metrics)).await;
        let scrape = scraper.get("/metrics").await.unwrap();
        insta::assert_snapshot!(scrape.text());
    });
}
