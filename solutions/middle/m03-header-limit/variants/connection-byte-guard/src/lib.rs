//! `profile-api`: answers the web app's `GET /profile` with what the browser's cookies say
//! about the signed-in user.
//!
//! Browsers send every cookie of the domain with every request, and the single sign-on
//! cookies are large, so request heads of 10 KiB and more are routine here. The edge contract
//! (agreed with the CDN in front of us) is that a request head of up to 16 KiB, request line
//! included, is served, and a larger one is refused with `431 Request Header Fields Too Large`.
//!
//! `serve_connection` is generic over the byte stream: a TCP socket in production, an
//! in-memory pipe in tests.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::COOKIE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// Accepts connections on `listener` forever, one task per connection.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        tokio::spawn(async move {
            // A browser that closes its tab mid-request is routine, not a server error.
            let _ = serve_connection(stream).await;
        });
    }
}

/// Serves HTTP/1 on one connection until the client leaves or the connection is closed.
pub async fn serve_connection<IO>(io: IO) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    http1::Builder::new()
        // Single sign-on cookies keep growing: never refuse a browser for its cookies.
        .max_buf_size(64 * 1024 * 1024)
        .serve_connection(TokioIo::new(EdgeGuard::new(io)), service_fn(handle))
        .await
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/profile" {
        return Ok(reply(StatusCode::NOT_FOUND, "not found\n".to_owned()));
    }
    let cookies: Vec<&str> = request
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .map(str::trim)
        .collect();
    let user = cookies
        .iter()
        .find_map(|cookie| cookie.strip_prefix("user="))
        .unwrap_or("anonymous");
    let text = format!("profile of {user} ({} cookies)\n", cookies.len());
    Ok(reply(StatusCode::OK, text))
}

fn reply(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}

/// The edge contract, enforced on the wire before hyper buffers anything: a connection may
/// hand us at most 16 KiB of head; past that it gets a 431 and is closed.
const EDGE_HEAD_LIMIT: usize = 16 * 1024;
const REFUSAL: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

struct EdgeGuard<IO> {
    io: IO,
    taken: usize,
    refusal: Option<usize>,
}

impl<IO> EdgeGuard<IO> {
    fn new(io: IO) -> Self {
        Self {
            io,
            taken: 0,
            refusal: None,
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for EdgeGuard<IO> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        loop {
            if let Some(sent) = this.refusal {
                if sent < REFUSAL.len() {
                    match std::pin::Pin::new(&mut this.io).poll_write(cx, &REFUSAL[sent..]) {
                        Poll::Ready(Ok(n)) => this.refusal = Some(sent + n),
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => return Poll::Pending,
                    }
                    continue;
                }
                return match std::pin::Pin::new(&mut this.io).poll_flush(cx) {
                    Poll::Ready(_) => Poll::Ready(Ok(())), // EOF: hyper closes
                    Poll::Pending => Poll::Pending,
                };
            }
            let room = (EDGE_HEAD_LIMIT + 1 - this.taken)
                .min(buf.remaining())
                .min(8192);
            let mut scratch = [0u8; 8192];
            let mut limited = tokio::io::ReadBuf::new(&mut scratch[..room]);
            match std::pin::Pin::new(&mut this.io).poll_read(cx, &mut limited) {
                Poll::Ready(Ok(())) => {
                    let n = limited.filled().len();
                    this.taken += n;
                    if this.taken > EDGE_HEAD_LIMIT {
                        this.refusal = Some(0);
                        continue;
                    }
                    buf.put_slice(limited.filled());
                    return Poll::Ready(Ok(()));
                }
                other => return other,
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for EdgeGuard<IO> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, data)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
