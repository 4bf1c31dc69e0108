//! Checks for M02: uploads over the 1 MiB policy are refused with 413, whether they announce
//! their size or not, and refused while they are still arriving, without the server reading
//! much past the limit, then or afterwards; uploads up to exactly 1 MiB are stored, however
//! slowly they arrive.
//!
//! The clients here speak HTTP/1 by hand over a raw stream: a server that refuses an upload
//! answers before it has read the body and then closes the connection, and a raw client can
//! keep writing, ignore the failed writes, and still read the answer that came back.

use std::time::Duration;

use harness::duplex;
use harness::heap;
use harness::server::TestServer;
use harness::watchdog::check;
use m02_body_limit::{Store, serve, serve_connection};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

// Counts the heap per thread, for what a server holds for an upload that announced 1 GiB; the
// other checks do not look at it.
#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

const HANG: &str = "the upload was never answered; is the handler still waiting for a body that \
                    is not coming, or did the connection task stop?";

/// The API reference's limit on one document.
const LIMIT: usize = 1024 * 1024;
/// Twice the limit: what a misbehaving client sends.
const OVERSIZED: usize = 2 * LIMIT;
/// Half the limit: an ordinary scan.
const ORDINARY: usize = LIMIT / 2;
/// Three quarters of the limit: a big scan, still within it.
const BIG: usize = 3 * LIMIT / 4;
/// What a lying client announces: 1 GiB, a thousand times the limit.
const ABSURD: usize = 1024 * LIMIT;
/// The chunk size of a streamed (chunked) upload.
const CHUNK: usize = 64 * 1024;
/// A flood: eight times the limit, streamed as fast as the server reads it.
const FLOOD: usize = 8 * LIMIT;
/// How far past the limit a server may have read when it refuses: hyper reads ahead of the
/// handler into its read buffer (8 KiB + 400 KiB at most, by default), and the frame that
/// crosses the limit has been read whole.
const READ_AHEAD: usize = 512 * 1024;

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
    upload_in_pieces(size, framing).concat()
}

/// The same upload in the pieces a client writes one after the other: the head, then the body
/// (chunked: one piece per chunk, then the last chunk if `finished`).
fn upload_in_pieces(size: usize, framing: Framing) -> Vec<Vec<u8>> {
    let body = vec![b'x'; size];
    let mut head =
        b"POST /documents HTTP/1.1\r\nhost: inbox.test\r\nconnection: close\r\n".to_vec();
    match framing {
        Framing::ContentLength => {
            head.extend_from_slice(format!("content-length: {size}\r\n\r\n").as_bytes());
            vec![head, body]
        }
        Framing::Chunked { finished } => {
            head.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            let mut pieces = vec![head];
            for chunk in body.chunks(CHUNK) {
                let mut piece = format!("{:x}\r\n", chunk.len()).into_bytes();
                piece.extend_from_slice(chunk);
                piece.extend_from_slice(b"\r\n");
                pieces.push(piece);
            }
            if finished {
                pieces.push(b"0\r\n\r\n".to_vec());
            }
            pieces
        }
    }
}

/// `wire` with the first `from` replaced by `to`: another spelling of one header line.
fn respell(wire: &[u8], from: &str, to: &str) -> Vec<u8> {
    let at = wire
        .windows(from.len())
        .position(|window| window == from.as_bytes())
        .expect("the upload has the header line to respell");
    [&wire[..at], to.as_bytes(), &wire[at + from.len()..]].concat()
}

/// The same upload without `connection: close`: the client means to send another one on the
/// same connection, as the scanners' HTTP library does.
fn keep_alive(wire: &[u8]) -> Vec<u8> {
    respell(wire, "connection: close\r\n", "")
}

/// Writes `wire` on its own task, so that a server which answers before reading everything
/// is not blocked by a client stuck in a write; a failed write (the server hung up) is fine.
/// Then reads one response.
async fn exchange<S>(stream: S, wire: Vec<u8>) -> Answer
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    exchange_paced(stream, vec![wire], Duration::ZERO).await
}

/// [`exchange`], with the client waiting `gap` between one piece and the next.
async fn exchange_paced<S>(stream: S, pieces: Vec<Vec<u8>>, gap: Duration) -> Answer
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

/// The mobile app streams 2 MiB chunked, with no `content-length` to look at: refused with 413,
/// however the client spells `transfer-encoding: chunked` (header values of HTTP are
/// case-insensitive, and hyper reads `Chunked` as chunked).
#[test]
fn oversized_chunked_upload_is_refused() {
    check(HANG).real(|| async {
        let server = start().await;
        let wire = upload(OVERSIZED, Framing::Chunked { finished: true });
        let spelled = respell(
            &wire,
            "transfer-encoding: chunked",
            "Transfer-Encoding: Chunked",
        );
        for (wire, what) in [
            (wire, "a chunked upload (no `content-length`)"),
            (
                spelled,
                "a chunked upload sent as `Transfer-Encoding: Chunked` (HTTP header values are \
                 case-insensitive: a limit applied only when the value is exactly \"chunked\" \
                 lets this one through)",
            ),
        ] {
            let stream = tokio::net::TcpStream::connect(server.addr())
                .await
                .expect("connecting to the test server");
            let answer = exchange(stream, wire).await;
            assert_refused(&answer, what);
        }
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

/// Two uploads that pass the limit and then pause, their end not sent yet: the server must
/// refuse each as soon as the limit is crossed, without waiting for the rest. On the paused
/// clock a minute of silence costs nothing, and is far longer than a refusal needs.
///
/// The chunked one crosses the limit by one byte, in a last chunk of its own: a server that
/// checks the count only before asking for the next frame is waiting for a frame that is not
/// coming. The announced one claims 1 GiB and pauses after 512 KiB: what the server holds for
/// it then must be about what arrived, not what was announced.
#[test]
fn oversized_upload_is_refused_while_still_arriving() {
    check(HANG).paused(|| async {
        let (client, _server) = duplex::raw(|io| serve_connection(io, Store::default()));
        let answer = tokio::time::timeout(
            Duration::from_secs(60),
            exchange(
                client,
                upload(LIMIT + 1, Framing::Chunked { finished: false }),
            ),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "a chunked upload sent 1 MiB and one byte, the last byte in a chunk of its own, \
                 and paused; a minute later the server had still not answered. Either the limit \
                 is checked once the body is complete, which comes too late since a client can \
                 keep sending for as long as it likes, or it is checked when the next chunk \
                 arrives instead of as soon as a chunk is added: the byte that crossed the \
                 limit has arrived, and the check waits for a chunk that is not coming"
            )
        });
        assert_eq!(
            answer.status, 413,
            "an upload past the 1 MiB limit must be refused with 413 Payload Too Large; the \
             server answered {} {:?}",
            answer.status, answer.body
        );

        let mut pieces = upload_in_pieces(OVERSIZED, Framing::ContentLength);
        pieces[0] = respell(
            &pieces[0],
            &format!("content-length: {OVERSIZED}"),
            &format!("content-length: {ABSURD}"),
        );
        let rest = pieces[1].split_off(ORDINARY);
        pieces.push(rest);
        let (client, _server) = duplex::raw(|io| serve_connection(io, Store::default()));
        let before = heap::live_on_this_thread();
        // The head at once, 512 KiB a virtual second later, the rest (1.5 MiB more, never the
        // 1 GiB announced) a second after that.
        let upload = tokio::spawn(exchange_paced(client, pieces, Duration::from_secs(1)));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let held = heap::live_on_this_thread() - before;
        assert!(
            held <= 4 * LIMIT as i64,
            "an upload announced `content-length: {ABSURD}` (1 GiB) and had sent 512 KiB of it; \
             the server was holding {held} bytes for it. Reserving the announced size up front \
             trusts the client: a `content-length` costs it one header line, and one of 1 TiB \
             makes the allocation fail and the whole server process abort. Refuse an \
             announced size over the limit, or let the buffer grow with what arrives"
        );
        let answer = tokio::time::timeout(Duration::from_secs(60), upload)
            .await
            .expect("an upload that announced 1 GiB was not answered in a virtual minute")
            .unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()));
        assert_eq!(
            answer.status, 413,
            "an upload announcing 1 GiB with `content-length` must be refused with 413; the \
             server answered {} {:?}",
            answer.status, answer.body
        );
    });
}

/// Serves one connection over an in-memory pipe and sends it one upload, written all at once.
async fn upload_in_memory(size: usize, framing: Framing) -> Answer {
    let (client, _server) = duplex::raw(|io| serve_connection(io, Store::default()));
    tokio::time::timeout(
        Duration::from_secs(60),
        exchange(client, upload(size, framing)),
    )
    .await
    .expect("an upload over an in-memory connection was not answered in a virtual minute")
}

/// The API reference says "up to 1 MiB": exactly 1,048,576 bytes are stored, announced and
/// then streamed, one after the other on one keep-alive connection (the limit is per upload),
/// and one byte more is refused.
#[test]
fn limit_is_exactly_one_mib() {
    check(HANG).paused(|| async {
        let (client, _server) = duplex::raw(|io| serve_connection(io, Store::default()));
        let (mut reader, mut writer) = tokio::io::split(client);
        for (framing, what) in [
            (Framing::ContentLength, "with `content-length`"),
            (
                Framing::Chunked { finished: true },
                "chunked, sent after a first upload of 1 MiB on the same keep-alive connection,",
            ),
        ] {
            let wire = keep_alive(&upload(LIMIT, framing));
            // Written alongside the read: a server that refuses the upload need not read it all.
            let send = async {
                let _ = writer.write_all(&wire).await;
                std::future::pending::<()>().await
            };
            let answer = tokio::time::timeout(Duration::from_secs(60), async {
                tokio::select! {
                    answer = read_response(&mut reader) => answer,
                    () = send => unreachable!("the send never ends"),
                }
            })
            .await
            .expect("an upload of exactly 1 MiB was not answered in a virtual minute");
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (200, format!("stored {LIMIT} bytes\n").as_str()),
                "an upload of exactly 1 MiB (1,048,576 bytes) {what} is within the API \
                 reference's \"up to 1 MiB\" and must be stored whole: the limit is on each \
                 upload, not on what a connection has sent so far"
            );
        }
        for (framing, what) in [
            (Framing::ContentLength, "with `content-length`"),
            (Framing::Chunked { finished: true }, "chunked"),
        ] {
            let answer = upload_in_memory(LIMIT + 1, framing).await;
            assert_eq!(
                answer.status, 413,
                "an upload of 1 MiB and one byte {what} is over the limit and must be refused \
                 with 413; the server answered {} {:?}",
                answer.status, answer.body
            );
        }
    });
}

/// An upload of 8 MiB, announced and then streamed, sent as fast as the server reads: the
/// server must answer 413 having read little more than the 1 MiB limit, and must not read any
/// more of it afterwards. The server's end of the in-memory pipe counts every byte read from it.
#[test]
fn oversized_upload_is_not_read_past_the_limit() {
    check(HANG).paused(|| async {
        for (framing, what) in [
            (Framing::ContentLength, "announced with `content-length`"),
            (Framing::Chunked { finished: true }, "chunked"),
        ] {
            let (client, server_end, read) = harness::counting::pipe(harness::duplex::PIPE_BYTES);
            tokio::spawn(serve_connection(server_end, Store::default()));
            let wire = upload(FLOOD, framing);
            let answer = tokio::time::timeout(Duration::from_secs(60), exchange(client, wire))
                .await
                .expect("an 8 MiB upload was not answered in a virtual minute");
            assert_eq!(
                answer.status, 413,
                "an 8 MiB upload {what} must be refused with 413; the server answered {} {:?}",
                answer.status, answer.body
            );
            let when_refused = read.get();
            assert!(
                when_refused <= LIMIT + READ_AHEAD,
                "by the time its 413 arrived, the server had read {when_refused} bytes of an \
                 8 MiB upload {what}, more than the 1 MiB limit and the {READ_AHEAD} bytes hyper \
                 may read ahead: it read the body (to its end, or until a timer fired) before \
                 checking the limit. A limit must stop the reading, not judge it afterwards"
            );
            // The client is still offering the rest: a virtual minute for the server to take it.
            tokio::time::sleep(Duration::from_secs(60)).await;
            let a_minute_later = read.get();
            assert!(
                a_minute_later <= LIMIT + READ_AHEAD,
                "the server answered 413 to an 8 MiB upload {what} having read {when_refused} \
                 bytes, then went on reading: a minute later it had read {a_minute_later} \
                 bytes of it. Reading the rest after refusing (in the handler or a spawned \
                 task, \"so the client's write completes\", announced uploads included) is an \
                 unbounded read all the same; drop the body and let hyper close the connection"
            );
        }
    });
}

/// Two slow but legitimate uploads at once: two phones on a poor connection each send 768 KiB
/// chunked, their twelve chunks a virtual second apart, on connections of their own. On the
/// paused clock both have sent their first chunks before either sends its next, so both are in
/// flight together, 1.5 MiB between them. Each is within the limit and must be stored.
#[test]
fn slow_upload_within_the_limit_is_stored() {
    check(HANG).paused(|| async {
        let store = Store::default();
        let phone = || {
            let store = store.clone();
            let (client, _server) = duplex::raw(move |io| serve_connection(io, store));
            let pieces = upload_in_pieces(BIG, Framing::Chunked { finished: true });
            exchange_paced(client, pieces, Duration::from_secs(1))
        };
        let (first, second) = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::join!(phone(), phone())
        })
        .await
        .expect("two slow 768 KiB uploads were not answered in a virtual minute");
        for answer in [first, second] {
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (200, format!("stored {BIG} bytes\n").as_str()),
                "two 768 KiB chunked uploads, each arriving over twelve seconds on a connection \
                 of its own, at the same time, are each within the 1 MiB limit and must both be \
                 stored. The limit is on bytes, not on time: a deadline on the upload refuses \
                 the slow phones while a fast client still sends as much as it likes. And it is \
                 on each upload: a budget shared by every upload in flight refuses honest \
                 clients whenever two overlap"
            );
        }
    });
}
