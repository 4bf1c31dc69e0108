//! Checks for J02: real servers on loopback, driven over real HTTP/1 keep-alive connections.

use harness::server::{H1Connection, TestServer};
use harness::watchdog::check;
use j02_per_conn_state::serve;

const HANG: &str = "the server stopped answering; does the accept loop still spawn one task per \
                    connection, and does no request wait on another?";

async fn start() -> TestServer {
    TestServer::start(|listener| async move {
        let _ = serve(listener).await;
    })
    .await
}

/// Requests `/` on `conn` and returns the visitor number the page greets us with.
async fn visit(conn: &mut H1Connection) -> u64 {
    let response = conn.get("/").await.expect("GET / on the landing page");
    assert_eq!(response.status, 200, "GET / must answer 200");
    let text = response.text();
    text.trim_end()
        .strip_prefix("welcome, visitor #")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("expected `welcome, visitor #N`, the page said {text:?}"))
}

/// One reader views the page twice and leaves; the next reader, on a new connection, is third.
#[test]
fn next_connection_continues_the_count() {
    check(HANG).real(|| async {
        let server = start().await;
        let mut first = server.connect().await;
        assert_eq!(
            visit(&mut first).await,
            1,
            "the very first page view is visitor #1"
        );
        assert_eq!(
            visit(&mut first).await,
            2,
            "the second view on the same connection is #2"
        );
        first.close().await;

        let mut second = server.connect().await;
        let number = visit(&mut second).await;
        assert_eq!(
            number, 3,
            "two page views came before this one, on another connection, so this is visitor #3; \
             the server said #{number}: the count starts over on each new connection"
        );
    });
}

/// Two readers browse at the same time, each on their own connection, taking turns.
#[test]
fn concurrent_connections_share_one_count() {
    check(HANG).real(|| async {
        let server = start().await;
        let mut alice = server.connect().await;
        let mut bob = server.connect().await;
        let seen = [
            visit(&mut alice).await,
            visit(&mut bob).await,
            visit(&mut alice).await,
            visit(&mut bob).await,
        ];
        assert_eq!(
            seen,
            [1, 2, 3, 4],
            "two connections to a fresh server, open at once and taking turns, must be \
             greeted #1, #2, #3, #4 from the server's one count (left: what they got)"
        );
    });
}

/// Two servers in the same process: each counts only its own page views.
#[test]
fn each_server_counts_its_own_visitors() {
    check(HANG).real(|| async {
        let busy = start().await;
        let mut conn = busy.connect().await;
        for _ in 0..3 {
            visit(&mut conn).await;
        }

        let fresh = start().await;
        let mut conn = fresh.connect().await;
        let number = visit(&mut conn).await;
        assert_eq!(
            number, 1,
            "a freshly started server greeted its first visitor as #{number}: it counted \
             another server's page views; the count must belong to one call of `serve`, \
             not to the whole process (a `static` is shared by every server)"
        );
    });
}
