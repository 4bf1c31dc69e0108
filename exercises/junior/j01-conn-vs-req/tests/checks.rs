//! Checks for J01: a real server on loopback, driven over real HTTP/1 keep-alive connections.

use std::sync::Arc;

use harness::server::TestServer;
use harness::transcript::Transcript;
use harness::watchdog::check;
use j01_conn_vs_req::{Stats, serve};

const HANG: &str =
    "the server stopped answering; does the accept loop still spawn one task per connection?";

async fn start() -> TestServer {
    TestServer::start(|listener| async move {
        let _ = serve(listener, Arc::new(Stats::default())).await;
    })
    .await
}

/// Three requests on one keep-alive connection: one connection, three requests.
#[test]
fn keep_alive_requests_are_counted_one_by_one() {
    check(HANG).real(|| async {
        let server = start().await;
        let mut conn = server.connect().await;
        conn.get("/").await.unwrap();
        conn.get("/").await.unwrap();
        let stats = conn.get("/stats").await.unwrap().text();
        assert_eq!(
            stats, "connections=1 requests=3\n",
            "one connection carried three requests (the /stats request counts too)"
        );
    });
}

/// Each new TCP connection is one connection, however many requests it carries.
#[test]
fn every_connection_is_counted_once() {
    check(HANG).real(|| async {
        let server = start().await;
        // Two requests on each: a connection counted per request would show up as five.
        for _ in 0..2 {
            let mut conn = server.connect().await;
            conn.get("/").await.unwrap();
            conn.get("/").await.unwrap();
            conn.close().await;
        }
        let mut conn = server.connect().await;
        let stats = conn.get("/stats").await.unwrap().text();
        assert!(
            stats.starts_with("connections=3 "),
            "three connections were opened, the server reports: {stats}"
        );
    });
}

/// Requests on different connections add up to one total: the count belongs to the server,
/// not to a connection. All three connections stay open and each request has been answered
/// before the next is sent, so every count is final when `/stats` answers: no waiting needed.
#[test]
fn requests_add_up_across_connections() {
    check(HANG).real(|| async {
        let server = start().await;
        let mut first = server.connect().await;
        let mut second = server.connect().await;
        let mut third = server.connect().await;
        first.get("/").await.unwrap();
        second.get("/").await.unwrap();
        second.get("/").await.unwrap();
        third.get("/").await.unwrap();
        let stats = first.get("/stats").await.unwrap().text();
        assert_eq!(
            stats, "connections=3 requests=5\n",
            "three connections carried five requests between them (the /stats request counts \
             too); the request count must cover every connection, not only the one that asks"
        );
    });
}

/// The whole conversation of a client that reuses its connection, as a snapshot.
#[test]
fn stats_transcript() {
    check(HANG).real(|| async {
        let server = start().await;
        let mut conn = server.connect().await;
        let mut transcript = Transcript::new();
        for path in ["/", "/", "/", "/stats"] {
            let response = conn.get(path).await.unwrap();
            transcript.request("GET", path).response(&response);
        }
        insta::assert_snapshot!(transcript.render());
    });
}
