//! The deterministic-testing chapter's claims: how the paused clock moves, hyper over an
//! in-memory pipe, polling hyper's connection future by hand, scripting a peer byte by byte,
//! raw HTTP snapshots, and why a sleep is a guess.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use harness::watchdog::check;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready};

const DEADLINE: Duration = Duration::from_secs(10);
const HANG: &str = "a test waited for an event that never came";

/// The service under test: `hello\n`, and a count of calls.
fn hello(
    calls: Arc<AtomicUsize>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send,
> + Clone {
    service_fn(move |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Ok(Response::new(Full::new(Bytes::from("hello\n")))) }
    })
}

// ANCHOR: blocking_stops_the_clock
#[test]
fn work_on_the_blocking_pool_stops_the_clock_from_jumping() {
    check(HANG).paused(|| async {
        let start = Instant::now();
        // 20 ms of real time on a blocking thread, against 10 s of tokio time.
        let blocking =
            tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(20)));
        tokio::select! {
            _ = blocking => {}
            _ = tokio::time::sleep(Duration::from_secs(10)) => panic!("the clock jumped"),
        }
        // The runtime was idle the whole time, yet the clock did not move: a blocking task
        // in flight inhibits auto-advance.
        assert_eq!(start.elapsed(), Duration::ZERO);
    });
}
// ANCHOR_END: blocking_stops_the_clock

#[test]
fn a_plain_thread_does_not_stop_the_clock() {
    check(HANG).paused(|| async {
        let start = Instant::now();
        let (finish, finished) = std::sync::mpsc::channel::<()>();
        let (done, mut done_rx) = tokio::sync::oneshot::channel::<()>();
        // A thread that works until the test lets it stop.
        let worker = std::thread::spawn(move || {
            let _ = finished.recv();
            let _ = done.send(());
        });
        tokio::select! {
            _ = &mut done_rx => panic!("the thread cannot finish before it is told to"),
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
        // The thread was still working, and 10 s of tokio time went by regardless.
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        finish.send(()).unwrap();
        done_rx.await.unwrap();
        worker.join().unwrap();
    });
}

// ANCHOR: duplex_by_hand
#[test]
fn hyper_serves_over_an_in_memory_pipe() {
    check(HANG).paused(|| async {
        let calls = Arc::new(AtomicUsize::new(0));
        // Two ends of a pipe: bytes written to one are read from the other, no kernel.
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let service = hello(Arc::clone(&calls));
        tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(server_io), service));

        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(client_io))
                .await
                .unwrap();
        tokio::spawn(connection);
        let request = Request::get("/").body(Full::<Bytes>::default()).unwrap();
        let response = sender.send_request(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hello\n");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}
// ANCHOR_END: duplex_by_hand

// ANCHOR: by_hand
#[test]
fn hyper_waits_for_the_whole_head_polled_by_hand() {
    check(HANG).paused(|| async {
        let calls = Arc::new(AtomicUsize::new(0));
        // A peer whose every read and write the test supplies, one action at a time.
        let (io, mut peer) = tokio_test::io::Builder::new().build_with_handle();
        let mut connection = tokio_test::task::spawn(
            http1::Builder::new()
                .auto_date_header(false)
                .serve_connection(TokioIo::new(io), hello(Arc::clone(&calls))),
        );
        assert_pending!(connection.poll()); // nothing has arrived

        peer.read(b"GET / HT");
        assert!(connection.is_woken());
        assert_pending!(connection.poll()); // half a request line
        peer.read(b"TP/1.1\r\nhost: workshop.test\r\n");
        assert_pending!(connection.poll()); // one header, no blank line yet
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "called before the head was complete"
        );

        peer.read(b"\r\n");
        peer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhello\n");
        assert_pending!(connection.poll()); // answered; keep-alive: waits for the next
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        drop(peer); // the peer closes
        assert!(assert_ready!(connection.poll()).is_ok());
    });
}
// ANCHOR_END: by_hand

// ANCHOR: script
#[test]
fn a_scripted_peer_trickles_a_header_in_three_pieces() {
    check(HANG).paused(|| async {
        let start = Instant::now();
        let calls = Arc::new(AtomicUsize::new(0));
        let io = tokio_test::io::Builder::new()
            .read(b"GET / HTTP/1.1\r\nho")
            .wait(Duration::from_secs(2))
            .read(b"st: workshop.te")
            .wait(Duration::from_secs(2))
            .read(b"st\r\n\r\n")
            // Exactly these bytes, or the mock panics: "unexpected write".
            .write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhello\n")
            .build(); // then end of file: the peer closes
        http1::Builder::new()
            .auto_date_header(false)
            .serve_connection(TokioIo::new(io), hello(Arc::clone(&calls)))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(4),
            "two waits, in virtual time"
        );
    });
}
// ANCHOR_END: script

/// Sends `request` as raw bytes over a pipe to hyper and returns everything hyper wrote.
async fn raw_exchange(date_header: bool, request: &[u8]) -> String {
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let service = hello(Arc::new(AtomicUsize::new(0)));
    tokio::spawn(
        http1::Builder::new()
            .auto_date_header(date_header)
            .serve_connection(TokioIo::new(server), service),
    );
    client.write_all(request).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(DEADLINE, client.read_to_string(&mut response))
        .await
        .expect("hyper never closed the connection")
        .unwrap();
    response
}

// ANCHOR: snapshot
#[test]
fn the_raw_exchange_as_a_snapshot() {
    check(HANG).paused(|| async {
        let request = b"GET / HTTP/1.1\r\nhost: workshop.test\r\nconnection: close\r\n\r\n";
        let response = raw_exchange(false, request).await;
        insta::assert_snapshot!(response.replace("\r\n", "\n"));
    });
}
// ANCHOR_END: snapshot

#[test]
fn hyper_writes_a_date_header_unless_told_not_to() {
    check(HANG).paused(|| async {
        let request = b"GET / HTTP/1.1\r\nhost: workshop.test\r\nconnection: close\r\n\r\n";
        assert!(raw_exchange(true, request).await.contains("\r\ndate: "));
        assert!(!raw_exchange(false, request).await.contains("date"));
    });
}

// ANCHOR: guess
#[test]
fn a_sleep_is_a_guess_and_an_event_is_not() {
    check(HANG).paused(|| async {
        // Work that takes 150 ms today (tomorrow, on a loaded CI machine, longer).
        let work = tokio::spawn(tokio::time::sleep(Duration::from_millis(150)));

        tokio::time::sleep(Duration::from_millis(100)).await; // the guess
        assert!(
            !work.is_finished(),
            "the guess was too short: this assert would fail"
        );

        // Waiting for the event itself: done the moment the work is, whenever that is.
        tokio::time::timeout(DEADLINE, work).await.unwrap().unwrap();
    });
}
// ANCHOR_END: guess
