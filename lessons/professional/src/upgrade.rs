//! The upgrade registry: WebSocket sessions live on after hyper hands the socket over at the
//! 101, where `GracefulShutdown` can no longer see them, so the template tracks them itself.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::GaugeGuard;

/// How long a closing session waits for the client's Close reply before dropping the socket.
const CLOSE_REPLY_GRACE: Duration = Duration::from_secs(1);

// ANCHOR: sessions
/// Every WebSocket session: a token that asks them all to close, and a tracker to wait for
/// them. Clones share both.
#[derive(Clone, Debug, Default)]
pub struct Sessions {
    closing: CancellationToken,
    tracker: TaskTracker,
}

impl Sessions {
    /// Runs one echo session on its own task, registered for shutdown.
    pub fn start(&self, on_upgrade: OnUpgrade, gauge: GaugeGuard) {
        let closing = self.closing.clone();
        self.tracker.spawn(async move {
            let _open = gauge;
            echo(on_upgrade, closing).await;
        });
    }

    /// Shutdown: asks every session to send Close, then waits for them. Returns how many
    /// there were.
    pub async fn close_all(&self) -> usize {
        let open = self.tracker.len();
        self.tracker.close();
        self.closing.cancel();
        self.tracker.wait().await;
        open
    }
}
// ANCHOR_END: sessions

/// Echoes text and binary messages until the client closes or the registry asks to close.
async fn echo(on_upgrade: OnUpgrade, closing: CancellationToken) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(error) => return tracing::warn!(%error, "the upgrade did not happen"),
    };
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
    loop {
        tokio::select! {
            _ = closing.cancelled() => {
                let bye = CloseFrame { code: CloseCode::Away, reason: "server shutting down".into() };
                if ws.close(Some(bye)).await.is_ok() {
                    let reply = async { while let Some(Ok(_)) = ws.next().await {} };
                    let _ = tokio::time::timeout(CLOSE_REPLY_GRACE, reply).await;
                }
                return;
            }
            // `next()` is cancel-safe: a half-read frame stays buffered in `ws`.
            message = ws.next() => match message {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    if ws.send(message).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {} // tungstenite answers pings and Close itself
                Some(Err(_)) | None => return,
            },
        }
    }
}
