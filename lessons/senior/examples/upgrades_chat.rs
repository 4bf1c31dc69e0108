//! Upgrades and WebSockets: a WebSocket echo service on hyper's upgrade, with a session
//! registry that ends every session at shutdown, since `GracefulShutdown` no longer sees them.
//!
//! Run it with `cargo run -p lessons-senior --example upgrades_chat`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a session waits for the client's reply to our Close frame before it drops the
/// socket anyway: a client that never answers must not hold shutdown.
const CLOSE_REPLY_GRACE: Duration = Duration::from_secs(1);

// ANCHOR: registry
/// Every open WebSocket session, so that shutdown can reach them: hyper forgot them at the 101.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Registry>,
}

#[derive(Default)]
struct Registry {
    /// One child token per open session: cancel one to close that session alone.
    open: Mutex<HashMap<u64, CancellationToken>>,
    next_id: AtomicU64,
    /// The parent of every session's token: cancelling it closes them all.
    shutdown: CancellationToken,
    /// Lets shutdown wait until every session task has really ended.
    tasks: TaskTracker,
}

impl Sessions {
    /// Runs `session` on its own task, registered until that task ends, however it ends.
    pub fn start<F, Fut>(&self, session: F) -> u64
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let token = self.inner.shutdown.child_token();
        self.inner.open.lock().unwrap().insert(id, token.clone());
        // The guard is created here and moved into the task, so removal cannot be forgotten:
        // a return, an error, a panic or an abort all drop it.
        let registered = Registered {
            id,
            sessions: self.clone(),
        };
        let session = session(token);
        self.inner.tasks.spawn(async move {
            let _registered = registered;
            session.await;
        });
        id
    }

    /// How many sessions are open right now.
    pub fn count(&self) -> usize {
        self.inner.open.lock().unwrap().len()
    }

    /// Asks every session to close, and waits for them under `grace`. Returns `false` if some
    /// session was still running when the grace period ended.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        tokio::time::timeout(grace, self.inner.tasks.wait())
            .await
            .is_ok()
    }
}

/// Removes its session from the registry when dropped.
struct Registered {
    id: u64,
    sessions: Sessions,
}

impl Drop for Registered {
    fn drop(&mut self) {
        // `unwrap_or_else(into_inner)`: a panic elsewhere must not make removal panic too.
        let mut open = self
            .sessions
            .inner
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.remove(&self.id);
    }
}
// ANCHOR_END: registry

// ANCHOR: handshake
/// Answers a WebSocket handshake with 101 and starts the session on the upgraded I/O.
pub async fn websocket(
    mut request: Request<Incoming>,
    sessions: Sessions,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let wants_websocket = request
        .headers()
        .get(UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let Some(key) = request
        .headers()
        .get(SEC_WEBSOCKET_KEY)
        .filter(|_| wants_websocket)
    else {
        let mut refused = Response::new(Empty::new());
        *refused.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(refused);
    };
    let accept = derive_accept_key(key.as_bytes());
    // A future that resolves once hyper has written our 101 and handed the I/O over. It
    // cannot resolve before this handler returns, so the session must run on another task.
    let on_upgrade = hyper::upgrade::on(&mut request);
    sessions.start(move |cancel| echo(on_upgrade, cancel));

    let mut switching = Response::new(Empty::new());
    *switching.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = switching.headers_mut();
    headers.insert(UPGRADE, "websocket".parse().unwrap());
    headers.insert(CONNECTION, "upgrade".parse().unwrap());
    headers.insert(SEC_WEBSOCKET_ACCEPT, accept.parse().unwrap());
    Ok(switching)
}
// ANCHOR_END: handshake

// ANCHOR: session
/// One session: echoes text until the client closes, or until the registry cancels it.
async fn echo(on_upgrade: OnUpgrade, cancel: CancellationToken) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(error) => return tracing::warn!(%error, "the upgrade did not happen"),
    };
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let bye = CloseFrame { code: CloseCode::Away, reason: "server shutting down".into() };
                tracing::info!("session: closing, server shutting down");
                if ws.close(Some(bye)).await.is_ok() {
                    // Read until the client answers our Close (tungstenite then ends the
                    // stream), but not forever.
                    let reply = async { while let Some(Ok(_)) = ws.next().await {} };
                    let _ = tokio::time::timeout(CLOSE_REPLY_GRACE, reply).await;
                }
                return;
            }
            // `next()` is cancel-safe: a frame half read stays buffered inside `ws`.
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if ws.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                // Pings are answered by tungstenite itself; binary frames are ignored here.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
// ANCHOR_END: session

// ANCHOR: serve
/// Serves one accepted connection, watched by `graceful` until it ends or is upgraded.
pub fn serve(stream: TcpStream, sessions: Sessions, graceful: &GracefulShutdown) {
    let service = service_fn(move |request| websocket(request, sessions.clone()));
    let watcher = graceful.watcher();
    tokio::spawn(async move {
        let builder = auto::Builder::new(TokioExecutor::new());
        // `serve_connection` (without upgrades) would write the 101, then drop the
        // connection, and `on_upgrade` would resolve to an error.
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        if let Err(error) = watcher.watch(connection).await {
            tracing::debug!(%error, "connection ended with an error");
        }
    });
}
// ANCHOR_END: serve

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let sessions = Sessions::default();
    let graceful = GracefulShutdown::new();
    let stop_accepting = CancellationToken::new();

    let accept_loop = {
        let (sessions, stop) = (sessions.clone(), stop_accepting.clone());
        async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return graceful,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        serve(stream, sessions.clone(), &graceful);
                    }
                }
            }
        }
    };
    let accept_loop = tokio::spawn(accept_loop);

    let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{address}/chat")).await?;
    client.send(Message::text("hello")).await?;
    if let Some(Ok(echoed)) = client.next().await {
        tracing::info!(%echoed, "client: echoed");
    }

    // ANCHOR: shutdown
    stop_accepting.cancel();
    let graceful = accept_loop.await?;
    // Returns at once: the upgraded connection's future completed at the 101.
    graceful.shutdown().await;
    tracing::info!(open = sessions.count(), "graceful shutdown finished");
    // The registry ends what hyper no longer sees. The client keeps reading meanwhile, so it
    // receives the Close frame and answers it.
    let client_side = async {
        while let Some(Ok(message)) = client.next().await {
            if let Message::Close(Some(frame)) = message {
                tracing::info!(code = %frame.code, reason = %frame.reason, "client: closed by the server");
            }
        }
    };
    let (all_closed, ()) = tokio::join!(sessions.shutdown(Duration::from_secs(5)), client_side);
    tracing::info!(all_closed, open = sessions.count(), "sessions shut down");
    // ANCHOR_END: shutdown
    Ok(())
}
