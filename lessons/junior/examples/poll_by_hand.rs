//! A future is a value that does nothing until it is polled. This program has no runtime: it
//! plays the executor itself, polling one future by hand and printing what runs at each poll.
//!
//! Run it with `cargo run -p lessons-junior --example poll_by_hand`.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};

use tokio::sync::oneshot;

/// The steps the futures below have run, in order, shared with whoever polls them.
#[derive(Debug, Clone, Default)]
pub struct Steps(Arc<Mutex<Vec<&'static str>>>);

impl Steps {
    /// Records one step and prints it.
    fn note(&self, step: &'static str) {
        println!("    {step}");
        self.0.lock().unwrap().push(step);
    }

    /// Every step run so far.
    pub fn all(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().clone()
    }
}

// ANCHOR: chain
/// A handler that awaits a helper, which awaits a price that arrives later.
pub async fn handler(price: oneshot::Receiver<u32>, steps: Steps) -> u32 {
    steps.note("handler: started");
    let total = with_tax(price, &steps).await;
    steps.note("handler: after its .await");
    total
}

async fn with_tax(price: oneshot::Receiver<u32>, steps: &Steps) -> u32 {
    steps.note("with_tax: waiting for the price");
    let price = price.await.expect("the sender is kept until it sends");
    steps.note("with_tax: got the price");
    price * 120 / 100
}
// ANCHOR_END: chain

// ANCHOR: waker
/// A waker that only counts. A runtime's waker puts the task back in a run queue instead.
#[derive(Debug, Default)]
pub struct CountingWaker(AtomicUsize);

impl CountingWaker {
    pub fn wake_ups(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
// ANCHOR_END: waker

fn main() {
    let steps = Steps::default();
    let (send_price, price) = oneshot::channel();
    // ANCHOR: by_hand
    let future = handler(price, steps.clone()); // builds a value; runs nothing
    println!("built the future: {} steps have run", steps.all().len());

    let mut future = pin!(future); // a future must not move once polled
    let waker = Arc::new(CountingWaker::default());
    let as_waker = Waker::from(Arc::clone(&waker));
    let mut cx = Context::from_waker(&as_waker);

    println!("poll 1:");
    println!("    -> {:?}", future.as_mut().poll(&mut cx));
    println!("poll 2, before the price is sent:");
    println!("    -> {:?}", future.as_mut().poll(&mut cx));

    send_price.send(100).unwrap();
    println!(
        "price sent: the waker was called {} time(s)",
        waker.wake_ups()
    );

    println!("poll 3:");
    println!("    -> {:?}", future.as_mut().poll(&mut cx));
    // ANCHOR_END: by_hand
}
