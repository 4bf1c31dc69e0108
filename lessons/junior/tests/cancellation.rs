//! Claims of the chapter "Drop is cancellation": when hyper 1.x drops an HTTP/1 handler's
//! future, and when it does not.
//!
//! The first check uses real TCP on the real clock, against the `cancel` example. The others
//! drive in-memory connections on a paused clock, so that "the handler was NOT dropped" means
//! "not dropped after a minute of virtual time in which nothing else could happen".

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use harness::duplex::ServerSide;
use harness::leak::Gauge;
use harness::server::TestServer;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};

mod support;
use support::{QUIET, serve_auto};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/cancel.rs"]
mod cancel;

/// What the parked handlers of these checks report.
#[derive(Clone)]
struct Probes {
    /// One guard per handler future, released when the future is dropped or returns.
    alive: Gauge,
    /// Counts handlers that ran past their `.await` to the end.
    finished: Gauge,
    /// Counts tasks spawned by handlers that are still running.
    spawned: Gauge,
    /// Each parked handler (and each spawned task) waits for one permit.
    release: Arc<Semaphore>,
}

impl Probes {
    fn new() -> Self {
        Self {
            alive: Gauge::new(),
            finished: Gauge::new(),
            spawned: Gauge::new(),
            release: Arc::new(Semaphore::new(0)),
        }
    }

    /// Checks that the client's leaving dropped the handler before it finished, and that the
    /// connection task then ended.
    async fn assert_handler_dropped(&self, server: ServerSide<()>) {
        assert!(
            self.alive.settles_to(0, QUIET).await,
            "the handler is still alive"
        );
        assert_eq!(self.finished.started(), 0);
        server.task.await.unwrap();
    }

    /// Checks that the handler outlives the client's leaving by a quiet minute (`dropped`
    /// says what it means if it does not), then releases it.
    async fn assert_handler_survives_then_release(&self, dropped: &str) {
        assert!(!self.alive.settles_to(0, QUIET).await, "{dropped}");
        self.release.add_permits(1);
    }
}

/// A handler that does not read its body: it parks until released, then answers.
/// `/spawn` also starts a background task that parks the same way.
async fn parked(
    request: Request<Incoming>,
    probes: Probes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _alive = probes.alive.guard();
    if request.uri().path() == "/spawn" {
        let spawned = probes.spawned.guard();
        let release = Arc::clone(&probes.release);
        tokio::spawn(async move {
            let _spawned = spawned;
            release.acquire().await.unwrap().forget();
        });
    }
    probes.release.acquire().await.unwrap().forget();
    drop(probes.finished.guard());
    Ok(Response::new(Full::new(Bytes::from("done\n"))))
}

/// Serves `io` with the parked handler; `half_close` is hyper's HTTP/1 option.
fn serve(
    probes: &Probes,
    half_close: bool,
) -> impl FnOnce(DuplexStream) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    let probes = probes.clone();
    move |io| {
        Box::pin(async move {
            let service = service_fn(move |request| parked(request, probes.clone()));
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().half_close(half_close);
            let _ = builder.serve_connection(TokioIo::new(io), service).await;
        })
    }
}

/// Writes `bytes` on a fresh in-memory connection and waits until the handler runs.
async fn connect_and_send(
    probes: &Probes,
    half_close: bool,
    bytes: &[u8],
) -> (DuplexStream, harness::duplex::ServerSide<()>) {
    let (mut client, server) = harness::duplex::raw(serve(probes, half_close));
    client.write_all(bytes).await.unwrap();
    assert!(
        probes.alive.reaches_started(1, QUIET).await,
        "the handler was never called"
    );
    (client, server)
}

const GET: &[u8] = b"GET /work HTTP/1.1\r\nhost: workshop.test\r\n\r\n";
/// A POST whose head announces 100 body bytes, and 10 of them.
const PARTLY_SENT_POST: &[u8] =
    b"POST /work HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 100\r\n\r\nonly ten b";
/// A POST with its whole body of 10 bytes.
const WHOLE_POST: &[u8] =
    b"POST /work HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 10\r\n\r\nten bytes!";

/// What it means when a handler that should have survived the client's leaving was dropped.
const NOTICED_THE_DISCONNECT: &str = "the handler was dropped: hyper noticed the disconnect";

#[test]
fn get_client_disconnect_drops_the_handler() {
    check("the handler was never dropped after the client left").real(|| async {
        let (events, mut seen) = mpsc::unbounded_channel();
        let server = TestServer::start(move |listener| async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(cancel::serve_connection(stream, events.clone()));
            }
        })
        .await;

        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        client
            .write_all(b"GET /slow HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(seen.recv().await.unwrap(), "/slow: started");

        // The client goes away: a closed tab, a killed curl.
        drop(client);

        // Well before the handler's 10 s sleep is over, its future is dropped: `Drop`
        // ran, the code after the `.await` never did, and it never will.
        let within = Duration::from_secs(5);
        let next = tokio::time::timeout(within, seen.recv()).await;
        assert_eq!(next.unwrap().unwrap(), "/slow: dropped before finishing");
        let next = tokio::time::timeout(within, seen.recv()).await;
        assert_eq!(
            next.unwrap().unwrap(),
            "connection closed: connection closed before message completed"
        );
    });
}

#[test]
fn get_client_shutting_down_its_write_half_drops_the_handler() {
    check("the handler was never dropped after the client closed its half").paused(|| async {
        let probes = Probes::new();
        let (mut client, server) = connect_and_send(&probes, false, GET).await;

        client.shutdown().await.unwrap();
        probes.assert_handler_dropped(server).await;
    });
}

#[test]
fn with_half_close_the_handler_survives_the_client_closing_its_half() {
    check("the half-closed client never got its response").paused(|| async {
        let probes = Probes::new();
        let (mut client, _server) = connect_and_send(&probes, true, GET).await;

        client.shutdown().await.unwrap();
        probes
            .assert_handler_survives_then_release(
                "the handler was dropped although half_close is on",
            )
            .await;

        // It runs to completion, and the client can still read the answer.
        let mut response = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut client, &mut response)
            .await
            .unwrap();
        assert!(response.ends_with("done\n"), "{response}");
        assert_eq!(probes.finished.started(), 1);
    });
}

#[test]
fn post_with_a_partly_sent_unread_body_keeps_the_handler_after_the_client_left() {
    check("the handler never finished").paused(|| async {
        let probes = Probes::new();
        let (client, server) = connect_and_send(&probes, false, PARTLY_SENT_POST).await;

        drop(client);
        probes
            .assert_handler_survives_then_release(NOTICED_THE_DISCONNECT)
            .await;
        // Nobody will ever read the answer, but the handler runs to its end.
        assert!(probes.alive.settles_to(0, QUIET).await);
        assert_eq!(probes.finished.started(), 1);
        server.task.await.unwrap();
    });
}

#[test]
fn post_with_a_fully_sent_unread_body_drops_the_handler() {
    check("the handler was never dropped after the client left").paused(|| async {
        let probes = Probes::new();
        let (client, server) = connect_and_send(&probes, false, WHOLE_POST).await;

        drop(client);
        probes.assert_handler_dropped(server).await;
    });
}

#[test]
fn a_pipelined_request_already_buffered_keeps_the_handler_after_the_client_left() {
    check("the handler never finished").paused(|| async {
        let probes = Probes::new();
        let post_then_get = [
            WHOLE_POST,
            b"GET /next HTTP/1.1\r\nhost: workshop.test\r\n\r\n",
        ]
        .concat();
        let (client, _server) = connect_and_send(&probes, false, &post_then_get).await;

        drop(client);
        probes
            .assert_handler_survives_then_release(NOTICED_THE_DISCONNECT)
            .await;
        assert!(probes.finished.reaches_started(1, QUIET).await);
    });
}

#[test]
fn a_task_spawned_by_the_handler_keeps_running_after_the_handler_is_dropped() {
    check("the spawned task never finished").paused(|| async {
        let probes = Probes::new();
        let get_spawn = b"GET /spawn HTTP/1.1\r\nhost: workshop.test\r\n\r\n";
        let (client, server) = connect_and_send(&probes, false, get_spawn).await;
        assert_eq!(probes.spawned.live(), 1);

        drop(client);
        assert!(
            probes.alive.settles_to(0, QUIET).await,
            "the handler is still alive"
        );
        server.task.await.unwrap();

        // The handler and the connection are gone; the task it spawned is not.
        assert!(
            !probes.spawned.settles_to(0, QUIET).await,
            "the spawned task was cancelled with the handler"
        );
        probes.release.add_permits(1);
        assert!(probes.spawned.settles_to(0, QUIET).await);
    });
}

#[test]
fn reading_the_body_is_where_a_disconnect_shows_up() {
    check("the body read never failed").paused(|| async {
        let failed = Gauge::new();
        let service_failed = failed.clone();
        let (mut client, server) = harness::duplex::raw(move |io| async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let failed = service_failed.clone();
                async move {
                    // Read the body (with a limit): a client that leaves half-way turns
                    // into an error here, and the handler can return.
                    let limited = http_body_util::Limited::new(request.into_body(), 1024);
                    if http_body_util::BodyExt::collect(limited).await.is_err() {
                        drop(failed.guard());
                    }
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("done\n"))))
                }
            });
            serve_auto(io, service).await;
        });
        client.write_all(PARTLY_SENT_POST).await.unwrap();

        drop(client);
        assert!(
            failed.reaches_started(1, QUIET).await,
            "the body read did not fail"
        );
        server.task.await.unwrap();
    });
}
