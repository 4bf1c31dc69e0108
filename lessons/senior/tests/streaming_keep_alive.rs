//! A quiet SSE feed learns that its client left only when it next sends, or when it waits
//! for the departure itself.
//!
//! The upstream sends nothing; the client reads the response head and then drops its
//! connection. A producer that only forwards events holds on for as long as the upstream
//! stays quiet; one that sends a keep-alive comment every 15 s ends within one interval; one
//! that waits on `Sender::closed` ends as soon as hyper drops the body. On the paused clock,
//! over an in-memory connection.

// Each test file and the example use part of the shared feeds.
#[allow(dead_code)]
mod support {
    pub mod streaming;
}

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use harness::duplex;
use harness::leak::{Gauge, Guard};
use harness::watchdog::check;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use support::streaming::{Feed, keep_alive, quiet, watching};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const HANG: &str = "a paused-clock check spun without yielding";
const EVERY: Duration = Duration::from_secs(15);

type MakeFeed = fn(mpsc::Receiver<Bytes>, Guard) -> Feed;

/// Serves one quiet feed; the client reads the head, then leaves. Returns the producers'
/// gauge and the upstream's sender (kept, so the upstream is quiet rather than ended).
async fn client_reads_the_head_and_leaves(feed: MakeFeed) -> (Gauge, mpsc::Sender<Bytes>) {
    let producers = Gauge::new();
    let (upstream_tx, upstream_rx) = mpsc::channel::<Bytes>(1);
    let gauge = producers.clone();
    let upstream = std::sync::Mutex::new(Some(upstream_rx));
    let (mut client, _server) = duplex::raw(move |io| async move {
        let service = service_fn(move |_: Request<hyper::body::Incoming>| {
            let body = feed(
                upstream.lock().unwrap().take().expect("one request"),
                gauge.guard(),
            );
            async move { Ok::<_, Infallible>(Response::new(body)) }
        });
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .await;
    });
    client
        .write_all(b"GET /events HTTP/1.1\r\nhost: feed.test\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        client.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"));
    assert_eq!(producers.live(), 1);
    drop(client);
    (producers, upstream_tx)
}

#[test]
fn a_quiet_feed_without_keep_alive_outlives_its_client() {
    check(HANG).paused(|| async {
        let (producers, _upstream) = client_reads_the_head_and_leaves(quiet).await;
        assert!(!producers.settles_to(0, Duration::from_secs(3600)).await);
    });
}

#[test]
fn a_keep_alive_ends_the_producer_within_one_interval() {
    check(HANG).paused(|| async {
        let (producers, _upstream) =
            client_reads_the_head_and_leaves(|up, held| keep_alive(up, EVERY, held)).await;
        // Gone at the first keep-alive after the client left (the interval started with the
        // request, so at most one interval later), and not a moment before it.
        assert!(
            !producers
                .settles_to(0, EVERY - Duration::from_secs(1))
                .await
        );
        assert!(producers.settles_to(0, Duration::from_secs(2)).await);
    });
}

#[test]
fn waiting_on_closed_ends_the_producer_when_hyper_drops_the_body() {
    check(HANG).paused(|| async {
        let (producers, _upstream) = client_reads_the_head_and_leaves(watching).await;
        assert!(producers.settles_to(0, Duration::from_millis(1)).await);
    });
}
