//! Upstreams that misbehave on purpose, written on raw TCP so that each misbehaviour is exact:
//! one that never answers, one that trickles its body, one whose idle close crosses our request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Binds 127.0.0.1:0 and returns the listener with its base URL.
pub async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// Reads one request head (these checks send no bodies). `false` if the peer closed first.
async fn read_head(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    true
}

/// Accepts connections and reads their requests, and never answers. Each request read is
/// announced on the returned channel.
pub async fn silent() -> (String, mpsc::UnboundedReceiver<()>) {
    let (listener, url) = bind().await;
    let (read_tx, read_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            if read_head(&mut stream).await {
                let _ = read_tx.send(());
            }
            held.push(stream); // open, and silent, for as long as the server lives
        }
    });
    (url, read_rx)
}

/// Answers with a body of `bytes` bytes, one byte every `every`.
pub async fn trickle(bytes: usize, every: Duration) -> String {
    let (listener, url) = bind().await;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_head(&mut stream).await;
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {bytes}\r\n\r\n");
                stream.write_all(head.as_bytes()).await?;
                for _ in 0..bytes {
                    tokio::time::sleep(every).await;
                    stream.write_all(b"x").await?;
                }
                std::io::Result::Ok(())
            });
        }
    });
    url
}

/// What a [`closes_when_idle`] upstream saw.
#[derive(Clone, Default)]
pub struct Seen {
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
}

impl Seen {
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

/// How a keep-alive upstream closes a connection idle for longer than its keep-alive.
#[derive(Clone, Copy)]
pub enum IdleClose {
    /// At the end of the keep-alive, while the connection is idle: the usual case.
    OnTime,
    /// Only when the next request arrives, leaving it unanswered: the close and the request
    /// cross on the wire, made certain (in production that happens only sometimes).
    CrossingTheRequest,
}

/// An upstream with a keep-alive of `keep_alive`, closing idle connections as `close` says.
pub async fn closes_when_idle(keep_alive: Duration, close: IdleClose) -> (String, Seen) {
    let (listener, url) = bind().await;
    let seen = Seen::default();
    let counts = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counts.connections.fetch_add(1, Ordering::Relaxed);
            let counts = counts.clone();
            tokio::spawn(async move {
                let mut idle_since = Instant::now();
                loop {
                    let read = match close {
                        IdleClose::OnTime => {
                            let head = tokio::time::timeout(keep_alive, read_head(&mut stream));
                            head.await.unwrap_or(false) // past the keep-alive: close now
                        }
                        IdleClose::CrossingTheRequest => read_head(&mut stream).await,
                    };
                    if !read {
                        return;
                    }
                    counts.requests.fetch_add(1, Ordering::Relaxed);
                    if idle_since.elapsed() > keep_alive {
                        return; // dropped: closed, with the request unanswered
                    }
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
                    if stream.write_all(ok).await.is_err() {
                        return;
                    }
                    idle_since = Instant::now();
                }
            });
        }
    });
    (url, seen)
}
