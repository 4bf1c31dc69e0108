//! Checks for M05: in-memory connections, a gauge of simulations in progress, and a risk model
//! the checks drive batch by batch.
//!
//! A simulation runs on tokio's blocking pool, on a thread of its own and on the real clock, so
//! no timer can tell when it "should" have stopped. Instead the checks' model prices a batch
//! only when the check hands it a permit, and reports each batch it prices: "the simulation
//! went on after the client left" is then a count of batches, the same on any machine.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, ThreadId};
use std::time::Duration;

use harness::duplex;
use harness::leak::Gauge;
use harness::watchdog::check;
use m05_orphan_compute::{BATCHES, RiskModel, serve_connection};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

const HANG: &str = "the check never got past waiting on the simulation; is something blocking the \
                    runtime's only thread (CPU work outside spawn_blocking), or waiting on a \
                    result that never comes?";

/// After how many priced batches the clients of the hang-up checks leave, one client per count,
/// during every batch but the first. A simulation that looks for its client only every
/// few batches stops in time only when the hang-up happens to fall just before one of its
/// looks; some count here always misses it. And the late counts catch a simulation that stops
/// looking once its figure is nearly ready: the CPU it burns for nobody is the same.
const HANG_UP_AFTER: std::ops::Range<u32> = 1..BATCHES;

/// How the client of a hang-up goes away: after an odd count, the server drops the task serving
/// its connection (a shutdown, a connection limit), and no `serve_connection(..).await` ever
/// returns; after an even count, the client closes its socket.
fn server_drops_the_connection(before: u32) -> bool {
    before % 2 == 1
}

fn how_it_left(server_dropped_it: bool) -> &'static str {
    if server_dropped_it {
        "lost its connection (the server aborted the task serving it)"
    } else {
        "hung up"
    }
}
/// Permits handed out after each hang-up: the batch under way may use one, and no other.
const AFTER: u32 = 3;

/// A generous virtual deadline for events that need no blocking thread to happen.
const DEADLINE: Duration = Duration::from_secs(60);

const VAR_REQUEST: &[u8] = b"GET /var?portfolio=acme HTTP/1.1\r\nhost: workshop.test\r\n\r\n";

/// What the check sees of its model.
#[derive(Default)]
struct Seen {
    priced: AtomicU32,
    /// The model was dropped: nothing can price a batch with it any more.
    released: AtomicBool,
    /// A batch ran on the thread that runs the check's runtime, and so serves its connections.
    on_runtime_thread: AtomicBool,
    changed: Notify,
}

/// The checks' risk model: a batch waits for a permit from the check (until the check lets go
/// of its end), then counts itself and returns a loss that grows with the batch number, so the
/// worst loss is that of the last batch.
struct Scripted {
    permits: Mutex<mpsc::Receiver<()>>,
    seen: Arc<Seen>,
    /// The thread of the check's runtime (current-thread: it also runs the server).
    runtime_thread: ThreadId,
}

impl RiskModel for Scripted {
    fn simulate_batch(&self, portfolio: &str, batch: u32) -> u64 {
        if thread::current().id() == self.runtime_thread {
            // Waiting for a permit here would block the very thread that must hand it out:
            // note the mistake and go on without one.
            self.seen.on_runtime_thread.store(true, Ordering::SeqCst);
        } else {
            let _ = self.permits.lock().unwrap().recv();
        }
        self.seen.priced.fetch_add(1, Ordering::SeqCst);
        self.seen.changed.notify_waiters();
        u64::from(batch) * 1000 + portfolio.len() as u64
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.seen.released.store(true, Ordering::SeqCst);
        self.seen.changed.notify_waiters();
    }
}

/// The check's end of a scripted model.
struct Script {
    permits: mpsc::Sender<()>,
    seen: Arc<Seen>,
}

fn scripted() -> (Arc<dyn RiskModel>, Script) {
    let (permits, waiting) = mpsc::channel();
    let seen = Arc::new(Seen::default());
    let model = Scripted {
        permits: Mutex::new(waiting),
        seen: Arc::clone(&seen),
        runtime_thread: thread::current().id(),
    };
    (Arc::new(model), Script { permits, seen })
}

impl Script {
    /// Lets `n` more batches be priced.
    fn grant(&self, n: u32) {
        for _ in 0..n {
            // A model that was already dropped needs no permits.
            let _ = self.permits.send(());
        }
    }

    fn priced(&self) -> u32 {
        self.seen.priced.load(Ordering::SeqCst)
    }

    fn released(&self) -> bool {
        self.seen.released.load(Ordering::SeqCst)
    }

    /// Waits until `done` holds. While a simulation runs on the blocking pool the paused clock
    /// stands still, so `deadline` only ends a wait that no running simulation can satisfy.
    async fn until(&self, deadline: Duration, done: impl Fn(&Self) -> bool) -> bool {
        tokio::time::timeout(deadline, async {
            loop {
                // Register interest before looking, or a change in between would be missed.
                let changed = self.seen.changed.notified();
                if done(self) {
                    return;
                }
                changed.await;
            }
        })
        .await
        .is_ok()
    }
}

/// What happened once the client had gone.
struct AfterHangUp {
    /// Batches priced after the server had dropped the handler.
    priced_after: u32,
    /// The simulation returned (it let go of the model).
    ended: bool,
    simulations: Gauge,
}

/// A client asks for acme's value at risk and goes away `before` batches in: it closes its
/// socket (a closed tab, a load balancer giving up), or the server aborts the task serving its
/// connection. Once the handler has been dropped, the check offers the simulation three more
/// batches and watches what it does with them.
async fn hang_up_mid_simulation(before: u32) -> (AfterHangUp, Script) {
    let (model, script) = scripted();
    let simulations = Gauge::new();
    let gauge = simulations.clone();
    let (mut client, server) = duplex::raw(move |io| serve_connection(io, model, gauge));
    client.write_all(VAR_REQUEST).await.unwrap();
    script.grant(before);
    assert!(
        script.until(DEADLINE, |s| s.priced() >= before).await,
        "the simulation for GET /var?portfolio=acme priced {} of its first {before} batches while \
         its client was still connected, then stopped: is it cancelled before it starts (a drop \
         guard dropped at once, a token cancelled too early)?",
        script.priced(),
    );

    if server_drops_the_connection(before) {
        // The client is still there; its connection's task is aborted, which drops the
        // connection's future, and the handler's with it, without running any more of either.
        server.task.abort();
    } else {
        drop(client);
    }
    // Either way the task is over only once the handler's future has been dropped with it:
    // hyper reads the end of the stream and ends the connection, or the abort takes effect.
    let _ = server.task.await;

    script.grant(AFTER);
    script
        .until(DEADLINE, |s| s.released() || s.priced() >= before + AFTER)
        .await;
    let after = AfterHangUp {
        priced_after: script.priced() - before,
        ended: script.released(),
        simulations,
    };
    (after, script)
}

/// Clients hang up mid-simulation, each after a different number of batches: every simulation
/// must end, and the gauge must say so.
#[test]
fn the_simulation_ends_when_the_client_hangs_up() {
    check(HANG).paused(|| async {
        for before in HANG_UP_AFTER {
            let (after, _script) = hang_up_mid_simulation(before).await;
            // It was offered three batches: one that used them all was still running when they
            // ran out, whatever it did next (when it then returns is a race no check judges).
            assert!(
                after.priced_after < AFTER && after.ended,
                "a client {} {before} batch(es) into its simulation, yet the simulation was \
                 still running {} batches later: the handler was dropped and with it the \
                 JoinHandle, but a spawn_blocking closure is not a future: nothing can cancel it \
                 from outside, not even JoinHandle::abort(), and it must look for itself between \
                 batches, every batch to the last, for a signal that the handler's drop sends \
                 (a connection's end is not one: a dropped connection never reaches it)",
                how_it_left(server_drops_the_connection(before)),
                after.priced_after,
            );
            // It has returned: nothing blocks the paused clock now, so the gauge gets a deadline.
            assert!(
                after.simulations.settles_to(0, DEADLINE).await,
                "a client {} {before} batch(es) in and its simulation returned, yet the gauge \
                 still counts it as in progress",
                how_it_left(server_drops_the_connection(before)),
            );
        }
    });
}

/// The same hang-ups, judged by the model: after the server dropped the handler, the
/// simulation may finish the batch it is in, and must not start another.
#[test]
fn no_batch_is_priced_after_the_client_hangs_up() {
    check(HANG).paused(|| async {
        for before in HANG_UP_AFTER {
            let (after, _script) = hang_up_mid_simulation(before).await;
            assert!(
                after.priced_after <= 1,
                "a client {} {before} batch(es) into its simulation, yet the simulation \
                 priced {} more batches after the handler was dropped (one, the batch already \
                 under way, is fine): the CPU is working for nobody, whatever the gauge says",
                how_it_left(server_drops_the_connection(before)),
                after.priced_after,
            );
            assert!(
                after.ended,
                "a client {} {before} batch(es) in and the simulation priced no more \
                 batches, but it never returned either: is it waiting for something?",
                how_it_left(server_drops_the_connection(before)),
            );
        }
    });
}

/// A client that waits gets the result of all the batches, and gets it again when it asks a
/// second time on the same keep-alive connection (a dashboard refreshing its figure).
#[test]
fn a_client_that_waits_gets_its_figure() {
    check(HANG).paused(|| async {
        let (model, script) = scripted();
        // No permits to hand out: every batch runs as soon as it is asked for.
        drop(script.permits);
        let simulations = Gauge::new();
        let gauge = simulations.clone();
        let (mut conn, _server) = duplex::http1(move |io| serve_connection(io, model, gauge)).await;
        for (request, what) in [
            (1, "its figure"),
            (2, "a second figure on the same connection"),
        ] {
            let response = conn
                .get("/var?portfolio=acme")
                .await
                .expect("the server closed the connection instead of answering");
            assert_eq!(
                (response.status.as_u16(), response.text().as_str()),
                (200, "portfolio=acme var99=19004\n"),
                "a client that stays connected must get the figure of all {BATCHES} batches \
                 (request {request} on its connection: {what}): stop a simulation only when \
                 the request that started it is gone, not on the normal path, and not when \
                 an earlier request on the same connection has ended"
            );
            assert!(
                simulations.settles_to(0, DEADLINE).await,
                "the figure was sent, yet its simulation is still counted as in progress"
            );
        }
    });
}

/// A batch is seconds of CPU: it must not run on a thread that serves connections, where it
/// would stall every connection that thread serves for as long as it computes.
#[test]
fn batches_run_off_the_threads_that_serve_connections() {
    check(HANG).paused(|| async {
        let (model, script) = scripted();
        drop(script.permits);
        let (mut conn, _server) =
            duplex::http1(move |io| serve_connection(io, model, Gauge::new())).await;
        let response = conn
            .get("/var?portfolio=acme")
            .await
            .expect("the server closed the connection instead of answering");
        assert_eq!(response.status.as_u16(), 200, "GET /var?portfolio=acme");
        assert!(
            !script.seen.on_runtime_thread.load(Ordering::SeqCst),
            "a batch ran on the thread that serves this check's connections: while it computes, \
             no connection on that thread is served, and no task there (an abort, a timer, \
             another request) gets a turn. CPU-bound work belongs on the blocking pool \
             (spawn_blocking) or a thread of its own"
        );
    });
}

/// Two traders ask for the same portfolio's figure at once, on two connections; the second
/// leaves mid-simulation. The first one's simulation must run to the end.
#[test]
fn one_client_leaving_does_not_cancel_another() {
    check(HANG).paused(|| async {
        let simulations = Gauge::new();
        let (staying_model, staying_script) = scripted();
        let gauge = simulations.clone();
        let (mut staying, _server_a) =
            duplex::http1(move |io| serve_connection(io, staying_model, gauge)).await;
        let (leaving_model, leaving_script) = scripted();
        let gauge = simulations.clone();
        let (mut leaving, server_b) =
            duplex::raw(move |io| serve_connection(io, leaving_model, gauge));

        // The staying trader asks first, and its simulation is under way before the other
        // request arrives: the second request for acme must not take the first one's place.
        let staying = tokio::spawn(async move { staying.get("/var?portfolio=acme").await });
        staying_script.grant(1);
        assert!(
            staying_script.until(DEADLINE, |s| s.priced() >= 1).await,
            "a client asked for a figure, but its simulation did not price a first batch: is \
             every simulation cancelled before it starts?"
        );
        leaving.write_all(VAR_REQUEST).await.unwrap();
        leaving_script.grant(1);
        assert!(
            leaving_script.until(DEADLINE, |s| s.priced() >= 1).await,
            "a second client asked for the same portfolio's figure, but its simulation did not \
             price a first batch: is every simulation cancelled before it starts?"
        );
        drop(leaving);
        let _ = server_b.task.await;

        // The client that stayed: let its simulation run every remaining batch.
        drop(staying_script.permits);
        let response = staying
            .await
            .unwrap()
            .expect("the client that stayed lost its connection when the other one left");
        assert_eq!(
            (response.status.as_u16(), response.text().as_str()),
            (200, "portfolio=acme var99=19004\n"),
            "two traders asked for acme's figure at once and one hung up: the one that stayed \
             must get its figure. Cancellation belongs to the request that started a \
             simulation: not to a switch the whole server shares, and not to the portfolio \
             (a second request for it is another trader, not a reload)"
        );
    });
}
