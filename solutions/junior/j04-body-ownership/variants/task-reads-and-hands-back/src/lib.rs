//! `snippets`: a small paste service. `POST /snippets` stores the body as a new snippet and
//! answers `201` with its id; `PUT /snippets/{id}` replaces it; `GET /snippets/{id}` reads it.
//!
//! Compliance requires every upload, created or updated, to reach the audit service byte for
//! byte. That service is slow, so uploads are audited from a background task: the client
//! never waits for the audit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::mpsc::Sender;

/// One upload, as the audit service receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The snippet the upload was for.
    pub snippet: u64,
    /// The upload, exactly as the client sent it.
    pub content: Bytes,
}

/// The line to the audit service (in production a network client; the checks read it). It
/// holds a few records at most: when the service falls behind, a send waits until it catches
/// up.
pub type AuditLog = Sender<AuditRecord>;

type Reply = hyper::Result<Response<Full<Bytes>>>;

struct App {
    snippets: Mutex<HashMap<u64, Bytes>>,
    last_id: AtomicU64,
    audit: AuditLog,
}

/// Accepts connections on `listener` forever, one task per connection.
pub async fn serve(listener: TcpListener, audit: AuditLog) -> std::io::Result<()> {
    let app = Arc::new(App {
        snippets: Mutex::default(),
        last_id: AtomicU64::new(0),
        audit,
    });
    loop {
        let (stream, _peer) = listener.accept().await?;
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let service = service_fn(move |request| route(request, Arc::clone(&app)));
            // A client that hangs up mid-request is routine, not a server error.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(request: Request<Incoming>, app: Arc<App>) -> Reply {
    let path = request.uri().path();
    let id = path.strip_prefix("/snippets/").map(str::parse);
    match (request.method(), path, id) {
        (&Method::POST, "/snippets", _) => create(request, app).await,
        (&Method::PUT, _, Some(Ok(id))) => update(request, app, id).await,
        (&Method::GET, _, Some(Ok(id))) => match app.snippets.lock().unwrap().get(&id) {
            Some(content) => Ok(reply(StatusCode::OK, content.clone())),
            None => Ok(reply(StatusCode::NOT_FOUND, "no such snippet\n".into())),
        },
        _ => Ok(reply(StatusCode::NOT_FOUND, "no such route\n".into())),
    }
}

async fn create(request: Request<Incoming>, app: Arc<App>) -> Reply {
    let id = app.last_id.fetch_add(1, Ordering::Relaxed) + 1;
    // The audit task owns the body, as the first version wanted; it reads it once and hands
    // the handler its own handle on the bytes before it goes on to the slow audit.
    let body = request.into_body();
    let (read, upload) = tokio::sync::oneshot::channel();
    let audit = app.audit.clone();
    tokio::spawn(async move {
        let content = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                let _ = read.send(Err(error));
                return;
            }
        };
        let _ = read.send(Ok(content.clone()));
        send_to_audit(audit, id, content).await;
    });
    let content = upload.await.expect("the reading task always answers")?;
    app.snippets.lock().unwrap().insert(id, content);

    Ok(reply(StatusCode::CREATED, format!("{id}\n").into()))
}

async fn update(request: Request<Incoming>, app: Arc<App>, id: u64) -> Reply {
    let content = request.into_body().collect().await?.to_bytes();
    match app.snippets.lock().unwrap().get_mut(&id) {
        Some(stored) => *stored = content.clone(),
        None => return Ok(reply(StatusCode::NOT_FOUND, "no such snippet\n".into())),
    }

    let upload = content.clone();
    let audit = app.audit.clone();
    tokio::spawn(async move { send_to_audit(audit, id, upload).await });

    let receipt = format!("{} bytes\n", content.len());
    Ok(reply(StatusCode::OK, receipt.into()))
}

/// Hands one upload to the audit service.
async fn send_to_audit(audit: AuditLog, snippet: u64, content: Bytes) {
    let record = AuditRecord {
        snippet,
        content: content,
    };
    // The service being down must not fail the upload; compliance reconciles from its side.
    let _ = audit.send(record).await;
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}
