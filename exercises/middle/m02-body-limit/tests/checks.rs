//! Checks for M02: uploads over the 1 MiB policy are refused with 413, whether they announce
//! their size or not, and refused while they are still arriving; uploads under it are stored.
//!
//! The clients here speak HTTP/1 by hand over a raw stream: a server that refuses an upload
//! answers before it has read the body and then closes the connection, and a raw client can
//! keep writing, ignore the failed writes, and still read the answer that came back.

use std::time::Duration;

use harness::duplex;
use harness::server::TestServer;
use harness::watchdog::check;
use m02_body_limit::{Store, serve, serve_connection};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const HANG: &str = "the upload was never answered; is the handler still waiting for a body that \
                    is not coming, or did the connection task stop?";

/// The API reference's limit on one document.
const LIMIT: usize = 1024 * 1024;
/// Twice the limit: what a misbehaving client sends.
const OVERSIZED: usize = 2 * LIMIT;
/// Half the limit: an ordinary scan.
const ORDINARY: usize = LIMIT / 2;
/// The chunk size of a streamed (chunked) upload.
const CHUNK: usize = 64 * 1024;

/// What came back on the connection: the status code and the response body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

/// How an upload announces its body.
#[derive(Clone, Copy)]
enum Framing {
    ContentLength,
    /// `transfer-encoding: chunked`, in [`CHUNK`]-byte chunks; `finished` sends the last chunk.
    Chunked {
        finished: bool,
    },
}

/// A `POST /documents` of `size` bytes, as it goes on the wire.
fn upload(size: usize, framing: Framing) -> Vec<u8> {
    let body = vec![b'x'; size];
    let mut wire =
        b"POST /documents HTTP/1.1\r\nhost: inbox.test\r\nconnection: close\r\n".to_vec();
    match framing {
        Framing::ContentLength => {
            wire.extend_from_slice(format!("content-length: {size}\r\n\r\n").as_bytes());
            wire.extend_from_slice(&body);
        }
        Framing::Chunked { finished } => {
            wire.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            for chunk in body.chunks(CHUNK) {
                wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
            }
            if finished {
                wire.extend_from_slice(b"0\r\n\r\n");
            }
        }
    }
    wire
}

/// Writes `wire` on its own task, so that a server which answers before reading everything
/// is not blocked by a client stuck in a write; a failed write (the server hung up) is fine.
/// Then reads one response.
async fn exchange<S>(stream: S, wire: Vec<u8>) -> Answer
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    tokio::spawn(async move {
        let _ = writer.write_all(&wire).await;
        // Keep the write half open: a finished upload must not look like a client leaving.
        std::future::pending::<()>().await;
    });
    read_response(&mut reader).await
}

/// Reads until one whole response (head, then `content-length` bytes) has arrived, or the
/// server closed or reset the connection.
async fn read_response(reader: &mut (impl AsyncRead + Unpin)) -> Answer {
    let mut received = Vec::new();
    let mut buf = [0; 8192];
    loop {
        if let Some(answer) = parse(&received) {
            return answer;
        }
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
    parse(&received).unwrap_or_else(|| {
        panic!(
            "the server closed the connection without a whole response (every upload must be \
             answered, one over the limit with 413; a handler error propagated with `?` makes \
             hyper drop the connection instead); it sent {:?}",
            String::from_utf8_lossy(&received)
        )
    })
}

/// One complete response at the start of `received`, if there is one.
fn parse(received: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(received);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(str::to_owned)
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    (body.len() >= length).then(|| Answer {
        status,
        body: body[..length].to_owned(),
    })
}

async fn start() -> TestServer {
    TestServer::start(|listener| async move {
        let _ = serve(listener, Store::default()).await;
    })
    .await
}

async fn upload_to(server: &TestServer, size: usize, framing: Framing) -> Answer {
    let stream = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connecting to the test server");
    exchange(stream, upload(size, framing)).await
}

fn assert_refused(answer: &Answer, what: &str) {
    assert_eq!(
        answer.status, 413,
        "{what} of 2 MiB, twice the 1 MiB limit, must be refused with 413 Payload Too Large; \
         the server answered {} {:?}",
        answer.status, answer.body
    );
}

/// A scanner announces 2 MiB with `content-length`: refused with 413.
#[test]
fn oversized_upload_with_content_length_is_refused() {
    check(HANG).real(|| async {
        let server = start().await;
        let answer = upload_to(&server, OVERSIZED, Framing::ContentLength).await;
        assert_refused(&answer, "an upload with `content-length`");
    });
}

/// The mobile app streams 2 MiB chunked, with no `content-length` to look at: refused with 413.
#[test]
fn oversized_chunked_upload_is_refused() {
    check(HANG).real(|| async {
        let server = start().await;
        let answer = upload_to(&server, OVERSIZED, Framing::Chunked { finished: true }).await;
        assert_refused(&answer, "a chunked upload (no `content-length`)");
    });
}

/// Ordinary uploads of 512 KiB, announced or streamed, are stored whole.
#[test]
fn uploads_within_the_limit_are_stored() {
    check(HANG).real(|| async {
        let server = start().await;
        for (framing, what) in [
            (Framing::ContentLength, "with `content-length`"),
            (Framing::Chunked { finished: true }, "chunked"),
        ] {
            let answer = upload_to(&server, ORDINARY, framing).await;
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (200, format!("stored {ORDINARY} bytes\n").as_str()),
                "a 512 KiB upload {what}, half the 1 MiB limit, must be stored whole"
            );
        }
    });
}

/// A chunked upload that passes the limit and then pauses, its end not sent yet: the server
/// must refuse it as soon as the limit is crossed, without waiting for the rest. On the paused
/// clock a minute of silence costs nothing, and is far longer than a refusal needs.
#[test]
fn oversized_upload_is_refused_while_still_arriving() {
    check(HANG).paused(|| async {
        let (client, _server) = duplex::raw(|io| serve_connection(io, Store::default()));
        let just_over = LIMIT + CHUNK;
        let answer = tokio::time::timeout(
            Duration::from_secs(60),
            exchange(
                client,
                upload(just_over, Framing::Chunked { finished: false }),
            ),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "a chunked upload sent 1 MiB + 64 KiB, past the 1 MiB limit, and paused; a \
                 minute later the server had still not answered. It is still reading, and \
                 buffering, the body: a limit checked once the body is complete comes too \
                 late, since a client can keep sending for as long as it likes"
            )
        });
        assert_eq!(
            answer.status, 413,
            "an upload past the 1 MiB limit must be refused with 413 Payload Too Large; the \
             server answered {} {:?}",
            answer.status, answer.body
        );
    });
}
