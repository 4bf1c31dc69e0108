//! A handler that gives the request body to a background audit task, then reads it itself.
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

// ANCHOR: handler
pub async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let body = request.into_body();
    // Keep a copy of every upload for the audit log, in the background.
    tokio::spawn(async move {
        if let Ok(collected) = body.collect().await {
            audit(collected.to_bytes());
        }
    });
    let upload = body.collect().await?.to_bytes();
    let text = format!("stored {} bytes\n", upload.len());
    Ok(Response::new(Full::new(Bytes::from(text))))
}
// ANCHOR_END: handler

fn audit(_upload: Bytes) {}
