//! Checks for X01 over the whole server, on a paused clock with in-memory connections. The
//! lost wakeup itself is caught by the loom models in `tests/loom.rs`: on one thread it cannot
//! happen, and on many it happens only now and then, so no check here relies on it. These
//! checks pin down what a correct shutdown must keep doing: wait for the report in flight, and
//! end as soon as it has been answered.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use harness::server::H1Connection;
use harness::watchdog::check;
use tokio::io::DuplexStream;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use x01_shutdown_core::{Drain, Listener, Warehouse, serve};

const HANG: &str = "the shutdown never ended: does `idle` wait for a wakeup when nothing is in \
                    flight, or never wake at all?";

/// Connections handed to the server in memory, as a listener hands over sockets.
struct Pipes(mpsc::UnboundedReceiver<DuplexStream>);

impl Listener for Pipes {
    type Io = DuplexStream;
    async fn accept(&mut self) -> io::Result<DuplexStream> {
        match self.0.recv().await {
            Some(pipe) => Ok(pipe),
            // No more clients: wait for `stop` like a quiet listener would.
            None => std::future::pending().await,
        }
    }
}

/// A warehouse whose queries finish only when the check says so, and say when they start.
struct HeldQueries {
    started: mpsc::UnboundedSender<String>,
    finish: Semaphore,
}

impl Warehouse for HeldQueries {
    fn run(&self, report: &str) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
        let report = report.to_owned();
        Box::pin(async move {
            let _ = self.started.send(report.clone());
            self.finish.acquire().await.expect("never closed").forget();
            format!("rows of {report}\n")
        })
    }
}

/// The drain's deadline in these checks: far longer than any wait below, so that a shutdown
/// that returns early cannot blame it.
const GRACE: Duration = Duration::from_secs(4 * 3600);

/// A running server, its warehouse and a way to stop it.
struct Running {
    clients: mpsc::UnboundedSender<DuplexStream>,
    warehouse: Arc<HeldQueries>,
    started: mpsc::UnboundedReceiver<String>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<io::Result<()>>,
    polls: Arc<PollCount>,
}

fn start() -> Running {
    let (clients, pipes) = mpsc::unbounded_channel();
    let (started_tx, started) = mpsc::unbounded_channel();
    let warehouse = Arc::new(HeldQueries {
        started: started_tx,
        finish: Semaphore::new(0),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let polls = Arc::new(PollCount::default());
    let server = tokio::spawn(Counted {
        inner: Box::pin(serve(
            Pipes(pipes),
            Arc::clone(&warehouse) as Arc<dyn Warehouse>,
            Drain::new(),
            async move {
                let _ = stopped.await;
            },
            GRACE,
        )),
        polls: Arc::clone(&polls),
    });
    Running {
        clients,
        warehouse,
        started,
        stop: Some(stop),
        server,
        polls,
    }
}

impl Running {
    async fn connect(&self) -> H1Connection {
        let (client, server) = tokio::io::duplex(harness::duplex::PIPE_BYTES);
        self.clients
            .send(server)
            .expect("the server takes connections");
        H1Connection::handshake(client).await
    }

    /// The deploy's stop signal.
    fn deploy(&mut self) {
        let stop = self.stop.take().expect("one deploy per check");
        stop.send(()).expect("the server waits for the stop signal");
    }
}

/// What became of the server while the check waited.
enum Outcome {
    Returned,
    StillWaiting,
    Spinning,
}

/// More polls than a wait that sleeps until it is woken needs for one request.
const SPINNING: u64 = 1000;

/// Waits a virtual hour for the server to return. The paused clock moves only when every task
/// is asleep, so `StillWaiting` means the server slept with the request in flight.
async fn an_hour_of(running: &mut Running) -> Outcome {
    let before = running.polls.polls.load(Ordering::SeqCst);
    tokio::select! {
        returned = &mut running.server => {
            returned.expect("the server task panicked").expect("serve failed");
            Outcome::Returned
        }
        () = tokio::time::sleep(Duration::from_secs(3600)) => Outcome::StillWaiting,
        () = running.polls.beyond(before + SPINNING) => Outcome::Spinning,
    }
}

/// A deploy stops the server while a report is running: the shutdown waits, asleep, for as
/// long as the report takes, and ends as soon as the report has been answered, in full.
#[test]
fn shutdown_waits_for_the_report_in_flight() {
    check(HANG).limit(Duration::from_secs(10)).paused(|| async {
        let mut running = start();
        let mut analyst = running.connect().await;
        let answer = tokio::spawn(async move { analyst.get("/reports/q3-revenue").await });
        assert_eq!(running.started.recv().await.as_deref(), Some("q3-revenue"));

        running.deploy();
        match an_hour_of(&mut running).await {
            Outcome::StillWaiting => {}
            Outcome::Returned => panic!(
                "the shutdown returned while a report was still running: `serve` must wait \
                 in the drain until every request in flight has been answered, or the deploy \
                 cuts the analyst's report"
            ),
            Outcome::Spinning => panic!(
                "while the report ran, the shutdown kept polling instead of sleeping until it \
                 was woken (over {SPINNING} polls of the server task): a wait that re-checks in \
                 a loop burns a core for the whole drain and hides a lost wakeup instead of \
                 fixing it"
            ),
        }

        running.warehouse.finish.add_permits(1);
        let answer = answer
            .await
            .unwrap()
            .expect("the analyst's report was cut off");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.text(), "rows of q3-revenue\n");
        match tokio::time::timeout(Duration::from_secs(1), &mut running.server).await {
            Ok(returned) => returned.unwrap().expect("serve failed"),
            Err(_) => panic!(
                "the report has been answered, and a virtual second later the shutdown was \
                 still waiting: the last request left the drain and `idle` was never woken (or \
                 it re-checks only now and then)"
            ),
        }
    });
}

/// A deploy stops a server with nothing in flight: the shutdown ends at once.
#[test]
fn an_idle_server_stops_at_once() {
    check(HANG).limit(Duration::from_secs(10)).paused(|| async {
        let mut running = start();
        // One report served and answered before the deploy: the drain is back to zero.
        let mut analyst = running.connect().await;
        running.warehouse.finish.add_permits(1);
        let answer = analyst.get("/reports/headcount").await.unwrap();
        assert_eq!(answer.text(), "rows of headcount\n");

        running.deploy();
        match tokio::time::timeout(Duration::from_secs(1), &mut running.server).await {
            Ok(returned) => returned.unwrap().expect("serve failed"),
            Err(_) => panic!(
                "nothing was in flight, and a virtual second after the stop signal the shutdown \
                 was still waiting: `idle` must resolve at once when the count is zero, without \
                 waiting for a wakeup that no request will send"
            ),
        }
    });
}

/// How many times the server's future has been polled, and a signal every `SPINNING` polls.
#[derive(Default)]
struct PollCount {
    polls: AtomicU64,
    milestone: Notify,
}

impl PollCount {
    /// Resolves once the server has been polled more than `polls` times in all. It sleeps
    /// between milestones, so it does not keep the paused clock from moving.
    async fn beyond(&self, polls: u64) {
        while self.polls.load(Ordering::SeqCst) <= polls {
            self.milestone.notified().await;
        }
    }
}

/// The server's future, counted: a wait that sleeps is polled once per wakeup; one that
/// re-checks in a loop is polled without end.
struct Counted<F> {
    inner: Pin<Box<F>>,
    polls: Arc<PollCount>,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let polls = self.polls.polls.fetch_add(1, Ordering::SeqCst) + 1;
        if polls.is_multiple_of(SPINNING) {
            self.polls.milestone.notify_one();
        }
        self.inner.as_mut().poll(cx)
    }
}
