//! Drop is cancellation: watch a handler being dropped when its client goes away.
//!
//! Run it with `cargo run -p lessons-junior --example cancel`, then:
//!
//! ```console
//! curl http://127.0.0.1:3000/slow          # wait 10 s: "finished"
//! curl http://127.0.0.1:3000/slow          # press Ctrl-C after a second: "dropped"
//! ```
//!
//! The server logs what happened to each handler, and how each connection ended.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Where the server reports what happens: `main` logs it, the tests read it.
pub type Events = mpsc::UnboundedSender<String>;

// ANCHOR: guard
/// Reports, when dropped, whether the handler got to the end of its work.
struct Report {
    events: Events,
    path: String,
    finished: bool,
}

impl Drop for Report {
    fn drop(&mut self) {
        // Runs in both cases: when the handler returns, and when hyper drops the
        // handler's future half-way because the client went away.
        if !self.finished {
            let _ = self
                .events
                .send(format!("{}: dropped before finishing", self.path));
        }
    }
}
// ANCHOR_END: guard

// ANCHOR: handler
async fn slow(
    request: Request<Incoming>,
    events: Events,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let mut report = Report {
        events: events.clone(),
        path: path.clone(),
        finished: false,
    };
    let _ = events.send(format!("{path}: started"));

    // If the future is dropped while it waits here, execution never comes back:
    // nothing below this line runs, and `report` is dropped with
    // `finished == false`.
    tokio::time::sleep(Duration::from_secs(10)).await;

    let _ = events.send(format!("{path}: finished"));
    report.finished = true;
    Ok(Response::new(Full::new(Bytes::from("done\n"))))
}
// ANCHOR_END: handler

pub async fn serve_connection<IO>(io: IO, events: Events)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn({
        let events = events.clone();
        move |request| slow(request, events.clone())
    });
    let result = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
    let _ = match result {
        Ok(()) => events.send("connection closed cleanly".to_owned()),
        Err(err) => events.send(format!("connection closed: {err}")),
    };
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without a timestamp, so that they read like the book's transcripts.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    tracing::info!("try: curl http://127.0.0.1:3000/slow   (and press Ctrl-C before 10 s)");

    let (events, mut logged) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = logged.recv().await {
            tracing::info!("{event}");
        }
    });
    loop {
        // A demo: `first_server.rs` shows an accept loop that survives accept errors.
        let (stream, _peer) = listener.accept().await?;
        tokio::spawn(serve_connection(stream, events.clone()));
    }
}
