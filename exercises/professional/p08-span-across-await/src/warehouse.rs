//! The warehouse's reservation API, as the shop sees it: a reservation goes out, and an
//! answer comes back whenever the warehouse gets to it.

use tokio::sync::{mpsc, oneshot};

/// One reservation on its way to the warehouse.
#[derive(Debug)]
pub struct Reservation {
    /// What to reserve.
    pub sku: String,
    /// Where the warehouse answers: `true` if the item is now reserved for this order.
    pub reply: oneshot::Sender<bool>,
}

/// The shop's end of the warehouse's reservation queue.
#[derive(Debug, Clone)]
pub struct Warehouse {
    queue: mpsc::Sender<Reservation>,
}

impl Warehouse {
    /// A client, and the queue the warehouse serves reservations from.
    pub fn new() -> (Self, mpsc::Receiver<Reservation>) {
        let (queue, requests) = mpsc::channel(64);
        (Self { queue }, requests)
    }

    /// Reserves one `sku`. An item the warehouse could not be asked about counts as not reserved.
    pub async fn reserve(&self, sku: &str) -> bool {
        let (reply, answer) = oneshot::channel();
        let reservation = Reservation {
            sku: sku.to_owned(),
            reply,
        };
        if self.queue.send(reservation).await.is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}
