//! Checks for J05 on a real server on loopback: many clients on their own TCP connections at
//! once, all writing to and reading from the one shared cache. A race between two writers
//! shows on a real server only now and then, so those races are left to the loom models in
//! `tests/loom.rs`, which try every interleaving.

use std::time::Duration;

use harness::server::{H1Connection, TestServer, request};
use harness::watchdog::check;
use j05_shared_map::serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

const HANG: &str = "a request never got its answer; is one request holding the cache's lock \
                    while it waits for something else (a slow client's body, another lock)?";

/// How many clients write at the same time.
const CLIENTS: usize = 16;

async fn start() -> TestServer {
    TestServer::start(|listener| async move {
        let _ = serve(listener).await;
    })
    .await
}

/// `PUT /cache/{key}` with `value`; panics with a readable message unless it was stored.
async fn put(conn: &mut H1Connection, key: &str, value: &str) {
    let path = format!("/cache/{key}");
    let response = conn
        .send(request("PUT", &path, value.to_owned()))
        .await
        .unwrap_or_else(|error| {
            panic!(
                "PUT {path} got no response ({error}): the connection task died while storing \
                 the value; did the handler panic (an `unwrap` on `Arc::get_mut`, a poisoned \
                 lock)?"
            )
        });
    assert_eq!(response.status, 200, "PUT {path} must answer 200 `stored`");
}

/// `GET /cache/{key}`: `Some(value)` on a hit, `None` on a 404 miss.
async fn get(conn: &mut H1Connection, key: &str) -> Option<String> {
    let path = format!("/cache/{key}");
    let response = conn.get(&path).await.unwrap_or_else(|error| {
        panic!("GET {path} got no response ({error}): did the handler panic?")
    });
    match response.status.as_u16() {
        200 => Some(response.text()),
        404 => None,
        other => panic!("GET {path} answered {other}; expected 200 (hit) or 404 (miss)"),
    }
}

/// Every client stores its own key concurrently; afterwards every key is there.
async fn write_concurrently(server: &TestServer) {
    let mut writers = JoinSet::new();
    for client in 0..CLIENTS {
        let mut conn = server.connect().await;
        writers.spawn(async move {
            put(
                &mut conn,
                &format!("key-{client}"),
                &format!("value-{client}"),
            )
            .await;
        });
    }
    while let Some(done) = writers.join_next().await {
        if let Err(error) = done {
            std::panic::resume_unwind(error.into_panic());
        }
    }
}

/// A value stored on one connection is read back on the same one and on another.
#[test]
fn reads_see_earlier_writes() {
    check(HANG).real(|| async {
        let server = start().await;
        let mut writer = server.connect().await;
        let mut reader = server.connect().await;
        assert_eq!(
            get(&mut reader, "colour").await,
            None,
            "nothing is cached yet"
        );

        put(&mut writer, "colour", "blue").await;
        assert_eq!(
            get(&mut writer, "colour").await.as_deref(),
            Some("blue"),
            "a value stored by PUT must be there for the next GET; the handler wrote to a \
             copy of the cache that nobody else sees (`Arc::make_mut` clones a shared map)"
        );
        assert_eq!(
            get(&mut reader, "colour").await.as_deref(),
            Some("blue"),
            "another connection must see the stored value: there is one cache per server"
        );

        put(&mut reader, "colour", "green").await;
        assert_eq!(
            get(&mut writer, "colour").await.as_deref(),
            Some("green"),
            "a second PUT replaces the value, for every connection"
        );
    });
}

/// Sixteen clients store sixteen keys at the same time: no write is lost.
#[test]
fn concurrent_writes_are_all_kept() {
    check(HANG).real(|| async {
        let server = start().await;
        write_concurrently(&server).await;

        let mut conn = server.connect().await;
        let mut missing = Vec::new();
        for client in 0..CLIENTS {
            let key = format!("key-{client}");
            match get(&mut conn, &key).await {
                Some(value) if value == format!("value-{client}") => {}
                Some(value) => panic!("{key} holds {value:?}, another client's value"),
                None => missing.push(key),
            }
        }
        assert!(
            missing.is_empty(),
            "{} of {CLIENTS} concurrent writes were lost: {missing:?}; every handler must \
             write to the one shared map, under a lock",
            missing.len()
        );
    });
}

/// Writes made one after another appear in the journal in that order, with their values, so
/// that replaying it (the last line for a key wins) rebuilds what the cache holds.
#[test]
fn journal_follows_the_order_of_writes() {
    check(HANG).real(|| async {
        let server = start().await;
        let mut conn = server.connect().await;
        put(&mut conn, "colour", "blue").await;
        put(&mut conn, "size", "large").await;
        put(&mut conn, "colour", "green").await;

        let journal = conn.get("/journal").await.expect("GET /journal").text();
        assert_eq!(
            journal.lines().collect::<Vec<_>>(),
            ["set colour blue", "set size large", "set colour green"],
            "three writes, one after another, must leave three `set {{key}} {{value}}` lines in \
             the order they were applied (an overwrite is a write too): the nightly backup \
             replays them in that order"
        );
        assert_eq!(
            get(&mut conn, "colour").await.as_deref(),
            Some("green"),
            "the cache holds the last value written, as replaying the journal would"
        );
    });
}

/// After sixteen concurrent writes, the journal has one intact line per write. Writes made at
/// the same moment have no order of their own, so the lines are compared as a set here; the
/// order is checked above for writes one after another, and by the loom models for two
/// writers at once.
#[test]
fn journal_records_every_write_once() {
    check(HANG).real(|| async {
        let server = start().await;
        write_concurrently(&server).await;

        let mut conn = server.connect().await;
        let journal = conn.get("/journal").await.expect("GET /journal").text();
        let mut lines: Vec<&str> = journal.lines().collect();
        lines.sort_unstable();
        let mut expected: Vec<String> = (0..CLIENTS)
            .map(|c| format!("set key-{c} value-{c}"))
            .collect();
        expected.sort_unstable();
        assert_eq!(
            lines, expected,
            "the journal must hold exactly one whole `set key-N value-N` line per stored value; \
             {CLIENTS} concurrent writes left this journal:\n{journal}"
        );
    });
}

/// A client uploading a value slowly must not hold up other clients' reads: the cache is
/// locked only while it is touched, not while a request body is still arriving.
#[test]
fn slow_upload_does_not_block_readers() {
    const BLOCKED: &str = "a GET waited for an upload whose body had not arrived yet: the PUT \
                           handler holds the cache's lock across the `.await` that reads the \
                           body; read the body first, then lock";
    check(BLOCKED)
        .limit(Duration::from_secs(10))
        .real(|| async {
            let server = start().await;
            let mut reader = server.connect().await;
            put(&mut reader, "colour", "blue").await;

            // The uploader sends its headers and asks for permission to send the body. hyper
            // answers `100 Continue` only once the handler starts reading the body, so after that
            // answer the PUT handler is running and waiting for bytes that we hold back.
            let mut uploader = TcpStream::connect(server.addr()).await.expect("connecting");
            uploader
                .write_all(
                    b"PUT /cache/slow HTTP/1.1\r\nhost: workshop.test\r\n\
                  content-length: 10\r\nexpect: 100-continue\r\n\r\n",
                )
                .await
                .expect("sending the upload's headers");
            let interim = read_head(&mut uploader).await;
            assert!(
                interim.starts_with("HTTP/1.1 100 Continue"),
                "the server must start reading the upload's body (answering `100 Continue`), \
             it answered: {interim:?}"
            );

            // The handshake: this read must be answered while the upload is still unfinished. If
            // the upload holds the cache's lock while it waits for its body, this never returns
            // and the watchdog reports the hang.
            assert_eq!(
                get(&mut reader, "colour").await.as_deref(),
                Some("blue"),
                "the value stored before the upload started must still be readable"
            );

            uploader
                .write_all(b"half-done!")
                .await
                .expect("sending the upload's body");
            let answer = read_head(&mut uploader).await;
            assert!(
                answer.starts_with("HTTP/1.1 200"),
                "the slow upload must be stored too; the server answered: {answer:?}"
            );
            assert_eq!(
                get(&mut reader, "slow").await.as_deref(),
                Some("half-done!"),
                "the slow upload's value must be readable once it is stored"
            );
        });
}

/// Reads one response head (up to the blank line) from a raw connection.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}
