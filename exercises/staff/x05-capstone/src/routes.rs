//! The routes: what each request does.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::Store;

/// Dispatches on method and path.
pub async fn handle(
    request: Request<Incoming>,
    store: Store,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let response = match (request.method(), path.as_str()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n".into()),
        (&Method::GET, "/slow") => slow(request.uri().query()).await,
        (&Method::POST, "/items") => create(request, &store).await,
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
async fn create(request: Request<Incoming>, store: &Store) -> Response<Full<Bytes>> {
    let description = match request.into_body().collect().await {
        Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        Err(_) => return text(StatusCode::BAD_REQUEST, "body interrupted\n".into()),
    };
    let id = store.commit(description).await;
    text(StatusCode::CREATED, format!("{id}\n"))
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
