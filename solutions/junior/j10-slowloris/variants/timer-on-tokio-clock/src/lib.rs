//! `statuspage`: the public health page of our fleet, served straight to the internet.
//!
//! `GET /status` answers `all systems operational`; every other path is a 404. The page is
//! tiny, but it faces anonymous clients, so a connection must not be able to sit on the server
//! forever without sending a request. Our policy: a client has 30 seconds to send a complete
//! request head, counted from the moment the connection is waiting for one; a connection that
//! has not managed it by then is closed.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::rt::{Sleep, Timer};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Accepts connections on `listener` forever, one task per connection.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        tokio::spawn(async move {
            // A client that hangs up, or is cut off by a timeout, is routine, not a server error.
            let _ = serve_connection(stream).await;
        });
    }
}

/// Serves HTTP/1 on one connection until the client leaves or the connection is closed.
///
/// Generic over the byte stream so that the same code serves a TCP socket in production and
/// an in-memory pipe in the checks.
pub async fn serve_connection<IO>(io: IO) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // hyper has no clock of its own: its timeouts need a timer. Ours reads tokio's clock and
    // sleeps on tokio's timer, so every timeout hyper sets is one tokio fires.
    http1::Builder::new()
        .timer(TokioClock)
        .serve_connection(TokioIo::new(io), service_fn(handle))
        .await
}

/// hyper's `Timer` on tokio's clock: `now()` and every sleep go through `tokio::time`.
#[derive(Debug, Clone, Copy)]
struct TokioClock;

impl Timer for TokioClock {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(TokioSleep(Box::pin(tokio::time::sleep(duration))))
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        // Measured against our own `now()`, so the deadline and the clock always agree.
        self.sleep(deadline.saturating_duration_since(self.now()))
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

/// A tokio sleep, as hyper's `Sleep`.
struct TokioSleep(Pin<Box<tokio::time::Sleep>>);

impl Future for TokioSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl Sleep for TokioSleep {}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match request.uri().path() {
        "/status" => (StatusCode::OK, "all systems operational\n"),
        _ => (StatusCode::NOT_FOUND, "not found\n"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    Ok(response)
}
