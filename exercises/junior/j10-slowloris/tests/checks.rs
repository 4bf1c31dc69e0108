//! Checks for J10, on the paused clock: `serve_connection` runs over an in-memory pipe, so the
//! 30-second header timeout costs no real time and fires at an exact virtual instant.
//!
//! Every deadline these checks time starts at virtual time zero, before the paused clock has
//! moved. hyper computes a header deadline as `timer.now() + 30 s`, and a hand-written
//! `hyper::rt::Timer` may read `now()` from std's clock, which does not follow the paused one:
//! the two agree at the start of a check, and only there. So any correct timer, tokio's or
//! one written by hand, passes; no check depends on which clock the timer reads.

use std::time::Duration;

use harness::duplex::{self, ServerSide};
use harness::watchdog::check;
use j10_slowloris::serve_connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::{Instant, sleep, timeout};

const HANG: &str = "the check never got past waiting on the connection; on the paused clock that \
                    usually means a task blocks the thread instead of awaiting";

/// The service's policy: a client has this long to send a complete request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How far from the policy's deadline a close still counts as "at the deadline".
const SLACK: Duration = Duration::from_secs(1);

type Served = ServerSide<hyper::Result<()>>;

/// Waits for the connection task to end (the server closed the connection) for at most
/// `limit`, and returns how long that took, or `None` if the connection is still open.
async fn closes_within(server: &mut Served, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    match timeout(limit, &mut server.task).await {
        Err(_still_open) => None,
        Ok(Err(join)) if join.is_panic() => panic!(
            "the connection task panicked instead of serving the connection; hyper panics \
             when a timeout is configured on a builder that has no timer"
        ),
        Ok(_) => Some(start.elapsed()),
    }
}

/// Asserts that the connection was closed at the header timeout, within [`SLACK`] either way.
/// `what` says what the client did; `never` and `early` what it means that the connection
/// stayed open, or was closed too soon.
fn assert_closed_at_the_deadline(closed: Option<Duration>, what: &str, never: &str, early: &str) {
    let Some(after) = closed else {
        panic!(
            "{what};\n{} s later the server still held the connection open:\n{never}",
            (HEADER_TIMEOUT + SLACK).as_secs()
        );
    };
    assert!(
        after + SLACK >= HEADER_TIMEOUT,
        "{what};\nthe server closed the connection after {after:?}, before the {} s the policy \
         gives every client:\n{early}",
        HEADER_TIMEOUT.as_secs()
    );
}

/// Writes `bytes`, turning a server that already hung up into a readable failure.
async fn send(client: &mut DuplexStream, bytes: &str, at: Duration) {
    if client.write_all(bytes.as_bytes()).await.is_err() {
        panic!(
            "the server closed the connection before the client could send {bytes:?} at \
             {} s;\nthe policy gives a client {} s to finish its request head",
            at.as_secs(),
            HEADER_TIMEOUT.as_secs()
        );
    }
}

/// A slowloris client: half a request head, then nothing, ever.
#[test]
fn half_sent_headers_are_cut_off_at_the_header_timeout() {
    check(HANG).paused(|| async {
        let (mut client, mut server) = duplex::raw(serve_connection);
        send(
            &mut client,
            "GET /status HTTP/1.1\r\nHost: status.test\r\n",
            Duration::ZERO,
        )
        .await;

        let closed = closes_within(&mut server, HEADER_TIMEOUT + SLACK).await;
        assert_closed_at_the_deadline(
            closed,
            "a client sent half a request head and went quiet",
            "hyper's header read timeout never fired; without a timer on the builder it does \
             not run at all",
            "the timeout is shorter than the policy",
        );
    });
}

/// A slowloris client that never goes quiet for long: after half a request head it sends one
/// more header line every 7 s, each gap well within the 30 s, and never ends the head. The
/// 30 s run from when the connection started waiting for the head, not from the last byte.
#[test]
fn trickled_headers_are_cut_off_at_the_header_timeout() {
    /// A gap that fits four times into the policy and never lands on its deadline, so no line
    /// arrives at the very instant the connection is due to be closed.
    const TRICKLE_EVERY: Duration = Duration::from_secs(7);

    check(HANG).paused(|| async {
        let (mut client, mut server) = duplex::raw(serve_connection);
        send(
            &mut client,
            "GET /status HTTP/1.1\r\nHost: status.test\r\n",
            Duration::ZERO,
        )
        .await;
        let _trickle = tokio::spawn(async move {
            for line in 1.. {
                sleep(TRICKLE_EVERY).await;
                let header = format!("X-Padding-{line}: x\r\n");
                if client.write_all(header.as_bytes()).await.is_err() {
                    break; // The server hung up, as it should.
                }
            }
        });

        let closed = closes_within(&mut server, HEADER_TIMEOUT + SLACK).await;
        assert_closed_at_the_deadline(
            closed,
            "a client sent half a request head, then one more header line every 7 s",
            "either no header timeout runs at all, or its deadline restarts whenever a byte \
             arrives:\nthat is an idle timeout, and a trickling client keeps resetting it. The \
             policy's 30 s run from\nwhen the connection starts waiting for a request head",
            "the timeout is shorter than the policy",
        );
    });
}

/// The same timer closes a keep-alive connection that sits idle between requests.
#[test]
fn idle_keep_alive_connection_is_closed_at_the_header_timeout() {
    check(HANG).paused(|| async {
        let (mut client, mut server) = duplex::http1(serve_connection).await;
        let response = client.get("/status").await.unwrap_or_else(|error| {
            panic!(
                "the first request on a fresh connection failed ({error}): the connection task \
                 ended before serving anything; did it panic?"
            )
        });
        assert_eq!(response.status, 200, "GET /status must answer 200");

        // From here the connection waits for the next request head that never comes.
        let closed = closes_within(&mut server, HEADER_TIMEOUT + SLACK).await;
        assert_closed_at_the_deadline(
            closed,
            "after its first response a keep-alive connection sat idle",
            "hyper closes idle keep-alive connections with its header read timer, which never \
             fired",
            "the timeout is shorter than the policy, or keep-alive is switched off (which \
             closes every connection right after its response)",
        );
    });
}

/// A slow but honest client: its request head trickles in over 20 s, within the policy.
#[test]
fn slow_headers_finished_in_time_are_served() {
    check(HANG).paused(|| async {
        let (mut client, _server) = duplex::raw(serve_connection);
        send(&mut client, "GET /status HTTP/1.1\r\n", Duration::ZERO).await;
        sleep(Duration::from_secs(10)).await;
        send(
            &mut client,
            "Host: status.test\r\n",
            Duration::from_secs(10),
        )
        .await;
        sleep(Duration::from_secs(10)).await;
        send(
            &mut client,
            "Connection: close\r\n\r\n",
            Duration::from_secs(20),
        )
        .await;

        let mut response = Vec::new();
        let read = timeout(SLACK, client.read_to_end(&mut response)).await;
        let response = String::from_utf8_lossy(&response);
        assert!(
            matches!(read, Ok(Ok(_))) && response.starts_with("HTTP/1.1 200 OK"),
            "a client that finished its request head after 20 s, within the {} s policy, was \
             not served;\nthe server answered: {response:?}",
            HEADER_TIMEOUT.as_secs()
        );
        assert!(
            response.ends_with("all systems operational\n"),
            "the status page's body is missing from the response: {response:?}"
        );
    });
}

/// A client on a slow link: its request head arrives at once, in time, but it reads the
/// response a few bytes every 10 s, so the connection lives well past 30 s. The policy limits
/// the request head, not how long a connection may live: the whole response must arrive.
#[test]
fn slow_reader_gets_the_whole_response() {
    /// What the link holds in flight: the server can write only as fast as the client reads.
    const LINK_BYTES: usize = 16;
    const READ_EVERY: Duration = Duration::from_secs(10);

    check(HANG).paused(|| async {
        let (mut client, server) = tokio::io::duplex(LINK_BYTES);
        let _server = tokio::spawn(serve_connection(server));
        let request = "GET /status HTTP/1.1\r\nHost: status.test\r\nConnection: close\r\n\r\n";
        send(&mut client, request, Duration::ZERO).await;

        let start = Instant::now();
        let mut response = Vec::new();
        let mut chunk = [0; LINK_BYTES];
        // Far more reads than the response needs: the loop ends at the body or at a hang-up.
        for _ in 0..100 {
            sleep(READ_EVERY).await;
            match client.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&chunk[..n]),
            }
            if response.ends_with(b"all systems operational\n") {
                break;
            }
        }
        let took = start.elapsed();
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.starts_with("HTTP/1.1 200 OK") && response.ends_with("operational\n"),
            "a client that sent its request at once and read the response slowly, a few \
             bytes every 10 s,\nhad its connection closed before the response was complete: \
             the policy limits the time a request head may take,\nnot how long a connection \
             lives. It got: {response:?}"
        );
        assert!(
            took > HEADER_TIMEOUT,
            "the check itself is broken: the slow read took only {took:?}, so it no longer \
             outlives the header timeout"
        );
    });
}
