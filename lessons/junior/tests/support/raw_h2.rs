//! HTTP/2 spoken by hand over a real socket: what a well-behaved client library will not do
//! (ignore the announced stream limit) or will not show (the server's SETTINGS and GOAWAY).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const REFUSED_STREAM: u32 = 0x7;
const ACK: u8 = 0x1;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// The client connection preface, which also makes hyper-util's `auto` builder pick HTTP/2.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// `GET /` as an HPACK header block: `:method GET`, `:scheme http` and `:path /` are entries
/// 2, 6 and 4 of the static table, each sent as one "indexed" byte.
const GET_ROOT: [u8; 3] = [0x82, 0x86, 0x84];

/// One frame as read off the wire.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A SETTINGS frame's `SETTINGS_MAX_CONCURRENT_STREAMS`, if it carries one.
    pub fn max_concurrent_streams(&self) -> Option<u32> {
        self.payload.chunks_exact(6).find_map(|setting| {
            let id = u16::from_be_bytes([setting[0], setting[1]]);
            (id == MAX_CONCURRENT_STREAMS).then(|| self::word(&setting[2..]))
        })
    }

    /// A RST_STREAM frame's error code.
    pub fn error_code(&self) -> u32 {
        word(&self.payload)
    }

    /// A GOAWAY frame's last stream id and error code.
    pub fn goaway(&self) -> (u32, u32) {
        (word(&self.payload) & 0x7fff_ffff, word(&self.payload[4..]))
    }
}

fn word(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes[..4].try_into().unwrap())
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    bytes.extend([kind, flags]);
    bytes.extend(stream.to_be_bytes());
    bytes.extend(payload);
    bytes
}

/// Sends the preface, an empty SETTINGS frame and `GET /` on each of `streams` new streams
/// (ids 1, 3, 5...), all in one write, without waiting for the server's SETTINGS.
pub async fn open_streams(stream: &mut TcpStream, streams: u32) {
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(SETTINGS, 0, 0, &[]));
    for n in 0..streams {
        bytes.extend(frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            2 * n + 1,
            &GET_ROOT,
        ));
    }
    stream.write_all(&bytes).await.unwrap();
}

/// Reads the next frame, or `None` once the server has closed the connection. Answers the
/// server's SETTINGS and PINGs as a client must.
pub async fn next_frame(stream: &mut TcpStream) -> Option<Frame> {
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.ok()?;
    let (kind, flags) = (head[3], head[4]);
    if flags & ACK == 0 {
        // A SETTINGS acknowledgement is empty; a PING's echoes the PING's eight bytes.
        let ack = match kind {
            SETTINGS => Some(frame(SETTINGS, ACK, 0, &[])),
            PING => Some(frame(PING, ACK, 0, &payload)),
            _ => None,
        };
        if let Some(ack) = ack {
            let _ = stream.write_all(&ack).await;
        }
    }
    Some(Frame {
        kind,
        flags,
        stream: word(&head[5..]) & 0x7fff_ffff,
        payload,
    })
}
