//! Checks for M03: the edge contract says a request head of up to 16 KiB is served and a
//! larger one is refused with 431 and a closed connection, before the server has buffered it:
//! every head on a connection, however it is cut into pieces.
//!
//! The clients write their request heads by hand: a head over the limit is refused before
//! hyper has read all of it, and only a raw client can go on to see what the server does
//! with the connection, or stop in the middle of a head.

use std::time::Duration;

use bytes::Bytes;
use harness::TestResponse;
use harness::duplex;
use harness::server::TestServer;
use harness::transcript::Transcript;
use harness::watchdog::check;
use hyper::StatusCode;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use m03_header_limit::{serve, serve_connection};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf};

const HANG: &str = "the request was never answered; is the connection task still waiting for \
                    the rest of a request head?";

/// A head over the 16 KiB of the edge contract: half as big again.
const OVERSIZED: usize = 24 * 1024;
/// A head well within the contract, as a browser with many single sign-on cookies sends it.
const LARGE_BUT_ALLOWED: usize = 12 * 1024;
/// An ordinary request head.
const ORDINARY: usize = 1024;
/// The edge contract's limit: a head of exactly this many bytes, request line included, is
/// served.
const LIMIT: usize = 16 * 1024;
/// The pen-tester's script writes its endless head in pieces this small.
const PIECE: usize = 1024;
/// A TCP segment's payload on a path with the smallest MSS IPv4 hosts must accept (536 bytes):
/// how a head can reach the server, however the client wrote it.
const SEGMENT: usize = 536;
/// How many ordinary requests a browser sends on one keep-alive connection in the checks.
const REQUESTS: usize = 20;
/// How far past the limit a server may have read when it refuses a head: one read of hyper's
/// initial read buffer.
const READ_AHEAD: usize = 8 * 1024;

/// A `GET /profile` whose head is exactly `size` bytes, most of them one cookie header; with
/// `finished` false, the blank line that ends the head is left out.
fn head(size: usize, finished: bool) -> Vec<u8> {
    let start = "GET /profile HTTP/1.1\r\nhost: app.test\r\ncookie: user=ada; sso=";
    let end = "\r\n\r\n";
    let padding = size - start.len() - end.len();
    let mut wire = format!("{start}{}{end}", "a".repeat(padding)).into_bytes();
    if !finished {
        wire.truncate(wire.len() - 2);
    }
    wire
}

/// Writes `wire` on its own task (a server that refuses a head may stop reading it, and a
/// failed write is then expected), and reads one response from the other half.
async fn exchange<S>(stream: S, wire: Vec<u8>) -> (TestResponse, ReadHalf<S>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    exchange_paced(stream, vec![wire], Duration::ZERO).await
}

/// [`exchange`], with the client waiting `gap` between one piece and the next.
async fn exchange_paced<S>(
    stream: S,
    pieces: Vec<Vec<u8>>,
    gap: Duration,
) -> (TestResponse, ReadHalf<S>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    tokio::spawn(async move {
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            if writer.write_all(piece).await.is_err() {
                break;
            }
        }
        // Keep the write half open: the client is not leaving, only the server may close.
        std::future::pending::<()>().await;
    });
    (read_response(&mut reader).await, reader)
}

/// Reads until one whole response has arrived (head, then `content-length` bytes of body).
async fn read_response(reader: &mut (impl AsyncRead + Unpin)) -> TestResponse {
    match read_response_or_close(reader).await {
        Ok(response) => response,
        Err(received) => panic!(
            "the server closed the connection without a whole response; a refused head must \
             be answered with 431 first. It sent {:?}",
            String::from_utf8_lossy(&received)
        ),
    }
}

/// One whole response, or what arrived before the server closed the connection.
async fn read_response_or_close(
    reader: &mut (impl AsyncRead + Unpin),
) -> Result<TestResponse, Vec<u8>> {
    let mut received = Vec::new();
    let mut buf = [0; 8192];
    loop {
        if let Some(response) = parse(&received) {
            return Ok(response);
        }
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return Err(received),
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// One complete response at the start of `received`, if there is one.
fn parse(received: &[u8]) -> Option<TestResponse> {
    let text = std::str::from_utf8(received).ok()?;
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let code = lines.next()?.split(' ').nth(1)?;
    let status = StatusCode::from_bytes(code.as_bytes()).ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
            HeaderValue::from_str(value.trim()).ok()?,
        );
    }
    let length = headers
        .get("content-length")
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    (rest.len() >= length).then(|| TestResponse {
        status,
        headers,
        body: Bytes::copy_from_slice(&rest.as_bytes()[..length]),
    })
}

/// Whether the server closes (or resets) the connection within `limit`.
async fn closes_within(reader: &mut (impl AsyncRead + Unpin), limit: Duration) -> bool {
    let mut buf = [0; 1024];
    let closed = async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, closed).await.is_ok()
}

async fn start() -> TestServer {
    TestServer::start(|listener| async move {
        let _ = serve(listener).await;
    })
    .await
}

async fn send(
    server: &TestServer,
    wire: Vec<u8>,
) -> (TestResponse, ReadHalf<tokio::net::TcpStream>) {
    let stream = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connecting to the test server");
    exchange(stream, wire).await
}

fn assert_refused(response: &TestResponse, what: &str) {
    assert_eq!(
        response.status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "{what}, over the 16 KiB of the edge contract, must be refused with 431; the server \
         answered {} {:?}",
        response.status,
        response.text()
    );
}

/// A 24 KiB request head gets 431, and the connection is closed.
#[test]
fn oversized_head_is_refused_and_the_connection_closed() {
    check(HANG).real(|| async {
        let server = start().await;
        let (response, mut reader) = send(&server, head(OVERSIZED, true)).await;
        assert_refused(&response, "a 24 KiB request head");
        assert!(
            closes_within(&mut reader, Duration::from_secs(10)).await,
            "the 24 KiB head got its 431, but the connection stayed open: a client that sent a \
             head that large is not worth keeping, and its next request would be parsed from \
             wherever the server stopped reading"
        );
    });
}

/// A 12 KiB request head, a browser with many cookies, is served.
#[test]
fn large_but_allowed_head_is_served() {
    check(HANG).real(|| async {
        let server = start().await;
        let (response, _reader) = send(&server, head(LARGE_BUT_ALLOWED, true)).await;
        assert_eq!(
            (response.status, response.text().as_str()),
            (StatusCode::OK, "profile of ada (2 cookies)\n"),
            "a 12 KiB request head is within the 16 KiB of the edge contract and must be served"
        );
    });
}

/// 24 KiB of a head that is not finished, and the client stops there: the server must refuse
/// it without waiting for the rest, because until the head is complete it has to buffer it.
/// On the paused clock a minute of silence costs nothing and is far longer than hyper needs.
#[test]
fn oversized_head_is_refused_while_still_arriving() {
    check(HANG).paused(|| async {
        let (client, mut server) = duplex::raw(serve_connection);
        let refused = tokio::time::timeout(
            Duration::from_secs(60),
            exchange(client, head(OVERSIZED, false)),
        )
        .await;
        let Ok((response, _reader)) = refused else {
            panic!(
                "a client sent 24 KiB of a request head, over the 16 KiB limit, and paused \
                 before the end of the head; a minute later the server had not answered. It \
                 is still buffering the head, waiting for its end: a limit checked in the \
                 handler, or one on the number of headers, comes too late or counts the wrong \
                 thing; and a byte bound set on the builder above the contract (24 KiB - 1 \
                 bytes, say) is never reached by the 24,574 bytes sent. The contract's bound \
                 is 16 KiB"
            )
        };
        assert_refused(&response, "a request head still arriving");
        assert!(
            tokio::time::timeout(Duration::from_secs(60), &mut server.task)
                .await
                .is_ok(),
            "the server answered 431 but kept the connection open"
        );
    });
}

/// The whole conversation of a refused head, as a snapshot: status, headers, body, close.
#[test]
fn refused_head_transcript() {
    check(HANG).real(|| async {
        let server = start().await;
        let (response, mut reader) = send(&server, head(OVERSIZED, true)).await;
        let mut transcript = Transcript::new();
        transcript
            .request("GET", "/profile")
            .note("with a 24 KiB request head")
            .response(&response);
        // Only a refusal is worth waiting for: a server that served the head keeps the
        // connection alive, and the transcript already shows what went wrong.
        if response.status == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE {
            if closes_within(&mut reader, Duration::from_secs(10)).await {
                transcript.note("the server closed the connection");
            } else {
                transcript.note("the server kept the connection open");
            }
        }
        insta::assert_snapshot!(transcript.render());
    });
}

/// `head` cut into pieces of `size` bytes, the last one shorter.
fn in_pieces(head: &[u8], size: usize) -> Vec<Vec<u8>> {
    head.chunks(size).map(<[u8]>::to_vec).collect()
}

/// The edge contract's boundary: a head of exactly 16 KiB (16,384 bytes, request line
/// included) is served, written at once or arriving in 536-byte segments; one of 16 KiB and one
/// byte is refused. hyper compares what it has buffered with its limits between reads, so the
/// one-byte-over head arrives as 16 pieces of 1 KiB and then its last byte: after the 16th
/// piece the server holds 16 KiB of a head that is not finished.
#[test]
fn head_limit_is_exactly_16_kib() {
    check(HANG).paused(|| async {
        let gap = Duration::from_millis(10);
        for (pieces, what) in [
            (vec![head(LIMIT, true)], "written at once"),
            (
                in_pieces(&head(LIMIT, true), SEGMENT),
                "arriving in 536-byte segments",
            ),
        ] {
            let (client, _server) = duplex::raw(serve_connection);
            let (response, _reader) =
                tokio::time::timeout(Duration::from_secs(60), exchange_paced(client, pieces, gap))
                    .await
                    .expect("a 16 KiB head was not answered in a virtual minute");
            assert_eq!(
                (response.status, response.text().as_str()),
                (StatusCode::OK, "profile of ada (2 cookies)\n"),
                "a request head of exactly 16 KiB (16,384 bytes) {what} is within the edge \
                 contract's \"up to 16 KiB\" and must be served; a limit of 16,000 bytes is \
                 16 kB, not 16 KiB (a head written at once may be read past it in one read, \
                 and one arriving in small segments is not)"
            );
        }
        let (client, _server) = duplex::raw(serve_connection);
        let (response, _reader) = tokio::time::timeout(
            Duration::from_secs(60),
            exchange_paced(client, in_pieces(&head(LIMIT + 1, true), PIECE), gap),
        )
        .await
        .expect("a head of 16 KiB and one byte was not answered in a virtual minute");
        assert_eq!(
            response.status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "a request head of 16 KiB and one byte (16,385 bytes), arriving 1 KiB at a time, is \
             over the edge contract and must be refused with 431; the server answered {} \
             {:?}. A byte bound above 16 KiB (\"room for the request line\", 20 KiB, 24 KiB \
             and a little less) serves it: the contract counts the whole head, request line \
             included, and 16 * 1024 is that bound in hyper's terms",
            response.status,
            response.text()
        );
    });
}

/// A browser's ordinary 1 KiB requests, twenty of them, then, on the same keep-alive
/// connection, 24 KiB of a head that does not end: the limit holds for every head of a
/// connection, not just the first, and it is a limit on each head, not on the connection.
#[test]
fn oversized_head_on_a_reused_connection_is_refused() {
    check(HANG).paused(|| async {
        let (client, mut server) = duplex::raw(serve_connection);
        let (mut reader, mut writer) = tokio::io::split(client);
        for n in 1..=REQUESTS {
            let sent = writer.write_all(&head(ORDINARY, true)).await;
            let response = match sent {
                Ok(()) => tokio::time::timeout(
                    Duration::from_secs(60),
                    read_response_or_close(&mut reader),
                )
                .await
                .expect("an ordinary 1 KiB request was not answered in a virtual minute"),
                Err(_) => Err(Vec::new()),
            };
            let served = n - 1;
            let Ok(response) = response else {
                panic!(
                    "the server closed the connection after {served} ordinary request(s) on it, \
                     without answering request {n}: keep-alive is off (`keep_alive(false)`), or \
                     something else closes the connection early. That is not a head limit: it \
                     costs every browser a new connection per request, and this check cannot \
                     send its oversized head on a reused connection. Keep the connection, and \
                     bound each head"
                )
            };
            assert_eq!(
                response.status,
                StatusCode::OK,
                "ordinary request {n} of {REQUESTS} on one keep-alive connection, a 1 KiB head \
                 within the 16 KiB contract, got {} {:?}. A limit on the bytes a connection has \
                 sent so far (a guard on the socket that counts every byte read) refuses a \
                 browser after sixteen ordinary requests; the limit is on each head",
                response.status,
                response.text()
            );
            let closing = response
                .headers
                .get("connection")
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
            assert!(
                !closing,
                "the server answered ordinary request {n} with `connection: close`: keep-alive \
                 is off (`keep_alive(false)`). That is not a head limit: it costs every browser \
                 a new connection per request, and leaves no reused connection to bound. Keep \
                 the connection, and bound each head"
            );
        }
        tokio::spawn(async move {
            let _ = writer.write_all(&head(OVERSIZED, false)).await;
            std::future::pending::<()>().await;
        });
        let second = tokio::time::timeout(Duration::from_secs(60), read_response(&mut reader))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "after serving {REQUESTS} ordinary requests, the server got 24 KiB of another \
                     head on the same connection, over the 16 KiB limit and not finished, and a \
                     minute later had not answered: it is buffering that head without a limit (or \
                     with one above the 24,574 bytes sent; the contract's is 16 KiB). \
                     A limit checked on the first head only (reading it by hand before handing \
                     the connection to hyper) is no limit for a browser's keep-alive connection"
                )
            });
        assert_refused(&second, "a request head on a reused connection");
        assert!(
            tokio::time::timeout(Duration::from_secs(60), &mut server.task)
                .await
                .is_ok(),
            "the server answered 431 but kept the connection open"
        );
    });
}

/// The pen-tester's script: a head that never ends, written 1 KiB at a time, a virtual 10 ms
/// apart. The server must answer 431 having read little more than the 16 KiB limit. Its end
/// of the in-memory pipe counts every byte it reads.
#[test]
fn head_sent_in_small_pieces_is_refused_early() {
    check(HANG).paused(|| async {
        let (client, server_end, read) = harness::counting::pipe(harness::duplex::PIPE_BYTES);
        tokio::spawn(serve_connection(server_end));
        let pieces = head(16 * OVERSIZED, false)
            .chunks(PIECE)
            .map(<[u8]>::to_vec)
            .collect();
        let answered = tokio::time::timeout(
            Duration::from_secs(60),
            exchange_paced(client, pieces, Duration::from_millis(10)),
        )
        .await;
        let Ok((response, _reader)) = answered else {
            panic!(
                "a client wrote a request head 1 KiB at a time and never ended it; a minute \
                 later the server had read {} bytes of it and not answered. A limit that looks \
                 at one read, or at the first few, is passed by a client that sends its head in \
                 small pieces: bound the head on the builder, where hyper counts every byte it \
                 has buffered",
                read.get()
            )
        };
        assert_refused(&response, "a request head sent 1 KiB at a time");
        let when_refused = read.get();
        assert!(
            when_refused <= LIMIT + READ_AHEAD,
            "the server answered 431, but only after reading {when_refused} bytes of a head \
             sent 1 KiB at a time, more than the 16 KiB limit and one read of 8 KiB: the head \
             is bounded too late"
        );
    });
}
