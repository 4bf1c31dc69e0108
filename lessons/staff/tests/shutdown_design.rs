//! Claims of "Shutdown as system design". The balancer's view (readiness first, listener
//! later) runs on a real listener with the real clock; the phase deadlines run on in-memory
//! connections and the paused clock, where a 30 s grace period costs nothing.

mod support {
    pub mod shutdown_design;
}

use std::io::ErrorKind;
use std::time::Duration;

use harness::server::H1Connection;
use harness::watchdog::check;
use hyper::StatusCode;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use support::shutdown_design::{App, Deadlines, Events, serve, tcp};

const HANG: &str = "the shutdown never reached the milestone: is a phase without a deadline?";
const WAIT: Duration = Duration::from_secs(10);
const SECOND: Duration = Duration::from_secs(1);

/// Starts the server on a real listener; returns its address, the SIGTERM stand-in and the
/// end of the linger (a check ends it when it has seen what it wanted).
async fn on_tcp(
    events: &Events,
) -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    oneshot::Sender<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sigterm, signal) = oneshot::channel::<()>();
    let (end_linger, linger) = oneshot::channel::<()>();
    let deadlines = Deadlines {
        drain: SECOND,
        sessions: SECOND,
        workers: SECOND,
    };
    tokio::spawn(serve(
        tcp(listener),
        App::new(SECOND),
        async {
            let _ = signal.await;
        },
        || async {
            let _ = linger.await;
        },
        deadlines,
        events.clone(),
    ));
    (addr, sigterm, end_linger)
}

async fn get(addr: std::net::SocketAddr, path: &str) -> StatusCode {
    let mut conn = H1Connection::handshake(TcpStream::connect(addr).await.unwrap()).await;
    conn.get(path).await.unwrap().status
}

// ANCHOR: at_once
#[test]
fn a_server_that_closes_its_listener_at_once_refuses_the_balancers_late_connection() {
    check(HANG).real(|| async {
        let events = Events::new();
        let (addr, sigterm, end_linger) = on_tcp(&events).await;
        assert_eq!(get(addr, "/orders").await, StatusCode::OK);

        // No linger: the listener closes in the same instant readiness starts failing.
        end_linger.send(()).unwrap();
        sigterm.send(()).unwrap();
        tokio::time::timeout(WAIT, events.wait_for("stopped accepting"))
            .await
            .unwrap();

        // A balancer that has not yet seen the failed check sends one more connection.
        let refused = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    });
}
// ANCHOR_END: at_once

// ANCHOR: linger
#[test]
fn a_server_that_fails_readiness_first_and_keeps_accepting_serves_it() {
    check(HANG).real(|| async {
        let events = Events::new();
        let (addr, sigterm, end_linger) = on_tcp(&events).await;

        sigterm.send(()).unwrap();
        tokio::time::timeout(WAIT, events.wait_for("readiness failing"))
            .await
            .unwrap();
        // The balancer's next health check fails: it will stop sending, soon.
        assert_eq!(get(addr, "/ready").await, StatusCode::SERVICE_UNAVAILABLE);
        // Until then it still sends, on new connections, and they are served.
        assert_eq!(get(addr, "/orders").await, StatusCode::OK);

        // The linger ends (in production: a few seconds, longer than the balancer's
        // deregistration); only now does the listener close.
        end_linger.send(()).unwrap();
        tokio::time::timeout(WAIT, events.wait_for("stopped accepting"))
            .await
            .unwrap();
        let refused = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    });
}
// ANCHOR_END: linger

// ---- Phase deadlines, on the paused clock ----

const GRACE: Duration = Duration::from_secs(30);
const LINGER: Duration = Duration::from_secs(5);
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const DEADLINES: Deadlines = Deadlines {
    drain: Duration::from_secs(10),
    sessions: Duration::from_secs(5),
    workers: Duration::from_secs(5),
};

/// Starts the server on in-memory connections with the deadlines above; returns the way to
/// open a connection and the SIGTERM stand-in. The linger is a plain sleep, as in production.
fn in_memory(
    app: &App,
    events: &Events,
) -> (mpsc::UnboundedSender<DuplexStream>, oneshot::Sender<()>) {
    let (connect, accepted) = mpsc::unbounded_channel::<DuplexStream>();
    let incoming = Box::pin(futures::stream::unfold(accepted, |mut rx| async move {
        rx.recv().await.map(|io| (io, rx))
    }));
    let (sigterm, signal) = oneshot::channel::<()>();
    tokio::spawn(serve(
        incoming,
        app.clone(),
        async {
            let _ = signal.await;
        },
        || tokio::time::sleep(LINGER),
        DEADLINES,
        events.clone(),
    ));
    (connect, sigterm)
}

/// A client connection: the test keeps one end, the server accepts the other.
fn dial(connect: &mpsc::UnboundedSender<DuplexStream>) -> DuplexStream {
    let (client, server) = tokio::io::duplex(64 * 1024);
    connect.send(server).unwrap();
    client
}

#[test]
fn with_cooperative_clients_the_shutdown_costs_only_the_linger() {
    check(HANG).paused(|| async {
        let (app, events) = (App::new(HEADER_TIMEOUT), Events::new());
        let (connect, sigterm) = in_memory(&app, &events);
        // A browser's preconnection: connected, silent.
        let _preconnected = dial(&connect);
        // An hour of serving, then the signal: the linger counts from the signal.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        sigterm.send(()).unwrap();
        let signal = events.wait_for("readiness failing").await;
        let exit = events.wait_for("exit").await;
        // hyper closes a connection that has sent nothing at once (hyper#3576, fixed).
        assert_eq!(events.at("http drained"), Some(signal + LINGER));
        assert_eq!(exit - signal, LINGER);
    });
}

#[test]
fn a_half_sent_head_is_ended_by_the_header_timer_inside_the_drain_phase() {
    check(HANG).paused(|| async {
        let (app, events) = (App::new(HEADER_TIMEOUT), Events::new());
        let (connect, sigterm) = in_memory(&app, &events);
        sigterm.send(()).unwrap();
        events.wait_for("readiness failing").await;
        // Three seconds into the linger, a client connects; a second later it sends half a
        // head, and stops.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut stalled = dial(&connect);
        let first_bytes = Duration::from_secs(4);
        tokio::time::sleep(first_bytes - Duration::from_secs(3)).await;
        stalled
            .write_all(b"GET /orders HTTP/1.1\r\nhost: shop\r\n")
            .await
            .unwrap();

        let drained = events.wait_for("http drained").await;
        // The drain starts at the end of the linger and waits for that request to finish;
        // the header timer ends it first. On the `auto` builder that timer counts from the
        // first bytes (before them the builder is still detecting the version), not from
        // the connection's start: 4 s + 5 s, not 3 s + 5 s.
        assert_eq!(drained, first_bytes + HEADER_TIMEOUT);
        assert!(LINGER < drained && drained < LINGER + DEADLINES.drain);
        assert_eq!(events.at("drain deadline: connections cut"), None);
    });
}

// ANCHOR: bounded
#[test]
fn every_phase_is_bounded_so_the_exit_comes_inside_the_grace_period() {
    check(HANG).paused(|| async {
        let (app, events) = (App::new(HEADER_TIMEOUT), Events::new());
        let (connect, sigterm) = in_memory(&app, &events);
        // A request that never finishes, a session and a worker that ignore their stop.
        let mut conn = H1Connection::handshake(dial(&connect)).await;
        let request = tokio::spawn(async move { conn.get("/slow").await });
        app.sessions.tracker.spawn(std::future::pending::<()>());
        app.workers.tracker.spawn(std::future::pending::<()>());
        tokio::task::yield_now().await;

        sigterm.send(()).unwrap();
        let exit = events.wait_for("exit").await;

        assert!(request.await.unwrap().is_err(), "the stuck request was cut");
        assert_eq!(events.at("http drained"), Some(LINGER + DEADLINES.drain));
        assert_eq!(exit, LINGER + DEADLINES.total());
        assert!(exit < GRACE, "the process exits on its own before SIGKILL");
        assert!(
            events
                .lines()
                .contains(&"workers deadline: 1 abandoned".to_owned())
        );
    });
}
// ANCHOR_END: bounded

#[test]
fn sessions_close_after_the_http_drain_and_workers_after_the_sessions() {
    check(HANG).paused(|| async {
        let (app, events) = (App::new(HEADER_TIMEOUT), Events::new());
        let (_connect, sigterm) = in_memory(&app, &events);
        // A session that says goodbye when told to, and a worker that finishes its queue.
        let (session, log) = (app.sessions.stop.clone(), events.clone());
        app.sessions.tracker.spawn(async move {
            session.cancelled().await;
            log.push("session: close frame sent");
        });
        let (worker, log) = (app.workers.stop.clone(), events.clone());
        app.workers.tracker.spawn(async move {
            worker.cancelled().await;
            log.push("worker: queue flushed");
        });

        sigterm.send(()).unwrap();
        events.wait_for("exit").await;
        let lines = events.lines();
        let at = |l: &str| lines.iter().position(|x| x == l).unwrap();
        assert!(at("http drained") < at("session: close frame sent"));
        assert!(at("sessions closed") < at("worker: queue flushed"));
        assert!(at("workers closed") < at("exit"));
    });
}
