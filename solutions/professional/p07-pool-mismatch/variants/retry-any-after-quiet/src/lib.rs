//! The cart service's client for the inventory service.
//!
//! The cart asks the inventory service how many units of a SKU are in stock
//! (`GET /stock/{sku}`), places a hold on one unit when a customer adds it to the cart
//! (`POST /holds`, answered with the new hold's id), and releases a hold when the item is
//! removed (`DELETE /holds/{id}`). Traffic comes in bursts: busy minutes, then quiet ones.
//!
//! The inventory service is a hyper server with its defaults, the header timer included: it
//! closes a keep-alive connection that has been idle for 30 seconds.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// A call to the inventory service that did not produce an answer the cart can use.
#[derive(Debug)]
pub enum InventoryError {
    /// No answer: the connection could not be made, or broke before the answer was complete.
    Unavailable(hyper_util::client::legacy::Error),
    /// An answer whose body broke off.
    Body(hyper::Error),
    /// An answer with an error status.
    Status(StatusCode),
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(error) => write!(f, "inventory unavailable: {error}"),
            Self::Body(error) => write!(f, "inventory answer broke off: {error}"),
            Self::Status(status) => write!(f, "inventory answered {status}"),
        }
    }
}

impl std::error::Error for InventoryError {}

/// The inventory service's client: one for the whole cart service, shared by every request.
#[derive(Debug, Clone)]
pub struct Inventory<C> {
    client: Client<C, Full<Bytes>>,
    base: String,
    last_call: std::sync::Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
}

impl Inventory<HttpConnector> {
    /// A client for the inventory service at `base`, for example `http://inventory:8080`.
    pub fn new(base: impl Into<String>) -> Self {
        Self::with_connector(HttpConnector::new(), base)
    }
}

impl<C> Inventory<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// The same client over `connector`: a proxy, a TLS connector, or an in-memory one in
    /// tests.
    pub fn with_connector(connector: C, base: impl Into<String>) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            // Under the inventory's 30 s keep-alive, so the pool lets go first.
            .pool_idle_timeout(Duration::from_secs(25))
            .build(connector);
        Self {
            client,
            base: base.into(),
            last_call: std::sync::Arc::default(),
        }
    }

    /// How many units of `sku` are in stock, as the inventory service words it.
    pub async fn stock(&self, sku: &str) -> Result<String, InventoryError> {
        self.call(Method::GET, &format!("/stock/{sku}"), Bytes::new())
            .await
    }

    /// Places a hold on one unit of `sku`; the answer is the hold's id.
    pub async fn place_hold(&self, sku: &str) -> Result<String, InventoryError> {
        self.call(
            Method::POST,
            "/holds",
            Bytes::copy_from_slice(sku.as_bytes()),
        )
        .await
    }

    /// Releases the hold `id`.
    pub async fn release_hold(&self, id: &str) -> Result<String, InventoryError> {
        self.call(Method::DELETE, &format!("/holds/{id}"), Bytes::new())
            .await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<String, InventoryError> {
        let now = tokio::time::Instant::now();
        let quiet_before = self
            .last_call
            .lock()
            .unwrap()
            .replace(now)
            .is_none_or(|last| now.duration_since(last) >= Duration::from_secs(25));
        match self.call_once(method.clone(), path, body.clone()).await {
            // After a quiet spell, "closed before message completed" is the idle-close race:
            // the request never reached the application, so it is safe to send again.
            Err(InventoryError::Unavailable(error))
                if quiet_before
                    && std::error::Error::source(&error)
                        .and_then(|e| e.downcast_ref::<hyper::Error>())
                        .is_some_and(hyper::Error::is_incomplete_message) =>
            {
                self.call_once(method, path, body).await
            }
            other => other,
        }
    }

    async fn call_once(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<String, InventoryError> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .body(Full::new(body))
            .expect("a method, a URI and a body make a valid request");
        let response = self
            .client
            .request(request)
            .await
            .map_err(InventoryError::Unavailable)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(InventoryError::Body)?
            .to_bytes();
        if !status.is_success() {
            return Err(InventoryError::Status(status));
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}
