//! Logging middleware that marks the request as logged after the inner handler has run.
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};

pub async fn inner(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from("ok\n"))))
}

// ANCHOR: middleware
pub async fn logged(mut request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = inner(request).await;
    // The Go habit: note on the request that it was logged, after the handler ran.
    request
        .headers_mut()
        .insert("x-logged", "true".parse().unwrap());
    response
}
// ANCHOR_END: middleware
