//! A fully received HTTP response, easy to assert on.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{HeaderMap, Response, StatusCode};

/// A response whose body has been read to the end.
///
/// Checks compare status, headers and body; keeping them in one plain value means a failed
/// assertion prints everything the learner needs to see.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The status line's code.
    pub status: StatusCode,
    /// All response headers, as received.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl TestResponse {
    /// Reads `response`'s body to the end and keeps the parts.
    pub async fn collect<B>(response: Response<B>) -> Result<Self, B::Error>
    where
        B: hyper::body::Body,
    {
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Self {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// The body as text; invalid UTF-8 is replaced rather than failing the check.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of header `name`, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}
