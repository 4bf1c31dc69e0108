//! `reportd`: the finance team's report server.
//!
//! `GET /reports/<name>` runs the report's query against the warehouse and answers its rows;
//! a quarter-end report takes minutes. A deploy stops the server with [`serve`]'s `stop`
//! future: it stops accepting, then waits in [`Drain::idle`] until every report already
//! running has been answered, so that no analyst loses ten minutes of work to a restart. The
//! wait has a deadline, `grace`, set a little under the orchestrator's grace period: past it
//! the server gives up on the stragglers rather than be killed mid-drain.
//!
//! The count of requests in flight lives in [`drain`], built from the types in [`sync`], so
//! that a loom model can check it in isolation (loom cannot model sockets or tokio).

pub mod drain;
pub mod sync;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

pub use drain::{Drain, InFlight};

/// Where connections come from: a TCP listener in production, anything else in tests.
pub trait Listener: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

impl Listener for TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept(&mut self) -> io::Result<Self::Io> {
        TcpListener::accept(self)
            .await
            .map(|(stream, _peer)| stream)
    }
}

/// The data warehouse: runs a report's query and returns its rows as text.
pub trait Warehouse: Send + Sync + 'static {
    fn run(&self, report: &str) -> Pin<Box<dyn Future<Output = String> + Send + '_>>;
}

/// Serves reports until `stop` resolves, then waits for the requests already in flight, for
/// at most `grace`.
pub async fn serve<L: Listener>(
    mut listener: L,
    warehouse: Arc<dyn Warehouse>,
    drain: Drain,
    stop: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()> {
    let mut stop = pin!(stop);
    loop {
        let io = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut stop => break,
        };
        let (warehouse, drain) = (Arc::clone(&warehouse), drain.clone());
        tokio::spawn(async move {
            let service =
                service_fn(move |request| handle(request, Arc::clone(&warehouse), drain.clone()));
            // An analyst closing the tab mid-report is routine, not a server error.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(io), service)
                .await;
        });
    }
    // No new connections from here on; the reports already running get their answer.
    drop(listener);
    // Look again every 100 ms in case a wakeup goes missing: the deadline still holds.
    let deadline = tokio::time::Instant::now() + grace;
    let mut drained = false;
    while !drained && tokio::time::Instant::now() < deadline {
        drained = tokio::time::timeout(Duration::from_millis(100), drain.idle())
            .await
            .is_ok();
    }
    if !drained {
        eprintln!(
            "reportd: drain deadline passed after {grace:?}, {} request(s) still in flight",
            drain.in_flight()
        );
    }
    Ok(())
}

async fn handle(
    request: Request<Incoming>,
    warehouse: Arc<dyn Warehouse>,
    drain: Drain,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _in_flight = drain.enter();
    let (status, body) = match request.uri().path().strip_prefix("/reports/") {
        Some(report) => (StatusCode::OK, warehouse.run(report).await),
        None => (StatusCode::NOT_FOUND, "no such page\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}
