//! Checks for J06, once it compiles: a real server on loopback, one keep-alive connection for
//! the sequential check and a pooled reqwest client for the concurrent one.

use std::sync::Arc;

use harness::server::TestServer;
use harness::watchdog::check;
use j06_not_send::{Pageviews, View, serve};
use tokio::sync::mpsc;

const HANG: &str = "the server stopped answering: is a handler waiting for a lock that another \
                    handler holds while it waits on the audit trail?";

/// Room for every view a check makes, so the audit trail never makes a handler wait.
const AUDIT_CAPACITY: usize = 64;

/// The server, and the receiving end of its audit trail.
async fn start() -> (TestServer, mpsc::Receiver<View>) {
    let (audit, trail) = mpsc::channel(AUDIT_CAPACITY);
    let state = Arc::new(Pageviews::new(audit));
    let server = TestServer::start(|listener| async move {
        let _ = serve(listener, state).await;
    })
    .await;
    (server, trail)
}

/// Everything the audit trail holds right now. Every handler sends its view before it
/// answers, so once all responses are in, so are all views.
fn drain(trail: &mut mpsc::Receiver<View>) -> Vec<View> {
    std::iter::from_fn(|| trail.try_recv().ok()).collect()
}

fn view(page: &str, number: u64) -> View {
    View {
        page: page.to_owned(),
        number,
    }
}

/// One visitor, three requests: each page has its own count, and the audit trail records
/// every view with the number the visitor was shown.
#[test]
fn views_are_counted_per_page() {
    check(HANG).real(|| async {
        let (server, mut trail) = start().await;
        let mut visitor = server.connect().await;
        let mut shown = Vec::new();
        for page in ["/pages/home", "/pages/home", "/pages/about"] {
            shown.push(visitor.get(page).await.unwrap().text());
        }
        assert_eq!(
            shown,
            [
                "/pages/home: view 1\n",
                "/pages/home: view 2\n",
                "/pages/about: view 1\n"
            ],
            "each page counts its own views, starting at 1"
        );
        assert_eq!(
            drain(&mut trail),
            [
                view("/pages/home", 1),
                view("/pages/home", 2),
                view("/pages/about", 1)
            ],
            "every view must reach the audit trail, with the number the visitor was shown"
        );
    });
}

/// Twenty visitors open the same page at once: they are shown the numbers 1 to 20, each
/// exactly once, and the audit trail holds the same twenty views.
#[test]
fn concurrent_views_get_distinct_numbers() {
    const VISITORS: u64 = 20;
    check(HANG).real(|| async {
        let (server, mut trail) = start().await;
        let client = reqwest::Client::new();
        let mut visits = tokio::task::JoinSet::new();
        for _ in 0..VISITORS {
            let request = client.get(server.url("/pages/sale"));
            visits.spawn(async move {
                let response = request.send().await.expect("the server answers");
                assert_eq!(response.status(), 200, "a page view must succeed");
                response.text().await.expect("reading the page")
            });
        }

        let mut shown: Vec<u64> = visits
            .join_all()
            .await
            .iter()
            .map(|text| {
                text.strip_prefix("/pages/sale: view ")
                    .and_then(|n| n.trim_end().parse().ok())
                    .unwrap_or_else(|| panic!("unexpected page: {text:?}"))
            })
            .collect();
        shown.sort_unstable();
        let expected: Vec<u64> = (1..=VISITORS).collect();
        assert_eq!(
            shown, expected,
            "{VISITORS} concurrent views of one page must be shown the numbers 1 to {VISITORS}, \
             each once: the count must be read and bumped in one critical section"
        );

        let mut audited: Vec<u64> = drain(&mut trail)
            .into_iter()
            .map(|v| {
                assert_eq!(
                    v.page, "/pages/sale",
                    "the audit trail names the page viewed"
                );
                v.number
            })
            .collect();
        audited.sort_unstable();
        assert_eq!(
            audited, expected,
            "the audit trail must hold each of the {VISITORS} views once, with the number the \
             visitor was shown"
        );
    });
}
