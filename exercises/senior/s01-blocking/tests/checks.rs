//! Checks for S01: a real server on loopback whose carrier is a stand-in the check controls.
//! The stand-in blocks a chosen order's call on a gate until the check opens it, and says when
//! a call has entered, so "a label is stuck at the carrier" is a fact the check arranged, not
//! a slow call it hopes is slow enough. Each verdict is an event (another station was served,
//! a 504 came back) awaited under a real-time watchdog that opens the gate before it fails, so
//! a blocked server never hangs the check.
//!
//! The server runs on a runtime the check builds, with one worker thread: one stuck call per
//! worker is all it takes to stall a server, and the checks make that certain instead of
//! hoping enough calls pile up. A `main` with more workers would not change what they see.
//! The stations check holds [`BAD_AFTERNOON`] calls at the carrier at once, the number the
//! README promises to survive, so a pool that only absorbs one or two stuck calls fails too.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use harness::server::H1Connection;
use harness::watchdog::check;
use s01_blocking::{Carrier, Labels, serve};
use tokio::sync::mpsc;

const HANG: &str = "the check itself got stuck; its own watchdogs open the carrier's gate after \
                    3 s, so this means the server or the client never got going";

/// How long the check waits, on the real clock, for an answer that a server that is not
/// blocked gives in milliseconds.
const WATCHDOG: Duration = Duration::from_secs(3);

/// The first order whose label the stand-in carrier holds at the gate.
const STUCK_ORDER: &str = "1001";

/// How many labels may be stuck at the carrier at once without holding up any other station:
/// the README's "bad afternoon". Orders 1001 to 1008 are held at the gate.
const BAD_AFTERNOON: usize = 8;

/// Whether the stand-in carrier holds `order`'s call at the gate: orders 1001 to 1008.
fn is_stuck(order: &str) -> bool {
    order
        .parse::<usize>()
        .is_ok_and(|n| (1001..1001 + BAD_AFTERNOON).contains(&n))
}

/// A stand-in for the carrier's SDK: every label renders at once, except those of orders 1001
/// to 1008, whose calls each block its calling thread (as the real SDK does while the carrier is slow) until the
/// check opens the gate.
struct GatedCarrier {
    open: Mutex<bool>,
    opened: Condvar,
    entered: mpsc::UnboundedSender<()>,
}

impl GatedCarrier {
    fn open_gate(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl Carrier for GatedCarrier {
    fn render_label(&self, order: &str) -> Result<Vec<u8>, String> {
        if is_stuck(order) {
            let _ = self.entered.send(());
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
        }
        Ok(label(order))
    }
}

fn label(order: &str) -> Vec<u8> {
    format!("%PDF-1.7 shipping label for order {order}").into_bytes()
}

/// The server under test on its own one-worker runtime, and the carrier's gate. Dropping it
/// opens the gate first, so no call stays blocked, then leaves the server's runtime behind.
struct Harness {
    carrier: Arc<GatedCarrier>,
    entered: mpsc::UnboundedReceiver<()>,
    addr: std::net::SocketAddr,
    server: Option<tokio::runtime::Runtime>,
}

impl Harness {
    fn start(deadline: Duration) -> Self {
        let (entered_tx, entered) = mpsc::unbounded_channel();
        let carrier = Arc::new(GatedCarrier {
            open: Mutex::new(false),
            opened: Condvar::new(),
            entered: entered_tx,
        });
        let server = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("building the server's runtime");
        let listener = server
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let labels = Labels {
            carrier: carrier.clone(),
            deadline,
        };
        server.spawn(serve(listener, labels));
        Self {
            carrier,
            entered,
            addr,
            server: Some(server),
        }
    }

    async fn connect(&self) -> H1Connection {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connecting to the server");
        H1Connection::handshake(stream).await
    }

    /// Waits until `calls` stuck calls have reached the carrier, each one's start an event.
    async fn wait_until_calls_are_at_the_carrier(&mut self, calls: usize) {
        let deadline = tokio::time::Instant::now() + WATCHDOG;
        for started in 0..calls {
            let entered = tokio::time::timeout_at(deadline, self.entered.recv()).await;
            if matches!(entered, Ok(Some(()))) {
                continue;
            }
            self.carrier.open_gate();
            if started == 0 {
                panic!(
                    "a station asked for order {STUCK_ORDER}'s label, and the carrier was not \
                     called within {} s: the label must still come from the carrier",
                    WATCHDOG.as_secs()
                );
            }
            panic!(
                "{calls} stations asked for labels that are stuck at the carrier, and {} s \
                 later only {started} of those calls had started: whatever runs the \
                 carrier's calls (the server's own worker, or a thread, pool, runtime or \
                 semaphore of your own) was used up by {started} stuck call(s), so every label \
                 after them waits, a minute on a bad afternoon. Up to {calls} calls may be \
                 stuck at once, and no other station may wait for them",
                WATCHDOG.as_secs()
            );
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.carrier.open_gate();
        if let Some(server) = self.server.take() {
            server.shutdown_background();
        }
    }
}

/// Runs the check's client on a runtime of its own, apart from the server's.
fn client<F: Future<Output = ()>>(body: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building the client's runtime")
        .block_on(body)
}

/// Eight stations' labels are stuck at the carrier (a bad afternoon); another station asks
/// for another order's label on its own connection and must get it before they are released.
#[test]
fn other_stations_are_served_while_a_label_is_stuck() {
    check(HANG).run(|| {
        let mut server = Harness::start(Duration::from_secs(60));
        client(async move {
            let mut stuck = Vec::new();
            for order in 1001..1001 + BAD_AFTERNOON {
                let mut station = server.connect().await;
                let path = format!("/labels/{order}");
                stuck.push(tokio::spawn(async move { station.get(&path).await }));
            }
            server
                .wait_until_calls_are_at_the_carrier(BAD_AFTERNOON)
                .await;

            let mut second = server.connect().await;
            let Ok(other) = tokio::time::timeout(WATCHDOG, second.get("/labels/2002")).await else {
                server.carrier.open_gate();
                panic!(
                    "while {BAD_AFTERNOON} labels were stuck at the carrier, another station \
                     asked for order 2002's label on its own connection and got no answer in \
                     {} s: a stuck call holds a thread the server needs to run everything else \
                     (or the other label waits for the stuck ones)",
                    WATCHDOG.as_secs()
                );
            };
            let other = other.expect("the server closed the second station's connection");
            assert_eq!(
                (other.status.as_u16(), other.body.as_ref()),
                (200, label("2002").as_slice()),
                "order 2002's label renders at once: its station must get it, with 200"
            );

            server.carrier.open_gate();
            for (order, answer) in (1001..).zip(stuck) {
                let Ok(answer) = tokio::time::timeout(WATCHDOG, answer).await else {
                    panic!(
                        "the carrier answered order {order}'s call, yet its station got \
                         nothing in {} s",
                        WATCHDOG.as_secs()
                    );
                };
                let answer = answer
                    .unwrap()
                    .expect("the server closed a stuck station's connection");
                assert_eq!(
                    (answer.status.as_u16(), answer.body.as_ref()),
                    (200, label(&order.to_string()).as_slice()),
                    "once the carrier answers (well within the deadline here), each stuck \
                     station must get its own label"
                );
            }
        });
    });
}

/// The carrier holds a label past the service's deadline: the station must get its 504 while
/// the carrier still holds the call, so that it can print a fallback label.
#[test]
fn the_deadline_answers_while_the_carrier_hangs() {
    check(HANG).run(|| {
        let deadline = Duration::from_millis(100);
        let mut server = Harness::start(deadline);
        client(async move {
            let mut station = server.connect().await;
            let answer = tokio::spawn(async move { station.get("/labels/1001").await });
            server.wait_until_calls_are_at_the_carrier(1).await;

            let Ok(answer) = tokio::time::timeout(WATCHDOG, answer).await else {
                server.carrier.open_gate();
                panic!(
                    "order {STUCK_ORDER}'s label was stuck at the carrier, the deadline is {} ms, \
                     and {} s later the station still had no answer: the timeout around the \
                     carrier call never fired, because the task that would notice it is the \
                     one stuck inside the call",
                    deadline.as_millis(),
                    WATCHDOG.as_secs()
                );
            };
            let answer = answer
                .unwrap()
                .expect("the server closed the station's connection");
            assert_eq!(
                answer.status, 504,
                "past the deadline, while the carrier still holds the call, the station must \
                 get 504 Gateway Timeout"
            );
        });
    });
}
