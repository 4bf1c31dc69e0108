//! Checks for J04: a real server on loopback, sent real uploads over HTTP/1, with the audit
//! line read by the check. They run once the exercise compiles.

use bytes::Bytes;
use harness::server::{H1Connection, TestServer, request};
use harness::watchdog::check;
use j04_body_ownership::{AuditRecord, serve};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

const HANG: &str = "the check never got its answer, or the audit line never closed: is a request \
                    or a spawned audit task waiting for something that never happens?";

/// Uploads are large enough to arrive in many pieces, so reading only part of the body, or
/// reading it twice, cannot go unnoticed.
const UPLOAD_LINES: usize = 8_000;

/// A distinct multi-line upload for each `version`, about 300 KB.
fn upload(version: &str) -> Bytes {
    (1..=UPLOAD_LINES)
        .map(|line| format!("{version} line {line:05}: the quick brown fox\n"))
        .collect::<String>()
        .into()
}

async fn start() -> (TestServer, UnboundedReceiver<AuditRecord>) {
    let (audit, audited) = unbounded_channel();
    let server = TestServer::start(|listener| async move {
        let _ = serve(listener, audit).await;
    })
    .await;
    (server, audited)
}

/// Posts `content` and returns the new snippet's id.
async fn create(conn: &mut H1Connection, content: &Bytes) -> u64 {
    let created = conn
        .send(request("POST", "/snippets", content.clone()))
        .await
        .unwrap();
    assert_eq!(created.status, 201, "POST /snippets must create a snippet");
    created
        .text()
        .trim()
        .parse()
        .expect("POST /snippets answers the new id")
}

/// Replaces snippet `id` with `content` over `conn`.
async fn update(conn: &mut H1Connection, id: u64, content: &Bytes) {
    let path = format!("/snippets/{id}");
    let updated = conn
        .send(request("PUT", &path, content.clone()))
        .await
        .unwrap();
    assert_eq!(updated.status, 200, "PUT {path} must update the snippet");
}

/// Reads a snippet back and checks it is exactly `expected`.
async fn assert_stored(conn: &mut H1Connection, id: u64, expected: &Bytes, what: &str) {
    let stored = conn.get(&format!("/snippets/{id}")).await.unwrap();
    assert_eq!(stored.status, 200, "snippet {id} must exist after {what}");
    assert!(
        stored.body == *expected,
        "after {what}, snippet {id} holds {} bytes, but {} bytes were uploaded: the handler must \
         store the whole body it received, not an empty or partial one",
        stored.body.len(),
        expected.len(),
    );
}

/// Everything the audit line will ever receive: closes the client's connection, stops the
/// server, then reads until every sender is gone (every audit task has finished). No timing
/// involved: the line closes exactly when nothing can audit any more.
async fn everything_audited(
    conn: H1Connection,
    server: TestServer,
    mut audited: UnboundedReceiver<AuditRecord>,
) -> Vec<AuditRecord> {
    conn.close().await;
    server.shutdown().await;
    let mut records = Vec::new();
    while let Some(record) = audited.recv().await {
        records.push(record);
    }
    records
}

/// What the audit received, without dumping a quarter megabyte into the failure message.
fn summary(records: &[AuditRecord]) -> String {
    let lines: Vec<String> = records
        .iter()
        .map(|r| format!("snippet {}: {} bytes", r.snippet, r.content.len()))
        .collect();
    format!("[{}]", lines.join(", "))
}

/// A new snippet can be read back exactly as uploaded.
#[test]
fn created_snippet_reads_back_byte_for_byte() {
    check(HANG).real(|| async {
        let (server, _audited) = start().await;
        let mut conn = server.connect().await;
        let content = upload("first");
        let id = create(&mut conn, &content).await;
        assert_stored(&mut conn, id, &content, "POST /snippets").await;
    });
}

/// A new snippet reaches the audit exactly once, byte for byte.
#[test]
fn created_snippet_is_audited_byte_for_byte() {
    check(HANG).real(|| async {
        let (server, audited) = start().await;
        let mut conn = server.connect().await;
        let content = upload("first");
        let id = create(&mut conn, &content).await;

        let records = everything_audited(conn, server, audited).await;
        let expected = AuditRecord {
            snippet: id,
            content: content.clone(),
        };
        assert!(
            records == [expected],
            "one upload of {} bytes to snippet {id} must produce exactly one audit record with \
             those bytes; the audit received {}. The background task needs its own handle on \
             the whole body: read it once in the handler, then give the task a clone",
            content.len(),
            summary(&records),
        );
    });
}

/// After an update, the snippet reads back as the new content.
#[test]
fn updated_snippet_reads_back_byte_for_byte() {
    check(HANG).real(|| async {
        let (server, _audited) = start().await;
        let mut conn = server.connect().await;
        let id = create(&mut conn, &upload("first")).await;
        let content = upload("second");
        update(&mut conn, id, &content).await;
        assert_stored(&mut conn, id, &content, "PUT").await;
    });
}

/// An update reaches the audit exactly once, byte for byte.
#[test]
fn updated_snippet_is_audited_byte_for_byte() {
    check(HANG).real(|| async {
        let (server, audited) = start().await;
        let mut conn = server.connect().await;
        let id = create(&mut conn, &upload("first")).await;
        let content = upload("second");
        update(&mut conn, id, &content).await;

        let records = everything_audited(conn, server, audited).await;
        let updates = records
            .iter()
            .filter(|r| r.snippet == id && r.content == content)
            .count();
        assert_eq!(
            updates,
            1,
            "an update of snippet {id} with {} bytes must reach the audit exactly once, with \
             those bytes; the audit received {} (the first entry for snippet {id} is its \
             creation). The spawned audit task must own its copy of the body: a `Bytes` clone, \
             not a reference to the handler's local",
            content.len(),
            summary(&records),
        );
    });
}
