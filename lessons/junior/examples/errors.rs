//! Error handling: one error type for the service, mapped to status codes at the boundary,
//! and the connection's own result sorted into "routine" and "worth a look".
//!
//! ```console
//! cargo run -p lessons-junior --example errors
//! curl -i http://127.0.0.1:3000/notes/1        # 200
//! curl -i http://127.0.0.1:3000/notes/abc      # 400
//! curl -i http://127.0.0.1:3000/notes/9        # 404
//! curl -i http://127.0.0.1:3000/notes/13       # 500, details only in the server's log
//! curl -i -d @/etc/services http://127.0.0.1:3000/notes   # 413
//! curl -i http://127.0.0.1:3000/boom           # 500 from CatchPanicLayer: the handler panicked
//! RUST_LOG=debug cargo run -p lessons-junior --example errors   # also log routine endings
//! ```
use std::convert::Infallible;
use std::error::Error;
use std::fmt;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::{CatchPanic, CatchPanicLayer, DefaultResponseForPanic};
use tracing_subscriber::EnvFilter;

type BoxError = Box<dyn Error + Send + Sync>;

// ANCHOR: error_type
/// Everything that can go wrong while serving one request, in this service's terms.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(&'static str),
    NotFound,
    BodyTooLarge,
    /// A failure of ours. The cause is logged, never sent to the client.
    Internal(BoxError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let status = self.status();
        let message = match self {
            ApiError::BadRequest(why) => why.to_owned(),
            ApiError::Internal(cause) => {
                tracing::error!("internal error: {cause}"); // for us, with the details
                "internal error".to_owned() // for the client, without them
            }
            ApiError::NotFound | ApiError::BodyTooLarge => {
                status.canonical_reason().unwrap_or("error").to_owned()
            }
        };
        let mut response = Response::new(Full::new(Bytes::from(message + "\n")));
        *response.status_mut() = status;
        response
    }
}
// ANCHOR_END: error_type

/// A storage failure, standing for any error of ours with details a client must not see.
#[derive(Debug)]
struct StorageError(&'static str);

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage: {}", self.0)
    }
}

impl Error for StorageError {}

const MAX_NOTE_BYTES: usize = 1024;

// ANCHOR: handler
/// The handler speaks `ApiError` and uses `?` freely.
async fn handle<B>(request: Request<B>) -> Result<Response<Full<Bytes>>, ApiError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    match (request.method(), request.uri().path()) {
        (&Method::GET, path) if path.starts_with("/notes/") => {
            let id: u32 = path["/notes/".len()..]
                .parse()
                .map_err(|_| ApiError::BadRequest("a note id is a number"))?;
            let note = load_note(id)?.ok_or(ApiError::NotFound)?;
            Ok(Response::new(Full::new(Bytes::from(note))))
        }
        (&Method::POST, "/notes") => {
            let body = Limited::new(request.into_body(), MAX_NOTE_BYTES)
                .collect()
                .await
                .map_err(|error| {
                    if error.is::<LengthLimitError>() {
                        ApiError::BodyTooLarge
                    } else {
                        ApiError::BadRequest("the body could not be read")
                    }
                })?
                .to_bytes();
            std::str::from_utf8(&body).map_err(|_| ApiError::BadRequest("a note is UTF-8"))?;
            let mut response = Response::new(Full::new(Bytes::from("stored\n")));
            *response.status_mut() = StatusCode::CREATED;
            Ok(response)
        }
        // Stands for a bug: the one route that panics, to show what catches it.
        (&Method::GET, "/boom") => panic!("a bug in the handler"),
        _ => Err(ApiError::NotFound),
    }
}

/// The service hyper calls: it never returns `Err`, so every failure becomes a response.
pub async fn service<B>(request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    Ok(handle(request)
        .await
        .unwrap_or_else(ApiError::into_response))
}
// ANCHOR_END: handler

fn load_note(id: u32) -> Result<Option<String>, ApiError> {
    match id {
        1..=3 => Ok(Some(format!("note {id}\n"))),
        13 => Err(ApiError::Internal(Box::new(StorageError(
            "disk /var/lib/notes is read-only",
        )))),
        _ => Ok(None),
    }
}

// ANCHOR: catch_panic
/// `service` with panic recovery: a handler that panics answers `500 Service panicked`
/// (and the panic is logged through `tracing`) instead of taking its connection down.
pub fn recovering<S>(service: S) -> TowerToHyperService<CatchPanic<S, DefaultResponseForPanic>> {
    TowerToHyperService::new(
        ServiceBuilder::new()
            .layer(CatchPanicLayer::new())
            .service(service),
    )
}
// ANCHOR_END: catch_panic

// ANCHOR: routine
/// Whether a connection that ended with `error` needs anyone's attention.
///
/// Clients leave mid-request, send garbage and let idle connections time out all day long;
/// none of that is a bug of ours. An error from our own service is.
pub fn is_routine(error: &(dyn Error + 'static)) -> bool {
    match error.downcast_ref::<hyper::Error>() {
        Some(error) => {
            error.is_incomplete_message() // the client went away mid-request
                || error.is_timeout() // header timeout, or an idle keep-alive closed
                || error.is_parse() // the client sent something that is not HTTP
        }
        // Before hyper parses anything, the auto builder reports plain I/O errors.
        None => error.downcast_ref::<std::io::Error>().is_some(),
    }
}
// ANCHOR_END: routine

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log INFO and above unless RUST_LOG says otherwise (`fmt::init()` alone shows errors only).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!(
        "listening on http://127.0.0.1:3000; try: curl -i http://127.0.0.1:3000/notes/13"
    );
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    loop {
        let (stream, peer) = listener.accept().await?;
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = recovering(tower::service_fn(service::<Incoming>));
            let served = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
            // ANCHOR: log_connection
            match served {
                Ok(()) => {}
                Err(error) if is_routine(&*error) => {
                    tracing::debug!("connection from {peer} ended: {error}")
                }
                Err(error) => tracing::warn!("connection from {peer} failed: {error}"),
            }
            // ANCHOR_END: log_connection
        });
    }
}
