//! A raw HTTP/2 client for the checks, built on the `h2` crate: one connection, many streams,
//! and a stream reset on purpose (RST_STREAM with CANCEL), which is what a browser's aborted
//! fetch becomes once a proxy forwards it over HTTP/2. hyper's own client resets a stream only
//! as a side effect of dropping a response future; here the reset is one explicit call.

use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::{Reason, SendStream};
use tokio::io::DuplexStream;
use tokio::task::JoinHandle;

/// One HTTP/2 connection from the proxy to the server.
pub struct Proxy {
    streams: SendRequest<Bytes>,
    // Kept so that the connection lives as long as the proxy does.
    _driver: JoinHandle<Result<(), h2::Error>>,
}

/// A search in flight on its own stream.
pub struct Search {
    response: ResponseFuture,
    stream: SendStream<Bytes>,
}

/// What came back on a stream.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Proxy {
    /// The HTTP/2 handshake, over the client's end of an in-memory pipe.
    pub async fn connect(io: DuplexStream) -> Self {
        let (streams, connection) = h2::client::handshake(io)
            .await
            .expect("the HTTP/2 handshake with the server");
        // The connection's frames are read and written by a task of their own, as in hyper.
        let driver = tokio::spawn(connection);
        Self {
            streams,
            _driver: driver,
        }
    }

    /// Opens a new stream with `GET path` (no request body).
    pub async fn get(&mut self, path: &str) -> Search {
        let request = hyper::Request::get(format!("http://logsearch.test{path}"))
            .body(())
            .expect("a well-formed request");
        let ready = self.streams.clone().ready().await;
        let mut streams = ready.expect("the connection is open for a new stream");
        let (response, stream) = streams
            .send_request(request, true)
            .expect("opening a stream");
        Search { response, stream }
    }
}

impl Search {
    /// Resets the stream with CANCEL: the user gave up on this search.
    pub fn reset(mut self) {
        self.stream.send_reset(Reason::CANCEL);
    }

    /// Waits for the response and reads its whole body.
    pub async fn answer(self) -> Result<Answer, h2::Error> {
        let response = self.response.await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().unwrap_or("?").to_owned());
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            // Give the server its window back, or a long body would stall.
            let _ = body.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            retry_after,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}
