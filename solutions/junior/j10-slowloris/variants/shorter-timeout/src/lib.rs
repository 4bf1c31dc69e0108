//! `statuspage`: the public health page of our fleet, served straight to the internet.
//!
//! `GET /status` answers `all systems operational`; every other path is a 404. The page is
//! tiny, but it faces anonymous clients, so a connection must not be able to sit on the server
//! forever without sending a request. Our policy: a client has 30 seconds to send a complete
//! request head, counted from the moment the connection is waiting for one; a connection that
//! has not managed it by then is closed.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

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
    // hyper needs a timer to enforce any timeout. While we are at it, 30 seconds is generous
    // for a page this small: an honest client sends its request head in well under 10.
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(io), service_fn(handle))
        .await
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
