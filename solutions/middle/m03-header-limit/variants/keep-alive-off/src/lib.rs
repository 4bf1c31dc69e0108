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
        .max_buf_size(16 * 1024)
        // A client that sent a huge head must not get another go on this connection.
        .keep_alive(false)
        .serve_connection(TokioIo::new(io), service_fn(handle))
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
