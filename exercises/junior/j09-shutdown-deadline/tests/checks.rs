//! Checks for J09: the server's shutdown on a paused clock, with in-memory connections.
//!
//! The server takes its connections from a channel, the stand-in for a listen socket: the
//! checks play the kernel and hand it one in-memory connection per client. On the paused
//! clock a grace period of 5 s and a long-poll of an hour cost no real time, and "shutdown
//! finished within 6 s of the signal" is exact, not a guess.
//!
//! `serve` returning stands for the process exiting: whatever a client has not received by
//! then, it never receives, whether `serve` closed its connection or left it to the exit.

use std::time::Duration;

use harness::TestResponse;
use harness::duplex::PIPE_BYTES;
use harness::server::H1Connection;
use harness::watchdog::check;
use j09_shutdown_deadline::{EventLog, GRACE, serve};
use tokio::io::DuplexStream;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};

const HANG: &str = "the check itself stopped making progress; does the server block the runtime (a std lock held, a busy loop) while it shuts down?";

/// How long after the signal shutdown may take: the grace period, plus a second to close.
const SHUTDOWN_LIMIT: Duration = GRACE.saturating_add(Duration::from_secs(1));

/// How long the check watches a client that was accepted during the drain, to tell whether it
/// was served, hung up on or left waiting.
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

    /// A new client connection, or `None` if it was refused: the server no longer holds its
    /// listen socket (it dropped or closed `incoming`), so the kernel turns the client away
    /// before it can send anything.
    async fn connect(&self) -> Option<H1Connection> {
        let (client, server) = tokio::io::duplex(PIPE_BYTES);
        match self.backlog.try_send(server) {
            Ok(()) => Some(H1Connection::handshake(client).await),
            Err(TrySendError::Closed(_)) => None,
            Err(TrySendError::Full(_)) => panic!("the check filled the server's backlog"),
        }
    }

    /// Starts `GET path` on a new connection, in the background. Only for clients that connect
    /// before shutdown begins, when every server must still accept them.
    async fn get(&self, path: &'static str) -> JoinHandle<hyper::Result<TestResponse>> {
        let mut conn = self.connect().await.expect(
            "the server refused a connection before shutdown began: it must accept until then",
        );
        tokio::spawn(async move { conn.get(path).await })
    }

    /// Starts `GET path` on a new connection, in the background, and yields what the client saw
    /// and when.
    async fn get_timed(&self, path: &'static str) -> JoinHandle<(Seen, Instant)> {
        let conn = self.connect().await;
        tokio::spawn(async move {
            let seen = match conn {
                None => Seen::Refused,
                Some(mut conn) => match conn.get(path).await {
                    Ok(response) => Seen::Answered(response),
                    Err(_) => Seen::Closed,
                },
            };
            (seen, Instant::now())
        })
    }

    fn begin_shutdown(&mut self) {
        let _ = self.signal.take().expect("shutdown begins once").send(());
    }

    /// Whether `serve` returned within [`SHUTDOWN_LIMIT`] of now.
    async fn finishes_shutdown(&mut self) -> bool {
        self.returned_within_limit().await.is_some()
    }

    /// When `serve` returned, if it did within [`SHUTDOWN_LIMIT`] of now.
    async fn returned_within_limit(&mut self) -> Option<Instant> {
        match timeout(SHUTDOWN_LIMIT, &mut self.task).await {
            Ok(returned) => Some(returned.expect("`serve` panicked")),
            Err(_) => None,
        }
    }
}

/// What a client saw of its request.
enum Seen {
    Answered(TestResponse),
    /// The connection was accepted, then closed before an answer came.
    Closed,
    /// The connection was refused: the server had closed its listen socket.
    Refused,
}

/// Lets every task run until all of them wait on a timer or on a client. On the paused clock a
/// sleep ends only once the runtime has nothing else to do, so afterwards the server has taken
/// every connection offered so far and each handler is running.
///
/// The sleep is as short as tokio's timer allows, so the paused clock has barely moved when the
/// signal comes: a deadline the server computes from std's clock, which does not follow the
/// paused one, then lands on the same tenth of a second as one computed from tokio's.
async fn let_the_server_catch_up() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// What the clients and the deploy tool observed, each with the virtual time since the shutdown
/// signal, for the snapshot. Only behaviour goes in, never the server's own log lines: any
/// correct shutdown, however it is written and whatever it logs, produces the same timeline.
struct Timeline {
    signalled_at: Instant,
    /// When the check stops waiting: by then, a correct shutdown is over.
    give_up_at: Instant,
    /// When `serve` returned: the process exits, and every connection with it.
    exited_at: Option<Instant>,
    events: Vec<(Duration, String)>,
    /// Noted after the clients, so that at one instant a client's line comes first.
    server_event: Option<(Duration, String)>,
}

impl Timeline {
    fn new(signalled_at: Instant) -> Self {
        Self {
            signalled_at,
            give_up_at: signalled_at + SHUTDOWN_LIMIT,
            exited_at: None,
            events: Vec::new(),
            server_event: None,
        }
    }

    /// Waits (until the check gives up) for `serve` to return, and notes when it did. Call it
    /// before [`Timeline::client`]: what a client sees after the exit does not count.
    async fn server(&mut self, serve: JoinHandle<Instant>) {
        let (at, what) = match timeout_at(self.give_up_at, serve).await {
            Ok(returned) => {
                let at = returned.expect("`serve` panicked");
                self.exited_at = Some(at);
                (at, "`serve` returned")
            }
            Err(_) => (self.give_up_at, "`serve` still running, the check gave up"),
        };
        let since = at.saturating_duration_since(self.signalled_at);
        self.server_event = Some((since, what.to_owned()));
    }

    /// Waits (until the check gives up) for what `client` saw, and notes it. A client still
    /// connected when `serve` returned loses its connection then, as the process exits.
    async fn client(&mut self, client: &str, request: JoinHandle<(Seen, Instant)>) {
        let closed = || "connection closed without an answer".to_owned();
        let seen = timeout_at(self.give_up_at, request)
            .await
            .map(|joined| joined.expect("the client task panicked"));
        let (at, outcome) = match (seen, self.exited_at) {
            (Ok((Seen::Refused, at)), _) => (at, "connection refused".to_owned()),
            // The process exited first: the client lost its connection then.
            (Ok((_, at)), Some(exit)) if at > exit => (exit, closed()),
            (Err(_still_waiting), Some(exit)) => (exit, closed()),
            (Ok((Seen::Answered(response), at)), _) => {
                (at, format!("answered {}", response.status))
            }
            (Ok((Seen::Closed, at)), _) => (at, closed()),
            (Err(_still_waiting), None) => (
                self.give_up_at,
                "still waiting, the check gave up".to_owned(),
            ),
        };
        self.events.push((
            at.saturating_duration_since(self.signalled_at),
            format!("{client}: {outcome}"),
        ));
    }

    /// One line per event, earliest first; events at the same tenth of a second keep the order
    /// in which they were noted, so that the order of tasks within one instant does not matter.
    fn render(mut self) -> String {
        self.events.extend(self.server_event.take());
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
            "shutdown was still waiting {} s after the signal (grace period: {} s):\nthe drain \
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
        let report = server.get_timed("/report").await;
        let_the_server_catch_up().await;

        server.begin_shutdown();
        let (seen, answered_at) = timeout(SHUTDOWN_LIMIT, report)
            .await
            .expect("the report request was still waiting after the grace period")
            .unwrap();
        let Seen::Answered(response) = seen else {
            panic!(
                "the report being built when shutdown began never got its answer:\na graceful \
                 shutdown lets requests in flight finish within the grace period before it \
                 closes their connections"
            );
        };
        assert_eq!(
            (response.status.as_u16(), response.text().as_str()),
            (200, "report ready\n"),
            "the report being built when shutdown began should have been answered in full"
        );
        let Some(exited_at) = server.returned_within_limit().await else {
            panic!("the last request was answered, yet shutdown did not finish");
        };
        assert!(
            answered_at <= exited_at,
            "the report was answered {:?} after `serve` had returned;\nin production the \
             process exits when `serve` returns, and this client never gets its answer:\nwait \
             for the requests in flight (for the grace period at most) before returning",
            answered_at - exited_at
        );
    });
}

/// A client that connects while the server drains is refused: the server has closed its listen
/// socket, so the client is neither served, nor left waiting, nor accepted and then hung up on.
#[test]
fn connections_arriving_during_the_drain_are_turned_away() {
    check(HANG).paused(|| async {
        let mut server = Server::start();
        // Keeps the drain going for the whole grace period.
        let _long_poll = server.get("/updates").await;
        let_the_server_catch_up().await;

        server.begin_shutdown();
        // The first moment after the server has reacted to the signal: "as soon as shutdown
        // begins" leaves no window in which accepting goes on a little longer.
        let_the_server_catch_up().await;
        // Refused: the listen socket is closed, which is what stopping to accept means.
        let Some(mut late) = server.connect().await else {
            return;
        };
        // Accepted: the listen socket is still open. What the client saw next says how bad it is.
        match timeout(TURNED_AWAY_WITHIN, late.get("/health")).await {
            Ok(Err(_)) => panic!(
                "a client that connected during the drain was accepted, then hung up on without \
                 an answer:\nthe server still holds its listen socket (the `incoming` receiver) \
                 and closes what it takes from it.\nClose the listen socket itself (drop or close \
                 `incoming`) as soon as shutdown begins: a refused client\nknows its request was \
                 never sent and retries it elsewhere, while one that was accepted has sent a \
                 request\nit cannot know was not acted on"
            ),
            Ok(Ok(response)) => panic!(
                "a client that connected after shutdown began was served ({}): a server that \
                 is shutting down must stop accepting new connections first",
                response.status
            ),
            Err(_) => panic!(
                "a client that connected during the drain was left waiting, neither served nor \
                 refused:\nthe server still holds its listen socket (the `incoming` receiver) \
                 while it drains, so new clients queue up\nfor a server that will never serve \
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

        // `serve` first, so that the clients are judged against the exit; after that the order
        // of the waits does not matter: each outcome carries its own time.
        timeline.server(server.task).await;
        timeline
            .client("GET /health, sent 1s after the signal", late)
            .await;
        timeline
            .client("GET /report, in flight at the signal", report)
            .await;
        timeline
            .client("GET /updates, in flight at the signal", long_poll)
            .await;
        insta::assert_snapshot!(timeline.render());
    });
}
