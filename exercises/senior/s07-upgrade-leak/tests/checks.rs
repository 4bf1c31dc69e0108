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
            assert_eq!(
                close,
                Some(CloseCode::Away),
                "dashboard {} of 3 was not told the server is going away (a Close frame with \
                 code 1001, `CloseCode::Away`); its connection just ended, which a browser \
                 reports as an abnormal closure (1006)",
                n + 1
            );
        }
    });
}

/// How long the slow dashboard stops reading while the server shuts down: a browser tab in the
/// background, a laptop on a train. Any fixed grace period shorter than this is caught.
const STALL: Duration = Duration::from_secs(30);

/// How long, in virtual time, shutdown may take when one dashboard pauses for `STALL`.
const SLOW_SHUTDOWN_LIMIT: Duration = Duration::from_secs(120);

/// A dashboard has stopped reading while a burst of alerts fills its connection, and the
/// server shuts down; the dashboard reads again thirty seconds later. Its session is stuck
/// writing until then, so it cannot act on a request to stop at once. `shutdown` may give up
/// on it after a while of its choosing, but it may not return while the session still runs:
/// a fixed pause after telling the sessions ("a second should do") is a guess about how fast
/// every client is.
#[test]
fn shutdown_waits_for_a_slow_session() {
    check(HANG).paused(|| async {
        let runtime = tokio::runtime::Handle::current().metrics();
        let before = runtime.num_alive_tasks();
        let server = Server::new();
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

        let shutdown = async {
            let started = tokio::time::Instant::now();
            let finished = tokio::time::timeout(SLOW_SHUTDOWN_LIMIT, server.shutdown()).await;
            assert!(
                finished.is_ok(),
                "shutdown did not return within {SLOW_SHUTDOWN_LIMIT:?}, although the slow \
                 dashboard read again after {STALL:?}"
            );
            (runtime.num_alive_tasks() - before, started.elapsed())
        };
        let reader = async {
            tokio::time::sleep(STALL).await;
            let drain = async {
                let mut stalled = stalled;
                while let Some(Ok(_)) = stalled.next().await {}
            };
            let _ = tokio::time::timeout(SLOW_SHUTDOWN_LIMIT, drain).await;
        };
        let ((still_running, took), ()) = tokio::join!(shutdown, reader);
        assert_eq!(
            still_running, 0,
            "shutdown returned after {took:?} while the session of a dashboard that stopped \
             reading for {STALL:?} was still alive: shutdown must wait until every session has \
             actually ended. Telling the sessions to stop and then waiting a fixed time is a \
             guess about the slowest client (if you bound the wait, end the sessions still \
             left yourself, and wait for that, before returning)"
        );
    });
}

/// Reads until the stream ends (answering the server's Close, as a browser does); returns the
/// code of the Close frame the server sent, if it sent one.
async fn read_until_closed(mut dashboard: Dashboard) -> Option<CloseCode> {
    let mut code = None;
    let read = async {
        while let Some(Ok(message)) = dashboard.next().await {
            if let Message::Close(frame) = message {
                code = frame.map(|frame| frame.code);
            }
        }
    };
    let _ = tokio::time::timeout(2 * DEADLINE, read).await;
    code
}
