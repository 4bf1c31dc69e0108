//! Blocking the executor: a report endpoint that calls a synchronous renderer, served by a
//! runtime with one worker, and a health check asked while a report is being rendered.
//!
//! Run it with `cargo run -p lessons-senior --example blocking_report`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// A stand-in for a synchronous library call: a PDF renderer, a blocking database driver.
fn render_report() -> Bytes {
    std::thread::sleep(Duration::from_secs(1));
    Bytes::from_static(b"%PDF-1.7 ...")
}

// ANCHOR: handlers
/// Wrong: the renderer runs on the worker thread, which can poll nothing else meanwhile.
async fn report_inline() -> Bytes {
    render_report()
}

/// Right: the renderer runs on the blocking pool; this task waits at an `.await` like any
/// other, and the worker goes on polling the rest of the server.
async fn report_offloaded() -> Bytes {
    tokio::task::spawn_blocking(render_report)
        .await
        .expect("the renderer panicked")
}
// ANCHOR_END: handlers

async fn handle(
    offload: bool,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match request.uri().path() {
        "/report" if offload => report_offloaded().await,
        "/report" => report_inline().await,
        _ => Bytes::from_static(b"ok"),
    };
    Ok(Response::new(Full::new(body)))
}

/// Serves on a runtime of its own with a single worker, so that one blocked handler is
/// enough to show what happens when every worker is blocked.
fn start_server(offload: bool) -> (tokio::runtime::Runtime, SocketAddr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        let listener = TcpListener::from_std(listener).unwrap();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = service_fn(move |request| handle(offload, request));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (runtime, addr)
}

async fn get(addr: SocketAddr, path: &str) -> Duration {
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get(path).body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    response.into_body().collect().await.unwrap();
    started.elapsed()
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    for (name, offload) in [("inline", false), ("spawn_blocking", true)] {
        let (server, addr) = start_server(offload);
        let report = tokio::spawn(get(addr, "/report"));
        tokio::time::sleep(Duration::from_millis(100)).await; // the report is rendering now
        let health = get(addr, "/health").await;
        let report = report.await.unwrap();
        // Rounded to a tenth of a second: the shape matters, not the milliseconds.
        let tenths = |d: Duration| (d.as_millis() + 50) / 100;
        tracing::info!(
            "{name}: /health answered in {}.{} s, /report in {}.{} s",
            tenths(health) / 10,
            tenths(health) % 10,
            tenths(report) / 10,
            tenths(report) % 10,
        );
        server.shutdown_background();
    }
}
