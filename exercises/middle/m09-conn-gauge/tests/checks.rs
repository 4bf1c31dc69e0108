//! Checks for M09: in-memory connections on a paused clock, each served by `serve_connection`
//! in a task of its own, as `serve` does. Every check waits for the connection's task to be
//! over before it reads the gauge, so no verdict depends on timing.

use std::sync::Arc;

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
