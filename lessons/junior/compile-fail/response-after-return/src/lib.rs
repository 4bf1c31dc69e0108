//! A handler that tries to add a header after it has handed the response to hyper.
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

// ANCHOR: handler
pub async fn handle() -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from("report queued\n")));
    tokio::spawn(async move {
        // "Finish" the response in the background once the report is ready.
        response
            .headers_mut()
            .insert("x-report-id", "42".parse().unwrap());
    });
    Ok(response)
}
// ANCHOR_END: handler
