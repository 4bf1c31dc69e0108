//! `pulse`: live notifications for the operations dashboard, over WebSockets.
//!
//! `GET /live` with a WebSocket handshake switches the connection to the WebSocket protocol
//! (`101 Switching Protocols`). From then on, every notification the hub broadcasts (a deploy
//! started, an alert fired) is sent to every open session as a text message. The hub's
//! `sessions()` is the gauge the on-call dashboard shows.

mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown lets the sessions say goodbye before it ends the ones left.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Every open session, so that a notification can reach them all, and so that shutdown can
/// stop them: once hyper has handed a connection over to a session, hyper's graceful shutdown
/// no longer sees it.
#[derive(Debug, Default)]
pub struct Hub {
    sessions: Mutex<HashMap<u64, mpsc::UnboundedSender<String>>>,
    next_id: AtomicU64,
    /// Cancelled when the server shuts down; every session watches it.
    stopping: CancellationToken,
    /// Cancelled when shutdown has waited long enough: ends the sessions still running (a
    /// client that stopped reading holds its session in a write it cannot leave).
    ending: CancellationToken,
    /// Every session task, so that shutdown can wait until they have all ended.
    running: TaskTracker,
}

impl Hub {
    /// Sends `text` to every open session.
    pub fn broadcast(&self, text: &str) {
        for inbox in self.sessions.lock().unwrap().values() {
            // A session that is ending has dropped its inbox: nothing to deliver there.
            let _ = inbox.send(text.to_owned());
        }
    }

    /// How many sessions the hub holds.
    pub fn sessions(&self) -> usize {
        self.sessions.lock().unwrap().len()
    }

    /// Adds a session; it receives every broadcast from now on through the returned
    /// registration's inbox, and leaves the hub when the registration is dropped, however the
    /// session ends (a Close frame, an error, a vanished client, shutdown, a panic).
    fn register(&self) -> Registration<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (inbox, messages) = mpsc::unbounded_channel();
        self.sessions.lock().unwrap().insert(id, inbox);
        Registration {
            hub: self,
            id,
            inbox: messages,
        }
    }
}

/// A session's place in the hub, for as long as the session holds it.
struct Registration<'hub> {
    hub: &'hub Hub,
    id: u64,
    inbox: mpsc::UnboundedReceiver<String>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.hub.sessions.lock().unwrap().remove(&self.id);
    }
}

/// The server: its hub, and the connections it serves.
#[derive(Debug, Default)]
pub struct Server {
    hub: Arc<Hub>,
    connections: GracefulShutdown,
}

impl Server {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Serves one accepted connection on a task of its own.
    pub fn accept<IO>(&self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let hub = Arc::clone(&self.hub);
        let service = service_fn(move |request| session::upgrade(request, Arc::clone(&hub)));
        let watcher = self.connections.watcher();
        tokio::spawn(async move {
            let http = auto::Builder::new(TokioExecutor::new());
            let connection = http.serve_connection_with_upgrades(TokioIo::new(io), service);
            // A client that goes away mid-handshake is routine, not a server error.
            let _ = watcher.watch(connection).await;
        });
    }

    /// Stops the server for a deploy: every connection is asked to finish, every session is
    /// told the server is going away, and this returns once they all have ended (the ones
    /// still running after `CLOSE_GRACE` are ended without a goodbye).
    pub async fn shutdown(self) {
        // Sessions first: GracefulShutdown waits only for connections not yet upgraded.
        self.hub.stopping.cancel();
        self.connections.shutdown().await;
        // No connection is left to start a session: wait for the ones that run, for a while.
        self.hub.running.close();
        if tokio::time::timeout(CLOSE_GRACE, self.hub.running.wait())
            .await
            .is_err()
        {
            // A dashboard that stopped reading gets no goodbye: end its session, and wait for that.
            self.hub.ending.cancel();
            self.hub.running.wait().await;
        }
    }
}
