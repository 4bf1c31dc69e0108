//! Runs the template in-process on 127.0.0.1 and talks to it over real TCP.

#![allow(dead_code)] // each test file uses a different part of this module

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::server::H1Connection;
use lessons_professional::{Config, Metrics, Server, ShutdownReport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous: every wait below ends on an event long before this.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A template serving on a kernel-chosen port.
pub struct Running {
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<ShutdownReport>,
}

/// A configuration for tests: the production defaults, with test routes on.
pub fn config() -> Config {
    Config {
        test_routes: true,
        ..Config::default()
    }
}

/// Starts the template with `config` (its `addr` is ignored: tests bind 127.0.0.1:0).
pub async fn start(config: Config) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(config).unwrap();
    let metrics = server.metrics();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(listener, shutdown.clone()));
    Running {
        addr,
        metrics,
        shutdown,
        task,
    }
}

impl Running {
    /// A fresh HTTP/1 keep-alive connection.
    pub async fn connect(&self) -> H1Connection {
        H1Connection::handshake(TcpStream::connect(self.addr).await.unwrap()).await
    }

    /// A raw TCP connection, for clients hyper's client would never be.
    pub async fn raw(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// Fires the shutdown token and returns the report.
    pub async fn stop(self) -> ShutdownReport {
        self.shutdown.cancel();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("shutdown hung")
            .unwrap()
    }
}

/// Reads until the server closes the connection; returns what it sent and when it closed,
/// measured from `since`.
pub async fn read_until_closed(stream: &mut TcpStream, since: Instant) -> (String, Duration) {
    let mut received = Vec::new();
    let read = tokio::time::timeout(DEADLINE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.expect("the server never closed the connection");
    (
        String::from_utf8_lossy(&received).into_owned(),
        since.elapsed(),
    )
}

/// Sends raw bytes.
pub async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
}

/// Waits until `condition` holds, polling a gauge; panics after [`DEADLINE`].
pub async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(DEADLINE, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("waited {DEADLINE:?} for: {what}"));
}
