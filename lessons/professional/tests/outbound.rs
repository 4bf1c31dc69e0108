//! Claims of the chapter "Outbound HTTP with reqwest": no timeout by default, what each timeout
//! covers, the stale pooled connection and the idle timeout that avoids it, retries that are
//! safe, and a fan-out with a limit and a deadline. Real servers on 127.0.0.1, real clock.

mod support {
    pub mod outbound;
}

use std::error::Error as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use harness::server::TestServer;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use tokio::net::{TcpSocket, TcpStream};

use support::outbound::{IdleClose, closes_when_idle, silent, trickle};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/outbound_client.rs"]
mod outbound_client;

use outbound_client::{Missing, fan_out, idempotent_503s};

const HANG: &str = "an outbound call was never bounded";

/// The hyper error at the bottom of a reqwest error, if there is one.
fn hyper_cause(error: &reqwest::Error) -> Option<&hyper::Error> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(hyper_error) = cause.downcast_ref::<hyper::Error>() {
            return Some(hyper_error);
        }
        source = cause.source();
    }
    None
}

#[test]
fn without_a_timeout_a_silent_upstream_holds_the_call() {
    check(HANG).real(|| async {
        let (url, mut requests) = silent().await;
        let call = tokio::spawn(async move { reqwest::Client::new().get(url).send().await });
        requests
            .recv()
            .await
            .expect("the upstream read the request");
        // The request is out and nothing bounds it: still waiting long after any sane timeout.
        let waited = tokio::time::timeout(Duration::from_millis(300), call).await;
        assert!(waited.is_err(), "the call ended by itself: {waited:?}");
    });
}

#[test]
fn the_total_timeout_ends_a_call_to_a_silent_upstream() {
    check(HANG).real(|| async {
        let (url, _requests) = silent().await;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        let error = client.get(url).send().await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
    });
}

#[test]
fn a_read_timeout_resets_on_every_read_and_the_total_timeout_does_not() {
    check(HANG).real(|| async {
        // The head at once, then eight body bytes, one every 25 ms: 200 ms in all, never more
        // than 25 ms between reads. Only body reads restart the read timeout; until the head it
        // is one deadline from `send` (tests/go_timeouts.rs).
        let url = trickle(8, Duration::from_millis(25)).await;
        let per_read = reqwest::Client::builder()
            .read_timeout(Duration::from_millis(150))
            .build()
            .unwrap();
        let body = per_read.get(&url).send().await.unwrap().text().await;
        assert_eq!(
            body.unwrap(),
            "xxxxxxxx",
            "the trickle passes a read timeout"
        );

        let total = reqwest::Client::builder()
            .timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        // The head arrives at once; the deadline falls while the body is still trickling.
        let response = total.get(&url).send().await.unwrap();
        let error = response.text().await.unwrap_err();
        // `text()` reports it as a decode error whose cause is the body's timeout.
        assert!(error.is_timeout() && error.is_decode(), "{error:?}");

        // And a read timeout alone does end a call to an upstream that sends nothing.
        let (silent_url, _requests) = silent().await;
        let error = per_read.get(silent_url).send().await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
    });
}

#[test]
fn the_connect_timeout_bounds_a_connect_that_gets_no_answer() {
    check(HANG).real(|| async {
        // A listener that never accepts, with the smallest backlog: once its queue is full the
        // kernel drops further SYNs, so a new connect gets no answer at all.
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        for _ in 0..16 {
            match tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
                Ok(stream) => queued.push(stream.unwrap()),
                Err(_) => break, // this connect hung: the queue is full
            }
        }
        assert!(queued.len() < 16, "the accept queue never filled");

        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        let error = client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap_err();
        assert!(error.is_connect() && error.is_timeout(), "{error:?}");
    });
}

#[test]
fn a_connection_the_upstream_closed_while_idle_is_replaced_quietly() {
    check(HANG).real(|| async {
        let (url, seen) = closes_when_idle(Duration::from_millis(100), IdleClose::OnTime).await;
        let client = reqwest::Client::new(); // pool_idle_timeout: 90 s
        client.get(&url).send().await.unwrap().text().await.unwrap();
        // The upstream's FIN arrives during the quiet spell, long before the next call.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let body = client.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "ok\n");
        assert_eq!((seen.connections(), seen.requests()), (2, 2));
    });
}

#[test]
fn a_pooled_connection_the_upstream_closed_fails_the_next_call() {
    check(HANG).real(|| async {
        let (url, seen) =
            closes_when_idle(Duration::from_millis(100), IdleClose::CrossingTheRequest).await;
        let client = reqwest::Client::new(); // pool_idle_timeout: 90 s
        client.get(&url).send().await.unwrap().text().await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await; // a quiet spell
        let error = client.get(&url).send().await.unwrap_err();
        let cause = hyper_cause(&error).expect("a hyper error underneath");
        assert!(cause.is_incomplete_message(), "{cause:?}");
        assert_eq!(
            cause.to_string(),
            "connection closed before message completed"
        );
        // Not retried: the request was written, the upstream may have acted on it.
        assert_eq!((seen.connections(), seen.requests()), (1, 2));
    });
}

#[test]
fn an_idle_timeout_below_the_upstreams_keep_alive_retires_the_connection_first() {
    check(HANG).real(|| async {
        let (url, seen) =
            closes_when_idle(Duration::from_millis(100), IdleClose::CrossingTheRequest).await;
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_millis(50))
            .build()
            .unwrap();
        client.get(&url).send().await.unwrap().text().await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await; // the same quiet spell
        let body = client.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "ok\n");
        // The pool dropped the idle connection at checkout and opened a fresh one.
        assert_eq!((seen.connections(), seen.requests()), (2, 2));
    });
}

/// An upstream that answers 503 to its first request and 200 after; counts what it saw.
async fn unavailable_once() -> (TestServer, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let server = TestServer::serve(move |_| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        async move {
            let mut response = Response::new(Full::new(Bytes::from("stock: 3\n")));
            if n == 0 {
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            response
        }
    })
    .await;
    (server, seen)
}

#[test]
fn a_503_to_a_get_is_retried_once_and_a_post_is_not() {
    check(HANG).real(|| async {
        let client = reqwest::Client::builder()
            .retry(idempotent_503s("127.0.0.1"))
            .build()
            .unwrap();

        let (server, seen) = unavailable_once().await;
        let response = client.get(server.url("/stock")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(seen.load(Ordering::Relaxed), 2, "the GET was sent twice");

        let (server, seen) = unavailable_once().await;
        let response = client.post(server.url("/orders")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(seen.load(Ordering::Relaxed), 1, "the POST was sent once");
    });
}

/// Counts the upstream's handlers running now, and the most that ever ran at once.
#[derive(Clone, Default)]
struct InFlight {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

struct Running(InFlight);

impl InFlight {
    fn enter(&self) -> Running {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        Running(self.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn a_fan_out_keeps_to_its_limit_and_returns_by_its_deadline() {
    check(HANG).real(|| async {
        let in_flight = InFlight::default();
        let gauge = in_flight.clone();
        let server = TestServer::serve(move |request| {
            let running = gauge.enter();
            async move {
                let _running = running;
                if request.uri().path() == "/price/stuck" {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                Response::new(Full::new(Bytes::from("100")))
            }
        })
        .await;
        let items = ["stuck", "1", "2", "3", "4"];
        let urls: Vec<String> = items
            .iter()
            .map(|i| server.url(&format!("/price/{i}")))
            .collect();

        let client = reqwest::Client::new();
        let results = fan_out(&client, &urls, 2, Duration::from_millis(300)).await;

        assert!(
            matches!(results[0], Err(Missing::PastDeadline)),
            "{results:?}"
        );
        assert!(
            results[1..]
                .iter()
                .all(|r| matches!(r, Ok(p) if p == "100")),
            "{results:?}"
        );
        // The stuck call held one of the two slots the whole time; never more than two ran.
        assert_eq!(in_flight.most.load(Ordering::SeqCst), 2);
        // Dropping the call at the deadline closed its connection, and hyper dropped the
        // upstream's handler.
        let now = in_flight.now.clone();
        let settled = tokio::time::timeout(Duration::from_secs(5), async {
            while now.load(Ordering::SeqCst) != 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        assert!(settled.await.is_ok(), "the stuck handler is still running");
    });
}
