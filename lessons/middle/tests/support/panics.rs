//! A real server on 127.0.0.1 whose accept loop reports how each connection task ended, so a
//! check can see the panic that tokio caught at the task boundary.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>
        + Send
        + Sync,
>;

/// How one connection task ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// `serve_connection` returned (`Ok` or a hyper error, as text).
    Returned(Result<(), String>),
    /// The task panicked; tokio caught it and handed over the message.
    Panicked(String),
}

/// The server: dropping it aborts the accept loop.
pub struct PanicServer {
    pub addr: SocketAddr,
    pub endings: mpsc::UnboundedReceiver<Ending>,
    accept: JoinHandle<()>,
}

impl Drop for PanicServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl PanicServer {
    /// Serves `handler` with no panic layer at all: what hyper does on its own.
    pub async fn start<H, Fut>(handler: H) -> Self
    where
        H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |request| Box::pin(handler(request)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (report, endings) = mpsc::unbounded_channel();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = Arc::clone(&handler);
                let connection = tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let response = handler(request);
                        async move { Ok::<_, Infallible>(response.await) }
                    });
                    auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                        .map_err(|error| error.to_string())
                });
                let report = report.clone();
                tokio::spawn(async move {
                    let ending = match connection.await {
                        Ok(returned) => Ending::Returned(returned),
                        Err(error) => Ending::Panicked(panic_message(error.into_panic())),
                    };
                    let _ = report.send(ending);
                });
            }
        });
        Self {
            addr,
            endings,
            accept,
        }
    }
}

/// The text of a panic payload: `panic!("literal")` carries a `&str`, `panic!("{x}")` a
/// `String`.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<&str>() {
        Ok(message) => (*message).to_owned(),
        Err(payload) => *payload
            .downcast::<String>()
            .unwrap_or_else(|_| Box::new("(not a string)".to_owned())),
    }
}
