//! The core of the reviewed notification service: an HTTP front that enqueues without
//! waiting, a bounded job queue, and a worker that delivers jobs in order and drains the queue
//! when the front is gone.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use harness::leak::Gauge;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::DuplexStream;
use tokio::sync::{Semaphore, mpsc};

/// One notification to deliver.
#[derive(Debug)]
pub struct Job {
    pub id: u32,
}

// ANCHOR: enqueue
/// `POST /notify/{id}`: accept the job if the queue has room, refuse at once if not. The
/// handler never waits for the queue: waiting would hold a connection, a permit and the
/// caller's deadline on a queue that is not draining.
async fn enqueue(jobs: mpsc::Sender<Job>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let id = request.uri().path().trim_start_matches("/notify/").parse();
    let Ok(id) = id else {
        return reply(StatusCode::BAD_REQUEST, "");
    };
    match jobs.try_send(Job { id }) {
        Ok(()) => reply(StatusCode::ACCEPTED, "queued"),
        Err(mpsc::error::TrySendError::Full(_)) => {
            let mut busy = reply(StatusCode::SERVICE_UNAVAILABLE, "queue full");
            busy.headers_mut().insert("retry-after", 1.into());
            busy
        }
        // Only during shutdown, after the front stopped: a request that slipped in.
        Err(mpsc::error::TrySendError::Closed(_)) => reply(StatusCode::SERVICE_UNAVAILABLE, ""),
    }
}
// ANCHOR_END: enqueue

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Serves one HTTP/1 connection. Every connection holds a clone of the queue's `Sender`, so
/// the queue closes when the last connection has ended: the drain feeds the queue's close.
pub async fn serve(io: DuplexStream, jobs: mpsc::Sender<Job>) -> hyper::Result<()> {
    let service = service_fn(move |request| {
        let jobs = jobs.clone();
        async move { Ok::<_, Infallible>(enqueue(jobs, request).await) }
    });
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
}

/// The outbound side, reduced to what the review needs: a gate the check opens, and the
/// order in which jobs went out.
#[derive(Clone)]
pub struct Outbound {
    pub gate: Arc<Semaphore>,
    pub delivered: Arc<Mutex<Vec<u32>>>,
    /// Counts deliveries started, so a check knows the worker holds a job.
    pub started: Gauge,
}

impl Default for Outbound {
    fn default() -> Self {
        Self {
            gate: Arc::new(Semaphore::new(0)), // closed until the check opens it
            delivered: Arc::default(),
            started: Gauge::new(),
        }
    }
}

// ANCHOR: worker
/// The worker: one job at a time, in queue order. It ends when the queue is closed *and*
/// empty, so every job accepted before the front stopped is delivered.
pub async fn deliver(mut jobs: mpsc::Receiver<Job>, outbound: Outbound) {
    while let Some(job) = jobs.recv().await {
        let _delivering = outbound.started.guard();
        let _sent = outbound
            .gate
            .acquire()
            .await
            .expect("the gate is never closed");
        outbound.delivered.lock().unwrap().push(job.id);
    }
}
// ANCHOR_END: worker
