//! Claims of the graceful-shutdown chapter, demonstrated.
//!
//! The `serve` function of `examples/shutdown.rs` runs on real sockets with the real clock,
//! once in a real server process that receives SIGTERM; `GracefulShutdown` alone and the
//! background workers run on the paused clock.

use std::convert::Infallible;
use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use harness::duplex;
use harness::leak::Gauge;
use harness::server::H1Connection;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader, Lines};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[allow(dead_code)]
#[path = "../examples/shutdown.rs"]
mod example;

use example::{Stopped, audit_writer, metrics_flusher, serve};

const DEADLINE: Duration = Duration::from_secs(10);
const HANG: &str =
    "the server never finished shutting down: is something still waiting on a connection?";

/// A handler that counts itself live in `running` and answers only once the test releases it.
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

    async fn handle(self, _request: Request<Incoming>) -> Response<Full<Bytes>> {
        let _running = self.running.guard();
        self.release
            .acquire()
            .await
            .expect("the semaphore is never closed")
            .forget();
        Response::new(Full::new(Bytes::from("done\n")))
    }
}

/// Starts `serve` with a `Held` handler; returns the address, the trigger and the outcome.
async fn start(
    held: &Held,
    grace: Duration,
) -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Stopped>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, signal) = oneshot::channel::<()>();
    let held = held.clone();
    let server = tokio::spawn(serve(
        listener,
        move |request| held.clone().handle(request),
        async {
            let _ = signal.await;
        },
        grace,
    ));
    (addr, trigger, server)
}

/// Waits until connecting to `addr` is refused: the listener is gone.
async fn until_refused(addr: std::net::SocketAddr) {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => return,
                // Still accepted (or a transient error): the loop has not stopped yet.
                _ => tokio::task::yield_now().await,
            }
        }
    })
    .await
    .expect("new connections were still accepted after the shutdown signal");
}

#[test]
fn graceful_shutdown_lets_the_in_flight_request_finish() {
    check(HANG).real(|| async {
        let held = Held::new();
        let (addr, trigger, server) = start(&held, DEADLINE).await;
        let mut conn = H1Connection::handshake(TcpStream::connect(addr).await.unwrap()).await;
        let request = tokio::spawn(async move { conn.get("/report").await });
        assert!(held.running.reaches_started(1, DEADLINE).await);

        trigger.send(()).unwrap();
        // New clients are refused while the old request is still running...
        until_refused(addr).await;
        assert_eq!(
            held.running.live(),
            1,
            "the in-flight handler must not be cut"
        );

        // ...and the old request still gets its whole answer.
        held.release.add_permits(1);
        let response = request
            .await
            .unwrap()
            .expect("the in-flight request was cut");
        assert_eq!(response.text(), "done\n");
        // Whether this response already carries `connection: close` depends on whether the
        // connection task saw the shutdown before the handler finished (the listener closes a
        // moment before the connections are told); the next test pins that part down.
        assert_eq!(server.await.unwrap(), Stopped::Gracefully);
    });
}

/// What `GracefulShutdown` does to each connection: `graceful_shutdown()` on a connection with
/// a request in flight lets that request finish, answers it with `connection: close`, then
/// closes. Driven by hand, so that the order (told first, answered second) is certain.
#[test]
fn a_connection_told_to_shut_down_answers_its_request_with_connection_close() {
    check(HANG).paused(|| async {
        let held = Held::new();
        let handler = held.clone();
        let (told_tx, told_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (mut client, server) = duplex::http1(move |io| async move {
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler.handle(req).await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let mut conn = std::pin::pin!(builder.serve_connection(TokioIo::new(io), service));
            tokio::select! {
                result = conn.as_mut() => return result.is_ok(),
                _ = stop_rx => conn.as_mut().graceful_shutdown(),
            }
            let _ = told_tx.send(());
            conn.await.is_ok()
        })
        .await;
        let request = tokio::spawn(async move { client.get("/report").await });
        assert!(held.running.reaches_started(1, DEADLINE).await);

        stop_tx.send(()).unwrap();
        told_rx
            .await
            .expect("the connection was never told to shut down");
        held.release.add_permits(1);

        let response = request
            .await
            .unwrap()
            .expect("the in-flight request was cut");
        assert_eq!(response.text(), "done\n");
        assert_eq!(
            response.header("connection"),
            Some("close"),
            "hyper tells the client that this connection ends with this response"
        );
        assert!(
            server.task.await.unwrap(),
            "the connection must end cleanly after its last response"
        );
    });
}

#[test]
fn idle_keep_alive_connections_are_closed_at_shutdown() {
    check(HANG).real(|| async {
        let held = Held::new();
        held.release.add_permits(1);
        let (addr, trigger, server) = start(&held, DEADLINE).await;
        let mut conn = H1Connection::handshake(TcpStream::connect(addr).await.unwrap()).await;
        conn.get("/").await.unwrap();

        // The connection is idle (kept alive, no request in flight) when the signal comes.
        trigger.send(()).unwrap();
        assert_eq!(server.await.unwrap(), Stopped::Gracefully);
        assert!(
            conn.get("/").await.is_err(),
            "the idle connection should have been closed by the server"
        );
    });
}

#[test]
fn forced_close_drops_a_stuck_handler_after_the_grace_period() {
    check(HANG).real(|| async {
        let held = Held::new(); // never released: the handler is stuck
        let (addr, trigger, server) = start(&held, Duration::from_millis(300)).await;
        let mut conn = H1Connection::handshake(TcpStream::connect(addr).await.unwrap()).await;
        let request = tokio::spawn(async move { conn.get("/stuck").await });
        assert!(held.running.reaches_started(1, DEADLINE).await);

        trigger.send(()).unwrap();
        assert_eq!(server.await.unwrap(), Stopped::Forced { cut: 1 });
        assert!(
            held.running.settles_to(0, DEADLINE).await,
            "aborting the connection task must drop the handler future"
        );
        assert!(
            request.await.unwrap().is_err(),
            "the client of a cut connection gets no response"
        );
    });
}

#[test]
fn graceful_shutdown_has_no_deadline_of_its_own() {
    check(HANG).paused(|| async {
        let running = Gauge::new();
        let graceful = GracefulShutdown::new();
        let watcher = graceful.watcher();
        let gauge = running.clone();
        let (mut client, _server) = duplex::http1(move |io| async move {
            let service = service_fn(move |_request: Request<Incoming>| {
                let running = gauge.guard();
                async move {
                    let _running = running;
                    std::future::pending::<()>().await; // stuck forever
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                }
            });
            let connection = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service)
                .into_owned();
            watcher.watch(connection).await
        })
        .await;
        let request = tokio::spawn(async move { client.get("/").await });
        assert!(running.reaches_started(1, DEADLINE).await);

        // A whole virtual day later, shutdown() is still waiting for the stuck request.
        let day = Duration::from_secs(24 * 3600);
        assert!(
            tokio::time::timeout(day, graceful.shutdown())
                .await
                .is_err(),
            "shutdown() returned although a handler never finished"
        );
        request.abort();
    });
}

#[test]
fn workers_stop_after_http_and_drain_their_queue() {
    check("a background worker never returned: does it watch its token, or wait on a queue that never closes?")
        .paused(|| async {
            let written = Arc::new(Mutex::new(Vec::new()));
            let flushes = Arc::new(Mutex::new(0));
            let stop = CancellationToken::new();
            let workers = TaskTracker::new();
            let (audit, lines) = mpsc::channel(16);
            let sink = Arc::clone(&written);
            workers.spawn(audit_writer(lines, move |line| {
                sink.lock().unwrap().push(line.to_owned())
            }));
            let counter = Arc::clone(&flushes);
            workers.spawn(metrics_flusher(stop.clone(), move || {
                *counter.lock().unwrap() += 1
            }));

            // 25 virtual seconds of running: ticks at 0 s, 10 s and 20 s.
            tokio::time::sleep(Duration::from_secs(25)).await;
            assert_eq!(*flushes.lock().unwrap(), 3);

            // Requests enqueue lines, then HTTP stops: the last sender goes away.
            audit.send("served /a".to_owned()).await.unwrap();
            audit.send("served /b".to_owned()).await.unwrap();
            drop(audit);
            stop.cancel();
            workers.close();
            tokio::time::timeout(DEADLINE, workers.wait())
                .await
                .expect("the tracker should be empty once both workers returned");

            assert_eq!(*written.lock().unwrap(), ["served /a", "served /b"]);
            // The flusher flushed once more on its way out.
            assert_eq!(*flushes.lock().unwrap(), 4);
        });
}

#[test]
fn a_queue_stays_open_while_any_sender_is_alive() {
    check("the audit writer never returned after the last sender was dropped").paused(|| async {
        let (audit, lines) = mpsc::channel::<String>(16);
        let stray = audit.clone(); // e.g. a clone kept in some long-lived state
        let mut writer = tokio::spawn(audit_writer(lines, |_line| {}));
        drop(audit);
        let hour = Duration::from_secs(3600);
        assert!(
            tokio::time::timeout(hour, &mut writer).await.is_err(),
            "one sender is still alive, so the writer must still be waiting"
        );
        drop(stray);
        tokio::time::timeout(DEADLINE, writer)
            .await
            .expect("with every sender gone, recv() returns None")
            .unwrap();
    });
}

/// Set in the environment of the server process that the SIGTERM tests start (this same test
/// binary, running only `sigterm_server_process`): which signal future the server waits for.
const SERVER_PROCESS: &str = "LESSONS_JUNIOR_SIGTERM_SERVER";

/// Reads the server process's output until a line contains `marker`; returns what follows it.
/// (libtest may print `test name ... ` on the same line before the test's own output.)
async fn line_after<R>(lines: &mut Lines<R>, marker: &str) -> String
where
    R: AsyncBufRead + Unpin,
{
    tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines
            .next_line()
            .await
            .expect("reading the server's output")
        {
            if let Some((_, rest)) = line.split_once(marker) {
                return rest.to_owned();
            }
        }
        panic!("the server process ended without printing {marker:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("the server process never printed {marker:?}"))
}

/// A server process with a request in flight that has just been sent SIGTERM.
struct Terminated {
    server: tokio::process::Child,
    lines: Lines<BufReader<tokio::process::ChildStdout>>,
    request: tokio::task::JoinHandle<hyper::Result<harness::response::TestResponse>>,
}

/// Starts `sigterm_server_process` waiting for `signal` ("shutdown_signal" or "ctrl_c"),
/// starts a request, and sends the process SIGTERM while that request is in flight.
async fn sigterm_during_a_request(signal: &str) -> Terminated {
    let mut server = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigterm_server_process",
            "--ignored",
            "--nocapture",
        ])
        .env(SERVER_PROCESS, signal)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting the server process");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let addr: std::net::SocketAddr = line_after(&mut lines, "server: listening on ")
        .await
        .parse()
        .unwrap();

    let mut conn = H1Connection::handshake(TcpStream::connect(addr).await.unwrap()).await;
    let request = tokio::spawn(async move { conn.get("/slow").await });
    line_after(&mut lines, "server: request in flight").await;

    // What `kill`, systemd, Docker and Kubernetes do to stop a server.
    let pid = server
        .id()
        .expect("the server process is running")
        .to_string();
    let kill = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("running kill");
    assert!(kill.success(), "kill -TERM {pid} failed");
    Terminated {
        server,
        lines,
        request,
    }
}

/// A deploy's SIGTERM, sent to a real server process that waits for `shutdown_signal()`: the
/// request in flight still gets its whole response, and the process exits 0 after the drain.
#[test]
fn sigterm_drains_a_real_server_process() {
    check("the server process did not drain and exit after SIGTERM")
        .limit(Duration::from_secs(60))
        .real(|| async {
            let Terminated {
                mut server,
                mut lines,
                request,
            } = sigterm_during_a_request("shutdown_signal").await;
            let response = tokio::time::timeout(DEADLINE, request)
                .await
                .expect("the request in flight never got its response")
                .unwrap()
                .expect("the request in flight was cut: did SIGTERM kill the server?");
            assert_eq!(response.text(), "done after the signal\n");
            line_after(&mut lines, "server: stopped Gracefully").await;
            let status = tokio::time::timeout(DEADLINE, server.wait())
                .await
                .expect("the server process did not exit after draining")
                .unwrap();
            assert!(
                status.success(),
                "the server process must exit 0 after a drain, not die of the signal: {status}"
            );
        });
}

/// The same server waiting for `ctrl_c()` alone: SIGTERM's default action ends the process
/// at once, and the request in flight is cut without a response.
#[test]
fn sigterm_kills_a_server_that_waits_only_for_ctrl_c() {
    check("the server process was not killed by SIGTERM")
        .limit(Duration::from_secs(60))
        .real(|| async {
            let Terminated {
                mut server,
                request,
                ..
            } = sigterm_during_a_request("ctrl_c").await;
            let status = tokio::time::timeout(DEADLINE, server.wait())
                .await
                .expect("the server process is still running after SIGTERM")
                .unwrap();
            assert_eq!(
                status.signal(),
                Some(libc::SIGTERM),
                "the process should have died of SIGTERM: {status}"
            );
            assert!(
                tokio::time::timeout(DEADLINE, request)
                    .await
                    .expect("the client never saw its connection end")
                    .unwrap()
                    .is_err(),
                "no drain: the request in flight gets no response"
            );
        });
}

/// The server process of the SIGTERM tests: `serve` until the signal future named by
/// `SERVER_PROCESS` completes, with a handler that finishes only after the signal.
#[test]
#[ignore = "the server process of sigterm_drains_a_real_server_process and sigterm_kills_a_server_that_waits_only_for_ctrl_c"]
fn sigterm_server_process() {
    let Some(which) = std::env::var_os(SERVER_PROCESS) else {
        return; // run by hand with --ignored: there is no parent test to talk to
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stopped = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let signalled = CancellationToken::new();
        let told = signalled.clone();
        let mut signal = std::pin::pin!(async move {
            if which == "ctrl_c" {
                let _ = tokio::signal::ctrl_c().await;
            } else {
                lessons_junior::shutdown_signal().await;
            }
            println!("server: signal received");
            told.cancel();
        });
        // The first poll installs the signal handlers: only then may the parent send SIGTERM.
        assert!(futures::poll!(signal.as_mut()).is_pending());
        println!("server: listening on {}", listener.local_addr().unwrap());

        let handler = move |_request: Request<Incoming>| {
            let signalled = signalled.clone();
            async move {
                println!("server: request in flight");
                // Still running when the signal comes: this request is part of the drain.
                signalled.cancelled().await;
                Response::new(Full::new(Bytes::from("done after the signal\n")))
            }
        };
        serve(listener, handler, signal, DEADLINE).await
    });
    println!("server: stopped {stopped:?}");
    assert_eq!(stopped, Stopped::Gracefully);
}
