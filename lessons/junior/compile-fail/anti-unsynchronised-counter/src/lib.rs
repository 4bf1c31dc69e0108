//! A visit counter shared by every connection, incremented the Go way: `counter++`.
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

// ANCHOR: handler
pub async fn visit(counter: Arc<u64>) -> Result<Response<Full<Bytes>>, Infallible> {
    *counter += 1;
    Ok(Response::new(Full::new(Bytes::from(format!(
        "visit #{counter}\n"
    )))))
}
// ANCHOR_END: handler
