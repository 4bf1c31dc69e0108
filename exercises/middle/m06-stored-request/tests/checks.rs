//! Checks for M06: in-memory connections on a paused clock. Virtual time makes a five-second
//! render cost nothing, and lets "the next upload was answered within a second" be a fact
//! rather than a race.

use std::time::Duration;

use harness::duplex;
use harness::server::request;
use harness::watchdog::check;
use m06_stored_request::{
    MAX_PHOTO, QUEUE_DEPTH, RENDER_TIME, Thumbnail, fnv1a, serve_connection, start_renderer,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const HANG: &str = "the check never got past waiting on the server; is an upload waiting for a renderer that never reads it?";

/// How long, in virtual time, a client may wait for an answer: a fraction of one render.
const ANSWERED_WITHIN: Duration = Duration::from_secs(1);

/// An answer "at once": less than a millisecond of virtual time. With in-memory connections a
/// handler that waits for no timer takes no virtual time at all.
const AT_ONCE: Duration = Duration::from_millis(1);

/// How long a phone that stopped mid-photo stays quiet before it loses its connection.
const QUIET_FOR: Duration = Duration::from_secs(3);

/// A phone on a slow link sends its photo in this many pieces, `SLOW_GAP` apart: 2 KiB a
/// second, so eight and a half minutes for 1 MiB, longer than any deadline one would set on
/// reading a whole photo (while the link is never quiet for long), at no real cost.
const SLOW_PIECES: usize = 512;
const SLOW_GAP: Duration = Duration::from_secs(1);

/// A tiny photo, a few hundred bytes, as the developers' test photos are: the head and what
/// the phone sent arrive in hyper's first read, and the rest is still owed.
const TINY_PHOTO_BYTES: usize = 512;

/// A photo far larger than what hyper reads in one go, so most of it is still on its way when
/// the handler runs.
const PHOTO_BYTES: usize = 1024 * 1024;

fn photo() -> Vec<u8> {
    (0..PHOTO_BYTES).map(|i| (i % 251) as u8).collect()
}

fn upload_head(name: &str, length: usize) -> Vec<u8> {
    format!(
        "POST /photos/{name} HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: {length}\r\n\r\n"
    )
    .into_bytes()
}

/// Reads from the server until `statuses` status lines have arrived, the server closes, or the
/// deadline passes; returns what arrived.
async fn read_statuses(
    from_server: &mut (impl AsyncRead + Unpin),
    statuses: usize,
    deadline: Duration,
) -> String {
    let mut received = Vec::new();
    let _ = tokio::time::timeout(deadline, async {
        let mut buf = [0u8; 4096];
        while String::from_utf8_lossy(&received)
            .matches("HTTP/1.1 ")
            .count()
            < statuses
        {
            match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&received).into_owned()
}

/// The renderer is busy with another phone's photo; this phone uploads a large photo and then
/// a small one on the same keep-alive connection. Both must be answered at once.
#[test]
fn the_next_upload_is_not_stuck_behind_a_queued_one() {
    check(HANG).paused(|| async {
        let (rendered, _thumbnails) = mpsc::unbounded_channel();
        let queue = start_renderer(rendered);

        // Another phone's photo keeps the renderer busy for one render.
        let other_queue = queue.clone();
        let (mut other, _other_server) =
            duplex::http1(move |io| serve_connection(io, other_queue)).await;
        let response = other
            .send(request("POST", "/photos/first.jpg", vec![7u8; 100]))
            .await
            .expect("the server closed the connection instead of answering");
        assert_eq!(
            response.status.as_u16(),
            202,
            "a small photo must be accepted with 202"
        );

        // This phone: a large photo, then a small one, the way a client sends them on one
        // connection (the second request follows the first's body).
        let (mut phone, server) = duplex::raw(move |io| serve_connection(io, queue));
        let mut bytes = upload_head("large.jpg", PHOTO_BYTES);
        bytes.extend(photo());
        bytes.extend(upload_head("small.jpg", 100));
        bytes.extend([7u8; 100]);
        let (mut from_server, mut to_server) = tokio::io::split(&mut phone);
        let answers = read_statuses(&mut from_server, 2, ANSWERED_WITHIN);
        let upload = async {
            let _ = tokio::time::timeout(ANSWERED_WITHIN, to_server.write_all(&bytes)).await;
        };
        let (answers, ()) = tokio::join!(answers, upload);
        let statuses: Vec<&str> = answers
            .lines()
            .filter(|line| line.starts_with("HTTP/1.1 "))
            .collect();
        assert_eq!(
            statuses,
            ["HTTP/1.1 202 Accepted", "HTTP/1.1 202 Accepted"],
            "a phone uploaded a 1 MiB photo and then a small one on the same connection; within \
             {} s (a render takes {} s) both should have been accepted. {}",
            ANSWERED_WITHIN.as_secs(),
            RENDER_TIME.as_secs(),
            if server.is_finished() {
                "The server closed the connection instead: when a request body is dropped \
                 before its end, hyper reads what is already buffered, gives up on the rest and \
                 closes the connection, so the second request is never read"
            } else {
                "The connection could not read the second request: the first one's body was \
                 still arriving, and hyper reads it only as fast as whoever holds the request \
                 reads it"
            },
        );
    });
}

/// A photo that was accepted reaches the renderer whole: every byte, in order.
#[test]
fn the_renderer_gets_every_byte() {
    check(HANG).paused(|| async {
        let (rendered, mut thumbnails) = mpsc::unbounded_channel();
        let queue = start_renderer(rendered);
        let first = queue.clone();
        let (mut phone, _server) = duplex::http1(move |io| serve_connection(io, first)).await;
        let photo = photo();
        let expected = Thumbnail {
            name: "large.jpg".into(),
            bytes: PHOTO_BYTES,
            fnv: fnv1a(&photo),
        };
        let response = phone
            .send(request("POST", "/photos/large.jpg", photo))
            .await
            .expect("the server closed the connection instead of answering");
        assert_eq!(
            response.status.as_u16(),
            202,
            "a 1 MiB photo must be accepted with 202"
        );
        let thumbnail =
            tokio::time::timeout(RENDER_TIME + ANSWERED_WITHIN, thumbnails.recv()).await;
        assert_eq!(
            thumbnail.ok().flatten(),
            Some(expected.clone()),
            "a photo was accepted, but the renderer did not publish a thumbnail of all its {} \
             bytes within one render: the renderer must get the whole body of every photo that \
             was answered 202",
            PHOTO_BYTES,
        );

        // A phone on a slow link: the same photo in pieces, minutes apart. It is honest, so it
        // is accepted and rendered whole, however long its upload takes.
        let (mut phone, _server) = duplex::raw(move |io| serve_connection(io, queue));
        let expected = Thumbnail {
            name: "slow.jpg".into(),
            ..expected
        };
        phone
            .write_all(&upload_head("slow.jpg", PHOTO_BYTES))
            .await
            .unwrap();
        for (i, piece) in crate::photo().chunks(PHOTO_BYTES / SLOW_PIECES).enumerate() {
            if i > 0 {
                tokio::time::sleep(SLOW_GAP).await;
            }
            if phone.write_all(piece).await.is_err() {
                // The server closed the connection: its answer is already on the way.
                break;
            }
        }
        let answer = read_statuses(&mut phone, 1, ANSWERED_WITHIN).await;
        let thumbnail =
            tokio::time::timeout(RENDER_TIME + ANSWERED_WITHIN, thumbnails.recv()).await;
        let slow = (SLOW_PIECES - 1) as u64 * SLOW_GAP.as_secs();
        assert!(
            answer.starts_with("HTTP/1.1 202 "),
            "a phone on a slow link sent a whole 1 MiB photo in {SLOW_PIECES} pieces over \
             {slow} s and waited, but the server answered {:?}: a deadline on reading the \
             photo, however generous, refuses honest phones on links slower than it allows, \
             and the read needs none (a phone that loses its connection ends it by itself)",
            answer.lines().next().unwrap_or_default(),
        );
        assert_eq!(
            thumbnail.ok().flatten(),
            Some(expected),
            "a photo sent over {slow} s was accepted, but the renderer did not publish a \
             thumbnail of all its {PHOTO_BYTES} bytes within one render of the answer",
        );
    });
}

/// A phone sends `sent` bytes of a `declared`-byte photo, goes quiet (a lift, a tunnel) and
/// then loses its connection: no answer, while it is quiet or after, may be 202.
async fn cut_short(declared: usize, sent: usize) -> Result<(), String> {
    let (rendered, _thumbnails) = mpsc::unbounded_channel();
    let queue = start_renderer(rendered);
    let (mut phone, _server) = duplex::raw(move |io| serve_connection(io, queue));
    let mut bytes = upload_head("cut.jpg", declared);
    bytes.extend(&photo()[..sent]);
    phone.write_all(&bytes).await.unwrap();
    let early = read_statuses(&mut phone, 1, QUIET_FOR).await;
    if early.starts_with("HTTP/1.1 202") {
        return Err(format!(
            "a phone sent {sent} bytes of a {declared}-byte photo and went quiet for {} s; \
             meanwhile, with the rest still owed, the server answered {:?}: the app deletes a \
             photo once it is accepted, so a 202 must wait until the whole photo has arrived, \
             however long it takes, and whatever its size",
            QUIET_FOR.as_secs(),
            early.lines().next().unwrap_or_default(),
        ));
    }
    // The phone loses its connection: the server reads the end of the stream mid-body.
    phone.shutdown().await.unwrap();
    let answer = early + &read_statuses(&mut phone, 1, ANSWERED_WITHIN).await;
    if answer.starts_with("HTTP/1.1 202") {
        return Err(format!(
            "a phone sent {sent} bytes of a {declared}-byte photo and lost its connection, yet \
             the server answered {:?}: a body that ends in an error is not a photo, and the app \
             deletes a photo once it is accepted",
            answer.lines().next().unwrap_or_default(),
        ));
    }
    Ok(())
}

/// The app deletes its copy of a photo once it is accepted, so a 202 must mean the whole photo
/// is in the queue: not for a large photo cut short, nor for a tiny one.
#[test]
fn a_cut_short_upload_is_not_accepted() {
    check(HANG).paused(|| async {
        let cases = [
            (PHOTO_BYTES, 16 * 1024),
            (TINY_PHOTO_BYTES, TINY_PHOTO_BYTES / 4),
        ];
        for (declared, sent) in cases {
            if let Err(failure) = cut_short(declared, sent).await {
                panic!("{failure}");
            }
        }
    });
}

/// The renderer is far behind: it is busy with one photo and QUEUE_DEPTH more are waiting.
/// Every upload is still answered at once, and the one that finds the queue full gets 503.
#[test]
fn uploads_are_answered_promptly_when_the_queue_is_full() {
    check(HANG).paused(|| async {
        let (rendered, _thumbnails) = mpsc::unbounded_channel();
        let queue = start_renderer(rendered);
        let (mut phone, _server) = duplex::http1(move |io| serve_connection(io, queue)).await;
        let uploads = QUEUE_DEPTH + 2;
        let mut statuses = Vec::new();
        for i in 0..uploads {
            let path = format!("/photos/IMG_{i:04}.jpg");
            let sent = tokio::time::Instant::now();
            let answer = tokio::time::timeout(
                ANSWERED_WITHIN,
                phone.send(request("POST", &path, vec![7u8; 100])),
            )
            .await;
            // On the paused clock, time moves only while every task waits for a timer: an
            // answer that waited for nothing took no virtual time at all.
            let waited = sent.elapsed();
            let answer = match answer {
                Ok(answer) if waited < AT_ONCE => answer,
                _ => {
                    panic!(
                        "upload {} of {uploads} was not answered at once: {} (a render takes {} \
                         s; {} uploads before it were answered 202, {} were answered 503). \
                         However far behind the renderer is, an upload is answered at once, \
                         202 while the queue has room and 503 when it is full, never after \
                         waiting, even briefly, for the renderer to make room",
                        i + 1,
                        if waited < ANSWERED_WITHIN {
                            format!("its answer took {waited:?}")
                        } else {
                            format!("no answer within {} s", ANSWERED_WITHIN.as_secs())
                        },
                        RENDER_TIME.as_secs(),
                        statuses.iter().filter(|&&status| status == 202).count(),
                        statuses.iter().filter(|&&status| status == 503).count(),
                    );
                }
            };
            let answer = answer.expect("the server closed the connection instead of answering");
            statuses.push(answer.status.as_u16());
        }
        assert!(
            statuses.iter().all(|status| [202, 503].contains(status))
                && statuses.last() == Some(&503),
            "{uploads} small photos were uploaded while the renderer was busy (it holds one \
             photo, the queue holds {QUEUE_DEPTH}): every answer should be 202 or 503, and the \
             last one 503; the statuses were {statuses:?}",
        );
    });
}

/// The renderer takes photos up to `MAX_PHOTO` bytes: one of exactly that size is accepted,
/// and one byte more is refused with 413, which the handler can only know once it has read it.
#[test]
fn photos_up_to_the_limit_are_accepted_and_larger_ones_refused() {
    check(HANG).paused(|| async {
        let (rendered, _thumbnails) = mpsc::unbounded_channel();
        let queue = start_renderer(rendered);
        let at_limit = queue.clone();
        let (mut phone, _server) = duplex::http1(move |io| serve_connection(io, at_limit)).await;
        let response = phone
            .send(request(
                "POST",
                "/photos/IMG_0001.jpg",
                vec![7u8; MAX_PHOTO],
            ))
            .await
            .expect("the server closed the connection instead of answering");
        assert_eq!(
            response.status.as_u16(),
            202,
            "a photo of exactly MAX_PHOTO ({MAX_PHOTO}) bytes must be accepted, but the server \
             answered {} {:?}: the limit is the largest size the renderer takes, not the first \
             size it refuses",
            response.status,
            response.text(),
        );

        let over_limit = queue.clone();
        let (mut phone, _server) = duplex::http1(move |io| serve_connection(io, over_limit)).await;
        let response = phone
            .send(request(
                "POST",
                "/photos/IMG_0002.jpg",
                vec![7u8; MAX_PHOTO + 1],
            ))
            .await
            .expect("the server closed the connection instead of answering");
        assert_eq!(
            response.status.as_u16(),
            413,
            "a photo of MAX_PHOTO + 1 bytes must be refused with 413, but the server answered \
             {} {:?}: only a handler that reads the body, with a limit, before it answers can \
             refuse it; a read without a limit takes whatever a phone sends into memory",
            response.status,
            response.text(),
        );

        // The same photo sent chunked, with no content-length to refuse it by: only the read
        // itself can count its bytes.
        let (mut phone, _server) = duplex::raw(move |io| serve_connection(io, queue));
        let (mut from_server, mut to_server) = tokio::io::split(&mut phone);
        let upload = async {
            let mut bytes = b"POST /photos/IMG_0003.jpg HTTP/1.1\r\nhost: workshop.test\r\n\
                transfer-encoding: chunked\r\n\r\n"
                .to_vec();
            for chunk in vec![7u8; MAX_PHOTO + 1].chunks(1024 * 1024) {
                bytes.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
                bytes.extend(chunk);
                bytes.extend(b"\r\n");
            }
            bytes.extend(b"0\r\n\r\n");
            // The server may refuse and close before it has read it all.
            let _ = to_server.write_all(&bytes).await;
        };
        let (answer, ()) =
            tokio::join!(read_statuses(&mut from_server, 1, ANSWERED_WITHIN), upload);
        assert!(
            answer.starts_with("HTTP/1.1 413 "),
            "a photo of MAX_PHOTO + 1 bytes sent chunked (no content-length) must be refused \
             with 413, but the server answered {:?}: a content-length is only what the phone \
             says; the limit must be on the bytes the read takes in (`Limited`, or a count)",
            answer.lines().next().unwrap_or_default(),
        );
    });
}
