//! The Go timeouts that have no test elsewhere in the workshop: reqwest's client timeouts
//! (Go's `http.Client.Timeout` and `Transport` fields) on a scripted loopback upstream, and
//! tower-http's `TimeoutLayer` against Go's `TimeoutHandler`. `connect_timeout` and
//! `pool_idle_timeout` are checked in `outbound.rs`.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use harness::duplex;
use harness::leak::Gauge;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;

mod support {
    pub mod go_timeouts;
}

use support::go_timeouts::{Script, Upstream};

const HANG: &str = "a client-timeout check hung: did a timeout fail to fire?";
const SHORT: Duration = Duration::from_millis(300);

fn client(
    configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> reqwest::Client {
    configure(reqwest::Client::builder()).build().unwrap()
}

// ANCHOR: total
#[test]
fn the_total_timeout_also_covers_reading_the_body() {
    check(HANG).real(|| async {
        let upstream = Upstream::start(Script::HeadThenStall).await;
        let client = client(|b| b.timeout(SHORT));
        // The head arrived in time: `send` succeeds...
        let response = client.get(upstream.url()).send().await.unwrap();
        assert_eq!(response.status(), 200);
        // ...and the same deadline, still running, ends the stalled body (as Go's
        // `Client.Timeout` does).
        let error = response.bytes().await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
    });
}
// ANCHOR_END: total

// ANCHOR: header
#[test]
fn a_timeout_around_send_bounds_the_wait_for_the_head_only() {
    check(HANG).real(|| async {
        // `send` resolves when the head has arrived: a deadline around it is Go's
        // `ResponseHeaderTimeout`.
        let silent = Upstream::start(Script::Silent).await;
        let client = client(|b| b);
        let waited = tokio::time::timeout(SHORT, client.get(silent.url()).send()).await;
        assert!(waited.is_err(), "no head, so the deadline fired");

        let stalled = Upstream::start(Script::HeadThenStall).await;
        let mut response = tokio::time::timeout(SHORT, client.get(stalled.url()).send())
            .await
            .expect("the head came in time")
            .unwrap();
        // The body is outside that deadline: its first bytes are still read after it.
        assert_eq!(response.chunk().await.unwrap().unwrap(), "hello");
    });
}
// ANCHOR_END: header

// ANCHOR: read
#[test]
fn the_read_timeout_is_one_deadline_for_the_head() {
    check(HANG).real(|| async {
        let upstream = Upstream::start(Script::Silent).await;
        let client = client(|b| b.read_timeout(SHORT));
        let error = client.get(upstream.url()).send().await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
    });
}

#[test]
fn bytes_of_the_head_do_not_reset_the_read_timeout() {
    check(HANG).real(|| async {
        // The head comes in six pieces 100 ms apart: no gap is near the read timeout, but the
        // whole head takes 600 ms. A timer reset by every read would let it through.
        let gap = Duration::from_millis(100);
        let upstream = Upstream::start(Script::HeadInPieces { gap }).await;
        let read_timeout = Duration::from_millis(400);
        let client = client(|b| b.read_timeout(read_timeout));
        let start = Instant::now();
        let error = client.get(upstream.url()).send().await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert!(start.elapsed() >= read_timeout, "{:?}", start.elapsed());
    });
}

#[test]
fn the_read_timeout_then_ends_a_body_that_stalls_between_reads() {
    check(HANG).real(|| async {
        let upstream = Upstream::start(Script::HeadThenStall).await;
        let client = client(|b| b.read_timeout(SHORT));
        let mut response = client.get(upstream.url()).send().await.unwrap();
        assert_eq!(response.chunk().await.unwrap().unwrap(), "hello");
        let error = response.chunk().await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
    });
}

#[test]
fn the_read_timeout_restarts_at_every_read_so_a_trickle_outlives_it() {
    check(HANG).real(|| async {
        let gap = Duration::from_millis(100);
        let upstream = Upstream::start(Script::Trickle { gap }).await;
        let read_timeout = Duration::from_millis(400);
        let client = client(|b| b.read_timeout(read_timeout));
        let start = Instant::now();
        let body = client
            .get(upstream.url())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "abcdef");
        // Six gaps of 100 ms: the body took longer than the read timeout and was never cut.
        assert!(start.elapsed() > read_timeout, "{:?}", start.elapsed());
    });
}
// ANCHOR_END: read

// ANCHOR: timeout_handler
#[test]
fn the_timeout_layer_drops_the_handler_but_not_the_work_it_spawned() {
    check(HANG).paused(|| async {
        let handler = Gauge::new();
        let spawned = Gauge::new();
        let (h, s) = (handler.clone(), spawned.clone());
        let service = ServiceBuilder::new()
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_secs(1),
            ))
            .service_fn(move |_request: Request<hyper::body::Incoming>| {
                let (handling, detached) = (h.guard(), s.guard());
                async move {
                    let _handling = handling;
                    tokio::spawn(async move {
                        let _detached = detached;
                        tokio::time::sleep(Duration::from_secs(10)).await;
                    });
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("late\n"))))
                }
            });
        let (mut client, _server) = duplex::raw(|io| async move {
            auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
                .await
        });
        let start = Instant::now();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 12];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 503");
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // Go's TimeoutHandler lets the handler's goroutine run on; here its future is gone...
        assert_eq!(handler.live(), 0);
        // ...while the task it spawned runs to its end, 9 s later.
        assert_eq!(spawned.live(), 1);
        assert!(spawned.settles_to(0, Duration::from_secs(60)).await);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    });
}
// ANCHOR_END: timeout_handler
