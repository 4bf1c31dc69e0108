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

/// The edge contract: a request head of up to 16 KiB, request line included.
const MAX_HEAD: usize = 16 * 1024;

const REFUSAL: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// Serves HTTP/1 on one connection until the client leaves or the connection is closed.
///
/// The head is read here first, by hand, so that it is never buffered past the contract:
/// past 16 KiB with no blank line in sight, the client gets 431 and the connection closes.
pub async fn serve_connection<IO>(mut io: IO) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Look at what the client sent first: a head that has no end within 16 KiB is refused.
    let mut buf = vec![0u8; 64 * 1024];
    let n = match io.read(&mut buf).await {
        Ok(0) | Err(_) => return Ok(()),
        Ok(n) => n,
    };
    let head = buf[..n].to_vec();
    let ends_in_time = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .is_some_and(|end| end + 4 <= MAX_HEAD);
    if head.len() > MAX_HEAD && !ends_in_time {
        let _ = io.write_all(REFUSAL).await;
        let _ = io.shutdown().await;
        return Ok(());
    }
    let io = Rewind {
        prefix: bytes::Bytes::from(head),
        io,
    };
    http1::Builder::new()
        // Single sign-on cookies keep growing: never refuse a browser for its cookies.
        .max_buf_size(64 * 1024 * 1024)
        .serve_connection(TokioIo::new(io), service_fn(handle))
        .await
}

/// Gives back the bytes already read, then reads from `io`.
struct Rewind<IO> {
    prefix: bytes::Bytes,
    io: IO,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let chunk = self.prefix.split_to(n);
            buf.put_slice(&chunk);
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
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
