//! `newsroom`: the article pages of a news site, with a view count per article.
//!
//! `GET /articles/<slug>` serves an article and counts the view; `GET /stats/<slug>` answers
//! `views=N` for the editors' dashboard, which decides what goes on the front page.
//!
//! The counts live in [`views`], built from the types in [`sync`], so that a loom model can
//! check them in isolation (loom cannot model sockets or tokio).

pub mod sync;
pub mod views;

use std::convert::Infallible;
// The server's own sharing is plain `std`: only the counter's insides switch to loom.
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub use views::ViewCounter;

/// Accepts connections on `listener` forever, one task per connection. Every reader's views
/// are counted in the same `counter`.
pub async fn serve(listener: TcpListener, counter: Arc<ViewCounter>) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        let counter = Arc::clone(&counter);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&counter)));
            // A reader closing the tab mid-request is routine, not a server error.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    counter: Arc<ViewCounter>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    let (status, body) = if let Some(slug) = path.strip_prefix("/articles/") {
        counter.record(slug);
        (StatusCode::OK, format!("the article {slug}\n"))
    } else if let Some(slug) = path.strip_prefix("/stats/") {
        (StatusCode::OK, format!("views={}\n", counter.views(slug)))
    } else {
        (StatusCode::NOT_FOUND, "no such page\n".to_owned())
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}
