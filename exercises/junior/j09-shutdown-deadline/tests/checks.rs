//! Checks for J09: the server's shutdown on a paused clock, with in-memory connections.
//!
//! The server takes its connections from a channel, the stand-in for a listen socket: the
//! checks play the kernel and hand it one in-memory connection per client. On the paused
//! clock a grace period of 5 s and a long-poll of an hour cost no real time, and "shutdown
//! finished within 6 s of the signal" is exact, not a guess.

use std::time::Duration;

use harness::TestResponse;
use harness::duplex::PIPE_BYTES;
use harness::server::H1Connection;
use harness::watchdog::check;
use j09_shutdown_deadline::{EventLog, GRACE, serve};
use tokio::io::DuplexStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};

const HANG: &str = "the check itself stopped making progress; does the server block the runtime (a std lock held, a busy loop) while it shuts down?";

/// How long after the signal shutdown may take: the grace period, plus a second to close.
const SHUTDOWN_LIMIT: Duration = GRACE.saturating_add(Duration::from_secs(1));

/// How long a client that connects during the drain may wait to be turned away.
const TURNED_AWAY_WITHIN: Duration = Duration::from_secs(1);

/// The server under test, the channel that plays its listen socket, and its shutdown signal.
struct Server {
    backlog: mpsc::Sender<DuplexStream>,
    signal: Option<oneshot::Sender<()>>,
    /// `serve`, which yields the moment it returned.
    task: JoinHandle<Instant>,
}

impl Server {
    fn start() -> Self {
        let (backlog, incoming) = mpsc::channel(16);
        let (signal, signalled) = oneshot::channel::<()>();
        let events = EventLog::default();
        let shutdown = async move {
            let _ = signalled.await;
        };
        let task = tokio::spawn(async move {
            serve(incoming, shutdown, events).await;
            Instant::now()
        });
        Self {
            backlog,
            signal: Some(signal),
            task,
        }
    }

    /// A new client connection. If the server no longer accepts, its end of the connection
    /// is dropped at once and the client sees the connection closed: a refusal.
    async fn connect(&self) -> H1Connection {
        let (client, server) = tokio::io::duplex(PIPE_BYTES);
        let _ = self.backlog.try_send(server);
        H1Connection::handshake(client).await
    }

    /// Starts `GET path` on a new connection, in the background.
    async fn get(&self, path: &'static str) -> JoinHandle<hyper::Result<TestResponse>> {
        let mut conn = self.connect().await;
        tokio::spawn(async move { conn.get(path).await })
    }

    /// Like [`Server::get`], and also yields the moment the client saw the outcome.
    async fn get_timed(
        &self,
        path: &'static str,
    ) -> JoinHandle<(hyper::Result<TestResponse>, Instant)> {
        let mut conn = self.connect().await;
        tokio::spawn(async move {
            let result = conn.get(path).await;
            (result, Instant::now())
        })
    }

    fn begin_shutdown(&mut self) {
        let _ = self.signal.take().expect("shutdown begins once").send(());
    }

    /// Whether `serve` returned within [`SHUTDOWN_LIMIT`] of now.
    async fn finishes_shutdown(&mut self) -> bool {
        timeout(SHUTDOWN_LIMIT, &mut self.task).await.is_ok()
    }
}

/// Lets every task run until all of them wait on a timer or on a client. On the paused clock a
/// sleep ends only once the runtime has nothing else to do, so afterwards the server has taken
/// every connection offered so far and each handler is running.
async fn let_the_server_catch_up() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// What the clients and the deploy tool observed, each with the virtual time since the shutdown
/// signal, for the snapshot. Only behaviour goes in, never the server's own log lines: any
/// correct shutdown, however it is written and whatever it logs, produces the same timeline.
struct Timeline {
    signalled_at: Instant,
    /// When the check stops waiting: by then, a correct shutdown is over.
    give_up_at: Instant,
    events: Vec<(Duration, String)>,
}

impl Timeline {
    fn new(signalled_at: Instant) -> Self {
        Self {
            signalled_at,
            give_up_at: signalled_at + SHUTDOWN_LIMIT,
            events: Vec::new(),
        }
    }

    /// Waits (until the check gives up) for what `client` saw, and notes it.
    async fn client(
        &mut self,
        client: &str,
        request: JoinHandle<(hyper::Result<TestResponse>, Instant)>,
    ) {
        let (at, outcome) = match timeout_at(self.give_up_at, request).await {
            Ok(joined) => match joined.expect("the client task panicked") {
                (Ok(response), at) => (at, format!("answered {}", response.status)),
                (Err(_), at) => (at, "connection closed without an answer".to_owned()),
            },
            Err(_) => (
                self.give_up_at,
                "still waiting, the check gave up".to_owned(),
            ),
        };
        self.events.push((
            at.saturating_duration_since(self.signalled_at),
            format!("{client}: {outcome}"),
        ));
    }

    /// Waits (until the check gives up) for `serve` to return, and notes when it did.
    async fn server(&mut self, serve: JoinHandle<Instant>) {
        let (at, what) = match timeout_at(self.give_up_at, serve).await {
            Ok(returned) => (returned.expect("`serve` panicked"), "`serve` returned"),
            Err(_) => (self.give_up_at, "`serve` still running, the check gave up"),
        };
        self.events.push((
            at.saturating_duration_since(self.signalled_at),
            what.to_owned(),
        ));
    }

    /// One line per event, earliest first; events at the same tenth of a second keep the order
    /// in which they were noted, so that the order of tasks within one instant does not matter.
    fn render(mut self) -> String {
        let tenths = |since: &Duration| (since.as_millis() + 50) / 100;
        self.events.sort_by_key(|(since, _)| tenths(since));
        let mut out = String::from("virtual time after the shutdown signal, what happened:");
        for (since, what) in &self.events {
            let t = tenths(since);
            out.push_str(&format!("\n+{}.{}s  {what}", t / 10, t % 10));
        }
        out
    }
}

/// A long-poll that would not end for an hour must not hold the shutdown past the grace period.
#[test]
fn a_stuck_request_cannot_hold_up_shutdown() {
    check(HANG).paused(|| async {
        let mut server = Server::start();
        let _long_poll = server.get("/updates").await;
        let_the_server_catch_up().await;

        server.begin_shutdown();
        assert!(
            server.finishes_shutdown().await,
            "shutdown was still waiting {} s after the signal (grace period: {} s): the drain \
             waits for every connection with no deadline, so one stuck long-poll keeps the \
             process alive until the deploy kills it",
            SHUTDOWN_LIMIT.as_secs(),
            GRACE.as_secs(),
        );
    });
}

/// A report being built when shutdown begins still gets its answer.
#[test]
fn a_request_in_flight_still_gets_its_answer() {
    check(HANG).paused(|| async {
        let mut server = Server::start();
        let report = server.get("/report").await;
        let_the_server_catch_up().await;

        server.begin_shutdown();
        let response = timeout(SHUTDOWN_LIMIT, report)
            .await
            .expect("the report request was still waiting after the grace period")
            .unwrap()
            .expect(
                "the report being built when shutdown began never got its answer: a graceful \
                 shutdown lets requests in flight finish within the grace period before it \
                 closes their connections",
            );
        assert_eq!(
            (response.status.as_u16(), response.text().as_str()),
            (200, "report ready\n"),
            "the report being built when shutdown began should have been answered in full"
        );
        assert!(
            server.finishes_shutdown().await,
            "the last request was answered, yet shutdown did not finish"
        );
    });
}

/// A client that connects while the server drains is turned away at once, not served and not
/// left waiting.
#[test]
fn connections_arriving_during_the_drain_are_turned_away() {
    check(HANG).paused(|| async {
        let mut server = Server::start();
        // Keeps the drain going for the whole grace period.
        let _long_poll = server.get("/updates").await;
        let_the_server_catch_up().await;

        server.begin_shutdown();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut late = server.connect().await;
        match timeout(TURNED_AWAY_WITHIN, late.get("/health")).await {
            Ok(Err(_)) => {}
            Ok(Ok(response)) => panic!(
                "a client that connected after shutdown began was served ({}): a server that \
                 is shutting down must stop accepting new connections first",
                response.status
            ),
            Err(_) => panic!(
                "a client that connected during the drain was left waiting, neither served nor \
                 refused: the server still holds its listen socket (the `incoming` receiver) \
                 while it drains, so new clients queue up for a server that will never serve \
                 them. Stop accepting as soon as shutdown begins, so they are refused and retry \
                 elsewhere"
            ),
        }
    });
}

/// The whole shutdown as the clients and the deploy tool see it: when each client got its
/// answer or lost its connection, and when `serve` returned, in virtual time since the signal.
#[test]
fn shutdown_log() {
    check(HANG).paused(|| async {
        let mut server = Server::start();
        let long_poll = server.get_timed("/updates").await;
        let report = server.get_timed("/report").await;
        let_the_server_catch_up().await;

        let mut timeline = Timeline::new(Instant::now());
        server.begin_shutdown();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let late = server.get_timed("/health").await;

        // The order of these waits does not matter: each outcome carries its own time.
        timeline
            .client("GET /health, sent 1s after the signal", late)
            .await;
        timeline
            .client("GET /report, in flight at the signal", report)
            .await;
        timeline
            .client("GET /updates, in flight at the signal", long_poll)
            .await;
        timeline.server(server.task).await;
        insta::assert_snapshot!(timeline.render());
    });
}
