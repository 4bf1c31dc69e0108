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

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// Every open session, so that a notification can reach them all.
#[derive(Debug, Default)]
pub struct Hub {
    sessions: Mutex<HashMap<u64, mpsc::UnboundedSender<String>>>,
    next_id: AtomicU64,
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

    /// Adds a session; it receives every broadcast from now on through the returned inbox.
    fn register(&self) -> (u64, mpsc::UnboundedReceiver<String>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (inbox, messages) = mpsc::unbounded_channel();
        self.sessions.lock().unwrap().insert(id, inbox);
        (id, messages)
    }

    fn unregister(&self, id: u64) {
        self.sessions.lock().unwrap().remove(&id);
    }
}

/// The server: its hub, and the connections it serves.
#[derive(Debug, Default)]
pub struct Server {
    hub: Arc<Hub>,
    connections: GracefulShutdown,
    stop: tokio_util::sync::CancellationToken,
    sessions: tokio_util::task::TaskTracker,
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
        let stop = self.stop.clone();
        let tracker = self.sessions.clone();
        let service = service_fn(move |request| {
            session::upgrade(request, Arc::clone(&hub), stop.clone(), tracker.clone())
        });
        let watcher = self.connections.watcher();
        tokio::spawn(async move {
            let http = auto::Builder::new(TokioExecutor::new());
            let connection = http.serve_connection_with_upgrades(TokioIo::new(io), service);
            // A client that goes away mid-handshake is routine, not a server error.
            let _ = watcher.watch(connection).await;
        });
    }

    /// Stops the server for a deploy: every connection is asked to finish, and this returns
    /// once they all have.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.connections.shutdown().await;
        self.sessions.close();
        self.sessions.wait().await;
    }
}
