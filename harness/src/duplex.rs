//! Driving a server over an in-memory connection, for checks on the paused clock.
//!
//! Kernel sockets deliver bytes on the real clock; a paused tokio clock jumps ahead whenever
//! the runtime is idle. Mixing the two makes timeouts fire "early" at random. An in-memory
//! [`tokio::io::duplex`] pipe has no clock of its own, so with it every timeout, keep-alive and
//! disconnect happens at a virtual instant the check controls.

use std::future::Future;

use tokio::io::DuplexStream;
use tokio::task::JoinHandle;

use crate::BoxFuture;
use crate::server::H1Connection;

/// Buffer size of each direction of the in-memory pipe: big enough for any check's headers,
/// small enough that a reader that never reads exerts back-pressure quickly.
pub const PIPE_BYTES: usize = 64 * 1024;

/// The server side of an in-memory connection, running as its own task.
#[derive(Debug)]
pub struct ServerSide<T> {
    /// The task serving the connection: its output is whatever the serving function returns,
    /// typically `serve_connection`'s result.
    pub task: JoinHandle<T>,
}

impl<T> ServerSide<T> {
    /// Whether the serving task has finished, for example because the server closed the
    /// connection.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Spawns `serve` on one end of a new in-memory pipe and returns the other end as a raw byte
/// stream, for checks that write bytes by hand (half-sent headers, slow readers).
pub fn raw<F, Fut>(serve: F) -> (DuplexStream, ServerSide<Fut::Output>)
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let (client, server) = tokio::io::duplex(PIPE_BYTES);
    (client, spawn(Box::pin(serve(server))))
}

/// Spawns the serving future, boxed: the task machinery is compiled once per output type (and
/// for `hyper::Result<()>`, the usual one, once in this crate), not once per check.
fn spawn<T: Send + 'static>(serve: BoxFuture<'static, T>) -> ServerSide<T> {
    ServerSide {
        task: tokio::spawn(serve),
    }
}

/// Spawns `serve` on one end of a new in-memory pipe and performs a hyper HTTP/1 client
/// handshake on the other end.
pub async fn http1<F, Fut>(serve: F) -> (H1Connection, ServerSide<Fut::Output>)
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let (client, server) = raw(serve);
    (H1Connection::handshake(client).await, server)
}

/// Not for checks: it exists so that this crate compiles the spawning of a boxed
/// `hyper::Result<()>` future, the output of most serving functions, which every checks crate
/// then reuses instead of compiling tokio's task machinery for it again (debug builds share
/// generic code between crates). J10's checks crate: 1,110 functions without it, 899 with it.
#[doc(hidden)]
pub fn spawn_hyper_result(
    serve: BoxFuture<'static, hyper::Result<()>>,
) -> ServerSide<hyper::Result<()>> {
    spawn(serve)
}
