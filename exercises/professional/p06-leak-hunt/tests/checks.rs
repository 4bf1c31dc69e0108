//! Checks for P06: the gateway over in-memory connections on a paused clock. A five-minute
//! token costs no real time, and the check's runtime is its own, single-threaded one, so its
//! count of alive tasks is exact: every task the server started, and nothing else.

use std::time::Duration;

use harness::duplex;
use harness::watchdog::check;
use p06_leak_hunt::{Gateway, PAGE_TIME, REFRESH_MARGIN, TOKEN_LIFETIME, serve_connection};
use tokio::io::AsyncWriteExt;

/// How far into the identity provider's 50 ms a request is dropped.
const MID_REFRESH: Duration = Duration::from_millis(10);

const HANG: &str = "the check never got its answer: is a request waiting on the token?";

/// How long after its connection ended a request may still have a task of its own alive.
/// A task tied to its request ends when the request's future is dropped; one that waits for
/// its next wake-up to notice lingers until then.
const SETTLES_WITHIN: Duration = Duration::from_secs(1);

/// Waits, on the paused clock, until the runtime counts at most `baseline` alive tasks.
/// Whether it got there.
async fn alive_tasks_settle_to(baseline: usize) -> bool {
    let runtime = tokio::runtime::Handle::current().metrics();
    // No event announces that a task ended, so look every ten virtual milliseconds: on the
    // paused clock this costs no real time, and the verdict does not depend on speed.
    tokio::time::timeout(SETTLES_WITHIN, async {
        while runtime.num_alive_tasks() > baseline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .is_ok()
}

#[test]
fn no_task_outlives_its_request() {
    check(HANG).paused(|| async {
        let gateway = Gateway::new();
        let runtime = tokio::runtime::Handle::current().metrics();
        let baseline = runtime.num_alive_tasks();

        // Three customers, each on a keep-alive connection: two invoices, then they leave.
        for customer in 0..3u64 {
            let for_server = gateway.clone();
            let (mut client, server) =
                duplex::http1(move |io| serve_connection(io, for_server)).await;
            for invoice in 0..2 {
                let response = client
                    .get(&format!("/invoices/{}", customer * 10 + invoice))
                    .await
                    .expect("the gateway closed the connection instead of answering");
                assert_eq!(response.status, 200, "an invoice is served with 200 OK");
            }
            client.close().await;
            let _ = server.task.await;
        }

        // A fourth starts an export; a few pages in, the server drops the connection's task
        // (a shutdown, a connection limit), so the request's future is dropped mid-way.
        let for_server = gateway.clone();
        let (mut client, server) = duplex::raw(move |io| serve_connection(io, for_server));
        client
            .write_all(b"GET /export?pages=600 HTTP/1.1\r\nhost: invoiced.test\r\n\r\n")
            .await
            .unwrap();
        let served_before = gateway.billing.served();
        let export_started = tokio::time::timeout(10 * PAGE_TIME, async {
            while gateway.billing.served() < served_before + 3 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(
            export_started.is_ok(),
            "the export never fetched its first pages"
        );
        server.task.abort();
        let _ = server.task.await;
        drop(client);

        let settled = alive_tasks_settle_to(baseline).await;
        assert!(
            settled,
            "seven requests on four connections are over (six answered, one dropped mid-export \
             when the server let its connection go), yet {} task(s) more than before the first \
             request are still alive {} s later. Something the server starts for a request (or \
             for a connection) runs on after it: what ends it?",
            runtime.num_alive_tasks() - baseline,
            SETTLES_WITHIN.as_secs(),
        );
    });
}

#[test]
fn a_long_export_keeps_a_valid_token() {
    check(HANG).paused(|| async {
        let gateway = Gateway::new();
        let for_server = gateway.clone();
        let (mut client, _server) = duplex::http1(move |io| serve_connection(io, for_server)).await;
        // Ten minutes of pages: two token lifetimes.
        let pages = 2 * TOKEN_LIFETIME.as_secs() / PAGE_TIME.as_secs();
        let response = client
            .get(&format!("/export?pages={pages}"))
            .await
            .expect("the gateway closed the connection instead of answering");
        assert_eq!(
            response.status,
            200,
            "an export of {pages} pages ({} minutes, longer than a token lives) was refused by \
             the billing API: its token expired mid-way. A request must still find a valid token \
             however long it runs",
            pages * PAGE_TIME.as_secs() / 60,
        );
        assert_eq!(
            response.text().lines().count() as u64,
            pages,
            "the export must hold one line per page"
        );
    });
}

#[test]
fn tokens_are_refreshed_only_when_due() {
    check(HANG).paused(|| async {
        let gateway = Gateway::new();
        // Twenty invoices on two connections: twenty seconds, far inside a token's lifetime.
        for connection in 0..2u64 {
            let for_server = gateway.clone();
            let (mut client, _server) =
                duplex::http1(move |io| serve_connection(io, for_server)).await;
            for invoice in 0..10 {
                let response = client
                    .get(&format!("/invoices/{}", connection * 100 + invoice))
                    .await
                    .expect("the gateway closed the connection instead of answering");
                assert_eq!(response.status, 200, "an invoice is served with 200 OK");
            }
            client.close().await;
        }
        assert_eq!(
            gateway.tokens.issued(),
            1,
            "twenty requests within twenty seconds asked the identity provider for {} tokens, \
             although the first was valid for {} minutes: it rate-limits us, so a token is \
             replaced only when it is about to expire, not once per request",
            gateway.tokens.issued(),
            TOKEN_LIFETIME.as_secs() / 60,
        );
    });
}

#[test]
fn a_request_after_a_quiet_hour_finds_a_valid_token() {
    check(HANG).paused(|| async {
        let gateway = Gateway::new();
        // A quiet night: no request for an hour, twelve token lifetimes.
        tokio::time::sleep(Duration::from_secs(60 * 60)).await;
        let for_server = gateway.clone();
        let (mut client, _server) = duplex::http1(move |io| serve_connection(io, for_server)).await;
        let response = client
            .get("/invoices/7")
            .await
            .expect("the gateway closed the connection instead of answering");
        assert_eq!(
            response.status, 200,
            "the first request after an hour without traffic was refused by the billing API: \
             it carried the token issued an hour ago. Whatever replaces the token must have \
             replaced it before a call uses it, not start replacing it beside the call"
        );
    });
}

#[test]
fn concurrent_exports_share_each_new_token() {
    check(HANG).paused(|| async {
        let gateway = Gateway::new();
        // Two customers export at once, ten minutes each: their calls ask for a token at the
        // same instants, so both find it due at the same moment.
        let pages = 2 * TOKEN_LIFETIME.as_secs() / PAGE_TIME.as_secs();
        let mut exports = Vec::new();
        for _ in 0..2 {
            let for_server = gateway.clone();
            let (mut client, server) =
                duplex::http1(move |io| serve_connection(io, for_server)).await;
            exports.push(tokio::spawn(async move {
                let response = client
                    .get(&format!("/export?pages={pages}"))
                    .await
                    .expect("the gateway closed the connection instead of answering");
                drop(server);
                response.status
            }));
        }
        for export in exports {
            assert_eq!(
                export.await.unwrap(),
                200,
                "an export running beside another was refused by the billing API"
            );
        }
        // The first token, and one each time it was due (twice in ten minutes): however many
        // requests find it due together, the gateway asks once and they all use the answer.
        assert_eq!(
            gateway.tokens.issued(),
            3,
            "two exports of ten minutes, side by side, asked the identity provider for {} \
             tokens where the gateway needed 3 (the first, and one each time it was due): \
             each request replaced the token on its own. Requests that find it due together \
             must wait for one replacement, not ask for one each",
            gateway.tokens.issued(),
        );
    });
}

#[test]
fn a_request_dropped_mid_refresh_does_not_stop_refreshing() {
    check(HANG).paused(|| async {
        let gateway = Gateway::new();
        // Just past the moment the token is due, a customer asks for an invoice, and the
        // server drops the connection's task while the identity provider is still issuing
        // the new token: it takes 50 ms (`ISSUE_TIME` in src/tokens.rs), and the clock moves
        // only while every task waits, so 10 ms in is mid-refresh on every run.
        tokio::time::sleep(TOKEN_LIFETIME - REFRESH_MARGIN + Duration::from_secs(1)).await;
        let for_server = gateway.clone();
        let (mut client, server) = duplex::raw(move |io| serve_connection(io, for_server));
        client
            .write_all(b"GET /invoices/1 HTTP/1.1\r\nhost: invoiced.test\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(MID_REFRESH).await;
        server.task.abort();
        let _ = server.task.await;
        drop(client);

        // A minute later the old token has expired; the next customer must still be served.
        tokio::time::sleep(REFRESH_MARGIN + Duration::from_secs(30)).await;
        let for_server = gateway.clone();
        let (mut client, _server) = duplex::http1(move |io| serve_connection(io, for_server)).await;
        let response = client
            .get("/invoices/2")
            .await
            .expect("the gateway closed the connection instead of answering");
        assert_eq!(
            response.status, 200,
            "a request was dropped (its connection closed) while the token was being replaced, \
             and a minute later, once the old token had expired, the next request was refused \
             by the billing API: the dropped request left the refresh half done, and nothing \
             ever replaced the token. A future can be dropped at any .await: whatever it set \
             before one (a flag, a claim) must be undone by Drop, not by the code after it"
        );
    });
}
