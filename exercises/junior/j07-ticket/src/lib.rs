//! `deli-counter`: the ticket service behind the "take a number" kiosks of a deli chain.
//!
//! `POST /tickets` hands the customer the next ticket number (`ticket=N`); `GET /board`
//! tells the display board how many tickets were handed out so far (`issued=N`). Staff call
//! customers by number, so two customers holding the same number is a fight at the counter.
//!
//! The counter itself lives in [`ticket`], built from the types in [`sync`], so that a loom
//! model can check it in isolation (loom cannot model sockets or tokio).

pub mod sync;
pub mod ticket;

use std::convert::Infallible;
// The server's own sharing is plain `std`: only the counter's insides switch to loom.
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub use ticket::Dispenser;

/// Accepts connections on `listener` forever, one task per connection. Every kiosk in the
/// shop talks to the same `dispenser`.
pub async fn serve(listener: TcpListener, dispenser: Arc<Dispenser>) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        let dispenser = Arc::clone(&dispenser);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&dispenser)));
            // A kiosk that reboots mid-request is routine, not a server error.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    dispenser: Arc<Dispenser>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::POST, "/tickets") => (StatusCode::OK, format!("ticket={}\n", dispenser.take())),
        (&Method::GET, "/board") => (StatusCode::OK, format!("issued={}\n", dispenser.issued())),
        _ => (StatusCode::NOT_FOUND, "no such counter\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}
