//! Checks for S02: auditors and clerks over in-memory connections on a paused clock. An
//! in-memory connection has buffers of a known size and no clock of its own, so "an auditor
//! who stopped reading" fills them for certain, and "the clerk waited five seconds" is five
//! virtual seconds that cost nothing and fire only once every task is stuck.

use std::time::Duration;

use harness::duplex;
use harness::server::request;
use harness::watchdog::check;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use s02_lock_over_write::{EXPORT_BUFFER, Journal, serve_connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HANG: &str = "the check never finished, even on the paused clock: is a task spinning \
                    without ever waiting (a loop around try_lock?)";

/// How many entries the journal holds: 12,000 more than the export's channel, so their export
/// (at least 1.4 MB) is far larger than every buffer between the export and an auditor who
/// does not read (the in-memory pipe's 64 KiB, hyper's write buffer of about 400 KiB, the
/// export's own channel, whatever its size). A production journal holds millions.
const ENTRIES: u64 = 12_000 + EXPORT_BUFFER as u64;

/// The largest export channel the checks accept, in lines: each export in progress may hold
/// that many lines in memory, and the checks build a journal larger than the channel.
const MAX_EXPORT_BUFFER: usize = 100_000;

/// How long a clerk waits for an entry to be accepted. An append takes microseconds; on the
/// paused clock these five seconds pass only once every task is waiting for something.
const CLERK_WAITS: Duration = Duration::from_secs(5);

/// How long the auditor in the first check has stopped reading when a clerk appends.
const AUDITOR_STALLED_FOR: Duration = Duration::from_secs(10);

/// How long the slow auditor stops reading: five minutes, a long VPN stall.
const STALL: Duration = Duration::from_secs(5 * 60);

const EXPORT_REQUEST: &[u8] = b"GET /export HTTP/1.1\r\nhost: workshop.test\r\n\r\n";

/// The export line of the `seq`-th entry of [`loaded_journal`].
fn expected_line(seq: u64) -> String {
    format!(
        "{{\"seq\":{seq},\"actor\":\"clerk-{}\",\"action\":\"{}\"}}",
        seq % 40,
        action(seq)
    )
}

/// What the `seq`-th clerk did: about a hundred bytes a line, so that the export is large in
/// bytes and still cheap in frames.
fn action(seq: u64) -> String {
    format!(
        "approved invoice {} of Northwind Traders for {}.00 EUR, net 30 days",
        4000 + seq,
        100 + seq % 900
    )
}

// `EXPORT_BUFFER` is a constant of the learner's crate, free to change: the assertion is there
// for the value they chose.
#[allow(clippy::assertions_on_constants)]
async fn loaded_journal() -> Journal {
    assert!(
        EXPORT_BUFFER <= MAX_EXPORT_BUFFER,
        "EXPORT_BUFFER is {EXPORT_BUFFER} lines: a channel that size is memory held by every \
         export in progress, and a journal of millions of entries outgrows any channel anyway. \
         The checks accept at most {MAX_EXPORT_BUFFER}, and always export more entries than \
         the channel holds"
    );
    let journal = Journal::default();
    for seq in 1..=ENTRIES {
        let appended = journal
            .append(&format!("clerk-{}", seq % 40), &action(seq))
            .await;
        assert_eq!(appended, seq, "entries are numbered from 1, in order");
    }
    journal
}

/// An auditor starts an export, reads its first line, and stops reading (a VPN that stalled,
/// a laptop put to sleep), keeping the connection open. Ten seconds later a clerk appends an
/// entry on another connection: it must be accepted, with its number, at once.
#[test]
fn a_clerk_can_append_while_an_auditor_stops_reading() {
    check(HANG).paused(|| async {
        let journal = loaded_journal().await;
        let for_auditor = journal.clone();
        let (mut auditor, _export) = duplex::raw(move |io| serve_connection(io, for_auditor));
        auditor.write_all(EXPORT_REQUEST).await.unwrap();

        // Read the response head and the first entry's line, then read nothing more.
        let mut seen = Vec::new();
        let started = tokio::time::timeout(CLERK_WAITS, async {
            loop {
                let text = String::from_utf8_lossy(&seen);
                if text.contains(&expected_line(1)) {
                    break;
                }
                let mut chunk = [0; 4096];
                let n = auditor.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the server closed the export before its first entry");
                seen.extend_from_slice(&chunk[..n]);
            }
        })
        .await;
        assert!(
            started.is_ok(),
            "an auditor asked for the export and did not get its first entry: the export must \
             stream the journal, starting with entry 1"
        );

        // The auditor's VPN stays stalled. On the paused clock, these ten seconds pass only
        // once every task is waiting: by then the export has filled every buffer on its way
        // and is stuck on its next line, whatever it did in between.
        tokio::time::sleep(AUDITOR_STALLED_FOR).await;

        let for_clerk = journal.clone();
        let (mut clerk, _clerk_side) =
            duplex::http1(move |io| serve_connection(io, for_clerk)).await;
        let appended = tokio::time::timeout(
            CLERK_WAITS,
            clerk.send(request("POST", "/entries", "clerk-7 refunded order 981")),
        )
        .await;
        let Ok(appended) = appended else {
            panic!(
                "an auditor stopped reading an export, and a clerk's append on another \
                 connection got no answer in {} s: the export holds the journal's lock while \
                 it waits for the auditor to read, and a client that does not read never \
                 gives it back",
                CLERK_WAITS.as_secs()
            );
        };
        let appended = appended.expect("the server closed the clerk's connection");
        assert_eq!(
            (appended.status.as_u16(), appended.text()),
            (201, format!("{}\n", ENTRIES + 1)),
            "a clerk's append must be accepted (201, with its number), not turned away while \
             an export is in progress: auditors export daily, and the back office cannot stop \
             for them"
        );

        // A second auditor starts an export while the first is still stalled: theirs must
        // start too, with its head and entry 1.
        let for_second = journal.clone();
        let (mut second, _second_export) = duplex::raw(move |io| serve_connection(io, for_second));
        second.write_all(EXPORT_REQUEST).await.unwrap();
        let mut seen = Vec::new();
        let started = tokio::time::timeout(CLERK_WAITS, async {
            while !String::from_utf8_lossy(&seen).contains(&expected_line(1)) {
                let mut chunk = [0; 4096];
                let n = second.read(&mut chunk).await.unwrap();
                assert!(
                    n > 0,
                    "the server closed the second export before its first entry"
                );
                seen.extend_from_slice(&chunk[..n]);
            }
        })
        .await;
        assert!(
            started.is_ok(),
            "while one auditor had stopped reading an export, a second auditor asked for the \
             export and got no first entry in {} s (it got {} bytes): the stalled export still \
             holds the journal's lock while it waits for its auditor, so every other export \
             (and anything else that needs the lock) waits with it",
            CLERK_WAITS.as_secs(),
            seen.len()
        );
        drop(second);
        drop(auditor);
    });
}

/// An auditor reads a thousand lines and stalls for five minutes, while a clerk appends an
/// entry; then the auditor reads on. The export must hold every entry that existed when it
/// started, once each, in order, and nothing appended after it started.
#[test]
fn a_slow_auditor_gets_the_whole_journal() {
    check(HANG).paused(|| async {
        let journal = loaded_journal().await;
        let clerk = journal.clone();
        let mut appended = None;
        let (io, _server) = duplex::raw(move |io| serve_connection(io, journal));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .expect("HTTP/1 client handshake");
        tokio::spawn(connection);
        let response = sender
            .send_request(request("GET", "/export", ""))
            .await
            .expect("the server closed the connection instead of answering");
        assert_eq!(response.status(), 200, "an export starts with 200 OK");

        let mut body = response.into_body();
        let mut text = String::new();
        let mut stalled = false;
        loop {
            if !stalled && text.matches('\n').count() >= 1000 {
                // The clerk's append runs on its own task: a fix that still holds the lock
                // during the stall delays it, which is the other check's business, not this one's.
                let clerk = clerk.clone();
                appended = Some(tokio::spawn(async move {
                    clerk.append("clerk-7", "refunded order 981").await
                }));
                tokio::time::sleep(STALL).await;
                stalled = true;
            }
            let Ok(frame) = tokio::time::timeout(CLERK_WAITS, body.frame()).await else {
                panic!(
                    "the export sent nothing for {} s and did not end either, after {} lines",
                    CLERK_WAITS.as_secs(),
                    text.matches('\n').count()
                );
            };
            let Some(frame) = frame else { break };
            let frame = frame.unwrap_or_else(|error| {
                panic!(
                    "the export broke off after {} lines ({error}): a slow auditor is still an \
                     auditor, and must get the whole journal however long it pauses",
                    text.matches('\n').count()
                )
            });
            if let Ok(data) = frame.into_data() {
                text.push_str(std::str::from_utf8(&data).expect("UTF-8 lines"));
            }
        }

        let appended = appended.expect("the export had fewer than 1000 lines");
        let Ok(appended) = tokio::time::timeout(CLERK_WAITS, appended).await else {
            panic!(
                "the export ended, and the clerk's append made during the auditor's pause was \
                 still not accepted {} s later",
                CLERK_WAITS.as_secs()
            );
        };
        assert_eq!(
            appended.unwrap(),
            ENTRIES + 1,
            "the journal held {ENTRIES} entries: the clerk's append must get the next number"
        );

        let lines: Vec<&str> = text.lines().collect();
        for (seq, line) in (1..=ENTRIES).zip(&lines) {
            assert_eq!(
                *line,
                expected_line(seq),
                "line {seq} of the export is not entry {seq}: an export must hold every entry, \
                 once each, in order"
            );
        }
        assert!(
            lines.len() as u64 >= ENTRIES,
            "the journal held {ENTRIES} entries when the export started, and the export ended \
             after {} lines: after a {}-minute pause the auditor must still get every one of \
             them",
            lines.len(),
            STALL.as_secs() / 60
        );
        assert_eq!(
            lines.len() as u64,
            ENTRIES,
            "the journal held {ENTRIES} entries when the export started; a clerk appended entry \
             {} during the auditor's pause, and the export included it. An export is the \
             journal as it stood when the export started: one that follows appends as they come \
             is never finished while the clerks are busy",
            ENTRIES + 1
        );
    });
}
