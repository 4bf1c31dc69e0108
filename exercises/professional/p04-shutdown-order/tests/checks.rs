//! Checks for P04: the order of a shutdown, on a paused clock with in-memory connections.
//!
//! The server takes its connections from a channel, the stand-in for a listen socket; the
//! checks play the kernel, the clients, the mail relay and the deploy tool. `run` returning
//! stands for the process exiting: an email not delivered by then is never delivered, an
//! audit line not written by then is lost.

use std::time::Duration;

use harness::TestResponse;
use harness::duplex::PIPE_BYTES;
use harness::server::{H1Connection, request};
use harness::watchdog::check;
use p04_shutdown_order::{AuditLog, GRACE, Relay, SEND_TIME, run};
use tokio::io::DuplexStream;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout_at};

const HANG: &str = "the check itself stopped making progress; does the server block the runtime (a std lock held across an await, a busy loop) while it shuts down?";

/// How long after the signal the deploy waits before it kills the process: the grace period
/// for requests in flight, then a few seconds for the welcome emails still queued.
const KILL_AFTER: Duration = GRACE.saturating_add(Duration::from_secs(3));

/// What a client saw.
enum Seen {
    Answered(TestResponse),
    /// Accepted, then closed before an answer came.
    Closed,
    /// Refused: the server had closed its listen socket.
    Refused,
}

impl Seen {
    fn describe(&self) -> String {
        match self {
            Seen::Answered(response) => format!("answered {}", response.status.as_u16()),
            Seen::Closed => "connection closed without an answer".to_owned(),
            Seen::Refused => "connection refused".to_owned(),
        }
    }
}

/// The server under test and everything around it.
struct Server {
    backlog: mpsc::Sender<DuplexStream>,
    signal: Option<oneshot::Sender<()>>,
    /// `run`, which yields the moment it returned.
    task: JoinHandle<Instant>,
    relay: Relay,
    audit: AuditLog,
    /// When the server started: the timeline's zero.
    started: Instant,
}

impl Server {
    fn start() -> Self {
        let (backlog, incoming) = mpsc::channel(16);
        let (signal, signalled) = oneshot::channel::<()>();
        let (relay, audit) = (Relay::default(), AuditLog::default());
        let (r, a) = (relay.clone(), audit.clone());
        let task = tokio::spawn(async move {
            run(
                incoming,
                async move {
                    let _ = signalled.await;
                },
                r,
                a,
            )
            .await;
            Instant::now()
        });
        Self {
            backlog,
            signal: Some(signal),
            task,
            relay,
            audit,
            started: Instant::now(),
        }
    }

    /// Sends one request on a new connection, in the background; yields what the client saw
    /// and when.
    fn send(&self, method: &'static str, path: String) -> JoinHandle<(Seen, Instant)> {
        let (client, server) = tokio::io::duplex(PIPE_BYTES);
        let accepted = match self.backlog.try_send(server) {
            Ok(()) => true,
            Err(TrySendError::Closed(_)) => false,
            Err(TrySendError::Full(_)) => panic!("the check filled the server's backlog"),
        };
        tokio::spawn(async move {
            if !accepted {
                return (Seen::Refused, Instant::now());
            }
            let mut conn = H1Connection::handshake(client).await;
            let seen = match conn.send(request(method, &path, "")).await {
                Ok(response) => Seen::Answered(response),
                Err(_) => Seen::Closed,
            };
            (seen, Instant::now())
        })
    }

    fn sign_up(&self, who: &str) -> JoinHandle<(Seen, Instant)> {
        self.send("POST", format!("/signup?email={who}@example.com"))
    }

    fn begin_shutdown(&mut self) {
        let _ = self.signal.take().expect("shutdown begins once").send(());
    }

    /// When `run` returned, if it did before the deploy's kill.
    async fn exit(&mut self, signalled: Instant) -> Option<Instant> {
        timeout_at(signalled + KILL_AFTER, &mut self.task)
            .await
            .ok()
            .map(|returned| returned.expect("`run` panicked"))
    }

    /// The emails delivered before `run` returned: later ones died with the process.
    fn delivered_by(&self, exit: Instant) -> Vec<String> {
        let delivered = self.relay.delivered().into_iter();
        delivered
            .filter(|(at, _)| *at <= exit)
            .map(|(_, to)| to)
            .collect()
    }
}

/// Waits until `at` on the paused clock (the server runs meanwhile).
async fn until(server: &Server, seconds: f64) {
    sleep_until(server.started + Duration::from_secs_f64(seconds)).await;
}

async fn outcome(client: JoinHandle<(Seen, Instant)>, deadline: Instant) -> Seen {
    match timeout_at(deadline, client).await {
        Ok(joined) => joined.expect("the client task panicked").0,
        Err(_) => {
            panic!("a client was still waiting for its answer when the deploy killed the process")
        }
    }
}

/// A sign-up still in its fraud check when the signal comes is answered 202, and its
/// welcome email goes out before the process exits.
#[test]
fn a_signup_in_flight_during_the_drain_is_accepted() {
    check(HANG).paused(|| async {
        let mut server = Server::start();
        let ada = server.sign_up("ada");
        until(&server, 0.5).await;
        let signalled = Instant::now();
        server.begin_shutdown();
        let exit = server.exit(signalled).await.unwrap_or_else(|| {
            panic!("`run` had not returned {} s after the signal: is the welcome-email worker still waiting for a queue that never closes?", KILL_AFTER.as_secs())
        });
        match outcome(ada, exit).await {
            Seen::Answered(response) => assert_eq!(
                response.status, 202,
                "a sign-up in flight during the drain was answered {}:\nthe queue of welcome \
                 emails was closed (or its worker stopped) before the requests in flight had \
                 finished, so their send failed",
                response.status
            ),
            other => panic!("a sign-up in flight during the drain was not answered: {}", other.describe()),
        }
        assert_eq!(
            server.delivered_by(exit),
            ["ada@example.com"],
            "the sign-up was accepted, but its welcome email was not delivered before `run` returned"
        );
    });
}

/// Welcome emails queued when the signal comes are all delivered before the process exits.
#[test]
fn every_queued_email_is_sent() {
    check(HANG).paused(|| async {
        let mut server = Server::start();
        let clients = ["ada", "bob", "cy"].map(|who| server.sign_up(who));
        let mut accepted = 0;
        for client in clients {
            if let (Seen::Answered(response), _) = client.await.unwrap() {
                assert_eq!(response.status, 202, "before shutdown, every sign-up must be accepted");
                accepted += 1;
            }
        }
        assert_eq!(accepted, 3, "before shutdown, every sign-up must be answered");
        // Three emails wait for the relay, which takes each in turn.
        let signalled = Instant::now();
        server.begin_shutdown();
        let exit = server.exit(signalled).await.unwrap_or_else(|| {
            panic!("`run` had not returned {} s after the signal: is the welcome-email worker still waiting for a queue that never closes?", KILL_AFTER.as_secs())
        });
        assert_eq!(
            server.delivered_by(exit),
            ["ada@example.com", "bob@example.com", "cy@example.com"],
            "three sign-ups were accepted with 202 before the signal, but not all their welcome \
             emails were delivered before `run` returned:\nthe worker was stopped (or left \
             behind) while emails were still queued. A 202 is a promise: close the queue and \
             let the worker finish it"
        );
    });
}

/// An export that would run for an hour cannot hold the shutdown past its grace period, and
/// cutting it off at the deadline costs none of the welcome emails: fourteen sign-ups were
/// accepted during the drain, and their emails are still queued when the deadline comes.
#[test]
fn a_stalled_request_cannot_hold_up_shutdown() {
    check(HANG).paused(|| async {
        let mut server = Server::start();
        let _export = server.send("GET", "/export".to_owned());
        let sign_ups: Vec<_> = (1..=14)
            .map(|n| server.sign_up(&format!("user{n:02}")))
            .collect();
        until(&server, 0.5).await;
        let signalled = Instant::now();
        server.begin_shutdown();
        let Some(exit) = server.exit(signalled).await else {
            panic!(
                "`run` had not returned {} s after the signal (grace period: {} s):\neither the \
                 drain has no deadline, so the hour-long export holds it, or the connection still \
                 open at the deadline keeps a `Sender` of the queue alive, so the worker never \
                 sees the queue close",
                KILL_AFTER.as_secs(),
                GRACE.as_secs()
            );
        };
        let mut accepted = Vec::new();
        for (n, client) in (1..=14).zip(sign_ups) {
            if let Seen::Answered(response) = outcome(client, exit).await
                && response.status == 202
            {
                accepted.push(format!("user{n:02}@example.com"));
            }
        }
        let delivered = server.delivered_by(exit);
        assert_eq!(
            delivered,
            accepted,
            "{} sign-ups were answered 202 during the drain, but only {} of their welcome emails \
             were delivered before `run` returned:\nthe export held the drain to its deadline, \
             and the emails still queued then were dropped with it. Cut off the connections at \
             the deadline, but still close the queue and let the worker send what is in it",
            accepted.len(),
            delivered.len()
        );
        // The grace period, then the time the relay needs for what was queued at the deadline.
        let last_email = server.relay.delivered().last().map(|(at, _)| *at);
        let allowed = last_email.unwrap_or(signalled).max(signalled + GRACE) + SEND_TIME;
        assert!(
            exit <= allowed,
            "`run` returned {:?} after the signal: the grace period is {} s, and the last \
             welcome email was delivered {:?} after it",
            exit - signalled,
            GRACE.as_secs(),
            last_email.map(|at| at - signalled)
        );
    });
}

/// A client that keeps its connection open after its answer (a browser, a proxy's pool) has
/// nothing in flight: the drain closes its connection at once instead of waiting out the
/// grace period for it.
#[test]
fn an_idle_keep_alive_connection_is_closed_at_once() {
    check(HANG).paused(|| async {
        let mut server = Server::start();
        let (client, server_side) = tokio::io::duplex(PIPE_BYTES);
        server
            .backlog
            .try_send(server_side)
            .expect("the backlog has room");
        let mut conn = H1Connection::handshake(client).await;
        let signed_up = conn
            .send(request("POST", "/signup?email=ada@example.com", ""))
            .await
            .expect("the sign-up before the deploy was answered");
        assert_eq!(
            signed_up.status, 202,
            "before shutdown, a sign-up is accepted"
        );
        // The connection stays open, idle, as a browser keeps it.
        until(&server, 3.0).await;
        let signalled = Instant::now();
        server.begin_shutdown();
        let Some(exit) = server.exit(signalled).await else {
            panic!(
                "`run` had not returned {} s after the signal, with one idle keep-alive \
                 connection open",
                KILL_AFTER.as_secs()
            );
        };
        assert!(
            // An idle connection closes at once; half the grace period is room to spare.
            exit - signalled < GRACE / 2,
            "with one idle keep-alive connection open and nothing in flight, `run` returned \
             {:?} after the signal (grace period: {} s):\nthe drain waited for the connection's task to end, and an \
             idle keep-alive connection never ends by itself. Tell each connection to shut down \
             gracefully (hyper's `graceful_shutdown`, or `GracefulShutdown::watch`): an idle \
             one closes at once, a busy one after its answer",
            exit - signalled,
            GRACE.as_secs()
        );
        drop(conn);
    });
}

/// Everything the outside world saw, in order, in virtual seconds since the server started:
/// the clients, the mail relay, the audit log file and the process exit.
#[test]
fn shutdown_timeline() {
    check(HANG).paused(|| async {
        let mut server = Server::start();
        let ada = server.sign_up("ada");
        until(&server, 1.0).await;
        let bob = server.sign_up("bob");
        until(&server, 1.2).await;
        let cy = server.sign_up("cy");
        until(&server, 2.5).await;
        let signalled = Instant::now();
        server.begin_shutdown();
        until(&server, 2.6).await;
        let late = server.send("GET", "/export".to_owned());

        let exit = server.exit(signalled).await;
        let end = exit.unwrap_or(signalled + KILL_AFTER);
        // Noted in this order, so that events in the same tenth of a second keep it.
        let mut events: Vec<(Instant, String)> = Vec::new();
        for (name, client) in [
            ("ada", ada),
            ("bob", bob),
            ("cy", cy),
            ("late /export", late),
        ] {
            let line = match timeout_at(end, client).await {
                Ok(Ok((seen, at))) if at <= end => (at, seen.describe()),
                Ok(Err(_)) => panic!("a client task panicked"),
                _ => (end, "still waiting when the process exited".to_owned()),
            };
            events.push((line.0, format!("client {name}: {}", line.1)));
        }
        for (at, to) in server.relay.delivered() {
            events.push((at, format!("relay: welcome email delivered to {to}")));
        }
        for (at, lines) in server.audit.written() {
            events.push((at, format!("audit log: {} lines written", lines.len())));
        }
        events.push((signalled, "shutdown signal".to_owned()));
        events.push((
            end,
            match exit {
                Some(_) => "`run` returned".to_owned(),
                None => "`run` still running, killed by the deploy".to_owned(),
            },
        ));

        let tenths = |at: &Instant| (at.duration_since(server.started).as_millis() + 50) / 100;
        events.sort_by_key(|(at, _)| tenths(at));
        let mut out = String::from("virtual time since the server started, what the world saw:");
        for (at, what) in &events {
            let t = tenths(at);
            let dead = if *at > end { " (after the exit)" } else { "" };
            out.push_str(&format!("\n+{}.{}s  {what}{dead}", t / 10, t % 10));
        }
        insta::assert_snapshot!(out);
    });
}
