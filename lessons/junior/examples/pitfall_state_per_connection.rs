//! A mistake that compiles: the "shared" counter is created inside the accept loop, so every
//! connection gets its own. Each client sees its own count start again at 1.
//!
//! Run it: `cargo run -p lessons-junior --example pitfall_state_per_connection`, then run
//! `curl http://127.0.0.1:3000/ http://127.0.0.1:3000/` twice: both print 1 then 2.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

// ANCHOR: wrong
pub async fn serve(listener: TcpListener) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        // Wrong place: this runs once per connection, so each connection counts alone.
        let visits = Arc::new(AtomicU64::new(0));
        tokio::spawn(async move {
            let service = service_fn(move |_request| {
                let n = visits.fetch_add(1, Ordering::Relaxed) + 1;
                async move {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                        "visit {n}\n"
                    )))))
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
// ANCHOR_END: wrong

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000");
    tracing::info!("try twice: curl http://127.0.0.1:3000/ http://127.0.0.1:3000/");
    serve(listener).await;
    Ok(())
}
