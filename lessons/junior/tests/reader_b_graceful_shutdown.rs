//! More claims of the graceful-shutdown chapter: what a forced close does not reach, and what
//! an HTTP/2 client is told when the drain begins.
//!
//! Both run the `serve` of `examples/shutdown.rs` on a real socket with the real clock, and
//! wait for events under a generous deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use harness::leak::Gauge;
use harness::server::H1Connection;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

#[allow(dead_code)]
#[path = "../examples/shutdown.rs"]
mod example;

use example::{Stopped, serve};

mod support;
use support::raw_h2 as raw;

const DEADLINE: Duration = Duration::from_secs(10);
const HANG: &str =
    "the server never finished shutting down: is something still waiting on a connection?";

/// Starts `serve` with `handler` on a free port; returns the address, the trigger and the
/// outcome.
async fn start<H, Fut>(
    handler: H,
    grace: Duration,
) -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Stopped>,
)
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, signal) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        handler,
        async {
            let _ = signal.await;
        },
        grace,
    ));
    (addr, trigger, server)
}

#[test]
fn a_task_spawned_by_a_stuck_handler_outlives_the_forced_close() {
    check(HANG).real(|| async {
        let handlers = Gauge::new();
        let spawned = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let (finished_tx, mut finished) = mpsc::unbounded_channel::<()>();
        let handler = {
            let (handlers, spawned, release) = (handlers.clone(), spawned.clone(), release.clone());
            move |_request: Request<Incoming>| {
                let guard = handlers.guard();
                let (spawned, release, finished) =
                    (spawned.clone(), release.clone(), finished_tx.clone());
                async move {
                    let _handler = guard;
                    // Work the handler hands to a task of its own, which waits for the test.
                    tokio::spawn(async move {
                        let _spawned = spawned.guard();
                        release.acquire().await.unwrap().forget();
                        let _ = finished.send(());
                    });
                    std::future::pending::<()>().await; // the handler itself is stuck
                    Response::new(Full::new(Bytes::new()))
                }
            }
        };
        let (addr, trigger, server) = start(handler, Duration::from_millis(300)).await;
        let mut conn = H1Connection::handshake(TcpStream::connect(addr).await.unwrap()).await;
        let request = tokio::spawn(async move { conn.get("/stuck").await });
        assert!(handlers.reaches_started(1, DEADLINE).await);
        assert!(spawned.reaches_started(1, DEADLINE).await);

        trigger.send(()).unwrap();
        assert_eq!(server.await.unwrap(), Stopped::Forced { cut: 1 });
        assert!(
            handlers.settles_to(0, DEADLINE).await,
            "aborting the connection task must drop the handler future"
        );
        assert!(
            request.await.unwrap().is_err(),
            "the cut client gets no response"
        );

        // The spawned task was not part of the handler's future: it is still there...
        assert_eq!(
            spawned.live(),
            1,
            "the forced close reached the spawned task"
        );
        // ...and still running: released now, after the connection is gone, it does its work.
        release.add_permits(1);
        assert!(
            tokio::time::timeout(DEADLINE, finished.recv())
                .await
                .expect("the spawned task never finished its work")
                .is_some()
        );
        assert!(spawned.settles_to(0, DEADLINE).await);
    });
}

#[test]
fn on_http2_the_drain_sends_goaway_and_the_stream_in_flight_finishes() {
    check(HANG).real(|| async {
        let running = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let handler = {
            let (running, release) = (running.clone(), release.clone());
            move |_request: Request<Incoming>| {
                let (running, release) = (running.guard(), release.clone());
                async move {
                    let _running = running;
                    release.acquire().await.unwrap().forget();
                    Response::new(Full::new(Bytes::from("done\n")))
                }
            }
        };
        let (addr, trigger, server) = start(handler, DEADLINE).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        raw::open_streams(&mut client, 1).await;
        assert!(running.reaches_started(1, DEADLINE).await);

        trigger.send(()).unwrap();
        // The client is told at once that the connection is closing, while its stream runs.
        let goaway = loop {
            let frame = raw::next_frame(&mut client)
                .await
                .expect("closed before GOAWAY");
            if frame.kind == raw::GOAWAY {
                break frame;
            }
        };
        let (_last_stream, error_code) = goaway.goaway();
        assert_eq!(
            error_code, 0,
            "a graceful GOAWAY carries NO_ERROR: {goaway:?}"
        );
        assert_eq!(running.live(), 1, "the stream in flight was not cut");

        // Released now, the handler answers on its stream, and then the connection closes.
        release.add_permits(1);
        let mut answered = false;
        while let Some(frame) = raw::next_frame(&mut client).await {
            if frame.kind == raw::GOAWAY {
                let (last_stream, _) = frame.goaway();
                assert!(last_stream >= 1, "stream 1 must stay accepted: {frame:?}");
            }
            answered |= frame.kind == raw::HEADERS && frame.stream == 1;
        }
        assert!(answered, "the stream in flight got no response");
        assert_eq!(server.await.unwrap(), Stopped::Gracefully);
    });
}
