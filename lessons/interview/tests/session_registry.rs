//! A registry of long-lived sessions (WebSockets, after an upgrade), and the paths by which a
//! session ends.
//!
//! Backs R27 of the bank: removing a session from the registry on the line after its loop
//! misses every path that leaves the loop another way (`?` on a write to a client that
//! vanished, a panic); a guard moved into the session task removes it on all of them, and a
//! parent token plus a `TaskTracker` lets shutdown end the sessions and wait for them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

type Registry = Arc<Mutex<HashSet<u64>>>;

/// An echo session: a line in, the line out, until the client closes or shutdown comes.
async fn echo(
    io: &mut (impl AsyncRead + AsyncWrite + Unpin),
    cancel: &CancellationToken,
) -> std::io::Result<()> {
    let mut buf = [0u8; 256];
    loop {
        let n = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            n = io.read(&mut buf) => n?,
        };
        if n == 0 {
            return Ok(());
        }
        io.write_all(&buf[..n]).await?;
    }
}

/// The bug: removal is the last line, reached only when `echo` returns `Ok`.
async fn session_removing_at_the_end(
    id: u64,
    registry: Registry,
    mut io: DuplexStream,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    registry.lock().unwrap().insert(id);
    echo(&mut io, &cancel).await?;
    registry.lock().unwrap().remove(&id);
    Ok(())
}

/// Removes its id when dropped: on return, `?`, panic or abort.
struct Registered {
    id: u64,
    registry: Registry,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        registry.remove(&self.id);
    }
}

async fn session_with_a_guard(
    id: u64,
    registry: Registry,
    mut io: DuplexStream,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    registry.lock().unwrap().insert(id);
    let _registered = Registered { id, registry };
    echo(&mut io, &cancel).await
}

/// A client sends a line and vanishes before reading the echo: the session's write fails.
async fn client_that_vanishes(mut client: DuplexStream) {
    client.write_all(b"hello\n").await.unwrap();
    drop(client);
}

#[tokio::test]
async fn removal_after_the_loop_is_skipped_when_a_write_fails() {
    let registry = Registry::default();
    let (client, server) = tokio::io::duplex(1024);
    let session = tokio::spawn(session_removing_at_the_end(
        1,
        registry.clone(),
        server,
        CancellationToken::new(),
    ));
    client_that_vanishes(client).await;
    let ended = session.await.unwrap();
    assert_eq!(ended.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
    assert!(
        registry.lock().unwrap().contains(&1),
        "a dead session stays registered"
    );
}

#[tokio::test]
async fn a_guard_removes_the_session_when_a_write_fails() {
    let registry = Registry::default();
    let (client, server) = tokio::io::duplex(1024);
    let session = tokio::spawn(session_with_a_guard(
        1,
        registry.clone(),
        server,
        CancellationToken::new(),
    ));
    client_that_vanishes(client).await;
    assert!(session.await.unwrap().is_err());
    assert!(registry.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_guard_removes_the_session_when_it_panics() {
    let registry = Registry::default();
    let session = tokio::spawn({
        let registry = registry.clone();
        async move {
            registry.lock().unwrap().insert(7);
            let _registered = Registered { id: 7, registry };
            panic!("a bug while handling a message");
        }
    });
    assert!(session.await.unwrap_err().is_panic());
    assert!(registry.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_parent_token_and_a_tracker_end_every_session_and_wait_for_them() {
    let registry = Registry::default();
    let shutdown = CancellationToken::new();
    let sessions = TaskTracker::new();
    let mut clients = Vec::new();
    for id in 0..3 {
        let (client, server) = tokio::io::duplex(1024);
        clients.push(client);
        let token = shutdown.child_token();
        sessions.spawn(session_with_a_guard(id, registry.clone(), server, token));
    }
    // Every session is live: each one echoes.
    for client in &mut clients {
        client.write_all(b"ping").await.unwrap();
        let mut echoed = [0u8; 4];
        client.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"ping");
    }
    assert_eq!(registry.lock().unwrap().len(), 3);

    shutdown.cancel();
    sessions.close();
    tokio::time::timeout(Duration::from_secs(10), sessions.wait())
        .await
        .expect("every session ended after the cancel");
    assert!(registry.lock().unwrap().is_empty());
}
