//! `statuspage`: the public health page of our fleet, served straight to the internet.
//!
//! `GET /status` answers `all systems operational`; every other path is a 404. The page is
//! tiny, but it faces anonymous clients, so a connection must not be able to sit on the server
//! forever without sending a request. Our policy: a client has 30 seconds to send a complete
//! request head, counted from the moment the connection is waiting for one; a connection that
//! has not managed it by then is closed.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};

/// How long a client may stay silent before we hang up on it.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

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
    // hyper's default header timeout does nothing here, so we enforce the 30 seconds on the
    // socket ourselves: a client that goes quiet for that long gets disconnected.
    let io = ReadTimeout {
        io,
        idle: Box::pin(tokio::time::sleep(READ_TIMEOUT)),
    };
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), service_fn(handle))
        .await
}

/// A byte stream whose reads fail once the peer has sent nothing for [`READ_TIMEOUT`].
struct ReadTimeout<IO> {
    io: IO,
    idle: Pin<Box<Sleep>>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for ReadTimeout<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                // The client is talking: it gets another 30 seconds.
                this.idle.as_mut().reset(Instant::now() + READ_TIMEOUT);
                Poll::Ready(result)
            }
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::ErrorKind::TimedOut.into())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for ReadTimeout<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match request.uri().path() {
        "/status" => (StatusCode::OK, "all systems operational\n"),
        _ => (StatusCode::NOT_FOUND, "not found\n"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    Ok(response)
}
