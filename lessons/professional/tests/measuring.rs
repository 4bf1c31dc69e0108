//! The measuring chapter's claims about where a request runs, on the template in-process over
//! real TCP: an HTTP/1 request runs inside its connection's task, an HTTP/2 stream gets a task
//! of its own. Clients are raw bytes on a socket, so that the only tasks that come and go are
//! the server's.

use std::sync::Arc;
use std::time::Duration;

use lessons_professional::{Config, Metrics, Server};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Generous: every wait below ends on an event long before this.
const DEADLINE: Duration = Duration::from_secs(10);
/// Requests that are still running when the test looks, and for long after.
const SLOW: &str = "/work?ms=9000";

async fn start() -> (std::net::SocketAddr, Arc<Metrics>, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(Config::default()).unwrap();
    let metrics = server.metrics();
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(listener, shutdown.clone()));
    (addr, metrics, shutdown)
}

/// Waits for a gauge to reach a value; panics with `what` after the deadline.
async fn until(what: &str, condition: impl Fn() -> bool) {
    tokio::time::timeout(DEADLINE, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("waited {DEADLINE:?} for: {what}"));
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test]
async fn an_http1_request_runs_inside_its_connections_task() {
    let (addr, metrics, _shutdown) = start().await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(TcpStream::connect(addr).await.unwrap());
    }
    until("4 connections open", || metrics.connections_open() == 4).await;
    let before = alive_tasks();

    for client in &mut clients {
        let request = format!("GET {SLOW} HTTP/1.1\r\nhost: x\r\n\r\n");
        client.write_all(request.as_bytes()).await.unwrap();
    }
    until("4 requests in flight", || metrics.requests_in_flight() == 4).await;
    assert_eq!(
        alive_tasks(),
        before,
        "four HTTP/1 requests in flight should add no task: each runs in its connection's"
    );
}

/// One HEADERS frame (END_STREAM | END_HEADERS) for `GET path` on `stream`, with HPACK's
/// static table for `:method GET` and `:scheme http` and literals for the rest.
fn h2_get(stream: u32, path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 0x01, b'x']); // :authority x
    let mut frame = (block.len() as u32).to_be_bytes()[1..].to_vec();
    frame.extend_from_slice(&[0x01, 0x05]);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(&block);
    frame
}

#[tokio::test]
async fn an_http2_stream_runs_on_a_task_of_its_own() {
    let (addr, metrics, _shutdown) = start().await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    // The preface and an empty SETTINGS frame: the connection is HTTP/2 from here.
    client
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    until("1 connection open", || metrics.connections_open() == 1).await;
    let before = alive_tasks();

    for stream in [1, 3, 5, 7] {
        client.write_all(&h2_get(stream, SLOW)).await.unwrap();
    }
    until("4 requests in flight", || metrics.requests_in_flight() == 4).await;
    assert_eq!(
        alive_tasks(),
        before + 4,
        "four HTTP/2 streams in flight on one connection should be four more tasks"
    );
}
