//! `auditd`: the audit journal of the payments back office.
//!
//! Every approval, refund and role change is appended with `POST /entries` (the body is
//! `actor action...`, for example `clerk-7 approved invoice 4411`) and numbered in order.
//! The auditors download the whole journal with `GET /export`: one JSON line per entry,
//! streamed as it is read, because a journal holds millions of entries and an export can take
//! minutes over the auditors' VPN.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Mutex, mpsc};

/// How many lines of an export may wait for the network at once.
pub const EXPORT_BUFFER: usize = 64;

/// One audited action.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its place in the journal, from 1.
    pub seq: u64,
    /// Who did it.
    pub actor: String,
    /// What they did.
    pub action: String,
}

impl Entry {
    /// The entry as one line of the export.
    pub fn to_line(&self) -> String {
        format!(
            "{{\"seq\":{},\"actor\":\"{}\",\"action\":\"{}\"}}\n",
            self.seq, self.actor, self.action
        )
    }
}

/// The journal, shared by every connection: an export must show it as one consistent whole,
/// never half of a concurrent append.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl Journal {
    /// Appends an entry and returns its number.
    pub async fn append(&self, actor: &str, action: &str) -> u64 {
        let mut entries = self.entries.lock().await;
        let seq = entries.len() as u64 + 1;
        entries.push(Entry {
            seq,
            actor: actor.to_owned(),
            action: action.to_owned(),
        });
        seq
    }

    /// Starts an export: the body streams every entry, one line each.
    pub fn export(&self) -> ExportBody {
        let (lines, body) = mpsc::channel(EXPORT_BUFFER);
        let entries = Arc::clone(&self.entries);
        tokio::spawn(async move {
            // Copy a batch of lines under a short lock, then send them without it. The journal
            // only grows, so a cursor is enough to resume where the last batch ended. The export
            // ends where the journal ended at its first batch: entries appended meanwhile
            // belong to the next export, or this one would never end while clerks are busy.
            let mut next = 0;
            let mut end = None;
            loop {
                let batch: Vec<Bytes> = {
                    let entries = entries.lock().await;
                    let end = *end.get_or_insert(entries.len());
                    let stop = end.min(next + EXPORT_BUFFER);
                    entries[next..stop]
                        .iter()
                        .map(|entry| Bytes::from(entry.to_line()))
                        .collect()
                };
                if batch.is_empty() {
                    return;
                }
                next += batch.len();
                for line in batch {
                    if lines.send(line).await.is_err() {
                        return; // the auditor went away
                    }
                }
            }
        });
        ExportBody { lines: body }
    }
}

/// Serves one connection until the client goes away.
pub async fn serve_connection<IO>(io: IO, journal: Journal) -> hyper::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(request, journal.clone()));
    http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
}

type Reply = Response<Either<ExportBody, Full<Bytes>>>;

async fn handle(request: Request<Incoming>, journal: Journal) -> Result<Reply, Infallible> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/export") => Ok(Response::builder()
            .header("content-type", "application/x-ndjson")
            .body(Either::Left(journal.export()))
            .expect("a valid response head")),
        (&Method::POST, "/entries") => {
            // An entry is one short line; anything longer is not an entry.
            let Ok(body) = Limited::new(request.into_body(), 1024).collect().await else {
                return Ok(reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "an entry is one line\n",
                ));
            };
            let line = String::from_utf8_lossy(&body.to_bytes()).trim().to_owned();
            let Some((actor, action)) = line.split_once(' ') else {
                return Ok(reply(
                    StatusCode::BAD_REQUEST,
                    "expected: actor action...\n",
                ));
            };
            let seq = journal.append(actor, action).await;
            Ok(reply(StatusCode::CREATED, &format!("{seq}\n")))
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "no such page\n")),
    }
}

fn reply(status: StatusCode, text: &str) -> Reply {
    let mut response = Response::new(Either::Right(Full::from(text.to_owned())));
    *response.status_mut() = status;
    response
}

/// The body of an export: each line becomes one frame, which hyper writes as soon as the
/// connection has room for it. It ends when the export's task is done.
pub struct ExportBody {
    lines: mpsc::Receiver<Bytes>,
}

impl Body for ExportBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.lines
            .poll_recv(cx)
            .map(|line| line.map(|line| Ok(Frame::data(line))))
    }
}
