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

/// The order whose label the stand-in carrier holds at the gate.
const STUCK_ORDER: &str = "1001";

/// A stand-in for the carrier's SDK: every label renders at once, except `STUCK_ORDER`'s,
/// which blocks its calling thread (as the real SDK does while the carrier is slow) until the
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
        if order == STUCK_ORDER {
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

    /// Waits until the stuck order's call has reached the carrier.
    async fn wait_until_the_call_is_at_the_carrier(&mut self) {
        let entered = tokio::time::timeout(WATCHDOG, self.entered.recv()).await;
        if !matches!(entered, Ok(Some(()))) {
            self.carrier.open_gate();
            panic!(
                "a station asked for order {STUCK_ORDER}'s label, and the carrier was not \
                 called within {} s: the label must still come from the carrier",
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

/// One station's label is stuck at the carrier; another station asks for another order's
/// label on its own connection and must get it before the first one is released.
#[test]
fn other_stations_are_served_while_a_label_is_stuck() {
    check(HANG).run(|| {
        let mut server = Harness::start(Duration::from_secs(60));
        client(async move {
            let mut first = server.connect().await;
            let stuck = tokio::spawn(async move { first.get("/labels/1001").await });
            server.wait_until_the_call_is_at_the_carrier().await;

            let mut second = server.connect().await;
            let Ok(other) = tokio::time::timeout(WATCHDOG, second.get("/labels/2002")).await else {
                server.carrier.open_gate();
                panic!(
                    "while order {STUCK_ORDER}'s label was stuck at the carrier, another \
                     station asked for order 2002's label on its own connection and got no \
                     answer in {} s: the stuck call holds a thread the server needs to run \
                     everything else (or the second label waits for the first)",
                    WATCHDOG.as_secs()
                );
            };
            let other = other.expect("the server closed the second station's connection");
            assert_eq!(
                (other.status.as_u16(), other.body.as_ref()),
                (200, label("2002").as_slice()),
                "order 2002's label renders at once: the second station must get it, with 200"
            );

            server.carrier.open_gate();
            let Ok(stuck) = tokio::time::timeout(WATCHDOG, stuck).await else {
                panic!(
                    "the carrier answered order {STUCK_ORDER}'s call, yet its station got \
                     nothing in {} s",
                    WATCHDOG.as_secs()
                );
            };
            let stuck = stuck
                .unwrap()
                .expect("the server closed the first station's connection");
            assert_eq!(
                (stuck.status.as_u16(), stuck.body.as_ref()),
                (200, label(STUCK_ORDER).as_slice()),
                "once the carrier answers (well within the deadline here), the first station \
                 must get its label"
            );
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
            server.wait_until_the_call_is_at_the_carrier().await;

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
