//! What hyper 1.12's HTTP/2 server (h2 0.4) does against a hostile client, with frames written
//! by hand so that nothing on the client side is polite.
//!
//! Backs Q16 and R16 of the bank: streams opened and reset before the server accepts them
//! (Rapid Reset, CVE-2023-44487) count against h2's pending-accept reset limit, 20 by default,
//! and past it the server sends GOAWAY with ENHANCE_YOUR_CALM; a header block larger than the
//! server's `max_header_list_size` (16 KiB in hyper) is answered 431 on that stream only.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const HANG: &str = "the server neither answered nor closed the connection";

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend([kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// HPACK for `GET http://bank.test/`: :method GET, :path /, :scheme http from the static table,
/// then :authority as a literal without indexing, and `extra` more literal headers.
fn request_block(extra: &[(&str, &str)]) -> Vec<u8> {
    let mut block = vec![0x82, 0x84, 0x86];
    let literal = |block: &mut Vec<u8>, value: &str| {
        // Lengths up to 126 fit the 7-bit prefix; longer ones continue in 7-bit groups.
        let mut len = value.len();
        if len < 127 {
            block.push(len as u8);
        } else {
            block.push(127);
            len -= 127;
            while len >= 128 {
                block.push((len % 128) as u8 | 0x80);
                len /= 128;
            }
            block.push(len as u8);
        }
        block.extend(value.as_bytes());
    };
    block.push(0x01); // :authority, static index 1, literal value
    literal(&mut block, "bank.test");
    for (name, value) in extra {
        block.push(0x00); // literal name and value, not indexed
        literal(&mut block, name);
        literal(&mut block, value);
    }
    block
}

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from("hello\n"))))
}

/// A hyper HTTP/2 server with its defaults on an in-memory connection, and the raw client end
/// after the preface and an empty SETTINGS frame.
async fn connect() -> DuplexStream {
    let (mut client, server) = tokio::io::duplex(1024 * 1024);
    tokio::spawn(
        http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(server), service_fn(hello)),
    );
    client.write_all(PREFACE).await.unwrap();
    client.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    client
}

/// Reads frames until the server has nothing more to say: `(type, flags, stream, payload)`.
async fn frames_received(client: &mut DuplexStream) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut bytes = Vec::new();
    // The runtime's clock is paused: this timeout fires only once every task is idle, that is
    // once the server has written all it will write.
    let _ = tokio::time::timeout(Duration::from_secs(60), client.read_to_end(&mut bytes)).await;
    let mut frames = Vec::new();
    let mut at = 0;
    while at + 9 <= bytes.len() {
        let len = u32::from_be_bytes([0, bytes[at], bytes[at + 1], bytes[at + 2]]) as usize;
        let stream = u32::from_be_bytes(bytes[at + 5..at + 9].try_into().unwrap()) & 0x7fff_ffff;
        let payload = bytes[at + 9..(at + 9 + len).min(bytes.len())].to_vec();
        frames.push((bytes[at + 3], bytes[at + 4], stream, payload));
        at += 9 + len;
    }
    frames
}

/// The error code of the server's GOAWAY, if it sent one.
fn goaway(frames: &[(u8, u8, u32, Vec<u8>)]) -> Option<u32> {
    frames
        .iter()
        .find(|(kind, ..)| *kind == GOAWAY)
        .map(|(.., payload)| u32::from_be_bytes(payload[4..8].try_into().unwrap()))
}

/// Opens `n` streams and resets each at once, all in one write, as a Rapid Reset client does.
async fn rapid_reset(n: u32) -> Option<u32> {
    let mut client = connect().await;
    let mut burst = Vec::new();
    for i in 0..n {
        let stream = 1 + 2 * i;
        burst.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            stream,
            &request_block(&[]),
        ));
        burst.extend(frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
    }
    client.write_all(&burst).await.unwrap();
    goaway(&frames_received(&mut client).await)
}

#[test]
fn twenty_resets_before_accept_are_tolerated() {
    check(HANG).paused(|| async {
        assert_eq!(rapid_reset(20).await, None);
    });
}

#[test]
fn the_twenty_first_reset_before_accept_gets_goaway_enhance_your_calm() {
    check(HANG).paused(|| async {
        assert_eq!(rapid_reset(21).await, Some(ENHANCE_YOUR_CALM));
    });
}

#[test]
fn a_header_block_over_16_kib_is_answered_431_on_its_stream_only() {
    check(HANG).paused(|| async {
        let mut client = connect().await;
        let big = "x".repeat(20 * 1024);
        // Frames carry at most 16 KiB: the block goes in a HEADERS frame and a CONTINUATION.
        let block = request_block(&[("x-big", &big)]);
        let (first, rest) = block.split_at(16 * 1024);
        let mut burst = frame(HEADERS, END_STREAM, 1, first);
        burst.extend(frame(CONTINUATION, END_HEADERS, 1, rest));
        burst.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            3,
            &request_block(&[]),
        ));
        client.write_all(&burst).await.unwrap();
        let frames = frames_received(&mut client).await;
        let head_of = |wanted: u32| {
            frames
                .iter()
                .find(|(kind, _, stream, _)| *kind == HEADERS && *stream == wanted)
                .map(|(.., payload)| payload.clone())
        };
        // ":status: 431" as h2 encodes it: a literal of static name 8 (:status) with the
        // Huffman-coded value "431" (0x69 0x90, padded with ones).
        assert_eq!(head_of(1), Some(vec![0x48, 0x83, 0x69, 0x90, 0xff]));
        // ":status: 200" is static entry 8, one byte: the next stream is served as usual.
        assert_eq!(head_of(3).map(|head| head[0]), Some(0x88));
        assert_eq!(goaway(&frames), None, "the connection stays up");
    });
}

#[test]
fn a_continuation_flood_ends_the_connection() {
    check(HANG).paused(|| async {
        let mut client = connect().await;
        // A HEADERS frame without END_HEADERS, then CONTINUATION frames that never end it:
        // every one is small, so no size limit is reached, only the count of frames.
        let mut burst = frame(HEADERS, END_STREAM, 1, &request_block(&[]));
        for _ in 0..1000 {
            burst.extend(frame(CONTINUATION, 0, 1, &[0x00, 0x01, b'a', 0x01, b'b']));
        }
        client.write_all(&burst).await.unwrap();
        // h2 allows a handful of CONTINUATION frames per header block (enough for the
        // 16 KiB list size in 16 KiB frames, plus slack), then gives up on the connection.
        assert_eq!(
            goaway(&frames_received(&mut client).await),
            Some(ENHANCE_YOUR_CALM)
        );
    });
}
