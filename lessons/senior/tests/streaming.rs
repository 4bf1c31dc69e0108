//! Back-pressure through a streamed body, measured: how far a producer gets when its client
//! stops reading.
//!
//! The chain from producer to client is a bounded channel (8 events), hyper's write buffer
//! (it stops asking the body for frames once 16 are queued), and the connection (an
//! in-memory pipe of 16 KiB standing in for the socket). Events are about 1 KiB, so a
//! producer with a bounded channel stops after roughly 8 + 16 + 16 events and waits there; an
//! unbounded channel lets it produce everything into memory; `try_send` sheds the rest. On
//! the paused clock: it moves only when every task is idle, so after one tick the producer
//! is as far as it will ever get.

// Each test file and the example use part of the shared feeds.
#[allow(dead_code)]
mod support {
    pub mod streaming;
}

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use harness::watchdog::check;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use support::streaming::{Feed, Progress, bounded, shedding, unbounded};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tower::ServiceExt;

const HANG: &str = "a paused-clock check spun without yielding";

/// The connection's buffer in each direction, standing in for the socket's.
const PIPE: usize = 16 * 1024;
/// The channel between producer and body.
const CAPACITY: usize = 8;
/// Events the producer would send if nothing stopped it: about 500 KiB.
const TOTAL: usize = 500;
/// How many events can be somewhere between producer and client: the channel, hyper's 16
/// queued frames, the pipe's 16 KiB of 1 KiB events, and one frame in hand at each step.
const IN_FLIGHT_AT_MOST: usize = CAPACITY + 16 + PIPE / 1024 + 4;

/// Serves one `GET /feed` whose body `feed` makes, to a client that sends the request and
/// then reads nothing. Returns the client's end, still open.
async fn client_that_stops_reading(feed: fn(Progress) -> Feed, progress: Progress) -> DuplexStream {
    let (mut client, server) = tokio::io::duplex(PIPE);
    tokio::spawn(async move {
        let service = service_fn(move |_: Request<hyper::body::Incoming>| {
            let body = feed(progress.clone());
            async move { Ok::<_, Infallible>(Response::new(body)) }
        });
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(server), service)
            .await;
    });
    client
        .write_all(b"GET /feed HTTP/1.1\r\nhost: feed.test\r\n\r\n")
        .await
        .unwrap();
    idle().await;
    client
}

/// Returns once every other task is waiting on something other than the clock.
async fn idle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[test]
fn a_bounded_channel_stops_the_producer_when_the_client_stops_reading() {
    check(HANG).paused(|| async {
        let progress = Progress::default();
        let _client =
            client_that_stops_reading(|p| bounded(CAPACITY, TOTAL, p), progress.clone()).await;
        let stopped_at = progress.sent();
        assert!(
            (CAPACITY..=IN_FLIGHT_AT_MOST).contains(&stopped_at),
            "the producer sent {stopped_at} events to a client that reads nothing"
        );
        // A virtual hour later it has not moved: it is waiting in `send`, costing nothing.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(progress.sent(), stopped_at);
    });
}

#[test]
fn the_producer_goes_on_as_soon_as_the_client_reads_again() {
    check(HANG).paused(|| async {
        let progress = Progress::default();
        let mut client =
            client_that_stops_reading(|p| bounded(CAPACITY, TOTAL, p), progress.clone()).await;
        assert!(progress.sent() < TOTAL);
        // Reading drains the pipe, hyper polls the body again, the channel has room, `send`
        // returns: nothing was lost, it was only held back.
        let mut response = Vec::new();
        let mut chunk = vec![0; PIPE];
        while !response.ends_with(b"\r\n0\r\n\r\n") {
            let n = client.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the server closed the connection");
            response.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(progress.sent(), TOTAL);
        let text = String::from_utf8_lossy(&response);
        assert_eq!(text.matches("id: ").count(), TOTAL);
    });
}

#[test]
fn an_unbounded_channel_queues_every_event_in_memory() {
    check(HANG).paused(|| async {
        let progress = Progress::default();
        let _client = client_that_stops_reading(|p| unbounded(TOTAL, p), progress.clone()).await;
        // The client read nothing, and the producer made all 500 KiB: whatever is not in the
        // pipe or hyper's buffer is in the channel.
        assert_eq!(progress.sent(), TOTAL);
    });
}

#[test]
fn try_send_sheds_what_a_slow_client_has_no_room_for() {
    check(HANG).paused(|| async {
        let progress = Progress::default();
        let _client =
            client_that_stops_reading(|p| shedding(CAPACITY, TOTAL, p), progress.clone()).await;
        let (sent, shed) = (progress.sent(), progress.shed());
        assert_eq!(
            sent + shed,
            TOTAL,
            "the producer finished its loop without waiting"
        );
        assert!(
            (CAPACITY..=IN_FLIGHT_AT_MOST).contains(&sent),
            "{sent} events were queued for a client that reads nothing"
        );
    });
}

// ANCHOR: timeout
#[test]
fn a_timeout_around_the_service_does_not_cover_the_streamed_body() {
    check(HANG).paused(|| async {
        // tower's `Timeout` races the *response future*: the head, here ready at once.
        let service = tower::ServiceBuilder::new()
            .timeout(Duration::from_secs(1))
            .service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(slow_body())) });
        let start = tokio::time::Instant::now();
        let response = service.oneshot(Request::new(())).await.unwrap();
        // The body is polled after the service returned, outside the timeout: 30 s of it.
        let body = BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(body.len(), 3);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    });
}
// ANCHOR_END: timeout

/// Three frames, ten seconds apart.
fn slow_body() -> StreamBody<BoxStream<'static, Result<Frame<Bytes>, Infallible>>> {
    let frames = futures::stream::iter(0..3).then(|_| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok(Frame::data(Bytes::from_static(b".")))
    });
    StreamBody::new(frames.boxed())
}
