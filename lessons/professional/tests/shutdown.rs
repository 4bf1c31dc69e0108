//! Claims of the professional shutdown chapter, demonstrated.
//!
//! The whole order of `examples/shutdown_order.rs` runs on real sockets with the real clock.
//! What a drain does to a connection that has sent nothing, or only part of a request head,
//! runs on in-memory connections and the paused clock, where "still pending after an hour"
//! costs nothing.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use harness::counting::{CountingIo, pipe};
use harness::duplex::PIPE_BYTES;
use harness::leak::Gauge;
use harness::server::H1Connection;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;

#[allow(dead_code)]
#[path = "../examples/shutdown_order.rs"]
mod example;

use example::{Deadlines, Events, run};

const DEADLINE: Duration = Duration::from_secs(10);
const HANG: &str = "the shutdown never finished: is a connection or a worker still waiting?";

/// The request's work, held until the test releases it; counted while it runs.
#[derive(Clone)]
struct Held {
    running: Gauge,
    release: Arc<Semaphore>,
}

impl Held {
    fn new() -> Self {
        Self {
            running: Gauge::new(),
            release: Arc::new(Semaphore::new(0)),
        }
    }

    fn work(&self) -> impl Fn() -> futures::future::BoxFuture<'static, ()> + Clone + use<> {
        let held = self.clone();
        move || {
            let held = held.clone();
            Box::pin(async move {
                let _running = held.running.guard();
                held.release.acquire().await.unwrap().forget();
            })
        }
    }
}

/// Starts the example's `run` on a real socket; returns its address, trigger and task.
async fn start(
    held: &Held,
    drain: Duration,
    events: &Events,
) -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, signal) = oneshot::channel::<()>();
    let deadlines = Deadlines {
        drain,
        workers: DEADLINE,
    };
    let server = tokio::spawn(run(
        listener,
        async {
            let _ = signal.await;
        },
        deadlines,
        held.work(),
        events.clone(),
    ));
    (addr, trigger, server)
}

fn position(lines: &[String], line: &str) -> usize {
    lines
        .iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no {line:?} in {lines:#?}"))
}

#[test]
fn shutdown_runs_accept_drain_queue_workers_flush_in_that_order() {
    check(HANG).real(|| async {
        let (held, events) = (Held::new(), Events::default());
        let (addr, trigger, server) = start(&held, DEADLINE, &events).await;
        let mut conn = H1Connection::handshake(TcpStream::connect(addr).await.unwrap()).await;
        let request = tokio::spawn(async move { conn.get("/orders").await });
        assert!(held.running.reaches_started(1, DEADLINE).await);

        trigger.send(()).unwrap();
        held.release.add_permits(1);
        let response = request
            .await
            .unwrap()
            .expect("the request in flight was cut");
        assert_eq!(response.text(), "order placed\n");
        server.await.unwrap();

        let lines = events.lines();
        let at = |line: &str| position(&lines, line);
        assert!(at("stopped accepting") < at("connections drained"));
        // The line the drained request queued is written before the queue reports closed...
        assert!(at("audit: order /orders") < at("audit queue closed after 1 lines"));
        // ...which only happens once HTTP is over: the connections held the last `Sender`.
        assert!(at("connections drained") < at("audit queue closed after 1 lines"));
        assert!(at("connections drained") < at("metrics: last report"));
        assert_eq!(lines.last().unwrap(), "flushed, exiting");
    });
}

#[test]
fn a_request_cut_at_the_deadline_never_runs_the_code_after_its_await() {
    check(HANG).real(|| async {
        let (held, events) = (Held::new(), Events::default());
        let (addr, trigger, server) = start(&held, Duration::from_millis(100), &events).await;
        let mut conn = H1Connection::handshake(TcpStream::connect(addr).await.unwrap()).await;
        let request = tokio::spawn(async move { conn.get("/orders").await });
        assert!(held.running.reaches_started(1, DEADLINE).await);

        // Never released: the drain deadline passes with the request still running.
        trigger.send(()).unwrap();
        server.await.unwrap();

        assert!(
            request.await.unwrap().is_err(),
            "a cut request gets no response"
        );
        assert_eq!(held.running.live(), 0, "the handler future was dropped");
        let lines = events.lines();
        assert!(lines.contains(&"drain deadline: cutting 1".to_owned()));
        // The audit line the handler would have queued after its work is lost, not delayed.
        assert!(lines.contains(&"audit queue closed after 0 lines".to_owned()));
        assert_eq!(lines.last().unwrap(), "flushed, exiting");
    });
}

// ---- Silent and half-started connections during a drain (paused clock, in-memory) ----

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from("hello\n"))))
}

/// Serves one in-memory connection built by `serve`, watched by a `GracefulShutdown`; the
/// client sends `first_bytes` and then nothing, holding its end open. Once the server has read
/// those bytes, the drain starts. Returns how long the drain took in virtual time, or `None`
/// if it was still waiting after an hour.
async fn drain_time<C>(
    serve: impl FnOnce(TokioIo<CountingIo>) -> C,
    first_bytes: &[u8],
) -> Option<Duration>
where
    C: GracefulConnection + Send + 'static,
{
    let (mut client, server, read) = pipe(PIPE_BYTES);
    let graceful = GracefulShutdown::new();
    let connection = graceful.watch(serve(TokioIo::new(server)));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client.write_all(first_bytes).await.unwrap();
    // Let the connection task run until it has read everything the client sent (nothing, for a
    // silent client: then one turn is enough for it to have started).
    tokio::task::yield_now().await;
    while read.get() < first_bytes.len() {
        tokio::task::yield_now().await;
    }

    let started = Instant::now();
    let drained = tokio::time::timeout(Duration::from_secs(3600), graceful.shutdown()).await;
    drop(client);
    drained.ok().map(|()| started.elapsed())
}

fn http1_conn(io: TokioIo<CountingIo>) -> impl GracefulConnection<Error = hyper::Error> + Send {
    http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(io, service_fn(hello))
}

fn auto_conn(
    io: TokioIo<CountingIo>,
    header_timeout: Option<Duration>,
) -> impl GracefulConnection + Send {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if let Some(limit) = header_timeout {
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limit);
    }
    builder.serve_connection(io, service_fn(hello)).into_owned()
}

fn http2_conn(io: TokioIo<CountingIo>) -> impl GracefulConnection + Send {
    http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .serve_connection(io, service_fn(hello))
}

const ZERO: Option<Duration> = Some(Duration::ZERO);

// ANCHOR: silent
#[test]
fn a_silent_connection_is_closed_at_once_by_http1_and_by_the_auto_builder() {
    check(HANG).paused(|| async {
        // hyper#2730, fixed in hyper 1.x: a connection that has seen no byte is closed.
        assert_eq!(drain_time(http1_conn, b"").await, ZERO);
        // hyper#3576 / hyper-util#101: the auto builder was stuck reading the version.
        assert_eq!(drain_time(|io| auto_conn(io, None), b"").await, ZERO);
    });
}

#[test]
fn a_silent_connection_holds_the_drain_forever_on_the_http2_builder() {
    check(HANG).paused(|| async {
        // Still waiting for the client's preface, the shutdown is only noted for later.
        assert_eq!(drain_time(http2_conn, b"").await, None);
    });
}

#[test]
fn a_half_sent_head_holds_the_drain_until_the_header_timeout() {
    check(HANG).paused(|| async {
        let head = b"GET /orders HTTP/1.1\r\nhost: shop\r\n";
        // A request that has started is allowed to finish: without a timer, forever.
        assert_eq!(drain_time(|io| auto_conn(io, None), head).await, None);
        let five = Duration::from_secs(5);
        assert_eq!(
            drain_time(|io| auto_conn(io, Some(five)), head).await,
            Some(five)
        );
        // hyper's own HTTP/1 builder with a timer and no explicit setting: the default 30 s.
        let default = Duration::from_secs(30);
        assert_eq!(drain_time(http1_conn, head).await, Some(default));
    });
}
// ANCHOR_END: silent

/// What `main` returning does to a task nobody waited for: the runtime is dropped, and the
/// task is dropped at its pending `.await`. Its `Drop` code runs; the code after never does.
#[test]
fn a_task_left_when_the_runtime_is_dropped_is_dropped_at_its_await() {
    let alive = Gauge::new();
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (guard, done) = (alive.guard(), Arc::clone(&finished));
    runtime.block_on(async move {
        tokio::spawn(async move {
            let _guard = guard;
            // A retry loop, a report upload: anything still waiting when `main` returns.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        tokio::task::yield_now().await;
    });
    assert_eq!(alive.live(), 1, "the task is still pending");

    drop(runtime);
    assert_eq!(alive.live(), 0, "dropping the runtime dropped the task");
    assert!(!finished.load(std::sync::atomic::Ordering::SeqCst));
}
