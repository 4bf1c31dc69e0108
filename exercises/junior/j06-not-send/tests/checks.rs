//! Checks for J06, once it compiles: a real server on loopback, and the audit store played by
//! the check itself, which decides when each view's record counts as stored. Holding a record
//! back is how the checks make one view wait on the audit trail for as long as they like.

use std::sync::Arc;
use std::time::Duration;

use harness::server::{H1Connection, TestServer};
use harness::watchdog::check;
use j06_not_send::{Pageviews, Record, View, serve};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

const HANG: &str = "a view was never answered, or never reached the audit trail: is a handler \
                    waiting for a lock that another handler holds while it waits on the audit \
                    trail, or did it fail before it reported its view?";

/// What it means when a view cannot get through while another one waits for the audit store.
const HELD_UP: &str = "while the audit store had not yet confirmed one view, the other views \
                       never reached it: the handler keeps the page counts locked while it \
                       waits on the audit trail, so every view waits for the slowest audit. A \
                       std guard in any disguise, or a tokio `Mutex` guard, held across the \
                       `.await` does that. Take the number in a block that ends before the \
                       `.await`";

/// Room for every record a check makes: handing a record to the audit trail never waits;
/// only its confirmation does.
const AUDIT_CAPACITY: usize = 64;

/// The audit store, played by the check: it receives each view's record and decides when to
/// confirm that it is stored.
struct AuditStore {
    trail: mpsc::Receiver<Record>,
}

impl AuditStore {
    /// The next record the server reports, not confirmed yet: its view waits until it is.
    async fn next(&mut self) -> Record {
        self.trail
            .recv()
            .await
            .expect("the server dropped its audit trail")
    }
}

/// The audit store has stored `record`: its view may now be served.
fn confirm(record: Record) {
    let _ = record.stored.send(());
}

/// The server, and the audit store at the other end of its audit trail.
async fn start() -> (TestServer, AuditStore) {
    let (audit, trail) = mpsc::channel(AUDIT_CAPACITY);
    let state = Arc::new(Pageviews::new(audit));
    let server = TestServer::start(|listener| async move {
        let _ = serve(listener, state).await;
    })
    .await;
    (server, AuditStore { trail })
}

/// Views `page` on `conn` while the audit store confirms the one record that view reports.
/// Returns what the visitor was shown and what the audit trail recorded.
async fn visit(conn: &mut H1Connection, store: &mut AuditStore, page: &str) -> (String, View) {
    let (response, audited) = tokio::join!(conn.get(page), async {
        let record = store.next().await;
        let audited = record.view.clone();
        confirm(record);
        audited
    });
    (response.expect("the server answers").text(), audited)
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
    check(HANG).limit(Duration::from_secs(10)).real(|| async {
        let (server, mut store) = start().await;
        let mut visitor = server.connect().await;
        let (mut shown, mut audited) = (Vec::new(), Vec::new());
        for page in ["/pages/home", "/pages/home", "/pages/about"] {
            let (text, view) = visit(&mut visitor, &mut store, page).await;
            shown.push(text);
            audited.push(view);
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
            audited,
            [
                view("/pages/home", 1),
                view("/pages/home", 2),
                view("/pages/about", 1)
            ],
            "every view must reach the audit trail, with the number the visitor was shown"
        );
    });
}

/// While the audit store keeps one view of `/pages/home` waiting, other views are served: one
/// of another page, and one more of the same page. Only then is the first view confirmed, and
/// it is answered with the number it took first.
#[test]
fn a_slow_audit_does_not_hold_up_other_views() {
    check(HELD_UP)
        .limit(Duration::from_secs(10))
        .real(|| async {
            let (server, mut store) = start().await;
            let mut first = server.connect().await;
            let mut other = server.connect().await;
            let slow = tokio::spawn(async move { first.get("/pages/home").await });
            // The audit store holds on to this record: its view waits.
            let held = store.next().await;
            assert_eq!(held.view, view("/pages/home", 1), "the first view's record");

            // The handshake: each of these views must reach the audit store and be answered
            // while the first one still waits. A handler that keeps the counts locked across
            // its `.await` never lets them through, and the watchdog reports the hang.
            for (page, number) in [("/pages/about", 1), ("/pages/home", 2)] {
                let (text, audited) = visit(&mut other, &mut store, page).await;
                assert_eq!(
                    (text, audited),
                    (format!("{page}: view {number}\n"), view(page, number)),
                    "a view served while another one waits on the audit trail: what the \
                     visitor was shown, and what the audit trail recorded"
                );
            }

            confirm(held);
            let answer = slow
                .await
                .unwrap()
                .expect("the server answers the first view");
            assert_eq!(
                answer.text(),
                "/pages/home: view 1\n",
                "once confirmed, the first view is answered with the number it took"
            );
        });
}

/// The audit store loses a record: it drops it without confirming. That view is not paid for,
/// so it is not served: the visitor is answered `503`. A handler that answers before the
/// store confirms (the record sent in the background) serves it anyway.
#[test]
fn a_view_the_audit_store_loses_is_not_served() {
    check(HANG).limit(Duration::from_secs(10)).real(|| async {
        let (server, mut store) = start().await;
        let mut visitor = server.connect().await;
        let (response, ()) = tokio::join!(visitor.get("/pages/home"), async {
            drop(store.next().await);
        });
        let response = response.expect("the server answers");
        assert_eq!(
            response.status.as_u16(),
            503,
            "the audit store lost this view's record, so the view must not be served; it was \
             answered {:?}",
            response.text()
        );
    });
}

/// Twenty visitors open the same page at once: they are shown the numbers 1 to 20, each
/// exactly once, and the audit trail holds the same twenty views.
///
/// The audit store confirms nothing until it holds all twenty records, so all twenty views
/// are in the middle of their request at the same time. The server runs on one thread: the
/// views interleave at their `.await`s, where this lesson's bugs live, and the verdict does
/// not depend on how the OS schedules threads.
#[test]
fn concurrent_views_get_distinct_numbers() {
    const VISITORS: u64 = 20;
    check(HELD_UP).limit(Duration::from_secs(10)).run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a runtime");
        runtime.block_on(async {
            let (server, mut store) = start().await;
            let client = reqwest::Client::new();
            let mut visits = JoinSet::new();
            for _ in 0..VISITORS {
                let request = client.get(server.url("/pages/sale"));
                visits.spawn(async move {
                    let response = request.send().await.expect("the server answers");
                    assert_eq!(response.status(), 200, "a page view must succeed");
                    response.text().await.expect("reading the page")
                });
            }

            let mut records = Vec::new();
            for _ in 0..VISITORS {
                records.push(store.next().await);
            }
            let mut audited: Vec<u64> = records
                .iter()
                .map(|record| {
                    assert_eq!(
                        record.view.page, "/pages/sale",
                        "the audit trail names the page viewed"
                    );
                    record.view.number
                })
                .collect();
            records.into_iter().for_each(confirm);

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
                "{VISITORS} concurrent views of one page must be shown the numbers 1 to \
                 {VISITORS}, each once: the count must be bumped and read under one lock, \
                 before the handler waits on the audit trail"
            );
            audited.sort_unstable();
            assert_eq!(
                audited, expected,
                "the audit trail must hold each of the {VISITORS} views once, with the number \
                 the visitor was shown"
            );
        });
    });
}
