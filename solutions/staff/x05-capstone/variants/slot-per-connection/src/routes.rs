//! The routes, behind the per-request policy of the spec: a tower stack like the production
//! template's, built once and shared by every connection.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use tokio_util::task::TaskTracker;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder};
use tower_http::body::Limited;
use tower_http::limit::{RequestBodyLimitLayer, ResponseBody};
use tower_http::timeout::TimeoutLayer;

use crate::{Config, Store};

/// The whole per-request policy and the routes, as one service every connection clones.
pub type App =
    BoxCloneSyncService<Request<Incoming>, Response<ResponseBody<Full<Bytes>>>, BoxError>;

/// Builds the stack once; admission (clause 3) happens per connection, in the accept loop.
pub fn app(config: &Config, store: Store, commits: TaskTracker) -> App {
    let stack = ServiceBuilder::new()
        // Clause 2: 413 for a `content-length` over the limit before anything is read; a
        // chunked body fails in the handler once it passes the limit.
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        .map_err(BoxError::from)
        // Clause 4: drops the request's future at the deadline, and with it the work.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            config.request_deadline,
        ))
        .service_fn(move |request| -> Handling {
            // Boxed with `Send` spelled out: the compiler cannot prove an unboxed handler
            // future `Send` for every lifetime of the limited body's `dyn Error`.
            Box::pin(handle(request, store.clone(), commits.clone()))
        });
    BoxCloneSyncService::new(stack)
}

type Handling = Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

/// What a connection admitted over the limit serves: 503 to every request, so the client
/// backs off and retries.
pub fn busy(config: &Config) -> App {
    let stack = ServiceBuilder::new()
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        .service_fn(|_request: Request<Limited<Incoming>>| async {
            let mut response = text(StatusCode::SERVICE_UNAVAILABLE, "busy, retry\n".into());
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            Ok::<_, BoxError>(response)
        });
    BoxCloneSyncService::new(stack)
}

/// Dispatches on method and path.
async fn handle(
    request: Request<Limited<Incoming>>,
    store: Store,
    commits: TaskTracker,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let response = match (request.method(), path.as_str()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n".into()),
        (&Method::GET, "/slow") => slow(request.uri().query()).await,
        (&Method::POST, "/items") => create(request, store, &commits).await,
        (&Method::GET, item) => match item.strip_prefix("/items/").map(str::parse::<u64>) {
            Some(Ok(id)) => match store.get(id) {
                Some(description) => text(StatusCode::OK, description),
                None => text(StatusCode::NOT_FOUND, "no such item\n".into()),
            },
            _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    };
    Ok(response)
}

/// `POST /items`: the body is the item's description.
async fn create(
    request: Request<Limited<Incoming>>,
    store: Store,
    commits: &TaskTracker,
) -> Response<Full<Bytes>> {
    let description = match request.into_body().collect().await {
        Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        Err(error) if error.is::<LengthLimitError>() => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "item too large\n".into());
        }
        Err(_) => return text(StatusCode::BAD_REQUEST, "body interrupted\n".into()),
    };
    // Clause 5: once the body is in, the write is ours to finish. It runs on a task of its
    // own that the request does not own: a client that leaves (or a deadline) drops the
    // request's future and the handle, not the commit. Clause 7: the tracker lets shutdown
    // wait for it.
    let commit = commits.spawn(async move { store.commit(description).await });
    match commit.await {
        Ok(id) => text(StatusCode::CREATED, format!("{id}\n")),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "write failed\n".into()),
    }
}

/// `GET /slow?ms=N`: stands in for a query that takes `N` milliseconds.
async fn slow(query: Option<&str>) -> Response<Full<Bytes>> {
    let ms = query
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("ms=")))
        .and_then(|ms| ms.parse::<u64>().ok());
    let Some(ms) = ms else {
        return text(StatusCode::BAD_REQUEST, "ms must be a number\n".into());
    };
    tokio::time::sleep(Duration::from_millis(ms)).await;
    text(StatusCode::OK, format!("worked {ms} ms\n"))
}

/// A plain-text response.
pub fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
