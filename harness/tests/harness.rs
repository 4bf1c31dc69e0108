//! The harness's own checks: a watchdog that never fires or a gauge that cannot fail would
//! make every exercise check built on them dishonest.

use std::panic;
use std::time::Duration;

use harness::duplex;
use harness::leak::Gauge;
use harness::server::{TestServer, get};
use harness::transcript::Transcript;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::Response;

#[test]
fn watchdog_turns_a_hang_into_a_failure_with_the_lesson_message() {
    let outcome = panic::catch_unwind(|| {
        check("the handler never returns")
            .limit(Duration::from_millis(200))
            .run(|| {
                loop {
                    std::thread::park();
                }
            })
    });
    let payload = outcome.expect_err("a hung body must fail the check");
    let message = payload
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(message.contains("did not finish in 0 s"), "{message}");
    assert!(message.contains("the handler never returns"), "{message}");
}

#[test]
fn watchdog_reports_the_checks_own_panic() {
    let outcome = panic::catch_unwind(|| check("unused").run(|| panic!("expected 3, got 1")));
    let payload = outcome.expect_err("the body's panic must propagate");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"expected 3, got 1"));
}

#[test]
fn paused_clock_jumps_over_long_timers() {
    check("the paused clock did not advance").paused(|| async {
        let start = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(start.elapsed() >= Duration::from_secs(3600));
    });
}

#[test]
fn gauge_counts_guards_until_they_drop() {
    check("the gauge never settled").paused(|| async {
        let gauge = Gauge::new();
        let guard = gauge.guard();
        let held = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(guard);
        });
        assert_eq!(gauge.live(), 1);
        assert!(!gauge.settles_to(0, Duration::from_secs(1)).await);
        assert!(gauge.settles_to(0, Duration::from_secs(10)).await);
        assert_eq!(gauge.started(), 1);
        held.await.unwrap();
    });
}

#[test]
fn real_server_answers_over_loopback_and_transcript_is_stable() {
    check("the test server never answered").real(|| async {
        let server =
            TestServer::serve(|_req| async { Response::new(Full::new("hello\n".into())) }).await;
        let mut conn = server.connect().await;
        let response = conn.get("/").await.unwrap();
        let mut transcript = Transcript::new();
        transcript.request("GET", "/").response(&response);
        assert_eq!(
            transcript.render(),
            "> GET /\n< 200 OK\n< content-length: 6\n<\n< hello\n"
        );
        assert!(
            response.header("date").is_some(),
            "hyper sends a date header"
        );
    });
}

#[test]
fn duplex_connection_serves_on_the_paused_clock() {
    check("the in-memory connection never answered").paused(|| async {
        let (mut conn, server) = duplex::http1(|io| async move {
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::from(
                    "in memory",
                ))))
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(io), service)
                .await
        })
        .await;
        assert_eq!(conn.get("/").await.unwrap().text(), "in memory");
        conn.close().await;
        server.task.await.unwrap().unwrap();
        let _ = get("/");
    });
}
