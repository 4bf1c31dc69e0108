//! The template's routes. Handlers see a boxed request body: the body limit and the body
//! deadline layers have already wrapped it, and their errors arrive through it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError};
use hyper::header::{
    CONNECTION, CONTENT_TYPE, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE,
};
use hyper::{Method, Request, Response, StatusCode};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tower::BoxError;

use crate::metrics::Metrics;
use crate::outbound::Outbound;
use crate::upgrade::Sessions;

/// The request body every handler sees.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// The longest `GET /work?ms=N` will wait.
pub const MAX_WORK: Duration = Duration::from_secs(10);

/// What handlers share; cloned into every request (all fields are handles).
#[derive(Clone)]
pub struct App {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) sessions: Sessions,
    pub(crate) outbound: Outbound,
    /// Expose `GET /panic` (tests only).
    pub(crate) test_routes: bool,
}

/// Boxes whatever body the layers built, so handlers name one type.
pub fn boxed<B>(request: Request<B>) -> Request<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    request.map(|body| body.map_err(Into::into).boxed_unsync())
}

/// The innermost service: a `tower::Service` by hand rather than `service_fn`, whose closure
/// the compiler cannot prove general over the body's `dyn Error` lifetime.
impl tower::Service<Request<Body>> for App {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        Box::pin(handle(self.clone(), request))
    }
}

// ANCHOR: route
/// Dispatches on method and path.
pub async fn handle(app: App, request: Request<Body>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Owned copies: the body is not `Sync`, so no reference into `request` may live across
    // an `.await` in a `Send` future.
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = match (&method, path.as_str()) {
        (&Method::GET, "/") => text(StatusCode::OK, "hello from the template\n".into()),
        (&Method::POST, "/echo") => echo(request).await,
        (&Method::GET, "/work") => work(request.uri().query().map(str::to_owned)).await,
        (&Method::GET, "/metrics") => text(StatusCode::OK, app.metrics.render()),
        (&Method::GET, "/ws") => websocket(&app, request),
        (&Method::GET, "/upstream") => app.outbound.call().await,
        (&Method::GET, "/panic") if app.test_routes => panic!("a handler bug"),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    };
    Ok(response)
}
// ANCHOR_END: route

// ANCHOR: echo
/// Reads the whole body (bounded by the body limit and the body deadline) and answers its
/// length. The layers report through the body's error, which the handler turns into a status.
async fn echo(request: Request<Body>) -> Response<Full<Bytes>> {
    match request.into_body().collect().await {
        Ok(body) => text(StatusCode::OK, format!("{}\n", body.to_bytes().len())),
        Err(error) if error.is::<LengthLimitError>() => {
            text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n".into())
        }
        Err(error) if error.is::<tower_http::timeout::TimeoutError>() => {
            text(StatusCode::REQUEST_TIMEOUT, "body too slow\n".into())
        }
        Err(error) => text(StatusCode::BAD_REQUEST, format!("bad body: {error}\n")),
    }
}
// ANCHOR_END: echo

/// Sleeps `ms` milliseconds (capped), standing in for real work.
async fn work(query: Option<String>) -> Response<Full<Bytes>> {
    let ms = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("ms=")))
        .map(str::parse::<u64>);
    let wait = match ms {
        None => Duration::ZERO,
        Some(Ok(ms)) => Duration::from_millis(ms).min(MAX_WORK),
        Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "ms must be a number\n".into()),
    };
    tokio::time::sleep(wait).await;
    text(StatusCode::OK, format!("worked {} ms\n", wait.as_millis()))
}

/// Answers a WebSocket handshake with 101 and hands the upgraded socket to the registry.
fn websocket(app: &App, mut request: Request<Body>) -> Response<Full<Bytes>> {
    let wants_websocket = request
        .headers()
        .get(UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let Some(key) = request
        .headers()
        .get(SEC_WEBSOCKET_KEY)
        .filter(|_| wants_websocket)
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket handshake\n".into(),
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    // Resolves after hyper wrote the 101, so the session must run on another task.
    let on_upgrade = hyper::upgrade::on(&mut request);
    app.sessions.start(on_upgrade, app.metrics.websocket());
    let mut switching = Response::new(Full::default());
    *switching.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = switching.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(
        SEC_WEBSOCKET_ACCEPT,
        HeaderValue::try_from(accept).expect("base64 is a valid header"),
    );
    switching
}

/// A plain-text response.
pub fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
