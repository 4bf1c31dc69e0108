//! Panics and poisoning: a small ledger service behind tower-http's `CatchPanicLayer`, whose
//! transfer validates before it mutates, so that nothing can panic while the lock is held.
//!
//! Run it with `cargo run -p lessons-middle --example panics_ledger`, then:
//!
//! ```console
//! curl -i -X POST 'http://127.0.0.1:3000/transfer?from=alice&to=bob&amount=30'
//! curl -i -X POST 'http://127.0.0.1:3000/transfer?from=alice&to=nobody&amount=30'
//! curl -i http://127.0.0.1:3000/boom
//! curl -i http://127.0.0.1:3000/balance/alice
//! ```

use std::any::Any;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

/// Balances in cents, by account name.
pub type Ledger = Arc<Mutex<HashMap<String, u64>>>;

/// A ledger with two accounts, for the demo and the checks.
pub fn demo_ledger() -> Ledger {
    let accounts = [("alice".to_owned(), 100), ("bob".to_owned(), 0)];
    Arc::new(Mutex::new(HashMap::from(accounts)))
}

#[derive(Debug, PartialEq, Eq)]
pub enum TransferError {
    UnknownAccount,
    InsufficientFunds,
    BalanceOverflow,
}

// ANCHOR: transfer
/// Moves `amount` from one account to another. Every check happens before the first write,
/// and nothing after the first write can fail: no panic can leave the ledger half-updated
/// while the guard is held.
pub fn transfer(ledger: &Ledger, from: &str, to: &str, amount: u64) -> Result<(), TransferError> {
    let mut accounts = ledger.lock().expect("ledger lock poisoned");
    // Validate first: both lookups, and both new balances computed without overflow.
    let from_balance = *accounts.get(from).ok_or(TransferError::UnknownAccount)?;
    let to_balance = *accounts.get(to).ok_or(TransferError::UnknownAccount)?;
    let from_after = from_balance
        .checked_sub(amount)
        .ok_or(TransferError::InsufficientFunds)?;
    if from == to {
        return Ok(()); // to oneself: nothing moves (the two stores below would credit it)
    }
    let to_after = to_balance
        .checked_add(amount)
        .ok_or(TransferError::BalanceOverflow)?;
    // Then write: two stores of values already computed, which cannot panic.
    accounts.insert(from.to_owned(), from_after);
    accounts.insert(to.to_owned(), to_after);
    Ok(())
}
// ANCHOR_END: transfer

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// `from=alice&to=bob&amount=30`, parsed without a dependency.
fn transfer_query(query: &str) -> Option<(String, String, u64)> {
    let mut fields = HashMap::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=')?;
        fields.insert(key, value);
    }
    let amount = fields.get("amount")?.parse().ok()?;
    Some((
        fields.get("from")?.to_string(),
        fields.get("to")?.to_string(),
        amount,
    ))
}

pub async fn handle(
    ledger: Ledger,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    let response = match (request.method(), path) {
        (&Method::POST, "/transfer") => match transfer_query(request.uri().query().unwrap_or("")) {
            None => text(
                StatusCode::BAD_REQUEST,
                "from, to and amount, please\n".into(),
            ),
            Some((from, to, amount)) => match transfer(&ledger, &from, &to, amount) {
                Ok(()) => text(StatusCode::OK, "transferred\n".into()),
                Err(error) => text(StatusCode::UNPROCESSABLE_ENTITY, format!("{error:?}\n")),
            },
        },
        (&Method::GET, _) if path.starts_with("/balance/") => {
            let name = &path["/balance/".len()..];
            let accounts = ledger.lock().expect("ledger lock poisoned");
            match accounts.get(name) {
                Some(cents) => text(StatusCode::OK, format!("{cents}\n")),
                None => text(StatusCode::NOT_FOUND, "no such account\n".into()),
            }
        }
        // A bug on purpose, for the demo.
        (&Method::GET, "/boom") => panic!("the report template is missing"),
        _ => text(StatusCode::NOT_FOUND, "no such route\n".into()),
    };
    Ok(response)
}

// ANCHOR: panic_response
/// What a panic turns into: logged with its message, answered with a JSON 500 that says
/// nothing about the inside of the service.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Full<Bytes>> {
    let message = match panic.downcast_ref::<&str>() {
        Some(message) => message,
        None => panic
            .downcast_ref::<String>()
            .map_or("(not a string)", String::as_str),
    };
    tracing::error!(message, "a handler panicked");
    let mut response = Response::new(Full::new(Bytes::from_static(b"{\"error\":\"internal\"}\n")));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        CONTENT_TYPE,
        "application/json".parse().expect("a valid header value"),
    );
    response
}
// ANCHOR_END: panic_response

// ANCHOR: serve
pub async fn serve_connection<IO>(io: IO, ledger: Ledger)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(panic_response))
        .service_fn(move |request| handle(Arc::clone(&ledger), request));
    // hyper calls `&self` services; the adapter clones the tower service for each request.
    let service = TowerToHyperService::new(service);
    if let Err(error) = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await
    {
        tracing::debug!(%error, "connection ended with an error");
    }
}
// ANCHOR_END: serve

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines without a timestamp, so that they read like the book's transcripts.
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let ledger = demo_ledger();
    loop {
        let (stream, _peer) = listener.accept().await?;
        tokio::spawn(serve_connection(stream, Arc::clone(&ledger)));
    }
}
