//! Checks for X05: the spec in README.md, one check per clause, black-box: they see only
//! `serve`, its `Config`, the `Store` and the connections.
//!
//! One check runs `serve` on a real `TcpListener` on 127.0.0.1. The others run it on the
//! paused clock, on a listener of the checks' own that hands it in-memory connections: a
//! grace period of 3 s or a deadline of 10 s then costs no real time, "at once" means before
//! the clock moved, and the runtime is single-threaded, so its count of alive tasks is exact.

use std::io;
use std::time::Duration;

use harness::TestResponse;
use harness::counting::{self, BytesRead, CountingIo};
use harness::duplex::PIPE_BYTES;
use harness::server::{H1Connection, TestServer, request};
use harness::watchdog::check;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpListener;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use x05_capstone::{COMMIT_TIME, Config, Listener, Store, serve};

const HANG: &str = "the check stopped making progress; does the service block the runtime (a \
                    std lock held across an .await, a busy loop) instead of awaiting?";

/// The spec's numbers as the checks set them.
fn config() -> Config {
    Config {
        header_timeout: HEADER_TIMEOUT,
        max_body_bytes: MAX_BODY,
        max_in_flight: MAX_IN_FLIGHT,
        request_deadline: DEADLINE,
        shutdown_grace: GRACE,
    }
}
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BODY: usize = 64 * 1024;
const MAX_IN_FLIGHT: usize = 2;
const DEADLINE: Duration = Duration::from_secs(10);
const GRACE: Duration = Duration::from_secs(3);
/// How far from a deadline of the spec an event still counts as "at the deadline".
const SLACK: Duration = Duration::from_secs(1);
/// Long enough for anything the service could still do; bounded, so a request that is never
/// answered fails its check instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(120);

/// Any byte stream a connection can run over.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The checks' listen socket. In memory, the checks play the kernel and hand `serve` one
/// connection per client; once `serve` drops it, new clients are refused, as by a closed
/// socket. Every connection is boxed, TCP ones too, so that the checks compile `serve` for one
/// listener type: the learner's every edit recompiles it here.
enum TestListener {
    Memory(mpsc::Receiver<Box<dyn Io>>),
    Tcp(TcpListener),
}

impl Listener for TestListener {
    type Io = Box<dyn Io>;

    async fn accept(&mut self) -> io::Result<Box<dyn Io>> {
        match self {
            TestListener::Memory(backlog) => match backlog.recv().await {
                Some(io) => Ok(io),
                // The check sends no more clients: a quiet port, forever.
                None => std::future::pending().await,
            },
            TestListener::Tcp(listener) => Ok(Box::new(TcpListener::accept(listener).await?.0)),
        }
    }
}

/// `serve` running on its own task, with its listen socket, its store and its signal.
struct Running {
    backlog: mpsc::Sender<Box<dyn Io>>,
    signal: Option<oneshot::Sender<()>>,
    /// `serve`; yields the instant it returned.
    task: JoinHandle<Instant>,
    store: Store,
}

fn start() -> Running {
    let (backlog, incoming) = mpsc::channel(16);
    let (signal, signalled) = oneshot::channel::<()>();
    let store = Store::default();
    let listener = TestListener::Memory(incoming);
    let (for_serve, config) = (store.clone(), config());
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = signalled.await;
        };
        serve(listener, config, for_serve, shutdown).await;
        Instant::now()
    });
    Running {
        backlog,
        signal: Some(signal),
        task,
        store,
    }
}

impl Running {
    /// Hands `io` to the listener: `false` if the client was refused (the listener is gone).
    fn offer(&self, io: impl Io + 'static) -> bool {
        match self.backlog.try_send(Box::new(io)) {
            Ok(()) => true,
            Err(TrySendError::Closed(_)) => false,
            Err(TrySendError::Full(_)) => panic!("the check filled the service's backlog"),
        }
    }

    fn begin_shutdown(&mut self) {
        let _ = self.signal.take().expect("shutdown begins once").send(());
    }

    /// When `serve` returned, if it did within `limit`.
    async fn returns_within(&mut self, limit: Duration) -> Option<Instant> {
        match timeout(limit, &mut self.task).await {
            Ok(returned) => Some(returned.expect("`serve` panicked")),
            Err(_) => None,
        }
    }

    /// A new client's raw byte stream, or `None` if it was refused.
    fn try_connect(&self) -> Option<DuplexStream> {
        let (client, server) = tokio::io::duplex(PIPE_BYTES);
        self.offer(server).then_some(client)
    }

    /// A new client's raw byte stream; every client before shutdown must be accepted.
    fn connect_raw(&self) -> DuplexStream {
        self.try_connect()
            .expect("the service refused a client before shutdown began")
    }

    /// A new HTTP/1 client connection.
    async fn connect(&self) -> H1Connection {
        H1Connection::handshake(self.connect_raw()).await
    }

    /// `GET path` on a new connection, in the background: the answer and when it came.
    async fn get_in_background(
        &self,
        path: &'static str,
    ) -> JoinHandle<(hyper::Result<TestResponse>, Instant)> {
        let mut client = self.connect().await;
        tokio::spawn(async move {
            let answer = client.get(path).await;
            (answer, Instant::now())
        })
    }
}

/// Lets every task run until all of them wait on a timer or a client: afterwards the service
/// has accepted every connection offered so far and each request has reached its handler.
async fn let_the_service_catch_up() {
    sleep(Duration::from_millis(1)).await;
}

/// Alive tasks on this (single-threaded) runtime.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Waits, on the paused clock, until at most `baseline` tasks are alive; whether that
/// happened within `within`. No event announces that a task ended, so it looks every
/// virtual millisecond: that costs no real time, and the verdict does not depend on speed.
async fn alive_tasks_settle_to(baseline: usize, within: Duration) -> bool {
    timeout(within, async {
        while alive_tasks() > baseline {
            sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .is_ok()
}

/// Waits until `done` holds, looking every virtual millisecond; whether it did within `within`.
async fn eventually(within: Duration, done: impl Fn() -> bool) -> bool {
    timeout(within, async {
        while !done() {
            sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .is_ok()
}

/// Waits for a background request's answer.
async fn answered(
    request: JoinHandle<(hyper::Result<TestResponse>, Instant)>,
    what: &str,
) -> (TestResponse, Instant) {
    let (answer, at) = timeout(PATIENCE, request)
        .await
        .unwrap_or_else(|_| panic!("{what} was not answered within {PATIENCE:?}"))
        .expect("the client task does not panic");
    let response = answer.unwrap_or_else(|error| {
        panic!("{what}: the service closed the connection without an answer ({error})")
    });
    (response, at)
}

/// How many bytes of an oversized body the service may read before it refuses: the limit, and
/// what hyper reads ahead of the handler into its buffer (at most about 400 KiB by default).
const READ_AHEAD: usize = 512 * 1024;
/// An oversized upload: 32 times the limit.
const FLOOD: usize = 2 * 1024 * 1024;

/// `POST /items` with a body of `size` bytes, as it goes on the wire.
fn upload(size: usize, chunked: bool) -> Vec<u8> {
    let mut wire = b"POST /items HTTP/1.1\r\nhost: stockroom.test\r\n".to_vec();
    if chunked {
        wire.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
        for chunk in vec![b'x'; size].chunks(16 * 1024) {
            wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
    } else {
        wire.extend_from_slice(format!("content-length: {size}\r\n\r\n").as_bytes());
        wire.resize(wire.len() + size, b'x');
    }
    wire
}

/// Writes `wire` from a task of its own (a service that answers before reading it all must
/// not be stuck behind a client stuck in a write), and reads the status of the answer: `None`
/// if the service closed the connection without one.
async fn status_of(stream: DuplexStream, wire: Vec<u8>) -> Option<u16> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    tokio::spawn(async move {
        let _ = writer.write_all(&wire).await;
        // Keep the write half open: a sent upload must not look like a client leaving.
        std::future::pending::<()>().await;
    });
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let text = String::from_utf8_lossy(&received);
        if let Some((head, _)) = text.split_once("\r\n\r\n") {
            return head.split(' ').nth(1)?.parse().ok();
        }
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Routes, on a real `TcpListener`: what the service does when nothing goes wrong.
#[test]
fn routes_answer_as_documented() {
    check(HANG).real(|| async {
        let store = Store::default();
        let for_server = store.clone();
        let server = TestServer::start(move |listener| {
            let listener = TestListener::Tcp(listener);
            serve(listener, config(), for_server, std::future::pending())
        })
        .await;
        let mut client = server.connect().await;
        let mut send = async |method: &str, path: &str, body: &'static str| {
            let response = client
                .send(request(method, path, body))
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: the connection failed ({e})"));
            (response.status.as_u16(), response.text())
        };

        let (status, body) = send("GET", "/healthz", "").await;
        assert_eq!((status, body.trim()), (200, "ok"), "GET /healthz");
        let (status, body) = send("POST", "/items", "blue widget, 40 mm").await;
        assert_eq!(
            status, 201,
            "POST /items answers 201 Created; it said {body:?}"
        );
        let id: u64 = body.trim().parse().unwrap_or_else(|_| {
            panic!("POST /items answers the new item's id as its body; it said {body:?}")
        });
        let (status, body) = send("GET", &format!("/items/{id}"), "").await;
        assert_eq!(
            (status, body.as_str()),
            (200, "blue widget, 40 mm"),
            "GET /items/{id} answers the description POST /items stored"
        );
        let (status, _) = send("GET", "/items/999", "").await;
        assert_eq!(status, 404, "GET /items/999, which was never stored");
        let (status, _) = send("GET", "/slow?ms=20", "").await;
        assert_eq!(status, 200, "GET /slow?ms=20, well within every limit");
        assert_eq!(store.committed(), 1, "one POST, one item in the store");
    });
}

/// Clause 1: a client that sends half a request head and goes quiet is cut off at the header
/// timeout, on its first request or on a later one of the same keep-alive connection.
#[test]
fn clause_1_a_half_sent_head_is_cut_off() {
    check(HANG).paused(|| async {
        let server = start();
        let mut client = server.connect_raw();
        // One whole request first: the connection is a keep-alive one that already has been
        // served, and its next head gets the same timeout as the first.
        client
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: stockroom.test\r\n\r\n")
            .await
            .expect("the service hung up before the client could send anything");
        let mut buf = [0; 1024];
        let mut received = Vec::new();
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            match timeout(SLACK, client.read(&mut buf)).await {
                Ok(Ok(n @ 1..)) => received.extend_from_slice(&buf[..n]),
                _ => panic!("a complete GET /healthz got no answer within a second"),
            }
        }
        client
            .write_all(b"GET /items/1 HTTP/1.1\r\nhost: stockroom.test\r\n")
            .await
            .expect("the service hung up after answering a keep-alive request");
        let started = Instant::now();
        let closed = timeout(HEADER_TIMEOUT + SLACK, async {
            while let Ok(1..) = client.read(&mut buf).await {}
        })
        .await;
        let after = started.elapsed();
        assert!(
            closed.is_ok(),
            "a keep-alive client was served one request, then sent half of its next request \
             head and went quiet; {:?} later (header timeout {:?}) the service still held the \
             connection open: no header timeout runs on a connection's later heads (hyper's \
             needs a timer on the builder; a deadline only until the first request is not \
             one), so a few thousand such clients hold the service's connections for ever",
            HEADER_TIMEOUT + SLACK,
            HEADER_TIMEOUT
        );
        assert!(
            after + SLACK >= HEADER_TIMEOUT,
            "the half-sent head was cut off after {after:?}, before the {HEADER_TIMEOUT:?} the \
             spec gives every client"
        );
    });
}

/// Clause 2: an oversized body is refused with 413 without being read, announced or not; a
/// body of exactly the limit is stored.
#[test]
fn clause_2_an_oversized_body_is_refused_unread() {
    check(HANG).paused(|| async {
        for (chunked, how) in [(false, "with content-length"), (true, "chunked")] {
            let server = start();
            let status = timeout(
                PATIENCE,
                status_of(server.connect_raw(), upload(MAX_BODY, chunked)),
            )
            .await
            .unwrap_or_else(|_| panic!("an upload of exactly the limit {how} was never answered"));
            assert_eq!(
                status,
                Some(201),
                "an upload {how} of exactly max_body_bytes ({MAX_BODY} bytes) is within the \
                 limit and must be stored with 201 (None: the connection was closed without an \
                 answer); the limit refuses what is over it, not what reaches it"
            );
            let (client, io, read): (DuplexStream, CountingIo, BytesRead) =
                counting::pipe(PIPE_BYTES);
            assert!(
                server.offer(io),
                "the service refused a client before shutdown"
            );
            let status = timeout(PATIENCE, status_of(client, upload(FLOOD, chunked)))
                .await
                .unwrap_or_else(|_| panic!("a 2 MiB upload {how} was never answered"));
            assert_eq!(
                status,
                Some(413),
                "a 2 MiB upload {how}, 32 times the {MAX_BODY}-byte limit, must be refused \
                 with 413 Payload Too Large (None: the connection was closed without an answer)"
            );
            let when_refused = read.get();
            sleep(Duration::from_secs(60)).await;
            let a_minute_later = read.get();
            assert!(
                a_minute_later <= MAX_BODY + READ_AHEAD,
                "the service refused a 2 MiB upload {how}, having read {when_refused} bytes of \
                 it, and {a_minute_later} a minute later: more than the limit and what hyper \
                 reads ahead ({READ_AHEAD}). A limit stops the reading; collecting first and \
                 checking afterwards, or draining the rest, reads what the limit is there to \
                 refuse"
            );
        }
    });
}

/// Clause 3: with `max_in_flight` requests in progress, one more is refused at once with 503
/// and `Retry-After`; the admitted ones finish, and capacity comes back.
#[test]
fn clause_3_overflow_is_refused_at_once() {
    check(HANG).paused(|| async {
        let server = start();
        // A keep-alive client, served once and idle since: a connection, not a request in
        // flight. The limit counts requests, on every route.
        let mut third = server.connect().await;
        let first = third.get("/items/1").await.expect("GET /items/1");
        assert_eq!(first.status, 404, "GET /items/1 before any item was stored");
        let mut busy = Vec::new();
        for _ in 0..MAX_IN_FLIGHT {
            busy.push(server.get_in_background("/slow?ms=1000").await);
        }
        let_the_service_catch_up().await;
        if let Some(refused) = busy.iter().position(JoinHandle::is_finished) {
            let (response, _) = answered(busy.remove(refused), "an early request").await;
            panic!(
                "one keep-alive connection was open and idle, and request {} of {MAX_IN_FLIGHT} \
                 (max_in_flight = {MAX_IN_FLIGHT}) was answered {} at once instead of being \
                 served: the limit counts connections, or slots a request never gave back, \
                 instead of the requests in flight",
                refused + 1,
                response.status
            );
        }

        let asked_at = Instant::now();
        let overflow = request("POST", "/items", "one crate too many");
        let answer = timeout(PATIENCE, third.send(overflow))
            .await
            .expect("the request over the limit was never answered");
        let took = asked_at.elapsed();
        let response = answer.unwrap_or_else(|error| {
            panic!(
                "the request over the limit got no answer, the connection was closed ({error}): \
                 a shed error (tower's `Overloaded`) reached hyper instead of becoming a 503"
            )
        });
        assert_eq!(
            (response.status.as_u16(), took),
            (503, Duration::ZERO),
            "{MAX_IN_FLIGHT} GET /slow requests were in progress (max_in_flight = \
             {MAX_IN_FLIGHT}) and one more, a POST /items, was answered {} after {took:?}. It \
             must be refused with 503 at once: a limit that queues holds the client for \
             nothing, a limit per connection never fills (HTTP/1 carries one request at a time \
             per connection), and a limit on some routes only lets the others through",
            response.status
        );
        let retry_after = response.header("retry-after");
        assert!(
            retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_some_and(|s| s > 0),
            "the 503 carries Retry-After {retry_after:?}; the spec wants a number of seconds, \
             so clients back off instead of retrying into the same overload"
        );
        for request in busy {
            let (response, _) = answered(request, "an admitted request").await;
            assert_eq!(
                response.status, 200,
                "a request admitted before the overflow must still be served"
            );
        }
        let later = server.get_in_background("/items/1").await;
        let (response, _) = answered(later, "a request after the burst").await;
        assert_eq!(
            response.status, 404,
            "the burst was over, and a new GET /items/1 (no such item: 404) was answered {}: a \
             refused or finished \
             request did not give its slot back",
            response.status
        );
    });
}

/// Clause 4: a request not answered within the deadline gets 504, and its work stops.
#[test]
fn clause_4_a_request_past_its_deadline_gets_504_and_its_work_stops() {
    check(HANG).paused(|| async {
        let server = start();
        let_the_service_catch_up().await;
        let baseline = alive_tasks();

        let mut client = server.connect().await;
        let asked_at = Instant::now();
        let answer = timeout(DEADLINE + PATIENCE, client.get("/slow?ms=3600000"))
            .await
            .expect("an hour-long request was still unanswered two minutes past the deadline");
        let took = asked_at.elapsed();
        let response = answer.unwrap_or_else(|error| {
            panic!(
                "a request past its deadline got no answer, the connection was closed \
                 ({error}): a timeout error reached hyper instead of becoming a 504"
            )
        });
        assert_eq!(
            response.status, 504,
            "a request of an hour, deadline {DEADLINE:?}, was answered {} after {took:?}; the \
             spec answers 504 Gateway Timeout at the deadline",
            response.status
        );
        assert!(
            took + SLACK >= DEADLINE && took <= DEADLINE + SLACK,
            "the 504 came after {took:?}; the deadline is {DEADLINE:?}"
        );
        client.close().await;
        assert!(
            alive_tasks_settle_to(baseline, SLACK).await,
            "the request got its 504 and its client left, yet {} task(s) more than before it \
             were still alive a second later: its work runs on (a spawned task whose handle \
             was timed out is detached, not cancelled)",
            alive_tasks() - baseline
        );

        // An upload that stalls half-way is a request not answered in time too.
        let mut uploader = server.connect_raw();
        uploader
            .write_all(b"POST /items HTTP/1.1\r\nhost: stockroom.test\r\ncontent-length: 20\r\n\r\nhalf a pal")
            .await
            .expect("the service hung up before the client could send its upload");
        let asked_at = Instant::now();
        let status = timeout(DEADLINE + PATIENCE, status_of(uploader, Vec::new()))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "a POST /items sent 10 of its 20 announced bytes and stalled; two minutes \
                     past the deadline ({DEADLINE:?}) it was still unanswered. The deadline \
                     covers the whole request, reading its body included, on every route"
                )
            });
        let took = asked_at.elapsed();
        assert!(
            status == Some(504) && took + SLACK >= DEADLINE && took <= DEADLINE + SLACK,
            "a POST /items sent 10 of its 20 announced bytes and stalled; it was answered \
             {status:?} after {took:?} (None: the connection was closed without an answer). The \
             deadline ({DEADLINE:?}) covers the whole request, reading its body included, on \
             every route: 504 at the deadline"
        );

        // Both requests that ran out of time gave their slots back: the limit admits as many
        // as it did before them.
        let mut after = Vec::new();
        for _ in 0..MAX_IN_FLIGHT {
            after.push(server.get_in_background("/slow?ms=1000").await);
        }
        for request in after {
            let (response, _) = answered(request, "a request after the deadlines").await;
            assert_eq!(
                response.status, 200,
                "two requests had run out of time (504), then {MAX_IN_FLIGHT} requests arrived \
                 together (max_in_flight = {MAX_IN_FLIGHT}) and one was answered {}: a request \
                 cut at its deadline did not give its slot back. A count decremented at the end \
                 of the request's future is skipped when the future is dropped; a permit (or a \
                 guard) held by the future is released however it ends",
                response.status
            );
        }
    });
}

/// Clause 5: a write whose body has arrived is committed in full, even if its client leaves.
#[test]
fn clause_5_an_accepted_write_survives_its_client() {
    check(HANG).paused(|| async {
        let server = start();
        let mut client = server.connect_raw();
        client
            .write_all(b"POST /items HTTP/1.1\r\nhost: stockroom.test\r\ncontent-length: 9\r\n\r\nred crate")
            .await
            .expect("the service hung up before the client could send its write");
        let store = server.store.clone();
        assert!(
            eventually(SLACK, || store.journaled() >= 1).await,
            "a POST /items was sent in full and no write began within a second"
        );
        // The client's network drops while the write is being committed.
        drop(client);
        assert!(
            eventually(COMMIT_TIME + SLACK, || store.committed() >= 1).await,
            "the client of a POST /items left while its write was being committed, and the \
             write never completed: journaled {}, committed {}. The commit ran inside the \
             request's future, which hyper drops when the client leaves; must-complete work \
             belongs to a task that outlives the request",
            store.journaled(),
            store.committed()
        );
        assert_eq!(
            (store.journaled(), store.get(1).as_deref()),
            (1, Some("red crate")),
            "one POST, so exactly one write, with the body that was sent"
        );
    });
}

/// Clause 6: on shutdown the service stops accepting and lets the requests in flight finish;
/// an idle keep-alive connection does not hold it up.
#[test]
fn clause_6_shutdown_stops_accepting_and_lets_requests_finish() {
    check(HANG).paused(|| async {
        const IN_FLIGHT: Duration = Duration::from_secs(1);
        let mut server = start();
        let in_flight = server.get_in_background("/slow?ms=1000").await;
        let mut idle = server.connect().await;
        let first = idle.get("/healthz").await.expect("GET /healthz");
        assert_eq!(first.status, 200, "GET /healthz");
        let_the_service_catch_up().await;

        server.begin_shutdown();
        let signalled_at = Instant::now();
        let_the_service_catch_up().await;
        let late = server.try_connect();
        assert!(
            late.is_none(),
            "a client connected after shutdown began and was accepted: the service still held \
             its listener. Stop accepting (drop the listener) as soon as shutdown begins, so \
             new clients are refused and go to another instance instead of waiting for one \
             that is leaving"
        );
        let returned = server.returns_within(GRACE + SLACK).await;
        let Some(returned) = returned else {
            panic!(
                "{:?} after the signal `serve` had not returned, with one 1 s request in flight \
                 and one idle keep-alive connection: connections are not told to finish (an \
                 idle one then waits for a next request for ever), or the drain has no deadline",
                GRACE + SLACK
            );
        };
        let (response, answered_at) = answered(in_flight, "the request in flight").await;
        assert_eq!(
            response.status, 200,
            "a 1 s request in flight when shutdown began must be served (grace {GRACE:?})"
        );
        assert!(
            answered_at <= returned,
            "the request in flight was answered after `serve` returned: in production the \
             process exits then, and its client never gets the answer"
        );
        // The last request ends about a second after the signal; nothing else may hold
        // shutdown up, so `serve` returns well before the grace period is over.
        let after = returned - signalled_at;
        assert!(
            after <= IN_FLIGHT + SLACK,
            "`serve` returned {after:?} after the signal, though the only request in flight \
             ended about {IN_FLIGHT:?} after it: the idle keep-alive connection held shutdown \
             up until the grace period ({GRACE:?}) closed it. Connections must be told to \
             finish (hyper's `graceful_shutdown`, which closes an idle one at once), not only \
             waited for"
        );
    });
}

/// Clause 6: whatever is still open at the end of the grace period is closed, and `serve`
/// returns: a request that would run for ten minutes and a preconnected client that never
/// sent a byte do not hold shutdown past it.
#[test]
fn clause_6_shutdown_ends_at_the_grace_period() {
    check(HANG).paused(|| async {
        let mut server = start();
        let stuck = server.get_in_background("/slow?ms=600000").await;
        let _silent = server.connect_raw();
        let_the_service_catch_up().await;

        server.begin_shutdown();
        let signalled_at = Instant::now();
        let Some(returned) = server.returns_within(GRACE + SLACK).await else {
            panic!(
                "{:?} after the signal `serve` had not returned (grace {GRACE:?}), with a \
                 ten-minute request in flight and a connection that never sent a byte: the \
                 drain waits with no deadline, so the deploy tool kills the process",
                GRACE + SLACK
            );
        };
        let after = returned - signalled_at;
        assert!(
            after + SLACK >= GRACE,
            "`serve` returned {after:?} after the signal, cutting off a request in flight \
             before the {GRACE:?} grace period was up"
        );
        let seen = timeout(SLACK, stuck).await;
        assert!(
            matches!(seen, Ok(Ok((Err(_), _)))),
            "the ten-minute request's connection was still open a second after `serve` \
             returned, or it was answered: at the end of the grace period the service closes \
             what remains"
        );
    });
}

/// Clause 7: when `serve` returns, every accepted write is committed and no task the service
/// started is alive.
#[test]
fn clause_7_nothing_outlives_serve() {
    check(HANG).paused(|| async {
        let baseline = alive_tasks();
        let mut server = start();
        let mut client = server.connect_raw();
        client
            .write_all(b"POST /items HTTP/1.1\r\nhost: stockroom.test\r\ncontent-length: 10\r\n\r\ngreen pipe")
            .await
            .expect("the service hung up before the client could send its write");
        let store = server.store.clone();
        assert!(
            eventually(SLACK, || store.journaled() >= 1).await,
            "a POST /items was sent in full and no write began within a second"
        );
        drop(client);
        // A second write is in flight: its head has arrived, its body is still on the way.
        let mut late_writer = server.connect_raw();
        late_writer
            .write_all(b"POST /items HTTP/1.1\r\nhost: stockroom.test\r\ncontent-length: 9\r\n\r\n")
            .await
            .expect("the service hung up before the client could send its write");
        let_the_service_catch_up().await;
        server.begin_shutdown();

        // Its body arrives during the grace period, once the first write is committed, and its
        // client leaves: the write was accepted while shutdown was under way.
        sleep(COMMIT_TIME * 2).await;
        late_writer
            .write_all(b"blue drum")
            .await
            .expect("the service closed a request in flight when shutdown began");
        assert!(
            eventually(SLACK, || store.journaled() >= 2).await,
            "a POST /items in flight when shutdown began got its body during the grace period, \
             and no write began within a second"
        );
        drop(late_writer);

        assert!(
            server.returns_within(GRACE + SLACK).await.is_some(),
            "`serve` did not return within {:?} of the signal, with no client connected",
            GRACE + SLACK
        );
        assert_eq!(
            (store.journaled(), store.committed()),
            (2, 2),
            "`serve` returned with a write accepted but not committed (journaled, committed): \
             the process exits then, and the write is lost. Shutdown waits for must-complete \
             work (a TaskTracker's `wait`) after the connections have drained, since a request \
             still in flight during the grace period can accept one more; and that work must \
             not be cut by the request"
        );
        assert!(
            alive_tasks_settle_to(baseline, Duration::from_millis(100)).await,
            "`serve` returned and {} task(s) it started were still alive 100 ms later: \
             something was spawned and never told to stop (a background loop, a connection, \
             a commit). In production the runtime's shutdown drops it wherever it is",
            alive_tasks() - baseline
        );
    });
}
