//! Checks for J04: a real server on loopback, sent real uploads over HTTP/1, with the audit
//! line read by the check. They run once the exercise compiles.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use harness::heap;
use harness::server::{H1Connection, TestServer, request};
use harness::watchdog::check;
use j04_body_ownership::{AuditLog, AuditRecord, serve};
use tokio::sync::mpsc::{Receiver, channel};

// Counts the heap per thread, for `uploads_are_given_back_once_audited`; the other checks do
// not look at it.
#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

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

/// Room on the audit line for every record a check produces, so that no send ever waits
/// unless a check holds the line on purpose.
const LINE: usize = 16;

/// How long a client may wait for its answer while the audit service is busy. Answering
/// takes milliseconds; only a handler that waits for the audit comes anywhere near it.
const ANSWER_DEADLINE: Duration = Duration::from_secs(10);

async fn start() -> (TestServer, Receiver<AuditRecord>) {
    let (audit, audited) = channel(LINE);
    (start_with(audit).await, audited)
}

async fn start_with(audit: AuditLog) -> TestServer {
    TestServer::start(|listener| async move {
        let _ = serve(listener, audit).await;
    })
    .await
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
    mut audited: Receiver<AuditRecord>,
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

/// An update reaches the audit exactly once, byte for byte. The creation's record is the
/// business of `created_snippet_is_audited_byte_for_byte`; apart from it, the audit must hold
/// the update's record and nothing else.
#[test]
fn updated_snippet_is_audited_byte_for_byte() {
    check(HANG).real(|| async {
        let (server, audited) = start().await;
        let mut conn = server.connect().await;
        let first = upload("first");
        let id = create(&mut conn, &first).await;
        let content = upload("second");
        update(&mut conn, id, &content).await;

        let records = everything_audited(conn, server, audited).await;
        let creation = AuditRecord {
            snippet: id,
            content: first,
        };
        let expected = AuditRecord {
            snippet: id,
            content: content.clone(),
        };
        let others: Vec<&AuditRecord> = records.iter().filter(|r| **r != creation).collect();
        assert!(
            others == [&expected],
            "an update of snippet {id} with {} bytes must reach the audit exactly once, with \
             those bytes; the audit received {} (the first entry for snippet {id} is its \
             creation). The spawned audit task must own its copy of the body: a `Bytes` clone, \
             not a reference to the handler's local",
            content.len(),
            summary(&records),
        );
    });
}

/// The audit service is slow, which is why uploads are audited in the background: the check
/// takes the audit line's only slot, so that every send on it waits, and both uploads must
/// still be answered. Then it lets the line go, and each upload must reach the audit exactly
/// once. Answers come in milliseconds; the deadline only ends a handler that waits for the
/// audit, which would otherwise wait forever.
#[test]
fn uploads_are_answered_while_the_audit_is_busy() {
    check(HANG).limit(Duration::from_secs(40)).real(|| async {
        let (audit, audited) = channel(1);
        // The line's only slot, taken: until `busy` is dropped, every send on the line waits.
        let busy = audit
            .clone()
            .reserve_owned()
            .await
            .expect("the line is open");
        let server = start_with(audit).await;
        let mut conn = server.connect().await;
        let first = upload("first");
        let id = answered(create(&mut conn, &first), "POST /snippets").await;
        let second = upload("second");
        answered(
            update(&mut conn, id, &second),
            &format!("PUT /snippets/{id}"),
        )
        .await;

        drop(busy);
        let records = everything_audited(conn, server, audited).await;
        for (version, content) in [("first", first), ("second", second)] {
            let record = AuditRecord {
                snippet: id,
                content,
            };
            let times = records.iter().filter(|r| **r == record).count();
            assert_eq!(
                times,
                1,
                "the {version} upload to snippet {id} reached the audit {times} times, not \
                 once; the audit received {}. The line was busy while the client was \
                 answered: an upload must then wait for the line in the background (a task \
                 that owns its `Bytes`), not be dropped because the line was full",
                summary(&records),
            );
        }
        assert_eq!(
            records.len(),
            2,
            "two uploads must produce two audit records; the audit received {}",
            summary(&records),
        );
    });
}

/// Waits for `reply` under [`ANSWER_DEADLINE`], and fails in the lesson's terms if it never
/// comes.
async fn answered<T>(reply: impl Future<Output = T>, what: &str) -> T {
    match tokio::time::timeout(ANSWER_DEADLINE, reply).await {
        Ok(value) => value,
        Err(_) => panic!(
            "{what} was not answered within {} s while the audit service was busy: the \
             client is waiting for the audit. The audit must run in the background (a \
             spawned task that owns its `Bytes`), so that a slow compliance service never \
             holds up an upload",
            ANSWER_DEADLINE.as_secs(),
        ),
    }
}

/// Rounds of `POST` and `PUT` in the memory check: an upload kept forever each time adds up to
/// megabytes, far above anything the runtime keeps for itself.
const ROUNDS: usize = 4;

/// Every upload is given back once it is stored, replaced and audited: after the server has
/// stopped and the audit records are dropped, the heap holds less than one upload more than
/// before. Leaking a copy of the upload (`Box::leak`, `String::leak`) to get the `'static`
/// borrow that `spawn` asks for keeps every upload until the process exits.
#[test]
fn uploads_are_given_back_once_audited() {
    check(HANG).run(|| {
        // Client, server and audit tasks all run on this one thread, so the thread's heap count
        // sees every allocation they make and nothing the other checks do.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a runtime");
        let kept = runtime.block_on(async {
            let before = heap::live_on_this_thread();
            let (server, audited) = start().await;
            let mut conn = server.connect().await;
            for round in 0..ROUNDS {
                let id = create(&mut conn, &upload(&format!("first {round}"))).await;
                update(&mut conn, id, &upload(&format!("second {round}"))).await;
            }
            drop(everything_audited(conn, server, audited).await);
            heap::live_on_this_thread() - before
        });
        let one_upload = i64::try_from(upload("first 0").len()).unwrap();
        assert!(
            kept < one_upload,
            "after {} uploads of about {one_upload} bytes, the server stopped and the audit \
             records dropped, {kept} bytes of heap were never given back: uploads are kept \
             forever. Leaking the upload (`Box::leak`, `String::leak`) gives the audit task a \
             `'static` borrow, but `'static` asks the task to own its data, not for data that is \
             never freed: give the task its own `Bytes` clone",
            2 * ROUNDS,
        );
    });
}
