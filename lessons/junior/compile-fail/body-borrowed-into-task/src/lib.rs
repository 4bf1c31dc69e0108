//! A handler that lends the request body to a background task so it can answer at once.
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

// ANCHOR: handler
pub async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let mut body = request.into_body();
    // Count the upload in the background and answer straight away.
    tokio::spawn(count_bytes(&mut body));
    Ok(Response::new(Full::new(Bytes::from("upload accepted\n"))))
}

async fn count_bytes(body: &mut Incoming) -> usize {
    let mut total = 0;
    while let Some(Ok(frame)) = body.frame().await {
        total += frame.data_ref().map_or(0, Bytes::len);
    }
    total
}
// ANCHOR_END: handler
