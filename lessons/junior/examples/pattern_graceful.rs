//! Graceful shutdown with a deadline: stop accepting, ask every connection to finish its
//! in-flight request, wait at most `grace`, then close whatever is left.
//!
//! Run it: `cargo run -p lessons-junior --example pattern_graceful`, then
//! `curl http://127.0.0.1:3000/slow` and press Ctrl-C in the server's terminal (or send it
//! SIGTERM with `kill`) while curl waits.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Every connection finished its in-flight request within the grace period.
    Graceful,
    /// The grace period ran out: the remaining connections were closed.
    Forced,
}

/// `/slow` takes `slow` to answer; everything else answers at once.
pub async fn handle(
    request: Request<Incoming>,
    slow: Duration,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() == "/slow" {
        tokio::time::sleep(slow).await;
    }
    Ok(Response::new(Full::new(Bytes::from("done\n"))))
}

// ANCHOR: shut_down
/// Asks every watched connection to finish, waits at most `grace`, then closes the rest.
pub async fn shut_down(
    graceful: GracefulShutdown,
    connections: &mut JoinSet<()>,
    grace: Duration,
) -> Shutdown {
    // In-flight requests finish, idle keep-alive connections close. `shutdown()` has no
    // deadline of its own: one stuck handler would hold it forever.
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => Shutdown::Graceful,
        Err(_elapsed) => {
            // Out of patience: aborting the tasks drops the connection futures, and dropping
            // a connection future closes its connection.
            connections.shutdown().await;
            Shutdown::Forced
        }
    }
}
// ANCHOR_END: shut_down

// ANCHOR: serve
/// Serves until `signal` completes, then shuts down within `grace`.
pub async fn serve(
    listener: TcpListener,
    signal: impl Future<Output = ()>,
    grace: Duration,
    slow: Duration,
) -> Shutdown {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    // The connection tasks, owned here so that they can be aborted after the deadline.
    let mut connections = JoinSet::new();
    let mut signal = std::pin::pin!(signal);

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let service = service_fn(move |request| handle(request, slow));
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                // `watch` lets `graceful.shutdown()` tell this connection to finish up.
                let connection = graceful.watch(connection);
                connections.spawn(async move {
                    let _ = connection.await;
                });
                // Forget the connections that already ended.
                while connections.try_join_next().is_some() {}
            }
            () = &mut signal => break,
        }
    }
    // Stop accepting: from here on new clients are refused.
    drop(listener);
    shut_down(graceful, &mut connections, grace).await
}
// ANCHOR_END: serve

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000");
    tracing::info!("try: curl http://127.0.0.1:3000/slow, then Ctrl-C here within 3 s");
    // Ctrl-C in this terminal, or SIGTERM from `kill`, systemd, Docker or Kubernetes.
    let signal = async {
        lessons_junior::shutdown_signal().await;
        tracing::info!("shutting down, 10 s grace");
    };
    let outcome = serve(
        listener,
        signal,
        Duration::from_secs(10),
        Duration::from_secs(3),
    )
    .await;
    tracing::info!("shutdown: {outcome:?}");
    Ok(())
}
