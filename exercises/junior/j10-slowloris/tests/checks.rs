//! Checks for J10, on the paused clock: `serve_connection` runs over an in-memory pipe, so the
//! 30-second header timeout costs no real time and fires at an exact virtual instant.

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
/// How late after the policy's deadline a close still counts as "at the deadline".
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

/// Writes `bytes`, turning a server that already hung up into a readable failure.
async fn send(client: &mut DuplexStream, bytes: &str, at: Duration) {
    if client.write_all(bytes.as_bytes()).await.is_err() {
        panic!(
            "the server closed the connection before the client could send {bytes:?} at \
             {} s; the policy gives a client {} s to finish its request head",
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
        let Some(after) = closed else {
            panic!(
                "a client sent half a request head and went quiet; {} s later the server still \
                 held the connection open: the header read timeout is not running",
                (HEADER_TIMEOUT + SLACK).as_secs()
            );
        };
        assert!(
            after >= HEADER_TIMEOUT,
            "the server closed the half-sent request after {:?}, before the {} s the policy \
             gives every client",
            after,
            HEADER_TIMEOUT.as_secs()
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
        let Some(after) = closed else {
            panic!(
                "after its first response the connection sat idle, and {} s later the server \
                 still held it open: idle keep-alive connections are closed by the same header \
                 timer, which is not running",
                (HEADER_TIMEOUT + SLACK).as_secs()
            );
        };
        assert!(
            after >= HEADER_TIMEOUT,
            "the server closed an idle keep-alive connection after {after:?}, before the {} s \
             the policy allows",
            HEADER_TIMEOUT.as_secs()
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
             not served; the server answered: {response:?}",
            HEADER_TIMEOUT.as_secs()
        );
        assert!(
            response.ends_with("all systems operational\n"),
            "the status page's body is missing from the response: {response:?}"
        );
    });
}

/// A legitimate keep-alive client that stays connected much longer than the header timeout,
/// pausing 25 s between requests: every request must be served.
#[test]
fn long_lived_keep_alive_client_is_served() {
    check(HANG).paused(|| async {
        let (mut client, _server) = duplex::http1(serve_connection).await;
        let start = Instant::now();
        for request in 1..=4 {
            let at = start.elapsed().as_secs();
            let response = client.get("/status").await.unwrap_or_else(|error| {
                panic!(
                    "request {request} of a keep-alive client that pauses 25 s between \
                     requests, sent {at} s into the connection, failed ({error}); the policy \
                     gives each request head 30 s, it does not limit how long a busy \
                     connection lives"
                )
            });
            assert_eq!(response.status, 200, "GET /status must answer 200");
            assert_eq!(response.text(), "all systems operational\n");
            sleep(Duration::from_secs(25)).await;
        }
    });
}
