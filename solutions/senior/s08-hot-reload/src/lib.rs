//! `dlgate`: the download gateway of a software vendor.
//!
//! `GET /download/<file>` answers `302 Found` with a link to the file on the current mirror,
//! signed with that mirror's key; the mirror serves only links signed with its own key.
//! `GET /status` names the mirror in force. The operator moves traffic between mirrors (and
//! rotates keys) by reloading the configuration while the server runs.
//!
//! The configuration lives in [`config`], built from the types in [`sync`], so that a loom
//! model can check it in isolation (loom cannot model sockets or tokio).

pub mod config;
pub mod sync;

use std::convert::Infallible;
// The server's own sharing is plain `std`: only the configuration's insides switch to loom.
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub use config::{LiveConfig, MirrorConfig, sign};

/// Accepts connections on `listener` forever, one task per connection. Every request uses the
/// configuration in force in `live` when it arrives.
pub async fn serve(listener: TcpListener, live: Arc<LiveConfig>) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        let live = Arc::clone(&live);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&live)));
            // A client that goes away mid-request is routine, not a server error.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    live: Arc<LiveConfig>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    let response = if let Some(file) = path.strip_prefix("/download/") {
        Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, live.signed_link(file))
            .body(Full::new(Bytes::new()))
    } else if path == "/status" {
        Response::builder().body(Full::from(format!("mirror={}\n", live.mirror())))
    } else {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::from("no such page\n"))
    };
    Ok(response.expect("a valid response"))
}
