//! The same `Router` behind `axum::serve` and behind our loop, on the paused clock.
//!
//! Both take axum's `Listener` trait, so the checks hand them an in-memory listener: every
//! timeout then fires at an exact virtual instant, and a virtual day costs no real time.

use std::time::Duration;

use harness::watchdog::check;
use lessons_professional_axum::{app, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

const HANG: &str = "a paused-clock check spun without yielding";
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const DAY: Duration = Duration::from_secs(24 * 3600);
const HALF_SENT: &[u8] = b"GET / HTTP/1.1\r\nhost: workshop.test\r\n";

/// A listener whose connections are in-memory pipes the check opens with `connect`.
struct MemoryListener(mpsc::UnboundedReceiver<DuplexStream>);

impl axum::serve::Listener for MemoryListener {
    type Io = DuplexStream;
    type Addr = ();

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.0.recv().await {
            Some(io) => (io, ()),
            // No more clients: a listener that never accepts again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Opens in-memory connections to a listener.
struct Connector(mpsc::UnboundedSender<DuplexStream>);

impl Connector {
    fn connect(&self) -> DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        self.0.send(server).expect("the server is listening");
        client
    }
}

fn memory_listener() -> (MemoryListener, Connector) {
    let (tx, rx) = mpsc::unbounded_channel();
    (MemoryListener(rx), Connector(tx))
}

/// Reads until the server closes the connection, for at most a virtual day: what it sent
/// and when it closed, or `None` if it never did.
async fn closed_after(client: &mut DuplexStream) -> Option<(String, Duration)> {
    let start = Instant::now();
    let mut sent = Vec::new();
    tokio::time::timeout(DAY, client.read_to_end(&mut sent))
        .await
        .ok()
        .map(|_| (String::from_utf8_lossy(&sent).into_owned(), start.elapsed()))
}

#[test]
fn our_loop_serves_the_router() {
    check(HANG).paused(|| async {
        let (listener, connector) = memory_listener();
        tokio::spawn(serve(listener, app(), HEADER_TIMEOUT));
        let mut client = connector.connect();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: workshop.test\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let (answer, _) = closed_after(&mut client)
            .await
            .expect("answered and closed");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("hello from axum\n"), "{answer}");
    });
}

// ANCHOR: our_loop_test
#[test]
fn our_loop_closes_a_half_sent_head_at_the_header_timeout() {
    check(HANG).paused(|| async {
        let (listener, connector) = memory_listener();
        tokio::spawn(serve(listener, app(), HEADER_TIMEOUT));
        let mut client = connector.connect();
        client.write_all(HALF_SENT).await.unwrap();
        let (answer, after) = closed_after(&mut client).await.expect("closed");
        assert_eq!(after, HEADER_TIMEOUT);
        // hyper closes a timed-out head without an answer.
        assert_eq!(answer, "");
    });
}
// ANCHOR_END: our_loop_test

#[test]
fn our_loop_closes_a_client_that_sends_nothing_at_the_header_timeout() {
    check(HANG).paused(|| async {
        let (listener, connector) = memory_listener();
        tokio::spawn(serve(listener, app(), HEADER_TIMEOUT));
        let mut client = connector.connect();
        let (_, after) = closed_after(&mut client).await.expect("closed");
        assert_eq!(after, HEADER_TIMEOUT);
    });
}

// ANCHOR: axum_serve_test
#[test]
fn axum_serve_never_closes_a_half_sent_head() {
    check(HANG).paused(|| async {
        let (listener, connector) = memory_listener();
        tokio::spawn(async move { axum::serve(listener, app()).await });
        let mut client = connector.connect();
        client.write_all(HALF_SENT).await.unwrap();
        // No timer in axum::serve's builder: a virtual day later the connection is still open.
        assert_eq!(closed_after(&mut client).await, None);
        // And it still works: the rest of the head gets a normal answer.
        client
            .write_all(b"connection: close\r\n\r\n")
            .await
            .unwrap();
        let (answer, _) = closed_after(&mut client).await.expect("answered");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    });
}
// ANCHOR_END: axum_serve_test

#[test]
fn axum_serve_never_closes_a_client_that_sends_nothing() {
    check(HANG).paused(|| async {
        let (listener, connector) = memory_listener();
        tokio::spawn(async move { axum::serve(listener, app()).await });
        let mut client = connector.connect();
        assert_eq!(closed_after(&mut client).await, None);
    });
}

#[test]
fn our_loop_on_a_tcp_listener_closes_a_half_sent_head() {
    // The production path: a real `TcpListener` and the real clock, with a short timeout.
    check(HANG).real(|| async {
        let header_timeout = Duration::from_millis(200);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, app(), header_timeout));
        let start = Instant::now();
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(HALF_SENT).await.unwrap();
        let mut sent = Vec::new();
        client.read_to_end(&mut sent).await.unwrap();
        assert!(sent.is_empty(), "closed without an answer");
        assert!(start.elapsed() >= header_timeout, "{:?}", start.elapsed());
    });
}
