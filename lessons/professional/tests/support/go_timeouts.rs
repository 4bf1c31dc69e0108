//! A scripted upstream on loopback for the client-timeout checks: it reads each request head
//! and then answers the way the check asks (never, head then stall, a trickling body or head).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the upstream answers every request.
#[derive(Debug, Clone, Copy)]
pub enum Script {
    /// Reads the request and never answers.
    Silent,
    /// Sends the head and the first 5 of 10 announced body bytes, then stalls for ever.
    HeadThenStall,
    /// Sends the head at once, then the 6-byte body one byte per `gap`.
    Trickle { gap: Duration },
    /// Sends the head of an `ok` answer in six pieces, one per `gap`, then its body.
    HeadInPieces { gap: Duration },
}

/// A running upstream on loopback.
pub struct Upstream {
    pub addr: SocketAddr,
}

impl Upstream {
    pub async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(answer(stream, script));
            }
        });
        Upstream { addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// Reads one request head (the checks send no bodies); false when the client closed.
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

async fn answer(mut stream: TcpStream, script: Script) {
    while read_head(&mut stream).await {
        match script {
            Script::Silent => std::future::pending::<()>().await,
            Script::HeadThenStall => {
                let head = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello";
                stream.write_all(head).await.unwrap();
                std::future::pending::<()>().await;
            }
            Script::Trickle { gap } => {
                let head = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n";
                stream.write_all(head).await.unwrap();
                for byte in b"abcdef" {
                    tokio::time::sleep(gap).await;
                    stream.write_all(&[*byte]).await.unwrap();
                }
            }
            Script::HeadInPieces { gap } => {
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
                for piece in answer.chunks(answer.len().div_ceil(6)) {
                    tokio::time::sleep(gap).await;
                    if stream.write_all(piece).await.is_err() {
                        return; // the client gave up
                    }
                }
            }
        }
    }
}
