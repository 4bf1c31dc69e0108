//! An audit board: recent events in memory, appended by every request, exported whole by
//! `GET /export` as a streamed body. Shared by the locks chapter's example and its tests.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::StreamBody;
use hyper::Response;
use hyper::body::Frame;
use tokio::sync::{Mutex, mpsc};

/// What an export streams: one frame per event.
pub type Export = StreamBody<futures::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

/// Recent events, shared by every connection. tokio's mutex, because one of the two exports
/// below awaits while it holds the lock (and would not compile with the standard library's).
#[derive(Clone, Default)]
pub struct Board {
    events: Arc<Mutex<Vec<String>>>,
}

impl Board {
    /// Every request records one event: the critical section every writer needs.
    pub async fn record(&self, event: String) {
        self.events.lock().await.push(event);
    }

    /// Events recorded so far.
    pub async fn len(&self) -> usize {
        self.events.lock().await.len()
    }

    // ANCHOR: held
    /// BUG: streams the board with the lock held. Each `send` waits until the client has room,
    /// and every `record` waits for the whole export: one client that stops reading stalls
    /// every request of the server.
    pub fn export_locked(&self) -> Response<Export> {
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let events = Arc::clone(&self.events);
        tokio::spawn(async move {
            let events = events.lock().await;
            for event in events.iter() {
                if tx.send(Bytes::from(format!("{event}\n"))).await.is_err() {
                    return; // the client left
                }
            }
        }); // the guard is released only here, after the last frame went out
        Response::new(body(rx))
    }
    // ANCHOR_END: held

    // ANCHOR: snapshot
    /// Copies the board under the lock, in a block that ends before the first `.await` on the
    /// client, then streams the copy: a slow client now stalls only itself.
    pub async fn export_snapshot(&self) -> Response<Export> {
        let snapshot: Vec<String> = {
            let events = self.events.lock().await;
            events.clone()
        }; // guard dropped: writers may go on
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        tokio::spawn(async move {
            for event in snapshot {
                if tx.send(Bytes::from(event + "\n")).await.is_err() {
                    return;
                }
            }
        });
        Response::new(body(rx))
    }
    // ANCHOR_END: snapshot
}

/// A body that yields whatever the producer sends, and ends when the producer is done.
fn body(rx: mpsc::Receiver<Bytes>) -> Export {
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok(Frame::data(chunk)), rx))
    });
    StreamBody::new(frames.boxed())
}
