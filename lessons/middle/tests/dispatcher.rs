//! Claims of the chapter "Inside hyper's HTTP/1 dispatcher", measured against hyper 1.12 and
//! hyper-util 0.1.21: the handler is polled inline by the connection task, and the next
//! request head is read only once the previous exchange is over.
//!
//! Every check runs on a paused clock over in-memory connections, so "did not start" means
//! "did not start during a minute of virtual time in which nothing else could happen".

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use harness::server::H1Connection;
use harness::watchdog::check;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{Notify, mpsc};

/// Long enough, in virtual time, for everything that can happen to have happened.
const QUIET: Duration = Duration::from_secs(60);
const HANG: &str = "a request was never answered: is a handler still parked?";

tokio::task_local! {
    /// Set around `serve_connection`, as the `dispatcher_loop` example does.
    static CONNECTION: u64;
}

/// Serves one in-memory connection with the auto builder (HTTP/1 and HTTP/2) inside the
/// task-local scope of connection 7. The handler answers with the connection number it can
/// see, or "none".
async fn serve_in_scope(io: DuplexStream) {
    let service = service_fn(|_request: Request<Incoming>| async {
        let seen = CONNECTION.try_with(|n| n.to_string());
        let text = seen.unwrap_or_else(|_| "none".to_owned());
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(io), service);
    let _ = CONNECTION.scope(7, connection).await;
}

#[test]
fn an_http1_handler_sees_the_task_local_of_its_connection_task() {
    check(HANG).paused(|| async {
        let (mut client, _server) = harness::duplex::http1(serve_in_scope).await;
        let response = client.get("/").await.unwrap();
        // The handler future was polled inside `CONNECTION.scope(7, ..)`: by the connection
        // task, not by a task of its own.
        assert_eq!(response.text(), "7");
    });
}

#[test]
fn an_http2_handler_runs_outside_the_connection_tasks_scope() {
    check(HANG).paused(|| async {
        let (client, _server) = harness::duplex::raw(serve_in_scope);
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client))
                .await
                .unwrap();
        tokio::spawn(connection);
        let response = sender
            .send_request(harness::server::get("/"))
            .await
            .unwrap();
        let text = response.into_body().collect().await.unwrap().to_bytes();
        // HTTP/2 streams are spawned on the executor: a new task, outside the scope.
        assert_eq!(text, "none");
    });
}

/// A service whose `/park` handler waits for `release`; it reports every handler it starts.
fn parking_service(
    started: mpsc::UnboundedSender<String>,
    release: Arc<Notify>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    service_fn(move |request: Request<Incoming>| {
        let path = request.uri().path().to_owned();
        let started = started.clone();
        let release = Arc::clone(&release);
        async move {
            let _ = started.send(path.clone());
            if path == "/park" {
                release.notified().await;
            }
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(path))))
        }
    })
}

/// The number of tasks alive on this (current-thread) runtime.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// hyper's executor, counting the futures the server hands it to spawn.
#[derive(Clone, Default)]
struct CountingExecutor {
    spawned: Arc<AtomicUsize>,
}

impl<F> hyper::rt::Executor<F> for CountingExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.spawned.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(future);
    }
}

/// Serves one in-memory connection with `executor` and a parking service.
fn serve_with(
    executor: CountingExecutor,
    started: mpsc::UnboundedSender<String>,
    release: Arc<Notify>,
) -> impl FnOnce(DuplexStream) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    move |io| {
        Box::pin(async move {
            let service = parking_service(started, release);
            let _ = auto::Builder::new(executor)
                .serve_connection(TokioIo::new(io), service)
                .await;
        })
    }
}

#[test]
fn an_http1_request_adds_no_task() {
    check(HANG).paused(|| async {
        let (started, mut seen) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let executor = CountingExecutor::default();
        let serve = serve_with(executor.clone(), started, Arc::clone(&release));
        // The client writes raw bytes: the only task is the server's connection task.
        let (mut client, _server) = harness::duplex::raw(serve);
        let before = alive_tasks();
        client
            .write_all(b"GET /park HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(seen.recv().await.unwrap(), "/park");

        // The handler is parked, and it is not a task: the connection task polls it.
        assert_eq!(
            alive_tasks(),
            before,
            "an HTTP/1 handler got a task of its own"
        );
        assert_eq!(executor.spawned.load(Ordering::SeqCst), 0);
        release.notify_one();
        read_until(&mut client, "/park").await;
    });
}

#[test]
fn an_http2_request_is_handed_to_the_executor() {
    check(HANG).paused(|| async {
        let (started, mut seen) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let executor = CountingExecutor::default();
        let serve = serve_with(executor.clone(), started, Arc::clone(&release));
        let (client, _server) = harness::duplex::raw(serve);
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client))
                .await
                .unwrap();
        tokio::spawn(connection);

        for round in 1..=2 {
            let request = sender.send_request(harness::server::get("/park"));
            let parked = async {
                assert_eq!(seen.recv().await.unwrap(), "/park");
                release.notify_one();
            };
            let (response, ()) = tokio::join!(request, parked);
            assert_eq!(response.unwrap().status(), 200);
            // One spawned stream task per request.
            assert_eq!(executor.spawned.load(Ordering::SeqCst), round);
        }
    });
}

/// The body type of the streaming check: a channel's receiver, or a full body.
type Body = BoxBody<Bytes, Infallible>;

#[test]
fn the_next_pipelined_head_is_read_only_once_the_previous_response_body_has_ended() {
    check(HANG).paused(|| async {
        let (started, mut seen) = mpsc::unbounded_channel();
        let (body_senders, mut body_sender) = mpsc::unbounded_channel();
        let service = service_fn(move |request: Request<Incoming>| {
            let path = request.uri().path().to_owned();
            let _ = started.send(path.clone());
            let body: Body = if path == "/stream" {
                // The handler returns at once; its body is fed later, by the check.
                let (chunks, receiver) = futures::channel::mpsc::unbounded::<Bytes>();
                let _ = body_senders.send(chunks);
                BodyExt::boxed(StreamBody::new(
                    receiver.map(|chunk| Ok::<_, Infallible>(Frame::data(chunk))),
                ))
            } else {
                BodyExt::boxed(Full::new(Bytes::from("next\n")))
            };
            async move { Ok::<_, Infallible>(Response::new(body)) }
        });
        let (mut client, _server) = harness::duplex::raw(move |io| async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service)
                .await;
        });

        client
            .write_all(
                b"GET /stream HTTP/1.1\r\nhost: workshop.test\r\n\r\n\
                  GET /next HTTP/1.1\r\nhost: workshop.test\r\n\r\n",
            )
            .await
            .unwrap();
        assert_eq!(seen.recv().await.unwrap(), "/stream");
        let chunks = body_sender.recv().await.unwrap();
        chunks.unbounded_send(Bytes::from("first part\n")).unwrap();

        // The handler has returned, and the head and a first chunk are on the wire...
        let received = read_until(&mut client, "first part\n").await;
        assert!(received.starts_with("HTTP/1.1 200 OK\r\n"), "{received}");
        // ...but the response is not over, so the dispatcher has not read the next head.
        let next = tokio::time::timeout(QUIET, seen.recv()).await;
        assert!(next.is_err(), "the next handler started mid-response");

        // The body ends: only now is `/next` read and its handler called.
        drop(chunks);
        assert_eq!(seen.recv().await.unwrap(), "/next");
        read_until(&mut client, "next\n").await;
    });
}

#[test]
fn a_slow_handler_holds_back_its_own_connection_and_no_other() {
    check(HANG).paused(|| async {
        let (started, mut seen) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let serve = |started: mpsc::UnboundedSender<String>, release: Arc<Notify>| {
            let service = parking_service(started, release);
            move |io: DuplexStream| async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(io), service)
                    .await;
            }
        };

        // Connection A: a slow request with another one pipelined behind it.
        let (mut a, _a) = harness::duplex::raw(serve(started.clone(), Arc::clone(&release)));
        a.write_all(
            b"GET /park HTTP/1.1\r\nhost: workshop.test\r\n\r\n\
              GET /behind HTTP/1.1\r\nhost: workshop.test\r\n\r\n",
        )
        .await
        .unwrap();
        assert_eq!(seen.recv().await.unwrap(), "/park");

        // Connection B is served while A's handler is parked: it has its own task.
        let (b, _b) = harness::duplex::raw(serve(started, Arc::clone(&release)));
        let mut b = H1Connection::handshake(b).await;
        assert_eq!(b.get("/other").await.unwrap().text(), "/other");
        assert_eq!(seen.recv().await.unwrap(), "/other");

        // A's second request has not started, a minute later.
        let behind = tokio::time::timeout(QUIET, seen.recv()).await;
        assert!(behind.is_err(), "A's pipelined request started early");

        release.notify_one();
        assert_eq!(seen.recv().await.unwrap(), "/behind");
        let answers = read_until(&mut a, "/behind").await;
        assert!(answers.find("/park") < answers.find("/behind"), "{answers}");
    });
}

/// Reads from `client` until `needle` has arrived, and returns everything read.
async fn read_until(client: &mut DuplexStream, needle: &str) -> String {
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    while !String::from_utf8_lossy(&received).contains(needle) {
        let n = tokio::time::timeout(QUIET, client.read(&mut buf))
            .await
            .expect("the server stopped sending")
            .unwrap();
        assert!(n > 0, "the server closed before sending {needle:?}");
        received.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[test]
fn a_kept_unread_body_still_arriving_keeps_the_next_head_unread() {
    check(HANG).paused(|| async {
        let (started, mut seen) = mpsc::unbounded_channel();
        let (stored, mut kept) = mpsc::unbounded_channel::<Incoming>();
        let service = service_fn(move |request: Request<Incoming>| {
            let path = request.uri().path().to_owned();
            let _ = started.send(path.clone());
            // The handler answers at once, and keeps the body to read later.
            let _ = stored.send(request.into_body());
            async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(path)))) }
        });
        let (mut client, _server) = harness::duplex::raw(move |io| async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service)
                .await;
        });

        // 10 of 100 announced bytes: the handler answers...
        client
            .write_all(b"POST /keep HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 100\r\n\r\n0123456789")
            .await
            .unwrap();
        read_until(&mut client, "/keep").await;
        // ...then the rest of the body and the next request arrive.
        client.write_all(&[b'x'; 90]).await.unwrap();
        client
            .write_all(b"GET /next HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(seen.recv().await.unwrap(), "/keep");

        // Nobody reads the kept body, so `reading` stays at `Body`: `/next` is not parsed.
        let next = tokio::time::timeout(QUIET, seen.recv()).await;
        assert!(next.is_err(), "the next head was read past an unread body");

        // Reading the kept body lets the connection move on.
        let body = kept.recv().await.unwrap().collect().await.unwrap();
        assert_eq!(body.to_bytes().len(), 100);
        assert_eq!(seen.recv().await.unwrap(), "/next");
    });
}
