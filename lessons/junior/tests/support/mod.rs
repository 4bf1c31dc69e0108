//! Helpers shared by several lesson test files, declared in each with `mod support;`.
//!
//! Everything else a lesson test needs comes from the `harness` crate; this module holds only
//! what the lesson tests repeat among themselves. Each test file is its own crate and uses
//! only some of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod raw_h2;

use std::error::Error;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};

/// Long enough, in virtual time, for everything that can happen to have happened.
pub const QUIET: Duration = Duration::from_secs(60);

/// Serves one connection over `io` with `service` through hyper-util's auto builder with its
/// defaults (HTTP/1 and HTTP/2, no timer), until the connection ends. The connection's error is
/// ignored: a client that goes away is not the server's failure.
pub async fn serve_auto<IO, S, B>(io: IO, service: S)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}
