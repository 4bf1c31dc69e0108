//! hyper's HTTP/1 dispatcher, watched from the handler: one connection task reads a head,
//! calls the service, polls the handler until it returns, writes the response, and only then
//! reads the next head.
//!
//! Run it with `cargo run -p lessons-middle --example dispatcher_loop`. It starts a server on
//! a free port, plays two clients against it, logs what happens, and exits:
//!
//! - client 1 pipelines `GET /slow` and `GET /fast` in one write on one connection;
//! - client 2 sends `GET /fast` on a second connection while `/slow` is still running.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ANCHOR: task_local
tokio::task_local! {
    /// The number of the connection a task serves, set around `serve_connection`.
    ///
    /// A task-local is visible to every future polled *inside* the `scope` that set it, and to
    /// nothing else: a handler sees it only if hyper polls the handler inside the connection
    /// task's own future rather than spawning it.
    pub static CONNECTION: u64;
}

/// Serves one connection with hyper's HTTP/1 dispatcher, inside the connection's scope.
pub async fn serve_connection(stream: TcpStream, conn_no: u64) {
    let service = service_fn(handle);
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    if let Err(error) = CONNECTION.scope(conn_no, connection).await {
        tracing::warn!("[conn {conn_no}] ended with an error: {error}");
    }
}
// ANCHOR_END: task_local

// ANCHOR: handler
/// `/slow` takes its time; anything else answers at once.
async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // No argument says which connection this is: the task-local does, because this future is
    // polled by the connection task, inside its scope.
    let conn_no = CONNECTION.get();
    let path = request.uri().path().to_owned();
    tracing::info!("[conn {conn_no}] handler for {path}: started");
    if path == "/slow" {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tracing::info!("[conn {conn_no}] handler for {path}: returned");
    Ok(Response::new(Full::new(Bytes::from(format!("{path}\n")))))
}
// ANCHOR_END: handler

/// Sends `raw` on a new connection and returns what the server answers until it closes.
async fn client(addr: std::net::SocketAddr, raw: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(raw.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
}

/// The paths the responses in `answer` carry, in the order they arrived.
fn bodies(answer: &str) -> Vec<&str> {
    answer
        .split("HTTP/1.1 200 OK")
        .filter_map(|response| response.split("\r\n\r\n").nth(1))
        .map(str::trim)
        .collect()
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        for conn_no in 1.. {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve_connection(stream, conn_no));
        }
    });

    // ANCHOR: clients
    // Client 1: two requests in one write (pipelining); the second asks to close afterwards.
    let first = tokio::spawn(client(
        addr,
        "GET /slow HTTP/1.1\r\nhost: demo\r\n\r\n\
         GET /fast HTTP/1.1\r\nhost: demo\r\nconnection: close\r\n\r\n",
    ));
    // Client 2, on its own connection, while client 1's `/slow` is still running.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = client(
        addr,
        "GET /fast HTTP/1.1\r\nhost: demo\r\nconnection: close\r\n\r\n",
    )
    .await;
    tracing::info!("client 2 received: {:?}", bodies(&second));
    let first = first.await.expect("client 1");
    tracing::info!("client 1 received, in order: {:?}", bodies(&first));
    // ANCHOR_END: clients
}
