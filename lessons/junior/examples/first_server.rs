//! Your first hyper server: an accept loop that spawns one task per TCP connection, each
//! serving HTTP/1.1 or HTTP/2 with hyper-util's `auto` builder.
//!
//! Run it with `cargo run -p lessons-junior --example first_server`, then in another terminal:
//!
//! ```console
//! curl -v http://127.0.0.1:3000/hello
//! curl -v --http2-prior-knowledge http://127.0.0.1:3000/hello
//! ```

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

// ANCHOR: handler
/// The handler: one request in, one response out. hyper calls it once per request.
pub async fn hello(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = format!(
        "hello, you asked for {} over {:?}\n",
        request.uri().path(),
        request.version()
    );
    Ok(Response::new(Full::new(Bytes::from(text))))
}
// ANCHOR_END: handler

// ANCHOR: accept_loop
/// Accepts connections forever and hands each one to its own task.
pub async fn serve(listener: TcpListener) {
    loop {
        // Wait for the next TCP connection. Nothing here limits how many we take.
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Running out of file descriptors, for example, passes once other
                // connections close: log it, pause briefly, keep serving.
                tracing::warn!("accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };

        // One task per connection. The task owns the stream; the loop goes straight
        // back to `accept` without waiting for this connection to finish.
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            let service = service_fn(hello);
            // `auto` looks at the first bytes: the HTTP/2 preface selects HTTP/2,
            // anything else is parsed as HTTP/1.
            let result = auto::Builder::new(TokioExecutor::new())
                .serve_connection(io, service)
                .await;
            if let Err(err) = result {
                tracing::info!("connection from {peer} ended with an error: {err}");
            }
        });
    }
}
// ANCHOR_END: accept_loop

// ANCHOR: main
#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    tracing::info!("try: curl http://127.0.0.1:3000/hello");
    tracing::info!(" or: curl --http2-prior-knowledge http://127.0.0.1:3000/hello");
    serve(listener).await;
    Ok(())
}
// ANCHOR_END: main
