//! The routes, with the per-request policy written by hand: a semaphore for the limit, a
//! timeout for the deadline, `Limited` for the body.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::{Config, Store};

/// What every request shares; clones share the slots and the commits.
#[derive(Clone)]
pub struct App {
    config: Config,
    store: Store,
    commits: TaskTracker,
    slots: Arc<Semaphore>,
}

impl App {
    pub fn new(config: Config, store: Store, commits: TaskTracker) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_in_flight));
        App {
            config,
            store,
            commits,
            slots,
        }
    }

    /// One request, under the spec's admission and deadline.
    pub async fn handle(
        self,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        // A slot now or a 503 now; the permit is held until this future ends, however it ends.
        let Ok(_slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            let mut busy = text(StatusCode::SERVICE_UNAVAILABLE, "busy, retry\n".into());
            busy.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(busy);
        };
        // Past the deadline the route's future is dropped, and its work with it.
        let deadline = self.config.request_deadline;
        match tokio::time::timeout(deadline, self.route(request)).await {
            Ok(response) => Ok(response),
            Err(_) => Ok(text(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline passed\n".into(),
            )),
        }
    }

    async fn route(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        match (request.method(), path.as_str()) {
            (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n".into()),
            (&Method::GET, "/slow") => slow(request.uri().query()).await,
            (&Method::POST, "/items") => self.create(request).await,
            (&Method::GET, item) => match item.strip_prefix("/items/").map(str::parse::<u64>) {
                Some(Ok(id)) => match self.store.get(id) {
                    Some(description) => text(StatusCode::OK, description),
                    None => text(StatusCode::NOT_FOUND, "no such item\n".into()),
                },
                _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
            },
            _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }

    /// `POST /items`: the body is the item's description.
    async fn create(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let max = self.config.max_body_bytes;
        let too_large = || text(StatusCode::PAYLOAD_TOO_LARGE, "item too large\n".into());
        // An announced length over the limit is refused before a byte of the body is read.
        if request.body().size_hint().lower() > max as u64 {
            return too_large();
        }
        let description = match Limited::new(request.into_body(), max).collect().await {
            Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
            Err(error) if error.is::<LengthLimitError>() => return too_large(),
            Err(_) => return text(StatusCode::BAD_REQUEST, "body interrupted\n".into()),
        };
        // The write belongs to the service, not to the request: a tracked task of its own.
        let store = self.store.clone();
        let commit = self
            .commits
            .spawn(async move { store.commit(description).await });
        match commit.await {
            Ok(id) => text(StatusCode::CREATED, format!("{id}\n")),
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "write failed\n".into()),
        }
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
