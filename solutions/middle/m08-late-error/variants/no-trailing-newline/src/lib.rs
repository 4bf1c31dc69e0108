//! `ledger-export`: the invoice export the finance team downloads at the end of each month.
//!
//! `GET /export?customer=acme` answers the customer's invoices as CSV, one line per invoice:
//! `invoice,amount_cents` then `INV-1001,12000`. Amounts were imported from a partner's
//! billing system as text, so each one is checked as it is converted to cents.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

mod ledger;
pub use ledger::{InvalidAmount, Invoice, Ledger};

type Body = BoxBody<Bytes, Infallible>;

/// Accepts connections on `listener` forever, one task per connection.
pub async fn serve(listener: TcpListener, ledger: Arc<Ledger>) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        let ledger = Arc::clone(&ledger);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&ledger)));
            // A client that hangs up mid-download is routine, not a server error.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    ledger: Arc<Ledger>,
) -> Result<Response<Body>, Infallible> {
    if request.uri().path() != "/export" {
        return Ok(plain(StatusCode::NOT_FOUND, "not found\n".to_owned()));
    }
    let customer = request
        .uri()
        .query()
        .and_then(|query| query.strip_prefix("customer="));
    let Some(customer) = customer.map(str::to_owned) else {
        return Ok(plain(
            StatusCode::BAD_REQUEST,
            "which customer? /export?customer=NAME\n".to_owned(),
        ));
    };
    if ledger.invoices_of(&customer).next().is_none() {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            format!("no invoices for {customer}\n"),
        ));
    }
    if let Err(error) = ledger
        .invoices_of(&customer)
        .try_for_each(|invoice| invoice.amount_cents().map(drop))
    {
        return Ok(plain(StatusCode::UNPROCESSABLE_ENTITY, error.to_string()));
    }
    Ok(export(ledger, customer))
}

/// Streams the export row by row: a large customer's download starts at once, and the whole
/// file never sits in memory.
fn export(ledger: Arc<Ledger>, customer: String) -> Response<Body> {
    let (rows, mut lines) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        if rows
            .send(Bytes::from_static(b"invoice,amount_cents\n"))
            .await
            .is_err()
        {
            return;
        }
        for invoice in ledger.invoices_of(&customer) {
            let cents = match invoice.amount_cents() {
                Ok(cents) => cents,
                Err(error) => {
                    eprintln!("ledger-export: export for {customer} stopped: {error}");
                    return;
                }
            };
            let line = format!("{},{cents}\n", invoice.id);
            // An error here means the client hung up: nobody is left to write to.
            if rows.send(Bytes::from(line)).await.is_err() {
                return;
            }
        }
    });
    // Each line becomes one body frame; the body ends when the producer drops `rows`.
    let frames = stream::poll_fn(move |cx| {
        lines
            .poll_recv(cx)
            .map(|line| line.map(Frame::data).map(Ok))
    });
    let mut response = Response::new(StreamBody::new(frames).boxed());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    response
}

/// A short plain-text answer: every error of this service is one.
fn plain(status: StatusCode, message: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(message)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
