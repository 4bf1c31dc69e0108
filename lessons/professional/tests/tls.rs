//! TLS in front of hyper (rustls 0.23 through tokio-rustls 0.26, ring provider).
//!
//! The handshake is I/O that happens before hyper is handed the connection, so hyper's header
//! timeout does not cover it: only a timeout around `TlsAcceptor::accept` does. ALPN tells the
//! server which protocol the client chose, and the handshake runs in the connection's task.

use std::time::Duration;

use bytes::Bytes;
use harness::duplex;
use harness::watchdog::check;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

#[allow(dead_code)]
#[path = "../examples/tls_server.rs"]
mod example;

mod support {
    pub mod tls;
}

use example::Timeouts;
use support::tls::Pair;

const HANG: &str = "a TLS check hung: is a handshake waiting for bytes that never come?";
const HANDSHAKE: Duration = Duration::from_secs(10);
const HEADER: Duration = Duration::from_secs(5);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Serves one in-memory connection through `serve_tls` with `timeouts`.
fn serve_one(
    pair: &Pair,
    timeouts: Timeouts,
) -> (
    DuplexStream,
    duplex::ServerSide<Result<(), example::BoxError>>,
) {
    let acceptor = pair.acceptor.clone();
    duplex::raw(move |io| example::serve_tls(acceptor, io, timeouts))
}

/// Reads until the peer closes, for at most a virtual day: when it closed, or `None`.
async fn closed_after<R: AsyncReadExt + Unpin>(client: &mut R) -> Option<Duration> {
    let start = Instant::now();
    let mut sink = Vec::new();
    tokio::time::timeout(DAY, client.read_to_end(&mut sink))
        .await
        .ok()
        .map(|_| start.elapsed())
}

// ANCHOR: silent_client
#[test]
fn without_a_handshake_timeout_a_silent_client_holds_its_connection_for_ever() {
    check(HANG).paused(|| async {
        let pair = Pair::new();
        let timeouts = Timeouts {
            handshake: None,
            header: HEADER,
        };
        let (mut client, server) = serve_one(&pair, timeouts);
        // The client opened the connection and never sends a ClientHello. hyper's 5 s header
        // timeout is configured, but hyper has not been started: the handshake is still on.
        assert_eq!(closed_after(&mut client).await, None);
        assert!(!server.is_finished());
    });
}

#[test]
fn a_handshake_timeout_closes_a_silent_client() {
    check(HANG).paused(|| async {
        let pair = Pair::new();
        let timeouts = Timeouts {
            handshake: Some(HANDSHAKE),
            header: HEADER,
        };
        let (mut client, server) = serve_one(&pair, timeouts);
        assert_eq!(closed_after(&mut client).await, Some(HANDSHAKE));
        let error = server.task.await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), "TLS handshake timed out");
    });
}
// ANCHOR_END: silent_client

#[test]
fn the_handshake_deadline_covers_the_whole_handshake_not_just_the_first_byte() {
    check(HANG).paused(|| async {
        let pair = Pair::new();
        let timeouts = Timeouts {
            handshake: Some(HANDSHAKE),
            header: HEADER,
        };
        let start = Instant::now();
        let (client, server) = serve_one(&pair, timeouts);
        // A real client writes its ClientHello, then reads end of file and gives up; its
        // write half stays open, so the server, having answered, waits for the next flight.
        let (mut ours, theirs) = tokio::io::split(client);
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stuck = tokio::io::join(tokio::io::empty(), theirs);
        assert!(pair.connector(&[b"h2"]).connect(name, stuck).await.is_err());
        let mut first = [0u8; 1];
        ours.read_exact(&mut first).await.unwrap();
        assert_eq!(
            first[0], 0x16,
            "the server's handshake record: it got the ClientHello"
        );
        let error = server.task.await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), "TLS handshake timed out");
        assert_eq!(start.elapsed(), HANDSHAKE);
    });
}

// ANCHOR: alpn_test
/// Sends one GET over a TLS connection whose client offers `alpn`, with hyper's client for
/// the protocol ALPN chose; returns that protocol and the answer's version and text.
async fn get_over(alpn: &[&[u8]]) -> (Option<Vec<u8>>, Version, String) {
    let pair = Pair::new();
    let timeouts = Timeouts {
        handshake: Some(HANDSHAKE),
        header: HEADER,
    };
    let (client, _server) = serve_one(&pair, timeouts);
    let tls = pair.connect(alpn, client).await.unwrap();
    let chosen = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let request = Request::get("https://localhost/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = if chosen.as_deref() == Some(b"h2".as_slice()) {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await.unwrap()
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await.unwrap()
    };
    let version = response.version();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (chosen, version, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn alpn_h2_is_served_as_http2() {
    check(HANG).paused(|| async {
        let (chosen, version, text) = get_over(&[b"h2", b"http/1.1"]).await;
        assert_eq!(chosen.as_deref(), Some(b"h2".as_slice()));
        assert_eq!(
            (version, text.as_str()),
            (Version::HTTP_2, "hello over HTTP/2.0\n")
        );
    });
}

#[test]
fn alpn_http11_is_served_as_http1() {
    check(HANG).paused(|| async {
        let (chosen, version, text) = get_over(&[b"http/1.1"]).await;
        assert_eq!(chosen.as_deref(), Some(b"http/1.1".as_slice()));
        assert_eq!(
            (version, text.as_str()),
            (Version::HTTP_11, "hello over HTTP/1.1\n")
        );
    });
}
// ANCHOR_END: alpn_test

#[test]
fn a_client_without_alpn_is_served_as_http1() {
    check(HANG).paused(|| async {
        let (chosen, version, _) = get_over(&[]).await;
        assert_eq!(chosen, None);
        assert_eq!(version, Version::HTTP_11);
    });
}

#[test]
fn a_client_offering_no_protocol_we_speak_is_refused_in_the_handshake() {
    check(HANG).paused(|| async {
        let pair = Pair::new();
        let timeouts = Timeouts {
            handshake: Some(HANDSHAKE),
            header: HEADER,
        };
        let (client, server) = serve_one(&pair, timeouts);
        // rustls picks the first of the server's protocols the client offers; with none in
        // common it ends the handshake with a `no_application_protocol` alert.
        assert!(pair.connect(&[b"spdy/3"], client).await.is_err());
        let error = server.task.await.unwrap().unwrap_err();
        assert!(
            error.to_string() == "peer doesn't support any known protocol",
            "{error}"
        );
    });
}

#[test]
fn after_the_handshake_the_header_timeout_covers_the_first_byte() {
    check(HANG).paused(|| async {
        let pair = Pair::new();
        let timeouts = Timeouts {
            handshake: Some(HANDSHAKE),
            header: HEADER,
        };
        let (client, server) = serve_one(&pair, timeouts);
        let mut tls = pair.connect(&[b"http/1.1"], client).await.unwrap();
        // Handshake done, not one byte of HTTP sent: `http1_only` started the header timer.
        assert_eq!(closed_after(&mut tls).await, Some(HEADER));
        let error = server.task.await.unwrap().unwrap_err();
        let error: &hyper::Error = error.downcast_ref().expect("a hyper::Error");
        assert!(error.is_timeout(), "{error:?}");
    });
}

// The accept loop on real sockets and the real clock.

/// Starts `example::serve` on a loopback port with `limit` connections at a time.
async fn start_loop(pair: &Pair, limit: usize, timeouts: Timeouts) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(example::serve(
        listener,
        pair.acceptor.clone(),
        limit,
        timeouts,
    ));
    addr
}

/// Connects, handshakes and sends one HTTP/1.1 GET; returns the answer's status line.
async fn https_get(pair: &Pair, addr: std::net::SocketAddr) -> String {
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut tls = pair.connect(&[b"http/1.1"], stream).await.unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

// ANCHOR: permit_test
#[test]
fn a_silent_client_holds_a_connection_permit_until_the_handshake_timeout() {
    check(HANG).real(|| async {
        let pair = Pair::new();
        let handshake = Duration::from_millis(300);
        let timeouts = Timeouts {
            handshake: Some(handshake),
            header: HEADER,
        };
        let addr = start_loop(&pair, 1, timeouts).await;
        let start = Instant::now();
        // The only permit goes to a client that opens TCP and never sends a ClientHello.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        // The next client completes TCP into the backlog, but the loop cannot accept it
        // until the silent one's permit comes back: only the handshake timeout frees it.
        let status = https_get(&pair, addr).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(
            start.elapsed() >= handshake,
            "served before the permit was free"
        );
        assert_eq!(
            silent.read(&mut [0u8; 1]).await.unwrap(),
            0,
            "closed by the server"
        );
    });
}
// ANCHOR_END: permit_test

#[test]
fn a_silent_client_does_not_stall_the_accept_loop_for_others() {
    check(HANG).real(|| async {
        let pair = Pair::new();
        // A handshake timeout far beyond the check's watchdog: if the loop waited on the
        // silent client's handshake, the second client would never be served.
        let timeouts = Timeouts {
            handshake: Some(DAY),
            header: HEADER,
        };
        let addr = start_loop(&pair, 2, timeouts).await;
        let _silent = TcpStream::connect(addr).await.unwrap();
        assert_eq!(https_get(&pair, addr).await, "HTTP/1.1 200 OK");
    });
}
