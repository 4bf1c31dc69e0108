//! Checks for J08: in-memory connections on a paused clock, and a gauge of report builds in
//! progress. Virtual time makes a twenty-second warehouse query cost nothing, and lets "the
//! build is still running one second after the client left" be a fact rather than a race.

use std::time::Duration;

use harness::duplex;
use harness::leak::Gauge;
use harness::watchdog::check;
use j08_disconnect::{WAREHOUSE_QUERY, serve_connection};
use tokio::io::AsyncWriteExt;

const HANG: &str = "the check never got past waiting on the server; is the handler still awaiting something that never finishes?";

/// How long, in virtual time, a build may outlive its client: a small fraction of the query.
const STOPS_WITHIN: Duration = Duration::from_secs(1);

const REPORT_REQUEST: &[u8] = b"GET /report?customer=acme HTTP/1.1\r\nhost: workshop.test\r\n\r\n";

/// A client asks for a report and closes its socket once the build is running (a closed
/// browser tab, a load balancer's own timeout). Returns the gauge of builds in progress.
async fn hang_up_mid_build() -> Gauge {
    let builds = Gauge::new();
    let gauge = builds.clone();
    let (mut client, _server) = duplex::raw(move |io| serve_connection(io, gauge));
    client.write_all(REPORT_REQUEST).await.unwrap();
    assert!(
        builds.reaches_started(1, STOPS_WITHIN).await,
        "the report build never started for GET /report?customer=acme"
    );
    drop(client);
    builds
}

/// A client asks for a report, then closes its socket while the build is running.
#[test]
fn the_build_stops_when_the_client_hangs_up() {
    check(HANG).paused(|| async {
        let builds = hang_up_mid_build().await;
        assert!(
            builds.settles_to(0, STOPS_WITHIN).await,
            "the client hung up, yet its report build was still running {} s later (a query \
             takes {} s): hyper dropped the handler's future, but dropping a JoinHandle \
             detaches the task, it does not cancel it",
            STOPS_WITHIN.as_secs(),
            WAREHOUSE_QUERY.as_secs(),
        );
    });
}

/// The same hang-up, judged by the runtime instead of the gauge: once the client is gone, every
/// task the server started for it must end. A build that runs on in a detached task is caught
/// here even if no guard is held while it runs (a guard kept by the handler instead of the build
/// is released when hyper drops the handler, while the warehouse query goes on).
#[test]
fn no_task_outlives_the_client() {
    check(HANG).paused(|| async {
        // The paused runtime is this check's own and runs on this thread only, so its count of
        // alive tasks is exact: the connection's task, and whatever the server spawned.
        let runtime = tokio::runtime::Handle::current().metrics();
        let before = runtime.num_alive_tasks();
        hang_up_mid_build().await;

        // No event announces that a task ended, so look again every virtual millisecond: on
        // the paused clock this costs no real time, and the verdict does not depend on speed.
        let settled = tokio::time::timeout(STOPS_WITHIN, async {
            while runtime.num_alive_tasks() > before {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .is_ok();
        assert!(
            settled,
            "the client hung up, yet {} task(s) the server started were still alive {} s later \
             (a query takes {} s): the build runs on in a task nobody cancels, whatever the \
             gauge says",
            runtime.num_alive_tasks() - before,
            STOPS_WITHIN.as_secs(),
            WAREHOUSE_QUERY.as_secs(),
        );
    });
}

/// A client that waits gets the whole report, and the build is over once it is answered.
#[test]
fn a_client_that_waits_gets_its_report() {
    check(HANG).paused(|| async {
        let builds = Gauge::new();
        let gauge = builds.clone();
        let (mut conn, _server) = duplex::http1(move |io| serve_connection(io, gauge)).await;
        let response = conn
            .get("/report?customer=acme")
            .await
            .expect("the server closed the connection instead of answering");
        assert_eq!(
            (response.status.as_u16(), response.text().as_str()),
            (200, "customer=acme invoices=28\n"),
            "a client that stays connected must get its full report: cancel the build only \
             when the client is gone, not on the normal path"
        );
        assert_eq!(builds.started(), 1, "exactly one build should have run");
        assert!(
            builds.settles_to(0, STOPS_WITHIN).await,
            "the report was sent, yet its build is still counted as in progress"
        );
    });
}

/// Two clients; one leaves. The other's build must carry on to the end.
#[test]
fn one_client_leaving_does_not_cancel_another() {
    check(HANG).paused(|| async {
        let builds = Gauge::new();
        let gauge = builds.clone();
        let (mut staying, _server_a) = duplex::http1(move |io| serve_connection(io, gauge)).await;
        let gauge = builds.clone();
        let (mut leaving, _server_b) = duplex::raw(move |io| serve_connection(io, gauge));

        let staying = tokio::spawn(async move { staying.get("/report?customer=globex").await });
        leaving.write_all(REPORT_REQUEST).await.unwrap();
        assert!(
            builds.reaches_started(2, STOPS_WITHIN).await,
            "two clients asked for a report, but two builds never started"
        );
        drop(leaving);

        let response = staying
            .await
            .unwrap()
            .expect("the client that stayed lost its connection when the other one left");
        assert_eq!(
            (response.status.as_u16(), response.text().as_str()),
            (200, "customer=globex invoices=42\n"),
            "one client hanging up must cancel only its own build, not everyone's"
        );
    });
}
