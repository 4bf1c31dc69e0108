//! `ledger-export`: the invoice export the finance team downloads at the end of each month.
//!
//! `GET /export?customer=acme` answers the customer's invoices as CSV, one line per invoice:
//! `invoice,amount_cents` then `INV-1001,12000`. Amounts were imported from a partner's
//! billing system as text, so each one is checked as it is converted to cents.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
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
    Ok(export(ledger, customer).await)
}

/// Streams the export row by row: a large customer's download starts at once, and the whole
/// file never sits in memory.
async fn export(ledger: Arc<Ledger>, customer: String) -> Response<Body> {
    let (rows, mut lines) = mpsc::channel::<Result<Bytes, InvalidAmount>>(LOOK_AHEAD);
    tokio::spawn(async move {
        if rows
            .send(Ok(Bytes::from_static(b"invoice,amount_cents\n")))
            .await
            .is_err()
        {
            return;
        }
        for invoice in ledger.invoices_of(&customer) {
            let line = invoice
                .amount_cents()
                .map(|cents| Bytes::from(format!("{},{cents}\n", invoice.id)));
            let failed = line.is_err();
            if rows.send(line).await.is_err() || failed {
                return;
            }
        }
    });
    // Look ahead before choosing the status: a bad amount among the first rows is a 422.
    let mut head = Vec::new();
    while head.len() < LOOK_AHEAD {
        match lines.recv().await {
            Some(Ok(line)) => head.push(line),
            Some(Err(error)) => {
                return plain(StatusCode::UNPROCESSABLE_ENTITY, format!("{error}\n"));
            }
            None => break,
        }
    }
    let head = stream::iter(head.into_iter().map(|line| Ok(Frame::data(line))));
    let rest = stream::poll_fn(move |cx| {
        lines
            .poll_recv(cx)
            .map(|line| line.and_then(Result::ok).map(Frame::data).map(Ok))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(head.chain(rest))));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    response
}

/// How many rows are checked before the status goes out.
const LOOK_AHEAD: usize = 64;

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
