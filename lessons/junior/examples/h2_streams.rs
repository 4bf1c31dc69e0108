//! HTTP/2 in one page: many streams on one connection, each stream's handler in a task of
//! its own.
//!
//! Run it with `cargo run -p lessons-junior --example h2_streams`: it starts the server, then
//! sends `/slow`, `/fast` and `/panic` at once over one HTTP/2 connection of its own and
//! prints what comes back. `/fast` answers at once although `/slow` is still sleeping on the
//! same connection, and the panic in `/panic` costs that one stream, not its neighbours.
//! The server keeps running afterwards, for curl:
//!
//! ```console
//! curl --http2-prior-knowledge http://127.0.0.1:3000/fast
//! ```

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::Id;
use tokio::time::Instant;

/// The number of concurrent streams this server allows per connection.
pub const MAX_STREAMS: u32 = 64;

// ANCHOR: builder
/// The connection builder. `auto` serves HTTP/1 and HTTP/2; the HTTP/2 settings live
/// behind `.http2()`.
pub fn builder() -> auto::Builder<TokioExecutor> {
    // The executor is where hyper spawns each HTTP/2 stream: `TokioExecutor` calls
    // `tokio::spawn`, which is why handler futures must be `Send + 'static`.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's default is 200 concurrent streams per connection; lower it explicitly.
    builder.http2().max_concurrent_streams(MAX_STREAMS);
    builder
}
// ANCHOR_END: builder

pub async fn serve_connection<IO>(io: IO)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection_task = tokio::task::id();
    let service = service_fn(move |request| handle(request, connection_task));
    if let Err(err) = builder().serve_connection(TokioIo::new(io), service).await {
        tracing::info!("connection ended with an error: {err}");
    }
}

// ANCHOR: handler
async fn handle(
    request: Request<Incoming>,
    connection_task: Id,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    match path.as_str() {
        "/slow" => tokio::time::sleep(Duration::from_secs(2)).await,
        // A bug in one handler. Over HTTP/2 it kills this stream's task only.
        "/panic" => panic!("a bug in the handler for {path}"),
        _ => {}
    }
    let own_task = tokio::task::id() != connection_task;
    let text = format!("{path}: {:?}, own task: {own_task}\n", request.version());
    Ok(Response::new(Full::new(Bytes::from(text))))
}
// ANCHOR_END: handler

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Log lines without timestamps or module names, at INFO and above.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    let addr = listener.local_addr()?;
    tracing::info!("listening on http://{addr}");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _peer)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve_connection(stream));
        }
    });

    // A client of our own, because it is the easiest way to be sure that the three
    // requests share one HTTP/2 connection.
    println!("sending /slow, /fast and /panic at once, on one HTTP/2 connection:");
    let stream = TcpStream::connect(addr).await?;
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let start = Instant::now();
    let requests = ["/slow", "/fast", "/panic"].map(|path| {
        let mut sender = sender.clone();
        async move {
            let request =
                Request::get(format!("http://{addr}{path}")).body(Empty::<Bytes>::new())?;
            let outcome = match sender.send_request(request).await {
                Ok(response) => {
                    let body = response.into_body().collect().await?.to_bytes();
                    String::from_utf8_lossy(&body).trim_end().to_owned()
                }
                Err(err) => format!("{path}: failed: {err:?}"),
            };
            println!("after {:>4} ms  {outcome}", start.elapsed().as_millis());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }
    });
    for result in futures::future::join_all(requests).await {
        result?;
    }

    tracing::info!("still serving; try: curl --http2-prior-knowledge http://127.0.0.1:3000/fast");
    std::future::pending::<()>().await;
    Ok(())
}
