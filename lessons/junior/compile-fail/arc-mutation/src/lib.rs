//! A hit counter that shares a plain `HashMap` between requests through an `Arc`.
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};

// ANCHOR: handler
pub async fn handle<B>(
    request: Request<B>,
    hits: Arc<HashMap<String, u64>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Every request of every connection holds a clone of the same Arc.
    *hits.entry(request.uri().path().to_owned()).or_insert(0) += 1;
    Ok(Response::new(Full::new(Bytes::from("counted\n"))))
}
// ANCHOR_END: handler
