//! A streamed response's producer learns that the client left from its failed sends.
//!
//! Backs R20 of the bank (hyper 1.12, tokio 1.54): the response body owns the channel's
//! receiver; when the client hangs up, hyper drops the body, and from then on every `send`
//! fails at once. A producer that stops on the first failed send ends within one tick; one
//! that ignores the result (`let _ = tx.send(..).await`) runs on for as long as the process
//! does. On the paused clock, over an in-memory connection.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use harness::duplex;
use harness::leak::Gauge;
use harness::watchdog::check;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

const HANG: &str = "the stream's first event never arrived";
const TICK: Duration = Duration::from_secs(1);

/// Serves one connection whose every response is an endless feed: one event per `TICK`, from a
/// producer task holding a guard of `producers` while it runs.
async fn feed(io: tokio::io::DuplexStream, producers: Gauge, check_sends: bool) {
    let service = service_fn(move |_: Request<hyper::body::Incoming>| {
        let (tx, rx) = mpsc::channel::<Bytes>(1);
        let guard = producers.guard();
        tokio::spawn(async move {
            let _running = guard;
            let mut interval = tokio::time::interval(TICK);
            loop {
                interval.tick().await;
                let sent = tx.send(Bytes::from_static(b"data: tick\n\n")).await;
                if check_sends && sent.is_err() {
                    break; // the receiver is gone: the client left
                }
            }
        });
        let frames = futures::stream::unfold(rx, |mut rx| async move {
            let event = rx.recv().await?;
            Some((Ok::<_, Infallible>(Frame::data(event)), rx))
        });
        async move { Ok::<_, Infallible>(Response::new(StreamBody::new(frames.boxed()))) }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// A client reads the first event of the feed, then hangs up. Returns the producers' gauge.
async fn read_one_event_and_leave(check_sends: bool) -> Gauge {
    let producers = Gauge::new();
    let gauge = producers.clone();
    let (client, _server) = duplex::raw(move |io| feed(io, gauge, check_sends));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(client))
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let response = sender
        .send_request(Request::new(Empty::<Bytes>::new()))
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "data: tick\n\n");
    drop(body);
    drop(sender);
    driver.abort();
    producers
}

#[test]
fn a_producer_that_checks_its_sends_stops_when_the_client_leaves() {
    check(HANG).paused(|| async {
        let producers = read_one_event_and_leave(true).await;
        assert!(
            producers.settles_to(0, 3 * TICK).await,
            "the producer ran on"
        );
    });
}

#[test]
fn a_producer_that_ignores_its_sends_runs_on_after_the_client_left() {
    check(HANG).paused(|| async {
        let producers = read_one_event_and_leave(false).await;
        // An hour of virtual time later, it is still producing into a closed channel.
        assert!(!producers.settles_to(0, Duration::from_secs(3600)).await);
    });
}
