//! Checks for J07 over a real server. The race itself is caught by the loom models in
//! `tests/loom.rs`: a race on a real server shows up only now and then, so no check here
//! relies on one. This check pins down what a correct counter must keep doing.

use std::sync::Arc;

use harness::server::{TestServer, request};
use harness::watchdog::check;
use j07_ticket::{Dispenser, serve};

const HANG: &str = "the server stopped answering: does `take` loop forever, or wait on a lock \
                    that is never released?";

async fn start() -> TestServer {
    TestServer::start(|listener| async move {
        let _ = serve(listener, Arc::new(Dispenser::new())).await;
    })
    .await
}

/// One kiosk takes three tickets in a row: they are numbered 1, 2, 3 and the board says 3.
#[test]
fn tickets_are_numbered_from_one() {
    check(HANG).real(|| async {
        let server = start().await;
        let mut kiosk = server.connect().await;
        for expected in 1..=3 {
            let ticket = kiosk.send(request("POST", "/tickets", "")).await.unwrap();
            assert_eq!(
                ticket.text(),
                format!("ticket={expected}\n"),
                "the tickets of one kiosk, taken one after another, must be numbered 1, 2, 3 \
                 (`fetch_add` returns the value from *before* the add)"
            );
        }
        let board = kiosk.get("/board").await.unwrap();
        assert_eq!(
            board.text(),
            "issued=3\n",
            "three tickets were handed out; the board must say so"
        );
    });
}
