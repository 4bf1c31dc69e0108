//! Checks for M01: in-memory connections on a paused clock, and a gauge of open archive
//! sessions. Virtual time makes a twenty-second session cost nothing, and lets "the session is
//! still open one second after the client left" be a fact rather than a race.

use std::time::Duration;

use harness::duplex;
use harness::leak::Gauge;
use harness::server::request;
use harness::watchdog::check;
use m01_unread_body::{Archive, OPEN_SESSION, fnv1a, serve_connection};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::oneshot;

const HANG: &str = "the check never got past waiting on the server; is the handler waiting for a body the client never finishes sending?";

/// How long, in virtual time, a session may outlive its client: a small fraction of opening one.
const STOPS_WITHIN: Duration = Duration::from_secs(1);

/// The size of every upload: far more than hyper reads in one go, so most of it is still on
/// its way when the handler starts.
const FILE_BYTES: usize = 1024 * 1024;

fn file() -> Vec<u8> {
    (0..FILE_BYTES).map(|i| (i % 251) as u8).collect()
}

fn head() -> Vec<u8> {
    format!(
        "PUT /archive/scan.tiff HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: {FILE_BYTES}\r\n\r\n"
    )
    .into_bytes()
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

/// A client uploads the whole file and closes its socket as soon as the server has asked the
/// archive for a session (a closed laptop lid, a proxy's own timeout).
#[test]
fn the_session_closes_when_the_client_hangs_up_after_uploading() {
    check(HANG).paused(|| async {
        let sessions = Gauge::new();
        let archive = Archive::new(sessions.clone());
        let (client, _server) = duplex::raw(move |io| serve_connection(io, archive));
        let mut bytes = head();
        bytes.extend(file());
        let (client, _all_out) = upload(client, bytes);
        assert!(
            sessions.reaches_started(1, OPEN_SESSION).await,
            "the client sent PUT /archive/scan.tiff with a whole file, but no archive session \
             was ever opened"
        );
        hang_up(client).await;
        assert!(
            sessions.settles_to(0, STOPS_WITHIN).await,
            "the client hung up, yet its archive session was still open {} s later (opening one \
             takes {} s): hyper drops a handler when it reads the end of the stream, and it \
             reads nothing while the handler leaves the request body unread",
            STOPS_WITHIN.as_secs(),
            OPEN_SESSION.as_secs(),
        );
    });
}

/// A client sends half of its file and hangs up: either the server notices at once, or it
/// notices when it reads the rest of the body and finds the end of the stream instead.
#[test]
fn the_session_closes_when_the_client_hangs_up_mid_upload() {
    check(HANG).paused(|| async {
        let sessions = Gauge::new();
        let archive = Archive::new(sessions.clone());
        let (client, _server) = duplex::raw(move |io| serve_connection(io, archive));
        let mut bytes = head();
        bytes.extend(&file()[..FILE_BYTES / 2]);
        let (client, all_out) = upload(client, bytes);
        // Hang up at the first sign of progress: the session was asked for, or the first half
        // of the file was taken in by the server.
        tokio::select! {
            _ = sessions.reaches_started(1, OPEN_SESSION) => {}
            _ = all_out => {}
        }
        hang_up(client).await;
        assert!(
            sessions.settles_to(0, STOPS_WITHIN).await,
            "the client hung up halfway through its upload, yet an archive session was still \
             open {} s later (opening one takes {} s): a handler that waits for the archive \
             before it learns the upload failed keeps the session open for nobody",
            STOPS_WITHIN.as_secs(),
            OPEN_SESSION.as_secs(),
        );
    });
}

/// A client that stays connected gets the archive's receipt for every byte it sent.
#[test]
fn a_client_that_stays_gets_its_receipt() {
    check(HANG).paused(|| async {
        let sessions = Gauge::new();
        let archive = Archive::new(sessions.clone());
        let (mut conn, _server) = duplex::http1(move |io| serve_connection(io, archive)).await;
        let file = file();
        let expected = format!("scan.tiff bytes={FILE_BYTES} fnv={:016x}\n", fnv1a(&file));
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
