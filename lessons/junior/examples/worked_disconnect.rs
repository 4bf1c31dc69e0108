//! Worked example 2: observing a disconnect.
//!
//! `GET /report` builds a report in ten one-second steps. A guard created before the first
//! `.await` records how the request ended: finished, or abandoned after N steps because hyper
//! dropped the handler when the client went away.
//!
//! Run it: `cargo run -p lessons-junior --example worked_disconnect`, then
//! `curl http://127.0.0.1:3000/report` and press Ctrl-C in curl after a few seconds:
//! the server prints `client left after 3 of 10 steps` (or however far it got).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Steps a report takes, one `STEP` each.
pub const STEPS: u32 = 10;
/// How long one step takes.
pub const STEP: Duration = Duration::from_secs(1);

/// How a report request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Finished,
    ClientLeft { after_steps: u32 },
}

// ANCHOR: guard
/// Reports how the request ended when it is dropped, whichever way that happens.
pub struct Watch {
    steps_done: u32,
    finished: bool,
    events: mpsc::UnboundedSender<Ended>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let ended = if self.finished {
            Ended::Finished
        } else {
            Ended::ClientLeft {
                after_steps: self.steps_done,
            }
        };
        // The receiver lives as long as the server; if it is gone, nobody is listening.
        let _ = self.events.send(ended);
    }
}
// ANCHOR_END: guard

// ANCHOR: handler
pub async fn report(
    _request: Request<Incoming>,
    events: mpsc::UnboundedSender<Ended>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut watch = Watch {
        steps_done: 0,
        finished: false,
        events,
    };
    for step in 1..=STEPS {
        // Each `.await` is a point where hyper may drop this future. Nothing after it runs
        // then, but `watch` is dropped and tells us.
        tokio::time::sleep(STEP).await;
        watch.steps_done = step;
    }
    watch.finished = true;
    Ok(Response::new(Full::new(Bytes::from("report: 10 steps\n"))))
}
// ANCHOR_END: handler

/// Serves one connection; `events` receives one `Ended` per request.
pub async fn serve_connection<IO>(io: IO, events: mpsc::UnboundedSender<Ended>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| report(request, events.clone()));
    // The error of a connection whose client vanished mid-request is expected here.
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000");
    tracing::info!("try: curl http://127.0.0.1:3000/report, then Ctrl-C curl after a few seconds");
    let (events, mut ended) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(how) = ended.recv().await {
            match how {
                Ended::Finished => tracing::info!("report finished"),
                Ended::ClientLeft { after_steps } => {
                    tracing::info!("client left after {after_steps} of {STEPS} steps")
                }
            }
        }
    });
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve_connection(stream, events.clone()));
    }
}
