//! Checks for J02: real servers on loopback, driven over real HTTP/1 keep-alive connections.

use harness::server::{H1Connection, TestServer};
use harness::watchdog::check;
use j02_per_conn_state::serve;
use tokio::sync::Mutex;

const HANG: &str = "the server stopped answering; does the accept loop still spawn one task per \
                    connection, and does no request wait on another?";

/// The checks of this binary take turns. A count that belongs to `serve` cannot tell the
/// difference; a count kept in a `static` is one count for the whole test process, and
/// without turns the numbers it hands out would depend on which other checks happen to be
/// running at that moment. Taking turns, every check sees exactly its own page views, so each
/// verdict is the same on every run.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

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

// The two checks below are about sharing between connections, so they compare each number
// with the first one they got (on a fresh server, #1) rather than with #1 itself: a count
// kept in a `static` carries on from the checks that ran before, and whether a fresh server
// starts at #1 is the third check's question.

/// One reader views the page twice and leaves; the next reader, on a new connection, is next.
#[test]
fn next_connection_continues_the_count() {
    check(HANG).real(|| async {
        let _turn = ONE_AT_A_TIME.lock().await;
        let server = start().await;
        let mut first = server.connect().await;
        let one = visit(&mut first).await;
        let two = visit(&mut first).await;
        assert_eq!(
            two,
            one + 1,
            "the second view on the same connection comes right after the first"
        );
        first.close().await;

        let mut second = server.connect().await;
        let number = visit(&mut second).await;
        assert_eq!(
            number,
            one + 2,
            "two page views (#{one}, #{two}) came before this one, on another connection, so \
             this is visitor #{}; the server said #{number}: the count starts over on each new \
             connection",
            one + 2
        );
    });
}

/// Two readers browse at the same time, each on their own connection, taking turns.
#[test]
fn concurrent_connections_share_one_count() {
    check(HANG).real(|| async {
        let _turn = ONE_AT_A_TIME.lock().await;
        let server = start().await;
        let mut alice = server.connect().await;
        let mut bob = server.connect().await;
        let seen = [
            visit(&mut alice).await,
            visit(&mut bob).await,
            visit(&mut alice).await,
            visit(&mut bob).await,
        ];
        let first = seen[0];
        assert_eq!(
            seen,
            [first, first + 1, first + 2, first + 3],
            "two connections to one server, open at once and taking turns, must be greeted \
             with consecutive numbers from the server's one count (left: what they got)"
        );
    });
}

/// Two servers in the same process, both running: each counts only its own page views.
#[test]
fn each_server_counts_its_own_visitors() {
    check(HANG).real(|| async {
        let _turn = ONE_AT_A_TIME.lock().await;
        let busy = start().await;
        let mut regular = busy.connect().await;
        for _ in 0..3 {
            visit(&mut regular).await;
        }

        let fresh = start().await;
        let mut newcomer = fresh.connect().await;
        let number = visit(&mut newcomer).await;
        assert_eq!(
            number, 1,
            "a fresh server's first visitor was #{number}, not #1: it counted another \
             server's page views; the count belongs to one call of `serve`, not to the process \
             (a `static`?)"
        );

        // Back to the first server, which is still running: starting the second one must not
        // have touched its count (a `static` that `serve` resets to zero would have).
        let number = visit(&mut regular).await;
        assert_eq!(
            number, 4,
            "after three views the first server's next visitor is #4, not #{number}: starting \
             a second server changed its count, so they share one (a `static` that `serve` \
             resets?)"
        );
    });
}
