//! Checks for S04: vans upload records on a paused clock, over in-memory connections or
//! through a scripted reader (tokio-test's `io::Builder`), with pauses that split records at
//! chosen bytes. Virtual time makes a ten-minute pause in a tunnel cost nothing, and puts many
//! flush ticks inside it, at instants the check knows.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use harness::duplex;
use harness::server::request;
use harness::watchdog::check;
use s04_select_frames::{FLUSH_EVERY, Store, ingest, serve_connection};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, DuplexStream, ReadBuf};

const HANG: &str = "the check never got past waiting on the upload; does the ingest loop wait \
                    for something that never comes?";

/// How long a van goes quiet in the middle of a record (a tunnel, a dead zone): ten minutes,
/// hundreds of flush ticks, far longer than any flush interval that keeps the map a second or
/// two behind. On the paused clock it costs no real time.
const PAUSE: Duration = Duration::from_secs(10 * 60);

/// How far behind the store may be: what has arrived must be written within this. The service
/// flushes every second; twice that leaves room for where a tick falls.
const FLUSHED_WITHIN: Duration = Duration::from_secs(2 * FLUSH_EVERY.as_secs());

/// Van 17's readings, as the dispatchers' map receives them.
fn readings(n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("van-17 52.{:04} 13.{:04}", 5200 + i, 4050 + 3 * i))
        .collect()
}

/// The body a van sends: each record as a big-endian `u16` length, then its bytes.
fn encode(records: &[String]) -> Vec<u8> {
    let mut body = Vec::new();
    for record in records {
        let len = u16::try_from(record.len()).expect("a short record");
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(record.as_bytes());
    }
    body
}

/// Where a pause splits a record, as a byte offset into the body of four records of
/// [`readings`], and how to say so.
fn cuts() -> [(&'static str, usize); 3] {
    let record = 2 + readings(1)[0].len();
    [
        ("after the first byte of a record's length", record + 1),
        ("between a record's length and its text", record + 2),
        ("in the middle of a record's text", record + 2 + 10),
    ]
}

/// A van's upload scripted read by read with tokio-test, handed to `ingest` as an owned
/// reader (`ingest` may move it into a task of its own). The check keeps a second handle, so the
/// script is dropped here, after the verdict: a script dropped with bytes left unread fails.
#[derive(Clone)]
struct Scripted(Arc<Mutex<tokio_test::io::Mock>>);

impl Scripted {
    fn new(script: &mut tokio_test::io::Builder) -> Self {
        Self(Arc::new(Mutex::new(script.build())))
    }
}

impl AsyncRead for Scripted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut script = self.0.lock().expect("the script's lock is never poisoned");
        Pin::new(&mut *script).poll_read(cx, buf)
    }
}

const HEAD: &[u8] =
    b"POST /ingest HTTP/1.1\r\nhost: workshop.test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";

/// One chunk of a chunked body.
fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
    chunk.extend_from_slice(bytes);
    chunk.extend_from_slice(b"\r\n");
    chunk
}

/// Starts a van's upload on a connection of its own: the head is sent, the body is to come.
async fn start_upload(store: &Store) -> (DuplexStream, duplex::ServerSide<hyper::Result<()>>) {
    let for_server = store.clone();
    let (mut van, server) = duplex::raw(move |io| serve_connection(io, for_server));
    van.write_all(HEAD).await.unwrap();
    (van, server)
}

/// Waits until the store holds at least `n` records, looking every ten virtual milliseconds:
/// `false` if it does not within [`FLUSHED_WITHIN`].
async fn store_reaches(store: &Store, n: usize) -> bool {
    tokio::time::timeout(FLUSHED_WITHIN, async {
        while store.records().len() < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .is_ok()
}

/// A van in good coverage sends forty readings in one go: all are stored, in order, in one or
/// two writes (the store bills per write).
#[test]
fn a_fast_upload_is_stored_in_few_writes() {
    check(HANG).paused(|| async {
        let store = Store::default();
        let for_server = store.clone();
        let (mut van, _server) = duplex::http1(move |io| serve_connection(io, for_server)).await;
        let sent = readings(40);
        let answer = van
            .send(request("POST", "/ingest", encode(&sent)))
            .await
            .expect("the server closed the connection instead of answering");
        assert_eq!(
            (answer.status.as_u16(), answer.text().as_str()),
            (200, "stored 40 records\n"),
            "a van sent 40 well-formed records in one body"
        );
        assert_eq!(
            store.records(),
            sent,
            "the store must hold the van's 40 readings, in order"
        );
        assert!(
            store.writes() <= 2,
            "40 records arrived at once, and the store billed {} writes for them: records are \
             written in batches, once a second and at the end, not one write per record",
            store.writes()
        );
    });
}

/// A reader scripted byte by byte: one record arrives in two reads with a ten-minute pause
/// between them, split at each of three places. Every record must come through whole.
#[test]
fn a_record_split_by_a_pause_comes_through_whole() {
    check(HANG).paused(|| async {
        let sent = readings(4);
        let body = encode(&sent);
        for (where_, cut) in cuts() {
            let van = Scripted::new(
                tokio_test::io::Builder::new()
                    .read(&body[..cut])
                    .wait(PAUSE)
                    .read(&body[cut..]),
            );
            let store = Store::default();
            let stored = ingest(van.clone(), &store).await;
            assert!(
                matches!(stored, Ok(4)),
                "the second of 4 records arrived in two parts, split {where_}, with {} minutes \
                 between them (hundreds of flush ticks), and ingest returned {stored:?}: the \
                 bytes of the record read before a tick were lost with the read the tick \
                 cancelled, and the next read took the bytes after them for a length",
                PAUSE.as_secs() / 60,
            );
            assert_eq!(
                store.records(),
                sent,
                "a record split {where_} must be stored whole, in order"
            );
        }
    });
}

/// A van starts its upload, sends three readings and half of a fourth a few seconds later, then
/// goes quiet in a tunnel: the three must reach the store within two seconds, without waiting
/// for the fourth.
#[test]
fn a_quiet_van_is_still_flushed() {
    check(HANG).paused(|| async {
        let store = Store::default();
        let (mut van, _server) = start_upload(&store).await;
        // The first readings come a few seconds into the upload, well after any tick that
        // fires as the upload starts: only a tick that keeps firing can write them in time.
        tokio::time::sleep(5 * FLUSH_EVERY).await;
        let body = encode(&readings(4));
        let (_, cut) = cuts()[2];
        let three_and_a_half = cut + 2 * (2 + readings(1)[0].len());
        van.write_all(&chunk(&body[..three_and_a_half]))
            .await
            .unwrap();
        assert!(
            store_reaches(&store, 3).await,
            "a van sent 3 whole records and half of a fourth, then went quiet; {} s later the \
             store holds {} record(s): the flush must run on its tick while a read is waiting, \
             not only when a record completes or the upload ends",
            FLUSHED_WITHIN.as_secs(),
            store.records().len()
        );
    });
}

/// A van in good coverage sends a reading every half second, for longer than the store may lag
/// behind: the store must still be written once a second, not only when the van goes quiet.
#[test]
fn a_van_reporting_steadily_is_flushed_every_second() {
    check(HANG).paused(|| async {
        const EVERY: Duration = Duration::from_millis(500);
        let sent = readings(12);
        // The first reading comes a few seconds into the upload, well after any tick that fires
        // as the upload starts; then one every half second, six seconds in all.
        let mut script = tokio_test::io::Builder::new();
        script.wait(5 * FLUSH_EVERY);
        for record in sent.chunks(1) {
            script.read(&encode(record)).wait(EVERY);
        }
        let van = Scripted::new(&mut script);
        let store = Store::default();
        let watch = async {
            tokio::time::sleep(5 * FLUSH_EVERY).await;
            store_reaches(&store, 1).await
        };
        let (stored, flushed_in_time) = tokio::join!(ingest(van.clone(), &store), watch);
        assert!(
            flushed_in_time,
            "a van sent a reading every half second; {} s after the first one the store held \
             none: a flush timer started afresh on every turn of the loop is pushed back by \
             each reading and never fires while the van keeps sending. The tick must keep its \
             own schedule, whatever arrives",
            FLUSHED_WITHIN.as_secs()
        );
        assert!(
            matches!(stored, Ok(12)),
            "the van sent 12 readings and ended its upload, and ingest returned {stored:?}"
        );
        assert_eq!(
            store.records(),
            sent,
            "every reading must be stored, in order"
        );
    });
}

/// A van in and out of tunnels, over HTTP: a chunked upload whose chunks split records at odd
/// places, ten minutes apart. The answer and the store's records are compared with a snapshot.
#[test]
fn a_van_on_a_bad_link_is_stored_whole() {
    check(HANG).paused(|| async {
        let store = Store::default();
        let (mut van, _server) = start_upload(&store).await;
        let body = encode(&readings(6));
        let mut from = 0;
        // A server that gave up on the upload has answered and closed: the writes after that
        // fail, and its answer is still there to read.
        for (_, cut) in cuts() {
            let _ = van.write_all(&chunk(&body[from..cut])).await;
            tokio::time::sleep(PAUSE).await;
            from = cut;
        }
        let _ = van.write_all(&chunk(&body[from..])).await;
        let _ = van.write_all(b"0\r\n\r\n").await;

        let mut answer = Vec::new();
        van.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        let (head, text) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head.lines().next().unwrap_or("(no answer)");
        let transcript = format!(
            "{status}\n{text}\nin the store:\n{}\n",
            store.records().join("\n")
        );
        insta::assert_snapshot!(transcript);
    });
}

/// Once an upload is over, whether it ended well or the van dropped off mid-record, nothing
/// the server started for it may still run.
#[test]
fn no_task_outlives_the_upload() {
    check(HANG).paused(|| async {
        // The paused runtime is this check's own and runs on this thread only, so its count
        // of alive tasks is exact.
        let runtime = tokio::runtime::Handle::current().metrics();
        let before = runtime.num_alive_tasks();
        let body = encode(&readings(3));
        for ending in ["ended its upload", "dropped off mid-record"] {
            let store = Store::default();
            let (mut van, server) = start_upload(&store).await;
            if ending == "ended its upload" {
                van.write_all(&chunk(&body)).await.unwrap();
                van.write_all(b"0\r\n\r\n").await.unwrap();
                let mut answer = Vec::new();
                van.read_to_end(&mut answer).await.unwrap();
            } else {
                van.write_all(&chunk(&body[..body.len() - 3]))
                    .await
                    .unwrap();
                tokio::time::sleep(FLUSH_EVERY * 3).await;
                drop(van);
            }
            let _ = server.task.await;
            let settled = tokio::time::timeout(FLUSHED_WITHIN, async {
                while runtime.num_alive_tasks() > before {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .is_ok();
            assert!(
                settled,
                "a van {ending} and its connection is over, yet {} task(s) the server started \
                 for it were still alive {} s later: a flusher that nothing stops ticks on for \
                 an upload that is gone",
                runtime.num_alive_tasks() - before,
                FLUSHED_WITHIN.as_secs()
            );
        }

        // The caller gives up on an upload still open (its own timeout, a shutdown): the
        // `ingest` future is dropped mid-record, with no error and no end of body to see.
        let (mut van, upload) = tokio::io::duplex(1024);
        van.write_all(&body[..body.len() - 3]).await.unwrap();
        let store = Store::default();
        let gave_up = tokio::time::timeout(FLUSH_EVERY * 3, ingest(upload, &store)).await;
        assert!(
            gave_up.is_err(),
            "the van's body is still open, yet ingest returned {gave_up:?}"
        );
        let settled = tokio::time::timeout(FLUSHED_WITHIN, async {
            while runtime.num_alive_tasks() > before {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok();
        assert!(
            settled,
            "the caller of ingest gave up and dropped its future while the van's body was still \
             open, yet {} task(s) it started were still alive {} s later: a task stopped only \
             on the way out of the loop, or one that ends only with the body, outlives an \
             ingest that is dropped instead of returning. Tie each task to the future (an \
             AbortOnDropHandle), or keep the work in it",
            runtime.num_alive_tasks() - before,
            FLUSHED_WITHIN.as_secs()
        );
        drop(van);
    });
}
