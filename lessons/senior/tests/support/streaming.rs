//! A live feed of events streamed to each client through a channel, three ways: a bounded
//! channel the producer waits on, an unbounded one, and a bounded one the producer sheds into.
//! Shared by the streaming chapter's example and its tests.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http_body_util::StreamBody;
use hyper::body::Frame;
use tokio::sync::mpsc;

/// The body every feed returns: one frame per event, written as it comes.
pub type Feed = StreamBody<BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

/// One server-sent event of about 1 KiB, numbered.
pub fn event(n: usize) -> Bytes {
    Bytes::from(format!("id: {n}\ndata: {:>1000}\n\n", n))
}

/// What the producer did, shared with whoever watches it.
#[derive(Clone, Default)]
pub struct Progress {
    sent: Arc<AtomicUsize>,
    shed: Arc<AtomicUsize>,
}

impl Progress {
    /// Events handed to the channel.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    /// Events dropped because the channel was full.
    pub fn shed(&self) -> usize {
        self.shed.load(Ordering::SeqCst)
    }
}

// ANCHOR: bounded
/// Streams `total` events through a channel of `capacity`. `send` waits while the channel is
/// full: when the client stops reading, the producer stops too. Its error means the body,
/// and with it the client, is gone.
pub fn bounded(capacity: usize, total: usize, progress: Progress) -> Feed {
    let (tx, rx) = mpsc::channel::<Bytes>(capacity);
    tokio::spawn(async move {
        for n in 0..total {
            if tx.send(event(n)).await.is_err() {
                return; // the client left: stop producing
            }
            progress.sent.fetch_add(1, Ordering::SeqCst);
        }
    });
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        Some((Ok(Frame::data(event)), rx))
    });
    StreamBody::new(frames.boxed())
}
// ANCHOR_END: bounded

// ANCHOR: unbounded
/// BUG: an unbounded channel never makes the producer wait. When the client stops reading,
/// every event the producer makes piles up in the channel, in the server's memory.
pub fn unbounded(total: usize, progress: Progress) -> Feed {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        for n in 0..total {
            if tx.send(event(n)).is_err() {
                return;
            }
            progress.sent.fetch_add(1, Ordering::SeqCst);
        }
    });
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        Some((Ok(Frame::data(event)), rx))
    });
    StreamBody::new(frames.boxed())
}
// ANCHOR_END: unbounded

// ANCHOR: shed
/// A producer that must not wait (it serves many clients, or its source will not pause):
/// `try_send` drops the event a slow client has no room for and counts it, instead of
/// waiting or queueing it. `Closed` is still the client leaving.
pub fn shedding(capacity: usize, total: usize, progress: Progress) -> Feed {
    let (tx, rx) = mpsc::channel::<Bytes>(capacity);
    tokio::spawn(async move {
        for n in 0..total {
            match tx.try_send(event(n)) {
                Ok(()) => progress.sent.fetch_add(1, Ordering::SeqCst),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    progress.shed.fetch_add(1, Ordering::SeqCst)
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            };
            // A live source produces over time; let the connection task run in between.
            tokio::task::yield_now().await;
        }
    });
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        Some((Ok(Frame::data(event)), rx))
    });
    StreamBody::new(frames.boxed())
}
// ANCHOR_END: shed

// ANCHOR: quiet
/// BUG: an SSE feed that forwards a quiet upstream and nothing else. While no event comes,
/// no `send` runs, and nothing tells the producer that its client left: it holds its
/// upstream subscription (and `held`) until the next event, however late.
pub fn quiet(mut upstream: mpsc::Receiver<Bytes>, held: impl Send + 'static) -> Feed {
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    tokio::spawn(async move {
        let _held = held;
        while let Some(event) = upstream.recv().await {
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    body(rx)
}
// ANCHOR_END: quiet

// ANCHOR: keep_alive
/// The same feed with a keep-alive: between events it sends an SSE comment (a line starting
/// with `:`, which `EventSource` ignores) every `every`. Proxies see traffic, and a `send`
/// runs often enough to learn, within one interval, that the client left.
pub fn keep_alive(
    mut upstream: mpsc::Receiver<Bytes>,
    every: Duration,
    held: impl Send + 'static,
) -> Feed {
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    tokio::spawn(async move {
        let _held = held;
        let mut ticks = tokio::time::interval(every);
        ticks.tick().await; // the first tick completes at once
        loop {
            let frame = tokio::select! {
                event = upstream.recv() => match event {
                    Some(event) => event,
                    None => return, // the upstream ended the feed
                },
                _ = ticks.tick() => Bytes::from_static(b": keep-alive\n\n"),
            };
            if tx.send(frame).await.is_err() {
                return; // the client left
            }
        }
    });
    body(rx)
}
// ANCHOR_END: keep_alive

// ANCHOR: closed
/// Waits for the client's departure itself: `Sender::closed` completes when the receiver,
/// owned by the body, is dropped, with nothing sent.
pub fn watching(mut upstream: mpsc::Receiver<Bytes>, held: impl Send + 'static) -> Feed {
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    tokio::spawn(async move {
        let _held = held;
        loop {
            let event = tokio::select! {
                event = upstream.recv() => match event {
                    Some(event) => event,
                    None => return,
                },
                () = tx.closed() => return, // the body was dropped: the client left
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    body(rx)
}
// ANCHOR_END: closed

/// A body that yields whatever the producer sends, and ends when the producer is done.
fn body(rx: mpsc::Receiver<Bytes>) -> Feed {
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        Some((Ok(Frame::data(event)), rx))
    });
    StreamBody::new(frames.boxed())
}
