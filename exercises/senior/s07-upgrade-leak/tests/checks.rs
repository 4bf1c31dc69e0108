//! Checks for S07: WebSocket dashboards over in-memory connections on a paused clock. The
//! clients are real WebSocket clients (tokio-tungstenite) talking to the server through hyper's
//! upgrade; the hub's `sessions()` is the gauge, and the runtime's count of alive tasks says
//! whether a session is still running. Virtual time makes "still there five seconds later" a
//! fact rather than a race.

use std::time::Duration;

use futures::StreamExt;
use harness::watchdog::check;
use s07_upgrade_leak::{Hub, Server};
use tokio::io::DuplexStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Dashboard = WebSocketStream<DuplexStream>;

const HANG: &str = "the check never finished: does a session, or shutdown, wait for something \
                    that never comes?";

/// How long, in virtual time, the server has to notice a departure or finish a shutdown. A
/// correct server needs a few polls; a leaking one never gets there, and on the paused clock
/// five seconds cost nothing.
const DEADLINE: Duration = Duration::from_secs(5);

/// A dashboard opens a WebSocket to `/live`, and the check waits until the hub counts
/// `expected` sessions (the session registers once hyper has handed the connection over).
async fn open_dashboard(server: &Server, expected: usize) -> Dashboard {
    open_dashboard_buffered(server, expected, 64 * 1024).await
}

/// `open_dashboard`, with room for only `buffer` bytes in flight towards the dashboard.
async fn open_dashboard_buffered(server: &Server, expected: usize, buffer: usize) -> Dashboard {
    let (client, server_end) = tokio::io::duplex(buffer);
    server.accept(server_end);
    let (dashboard, response) = tokio_tungstenite::client_async("ws://pulse.test/live", client)
        .await
        .expect("the WebSocket handshake with /live");
    assert_eq!(
        response.status(),
        101,
        "the answer to a WebSocket handshake"
    );
    assert!(
        settles(server.hub(), expected).await,
        "a dashboard connected and the hub counts {} sessions, not {expected}",
        server.hub().sessions()
    );
    dashboard
}

/// Whether the hub's gauge reaches `expected` within the deadline.
async fn settles(hub: &Hub, expected: usize) -> bool {
    let wait = async {
        while hub.sessions() != expected {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(DEADLINE, wait).await.is_ok()
}

/// The next text message a dashboard receives, or `None` if none comes within the deadline.
async fn next_text(dashboard: &mut Dashboard, who: &str) -> Option<String> {
    loop {
        let next = tokio::time::timeout(DEADLINE, dashboard.next()).await;
        match next {
            Ok(Some(Ok(Message::Text(text)))) => return Some(text.to_string()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("{who} waited for a notification and got {other:?}"),
            Err(_) => return None,
        }
    }
}

/// A dashboard closes its session properly: a Close frame, then it reads until the server's
/// answer and the end of the stream.
async fn close_cleanly(mut dashboard: Dashboard) {
    dashboard.close(None).await.expect("sending a Close frame");
    let drain = async { while let Some(Ok(_)) = dashboard.next().await {} };
    let _ = tokio::time::timeout(DEADLINE, drain).await;
}

/// Four dashboards connect. One closes its tab (a Close frame), one vanishes (a laptop lid: the
/// connection drops with no Close frame), and a broadcast must still reach the two that stay;
/// then those leave the same two ways. After each departure the hub must let go of that
/// session, and only that one.
#[test]
fn a_session_that_ends_leaves_the_hub() {
    check(HANG).paused(|| async {
        let server = Server::new();
        let mut dashboards = Vec::new();
        for n in 1..=4 {
            dashboards.push(open_dashboard(&server, n).await);
        }
        let mut stays = dashboards.split_off(2);
        let vanishes = dashboards.pop().unwrap();
        let closes = dashboards.pop().unwrap();

        close_cleanly(closes).await;
        assert!(
            settles(server.hub(), 3).await,
            "a dashboard closed its session with a Close frame and the hub still counts {} \
             sessions, not 3: a session that ends must leave the hub",
            server.hub().sessions()
        );
        drop(vanishes);
        assert!(
            settles(server.hub(), 2).await,
            "a dashboard's connection dropped without a Close frame (a laptop closed, a proxy \
             recycled the connection) and the hub still counts {} sessions, not 2: a session \
             must leave the hub however it ends, not only on a clean close",
            server.hub().sessions()
        );

        server.hub().broadcast("deploy 8812 started");
        for (n, dashboard) in stays.iter_mut().enumerate() {
            let who = format!("dashboard {} of the two still open", n + 1);
            assert_eq!(
                next_text(dashboard, &who).await.as_deref(),
                Some("deploy 8812 started"),
                "a broadcast after two others left did not reach {who} within {DEADLINE:?}: \
                 the hub lost that live session when a departed one was removed (removing an \
                 entry must remove that session's, not whatever sits at its old position)"
            );
        }

        let vanishes = stays.pop().unwrap();
        close_cleanly(stays.pop().unwrap()).await;
        drop(vanishes);
        assert!(
            settles(server.hub(), 0).await,
            "every dashboard has left, and the hub still counts {} sessions",
            server.hub().sessions()
        );
    });
}

/// Three dashboards are open when the server shuts down for a deploy. The dashboards keep
/// reading (as a browser does, answering the server's Close frame). When `shutdown` returns,
/// every session has ended (no task of theirs is still alive), and each dashboard was told the
/// server is going away: a Close frame with code 1001, which tells a browser to reconnect to
/// another instance at once rather than report a network failure.
#[test]
fn shutdown_closes_every_session() {
    check(HANG).paused(|| async {
        let runtime = tokio::runtime::Handle::current().metrics();
        let before = runtime.num_alive_tasks();
        let server = Server::new();
        let mut dashboards = Vec::new();
        for n in 1..=3 {
            dashboards.push(open_dashboard(&server, n).await);
        }

        let shutdown = async {
            let finished = tokio::time::timeout(DEADLINE, server.shutdown()).await;
            assert!(
                finished.is_ok(),
                "shutdown did not return within {DEADLINE:?} while every dashboard was \
                 reading and answering: does it wait for sessions that were never told to stop?"
            );
            // Counted at the instant shutdown returns, before this task yields again.
            runtime.num_alive_tasks() - before
        };
        let told = futures::future::join_all(dashboards.into_iter().map(read_until_closed));
        let (still_running, told) = tokio::join!(shutdown, told);

        assert_eq!(
            still_running, 0,
            "shutdown returned while {still_running} task(s) of the sessions were still alive: \
             after an upgrade, hyper's connection task is done and GracefulShutdown no longer \
             sees the session, so shutdown must stop the sessions itself and wait for them"
        );
        for (n, close) in told.into_iter().enumerate() {
            let got = match close {
                Closed::With(code) => format!("a Close frame with code {}", u16::from(code)),
                Closed::WithoutCode => "a Close frame with no code".to_owned(),
                Closed::NoFrame => "no Close frame: its connection just ended, which a browser \
                                    reports as an abnormal closure (1006)"
                    .to_owned(),
            };
            assert_eq!(
                close,
                Closed::With(CloseCode::Away),
                "dashboard {} of 3 was not told the server is going away (a Close frame with \
                 code 1001, `CloseCode::Away`); it got {got}",
                n + 1
            );
        }
    });
}

/// The longest `shutdown` may take, whatever its clients do: the bound the README states. The
/// check allows one second more, for ending the sessions still left at the bound.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(30);

/// A dashboard has stopped reading for good (a laptop asleep, a half-open connection) while a
/// burst of alerts fills its connection, and the server shuts down. Its session is stuck
/// writing, so it cannot act on a request to stop. A deploy cannot wait for it for ever:
/// `shutdown` must return within `SHUTDOWN_BOUND`, and it may not return while that session
/// still runs. Waiting without a bound hangs; a fixed pause ("a second should do"), or a bounded
/// wait that then just returns, leaves the session running.
#[test]
fn shutdown_ends_a_stuck_session_in_time() {
    check(HANG).paused(|| async {
        let runtime = tokio::runtime::Handle::current().metrics();
        let before = runtime.num_alive_tasks();
        let server = Server::new();
        // Held, never read again, until the verdict.
        let stalled = open_dashboard_buffered(&server, 1, 4 * 1024).await;
        for n in 1..=64 {
            let details = "x".repeat(1000);
            server
                .hub()
                .broadcast(&format!("alert {n}: disk filling on db-{n} {details}"));
        }
        // On the paused clock a timer fires only once no task can run: when this returns, the
        // session has written all the connection holds and waits for room.
        tokio::time::sleep(Duration::from_millis(1)).await;

        let started = tokio::time::Instant::now();
        let limit = SHUTDOWN_BOUND + Duration::from_secs(1);
        let finished = tokio::time::timeout(limit, server.shutdown()).await;
        // Counted at the instant shutdown returns (or is given up on), before any other task runs.
        let still_running = runtime.num_alive_tasks() - before;
        let took = started.elapsed();
        assert!(
            finished.is_ok(),
            "shutdown had not returned after {took:?} (the bound is {SHUTDOWN_BOUND:?}) while \
             one dashboard had stopped reading for good, its session stuck writing: a session \
             that never gets room to write never looks at a request to stop, so waiting for it \
             without a bound waits for ever. Wait a while, then end the sessions still left \
             yourself, and wait for that"
        );
        assert_eq!(
            still_running, 0,
            "shutdown returned after {took:?} while the session of a dashboard that had stopped \
             reading was still alive: telling the sessions to stop and then waiting a fixed \
             time, or giving up on them after a while, leaves that session running (and \
             writing) after shutdown. If you bound the wait, end the sessions still left \
             yourself, and wait for that, before returning"
        );
        drop(stalled);
    });
}

/// How a dashboard's stream ended.
#[derive(Debug, PartialEq)]
enum Closed {
    /// The server sent a Close frame with this code.
    With(CloseCode),
    /// The server sent a Close frame without a code.
    WithoutCode,
    /// The stream ended without a Close frame from the server.
    NoFrame,
}

/// Reads until the stream ends (answering the server's Close, as a browser does), and says
/// whether and how the server closed it.
async fn read_until_closed(mut dashboard: Dashboard) -> Closed {
    let mut closed = Closed::NoFrame;
    let read = async {
        while let Some(Ok(message)) = dashboard.next().await {
            if let Message::Close(frame) = message {
                closed = frame.map_or(Closed::WithoutCode, |frame| Closed::With(frame.code));
            }
        }
    };
    let _ = tokio::time::timeout(2 * DEADLINE, read).await;
    closed
}
