//! The two services an order touches, as in-process stand-ins with the latency of a network
//! call: the venue's seat inventory and the payments ledger. Each is a cheap handle to shared
//! state (clone it freely) that the on-call dashboard, and the checks, can read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// One order's charge, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    /// The order it pays for.
    pub order: u64,
    /// How many seats it pays for.
    pub seats: u32,
}

/// The venue's seat inventory: how many seats are left, and how many holds it has been asked
/// for.
#[derive(Debug, Clone)]
pub struct Inventory {
    left: Arc<watch::Sender<u32>>,
    requests: Arc<watch::Sender<u64>>,
    latency: Duration,
}

/// Not enough seats left for the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoldOut;

impl Inventory {
    /// A venue with `seats` seats left, whose every hold takes `latency` to answer.
    pub fn new(seats: u32, latency: Duration) -> Self {
        Self {
            left: Arc::new(watch::channel(seats).0),
            requests: Arc::new(watch::channel(0).0),
            latency,
        }
    }

    /// Holds `seats` seats: a call to the inventory service, which counts the request as
    /// soon as it arrives and takes the seats when it answers.
    pub async fn hold(&self, seats: u32) -> Result<(), SoldOut> {
        self.requests.send_modify(|n| *n += 1);
        tokio::time::sleep(self.latency).await;
        let mut held = false;
        self.left.send_if_modified(|left| {
            held = *left >= seats;
            if held {
                *left -= seats;
            }
            held
        });
        if held { Ok(()) } else { Err(SoldOut) }
    }

    /// Gives held seats back (a one-way message to the inventory service).
    pub fn release(&self, seats: u32) {
        self.left.send_modify(|left| *left += seats);
    }

    /// Seats left right now.
    pub fn left(&self) -> u32 {
        *self.left.borrow()
    }

    /// Follows the number of seats left.
    pub fn watch_left(&self) -> watch::Receiver<u32> {
        self.left.subscribe()
    }

    /// Follows the number of holds ever requested.
    pub fn watch_requests(&self) -> watch::Receiver<u64> {
        self.requests.subscribe()
    }
}

/// The payments ledger: an order is sold once its charge is recorded here.
#[derive(Debug, Clone)]
pub struct Ledger {
    charges: Arc<Mutex<Vec<Charge>>>,
    closed: Arc<AtomicBool>,
    latency: Duration,
}

/// The connection to the ledger was closed before the charge was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerClosed;

impl Ledger {
    /// A ledger whose every write takes `latency` to be recorded.
    pub fn new(latency: Duration) -> Self {
        Self {
            charges: Arc::default(),
            closed: Arc::default(),
            latency,
        }
    }

    /// Records `charge`: a write over the ledger's connection, which fails if the connection
    /// is closed before the write lands.
    pub async fn append(&self, charge: Charge) -> Result<(), LedgerClosed> {
        tokio::time::sleep(self.latency).await;
        if self.closed.load(Ordering::SeqCst) {
            return Err(LedgerClosed);
        }
        self.charges.lock().unwrap().push(charge);
        Ok(())
    }

    /// Closes the connection to the ledger: every write from now on fails.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Every charge recorded so far, in order.
    pub fn charges(&self) -> Vec<Charge> {
        self.charges.lock().unwrap().clone()
    }
}
