//! Checks for M10 over a real server. The race itself is caught by the loom models in
//! `tests/loom.rs`: a torn line on a real server shows up only now and then, so no check here
//! relies on one. This check pins down the line format the collector's parser expects.

use std::sync::Arc;

use harness::server::TestServer;
use harness::watchdog::check;
use m10_log_tearing::{AccessLog, serve};

const HANG: &str = "the server stopped answering: does `record` wait for a flag or a lock that \
                    is never released?";

/// Two requests on one connection, one after another: the log holds one line per request, in
/// order, in the format the collector parses.
#[test]
fn each_request_is_one_line() {
    check(HANG).real(|| async {
        let log = Arc::new(AccessLog::new());
        let server_log = Arc::clone(&log);
        let server = TestServer::start(|listener| async move {
            let _ = serve(listener, server_log).await;
        })
        .await;
        let mut browser = server.connect().await;
        for path in ["/products/42", "/favicon.ico"] {
            browser.get(path).await.unwrap();
        }
        assert_eq!(
            log.take_pending(),
            "GET /products/42 200 21\nGET /favicon.ico 404 13\n",
            "each request must be logged as one line `METHOD PATH STATUS BYTES`, in the order \
             the requests were answered"
        );
        assert_eq!(
            log.take_pending(),
            "",
            "the shipper collected the lines: the buffer must start empty again"
        );
    });
}
