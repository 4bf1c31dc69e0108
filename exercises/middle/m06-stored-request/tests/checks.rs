//! Checks for M06: in-memory connections on a paused clock. Virtual time makes a five-second
//! render cost nothing, and lets "the next upload was answered within a second" be a fact
//! rather than a race.

use std::time::Duration;

use harness::duplex;
use harness::server::request;
use harness::watchdog::check;
use m06_stored_request::{RENDER_TIME, Thumbnail, fnv1a, serve_connection, start_renderer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const HANG: &str = "the check never got past waiting on the server; is an upload waiting for a renderer that never reads it?";

/// How long, in virtual time, a client may wait for an answer: a fraction of one render.
const ANSWERED_WITHIN: Duration = Duration::from_secs(1);

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
        let (mut phone, _server) = duplex::raw(move |io| serve_connection(io, queue));
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
             {} s (a render takes {} s) both should have been accepted. The connection could \
             not read the second request: the first one's body was still arriving, and hyper \
             reads it only as fast as whoever holds the request reads it",
            ANSWERED_WITHIN.as_secs(),
            RENDER_TIME.as_secs(),
        );
    });
}

/// A photo that was accepted reaches the renderer whole: every byte, in order.
#[test]
fn the_renderer_gets_every_byte() {
    check(HANG).paused(|| async {
        let (rendered, mut thumbnails) = mpsc::unbounded_channel();
        let queue = start_renderer(rendered);
        let (mut phone, _server) = duplex::http1(move |io| serve_connection(io, queue)).await;
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
            Some(expected),
            "a photo was accepted, but the renderer did not publish a thumbnail of all its {} \
             bytes within one render: the renderer must get the whole body of every photo that \
             was answered 202",
            PHOTO_BYTES,
        );
    });
}

/// The app deletes its copy of a photo once it is accepted, so a 202 must mean the whole photo
/// is in the queue. An upload cut short (the phone lost signal) must not be accepted.
#[test]
fn a_cut_short_upload_is_not_accepted() {
    check(HANG).paused(|| async {
        let (rendered, _thumbnails) = mpsc::unbounded_channel();
        let queue = start_renderer(rendered);
        let (mut phone, _server) = duplex::raw(move |io| serve_connection(io, queue));
        let mut bytes = upload_head("cut.jpg", PHOTO_BYTES);
        bytes.extend(&photo()[..16 * 1024]);
        phone.write_all(&bytes).await.unwrap();
        // The phone stops sending: the server reads the end of the stream mid-body.
        phone.shutdown().await.unwrap();
        let answer = read_statuses(&mut phone, 1, ANSWERED_WITHIN).await;
        assert!(
            !answer.starts_with("HTTP/1.1 202"),
            "a phone sent 16 KiB of a 1 MiB photo and lost its connection, yet the server \
             answered {:?}: the app deletes a photo once it is accepted, so a 202 must wait \
             until the whole photo has arrived",
            answer.lines().next().unwrap_or_default(),
        );
    });
}
