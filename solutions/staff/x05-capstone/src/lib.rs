//! `stockroom`: the item catalogue of the warehouse team, served over HTTP/1.
//!
//! - `GET /healthz`: `ok`, for the load balancer.
//! - `POST /items`: stores the body (the item's description) and answers `201` with its id.
//! - `GET /items/{id}`: the item's description, or `404`.
//! - `GET /slow?ms=N`: stands in for a real query: works `N` milliseconds, then answers.
//!
//! README.md is the service's spec: [`Config`], [`Listener`], [`Store`] and [`serve`] are the
//! contract the checks hold it to. Everything behind them is yours to design.

mod routes;
mod server;
mod store;

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

pub use server::serve;
pub use store::{COMMIT_TIME, Store};

/// The limits and deadlines of the spec. `Config::default()` is what production runs with;
/// the checks use smaller values.
#[derive(Clone, Debug)]
pub struct Config {
    /// Clause 1: time a connection has to send a complete request head.
    pub header_timeout: Duration,
    /// Clause 2: the largest request body the service reads.
    pub max_body_bytes: usize,
    /// Clause 3: requests handled at once.
    pub max_in_flight: usize,
    /// Clause 4: time a request has to be answered.
    pub request_deadline: Duration,
    /// Clause 6: time requests in flight get to finish once shutdown begins.
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            header_timeout: Duration::from_secs(10),
            max_body_bytes: 64 * 1024,
            max_in_flight: 256,
            request_deadline: Duration::from_secs(10),
            // Under Kubernetes' default 30 s grace period, with room to flush and exit.
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// Where connections come from: a `TcpListener` in production, an in-memory listener in the
/// checks. Dropping the listener stops accepting: new clients are refused.
pub trait Listener: Send + 'static {
    /// One accepted connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Waits for the next connection.
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

impl Listener for TcpListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<TcpStream> {
        let (stream, _peer) = TcpListener::accept(self).await?;
        Ok(stream)
    }
}
