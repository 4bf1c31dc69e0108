//! Checks for M01: in-memory connections on a paused clock, and a gauge of open archive
//! sessions. Virtual time makes a twenty-second session cost nothing, and lets "the session is
//! still open one second after the client left" be a fact rather than a race.

use std::time::Duration;

use harness::duplex::{self, ServerSide};
use harness::leak::Gauge;
use harness::server::request;
use harness::watchdog::check;
use m01_unread_body::{Archive, MAX_FILE, OPEN_SESSION, fnv1a, serve_connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::oneshot;

const HANG: &str = "the check never got past waiting on the server; is the handler waiting for a body the client never finishes sending?";

/// How long, in virtual time, a session may outlive its client: a small fraction of opening one.
const STOPS_WITHIN: Duration = Duration::from_secs(1);

/// How long after a whole file has arrived the archive must have been asked for a session.
/// Well before a session can finish opening, so that "asked for" and "opened" never coincide.
const ASKED_WITHIN: Duration = Duration::from_secs(5);

/// The size of most uploads: far more than hyper reads in one go, so most of it is still on
/// its way when the handler starts.
const FILE_BYTES: usize = 1024 * 1024;

/// A small scan, a few hundred bytes: the head and the first half arrive in hyper's first
/// read (up to 8 KiB), and the second half is still owed when the client hangs up. Smaller
/// than any size below which a learner might think a body is safe to leave unread.
const SMALL_FILE_BYTES: usize = 512;

fn file(bytes: usize) -> Vec<u8> {
    (0..bytes).map(|i| (i % 251) as u8).collect()
}

fn head(bytes: usize) -> Vec<u8> {
    format!(
        "PUT /archive/scan.tiff HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: {bytes}\r\n\r\n"
    )
    .into_bytes()
}

fn receipt(file: &[u8]) -> String {
    format!("scan.tiff bytes={} fnv={:016x}\n", file.len(), fnv1a(file))
}

/// A client that writes `bytes` in the background, tells `written` once they are all out, and
/// then stays connected until its task is aborted.
fn upload(
    mut client: DuplexStream,
    bytes: Vec<u8>,
) -> (tokio::task::JoinHandle<()>, oneshot::Receiver<()>) {
    let (written, all_out) = oneshot::channel();
    let task = tokio::spawn(async move {
        client.write_all(&bytes).await.unwrap();
        let _ = written.send(());
        std::future::pending::<()>().await;
    });
    (task, all_out)
}

/// Closes the client's socket: its task owns the stream, and awaiting the aborted task waits
/// until the stream has been dropped.
async fn hang_up(client: tokio::task::JoinHandle<()>) {
    client.abort();
    let _ = client.await;
}

/// What the check saw of the connection when a session outlived its client.
fn connection_state(server: &ServerSide<hyper::Result<()>>) -> &'static str {
    if server.is_finished() {
        "hyper had already closed the connection and dropped its handler, so the session \
         lives on in something the handler does not own (a spawned task nobody cancels)"
    } else {
        "hyper was still serving the connection, so its handler was still running: either \
         hyper had not seen the hang-up (it reads nothing from the socket while a request body \
         sits unread), or the handler was still waiting for the archive after the upload had failed (for a \
         session it no longer needs, or one it opened for the part that arrived)"
    }
}

/// A client sends part of a file and hangs up at the first sign of progress (a session asked
/// for, or its bytes taken in by the server); no session may outlive it.
async fn cut_short(file_bytes: usize) -> Result<(), String> {
    let sessions = Gauge::new();
    let archive = Archive::new(sessions.clone());
    let (client, server) = duplex::raw(move |io| serve_connection(io, archive));
    let mut bytes = head(file_bytes);
    bytes.extend(&file(file_bytes)[..file_bytes / 2]);
    let (client, all_out) = upload(client, bytes);
    tokio::select! {
        _ = sessions.reaches_started(1, OPEN_SESSION) => {}
        _ = all_out => {}
    }
    hang_up(client).await;
    if sessions.settles_to(0, STOPS_WITHIN).await {
        return Ok(());
    }
    Err(format!(
        "a client sent half of a {file_bytes}-byte file and hung up, yet an archive session \
         was still open {} s later (opening one takes {} s): {}. A cut-short upload is not a \
         file to archive, so no session should outlive it",
        STOPS_WITHIN.as_secs(),
        OPEN_SESSION.as_secs(),
        connection_state(&server),
    ))
}

/// Reads one response from a raw connection: its status line and body, or what arrived
/// before the server closed or the deadline passed.
async fn read_response(from_server: &mut DuplexStream, deadline: Duration) -> (String, String) {
    let mut received = Vec::new();
    let _ = tokio::time::timeout(deadline, async {
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&received);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .and_then(|length| length.trim().parse::<usize>().ok());
                if length.is_some_and(|length| body.len() >= length) {
                    return;
                }
            }
            match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&received).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned());
    (status, body.unwrap_or_default())
}

/// A client uploads the whole file and closes its socket as soon as the server has asked the
/// archive for a session (a closed laptop lid, a proxy's own timeout).
#[test]
fn the_session_closes_when_the_client_hangs_up_after_uploading() {
    check(HANG).paused(|| async {
        let sessions = Gauge::new();
        let archive = Archive::new(sessions.clone());
        let (client, server) = duplex::raw(move |io| serve_connection(io, archive));
        let mut bytes = head(FILE_BYTES);
        bytes.extend(file(FILE_BYTES));
        let (client, _all_out) = upload(client, bytes);
        assert!(
            sessions.reaches_started(1, ASKED_WITHIN).await,
            "the client sent PUT /archive/scan.tiff with a whole file, but {} s later the gauge \
             had counted no archive session (opening one takes {} s): the archive bills a \
             session from the moment it is asked for, so ask for one once the file is in, and \
             count it from that moment (the guard in `open_session`)",
            ASKED_WITHIN.as_secs(),
            OPEN_SESSION.as_secs(),
        );
        hang_up(client).await;
        assert!(
            sessions.settles_to(0, STOPS_WITHIN).await,
            "the client hung up, yet its archive session was still open {} s later (opening one \
             takes {} s): {}",
            STOPS_WITHIN.as_secs(),
            OPEN_SESSION.as_secs(),
            connection_state(&server),
        );
    });
}

/// A client sends half of its file and hangs up: either the server notices at once, or it
/// notices when it reads the rest of the body and finds the end of the stream instead.
#[test]
fn the_session_closes_when_the_client_hangs_up_mid_upload() {
    check(HANG).paused(|| async {
        if let Err(failure) = cut_short(FILE_BYTES).await {
            panic!("{failure}");
        }
    });
}

/// The same with a small scan: hyper's first read takes in the head and the first half, but
/// the second half is still owed, so the hang-up is behind an unfinished body all the same.
#[test]
fn the_session_closes_when_a_small_upload_is_cut_short() {
    check(HANG).paused(|| async {
        if let Err(failure) = cut_short(SMALL_FILE_BYTES).await {
            panic!("{failure}");
        }
    });
}

/// A client that stays connected gets the archive's receipt for every byte it sent.
#[test]
fn a_client_that_stays_gets_its_receipt() {
    check(HANG).paused(|| async {
        let sessions = Gauge::new();
        let archive = Archive::new(sessions.clone());
        let (mut conn, _server) = duplex::http1(move |io| serve_connection(io, archive)).await;
        let file = file(FILE_BYTES);
        let expected = receipt(&file);
        let response = conn
            .send(request("PUT", "/archive/scan.tiff", file))
            .await
            .expect("the server closed the connection instead of answering");
        assert_eq!(
            (response.status.as_u16(), response.text()),
            (200, expected),
            "a client that stays connected must get the receipt for its whole file: the archive \
             must receive every byte of the body, through a session that is allowed to open"
        );
        assert_eq!(
            sessions.started(),
            1,
            "exactly one archive session should have been opened"
        );
        assert!(
            sessions.settles_to(0, STOPS_WITHIN).await,
            "the receipt was sent, yet the archive session is still counted as open"
        );
    });
}

/// A scanning station on a slow link: the file arrives 2 KiB a second, so its 1 MiB takes
/// eight and a half minutes, longer than any deadline one would set on reading a whole body
/// (while the link is never quiet for long). The client waits for its receipt however long
/// that takes; virtual time makes it cost nothing.
#[test]
fn a_slow_upload_still_gets_its_receipt() {
    const PIECES: usize = 512;
    const GAP: Duration = Duration::from_secs(1);
    check(HANG).paused(|| async {
        let sessions = Gauge::new();
        let archive = Archive::new(sessions.clone());
        let (mut client, _server) = duplex::raw(move |io| serve_connection(io, archive));
        let file = file(FILE_BYTES);
        let expected = receipt(&file);
        client.write_all(&head(FILE_BYTES)).await.unwrap();
        for (i, piece) in file.chunks(FILE_BYTES / PIECES).enumerate() {
            if i > 0 {
                tokio::time::sleep(GAP).await;
            }
            if client.write_all(piece).await.is_err() {
                // The server closed the connection: its answer is already on the way.
                break;
            }
        }
        let (status, body) = read_response(&mut client, 2 * OPEN_SESSION).await;
        assert_eq!(
            (status.as_str(), body),
            ("HTTP/1.1 200 OK", expected),
            "a client sent its file in {PIECES} pieces {} s apart ({} s in all) and waited, but \
             did not get the receipt for it: a deadline on reading the whole body, however \
             generous, fails the honest clients on links slower than it allows, and the read \
             needs none (a client that hangs up ends the read by itself)",
            GAP.as_secs(),
            (PIECES - 1) as u64 * GAP.as_secs(),
        );
    });
}

/// The archive takes files up to `MAX_FILE` bytes: one of exactly that size is archived, and
/// one byte more is refused with 413 instead of being read into memory whole.
#[test]
fn files_up_to_the_limit_are_archived_and_larger_ones_refused() {
    check(HANG).paused(|| async {
        let archive = Archive::new(Gauge::new());
        let at_limit = archive.clone();
        let (mut conn, _server) = duplex::http1(move |io| serve_connection(io, at_limit)).await;
        let response = conn
            .send(request("PUT", "/archive/scan.tiff", vec![7u8; MAX_FILE]))
            .await
            .expect("the server closed the connection instead of answering");
        let text = response.text();
        assert!(
            response.status.as_u16() == 200
                && text.starts_with(&format!("scan.tiff bytes={MAX_FILE} ")),
            "a file of exactly MAX_FILE ({MAX_FILE}) bytes must be archived, but the server \
             answered {} {text:?}{}",
            response.status,
            if response.status.as_u16() == 413 {
                ": the limit is the largest size the archive takes, not the first size it refuses"
            } else {
                ""
            },
        );

        let (mut conn, _server) = duplex::http1(move |io| serve_connection(io, archive)).await;
        let response = conn
            .send(request(
                "PUT",
                "/archive/scan.tiff",
                vec![7u8; MAX_FILE + 1],
            ))
            .await
            .expect("the server closed the connection instead of answering");
        assert_eq!(
            response.status.as_u16(),
            413,
            "a file of MAX_FILE + 1 bytes must be refused with 413, but the server answered \
             {} {:?}: a read without a limit takes whatever a client sends into memory",
            response.status,
            response.text(),
        );
    });
}
