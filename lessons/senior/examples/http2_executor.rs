//! An HTTP/2 server whose stream tasks go through an executor of our own: it numbers each
//! stream task, runs it inside a tracing span, and watches its `JoinHandle` so that a panicking
//! handler is logged instead of vanishing.
//!
//! `main` serves on loopback, sends `/slow`, `/fast` and `/panic` at once over one HTTP/2
//! connection, prints what comes back, and exits.
//!
//! Run: `cargo run -p lessons-senior --example http2_executor`

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{Instrument, info, info_span, warn};

tokio::task_local! {
    /// The number `StreamExecutor` gave the stream task this code runs in.
    static STREAM_TASK: u64;
}

/// The number of the stream task the caller runs in, or `None` outside one.
pub fn current_stream_task() -> Option<u64> {
    STREAM_TASK.try_with(|n| *n).ok()
}

// ANCHOR: executor
/// Spawns hyper's HTTP/2 stream tasks on tokio, as `TokioExecutor` does, and adds what
/// `TokioExecutor` leaves out: a number and a span per stream task, and a watcher that
/// reports a panic (`TokioExecutor` drops the `JoinHandle`, so nobody else would).
#[derive(Clone)]
pub struct StreamExecutor {
    spawned: Arc<AtomicU64>,
    panics: watch::Sender<u64>,
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, stream_task: F) {
        let n = self.spawned.fetch_add(1, Ordering::SeqCst) + 1;
        let span = info_span!("stream", task = n);
        let task = tokio::spawn(STREAM_TASK.scope(n, stream_task).instrument(span));
        let panics = self.panics.clone();
        tokio::spawn(async move {
            if let Err(error) = task.await
                && error.is_panic()
            {
                warn!(stream_task = n, "a stream task panicked");
                panics.send_modify(|count| *count += 1);
            }
        });
    }
}
// ANCHOR_END: executor

impl StreamExecutor {
    pub fn new() -> Self {
        StreamExecutor {
            spawned: Arc::new(AtomicU64::new(0)),
            panics: watch::Sender::new(0),
        }
    }

    /// How many stream tasks went through this executor.
    pub fn spawned(&self) -> u64 {
        self.spawned.load(Ordering::SeqCst)
    }

    /// Panicked stream tasks, counted as the watchers see them.
    pub fn panics(&self) -> watch::Receiver<u64> {
        self.panics.subscribe()
    }
}

impl Default for StreamExecutor {
    fn default() -> Self {
        Self::new()
    }
}

// ANCHOR: handler
/// `/slow` takes a moment, `/panic` has a bug, anything else answers at once.
pub async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    info!(%path, "handling");
    match path.as_str() {
        "/slow" => tokio::time::sleep(Duration::from_millis(100)).await,
        "/panic" => panic!("a bug in the handler for /panic"),
        _ => {}
    }
    let task = current_stream_task().map_or("none".into(), |n| n.to_string());
    Ok(Response::new(Full::new(Bytes::from(format!(
        "{path} ran in stream task {task}\n"
    )))))
}
// ANCHOR_END: handler

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let executor = StreamExecutor::new();

    // ANCHOR: serve
    let server_executor = executor.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let served = hyper::server::conn::http2::Builder::new(server_executor)
            .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(handle))
            .await;
        info!(?served, "connection task done");
    });
    // ANCHOR_END: serve

    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let requests = ["/slow", "/fast", "/panic"].map(|path| {
        let mut sender = sender.clone();
        async move {
            let request = Request::get(format!("http://{address}{path}"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let response = sender.send_request(request).await?;
            response.into_body().collect().await.map(|b| b.to_bytes())
        }
    });
    let [slow, fast, panicked] = futures::future::join_all(requests)
        .await
        .try_into()
        .unwrap();
    println!("/slow  -> {slow:?}");
    println!("/fast  -> {fast:?}");
    println!("/panic -> {panicked:?}");
    let mut panics = executor.panics();
    panics.wait_for(|count| *count == 1).await.unwrap();
    println!("stream tasks spawned: {}, panicked: 1", executor.spawned());
}
