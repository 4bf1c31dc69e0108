//! Claims of the chapter "HTTP/2 in one page": most over in-memory connections on a paused
//! clock; the stream-limit checks that speak raw frames use a real server on loopback.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use harness::leak::Gauge;
use harness::watchdog::check;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::DuplexStream;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

mod support;
use support::raw_h2 as raw;
use support::{QUIET, serve_auto};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/h2_streams.rs"]
mod h2_streams;

/// An HTTP/2 client connection (prior knowledge, no TLS) over `io`.
async fn h2_client(io: DuplexStream) -> SendRequest<Empty<Bytes>> {
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .expect("HTTP/2 client handshake");
    tokio::spawn(connection);
    sender
}

/// Puts a relay task between the client and `server_end`: aborting the relay cuts the
/// connection the way a network failure or a killed client process does. (Dropping hyper's
/// client handles is not enough: the HTTP/2 client keeps its connection alive in tasks of
/// its own while requests are in flight.)
fn cuttable(server_end: DuplexStream) -> (DuplexStream, JoinHandle<()>) {
    let (client_end, mut relay_end) = tokio::io::duplex(harness::duplex::PIPE_BYTES);
    let relay = tokio::spawn(async move {
        let mut server_end = server_end;
        let _ = tokio::io::copy_bidirectional(&mut relay_end, &mut server_end).await;
    });
    (client_end, relay)
}

/// Sends `GET path` on its own stream and reads the whole body.
async fn get(sender: &SendRequest<Empty<Bytes>>, path: &str) -> hyper::Result<String> {
    let mut sender = sender.clone();
    sender.ready().await?;
    let request = Request::get(format!("http://workshop.test{path}"))
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await?;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8(body.to_vec()).unwrap())
}

/// Sends `GET path` from a task of its own, so that the request stays in flight while the
/// check goes on.
fn spawn_get(
    sender: &SendRequest<Empty<Bytes>>,
    path: &'static str,
) -> JoinHandle<hyper::Result<String>> {
    let sender = sender.clone();
    tokio::spawn(async move { get(&sender, path).await })
}

/// `n` requests for `/parked`, each sent from a task of its own.
fn spawn_parked(
    sender: &SendRequest<Empty<Bytes>>,
    n: usize,
) -> Vec<JoinHandle<hyper::Result<String>>> {
    (0..n).map(|_| spawn_get(sender, "/parked")).collect()
}

/// Checks that every one of `requests` was answered `done`.
async fn assert_all_done(requests: Vec<JoinHandle<hyper::Result<String>>>) {
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap(), "done");
    }
}

/// A server on an in-memory connection whose handlers each hold a guard of `parked` and wait
/// for a permit of `release`. `/warmup` answers at once and takes no guard.
struct ParkedServer {
    parked: Gauge,
    release: Arc<Semaphore>,
    /// The client's end of the connection.
    client: DuplexStream,
    /// The task serving the connection.
    connection: harness::duplex::ServerSide<()>,
}

impl ParkedServer {
    /// Starts the server, serving its one connection with `builder`.
    fn start(builder: auto::Builder<TokioExecutor>) -> Self {
        let parked = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let (service_parked, service_release) = (parked.clone(), Arc::clone(&release));
        let service = service_fn(move |request: Request<Incoming>| {
            let parked = service_parked.clone();
            let release = Arc::clone(&service_release);
            async move {
                if request.uri().path() != "/warmup" {
                    let _guard = parked.guard();
                    release.acquire().await.unwrap().forget();
                }
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("done"))))
            }
        });
        let (client, connection) = harness::duplex::raw(move |io| async move {
            let _ = builder.serve_connection(TokioIo::new(io), service).await;
        });
        Self {
            parked,
            release,
            client,
            connection,
        }
    }
}

#[test]
fn streams_of_one_connection_are_handled_at_the_same_time() {
    check("the second stream was never served while the first waited for it").paused(|| async {
        let a_started = Gauge::new();
        let b_done = Arc::new(Notify::new());
        let (service_a_started, service_b_done) = (a_started.clone(), Arc::clone(&b_done));
        let (client, _server) = harness::duplex::raw(move |io| {
            let service = service_fn(move |request: Request<Incoming>| {
                let a_started = service_a_started.clone();
                let b_done = Arc::clone(&service_b_done);
                async move {
                    if request.uri().path() == "/a" {
                        let _guard = a_started.guard();
                        // /a cannot finish before /b has been handled.
                        b_done.notified().await;
                    } else {
                        b_done.notify_one();
                    }
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok"))))
                }
            });
            serve_auto(io, service)
        });
        let sender = h2_client(client).await;

        let a = spawn_get(&sender, "/a");
        assert!(a_started.reaches_started(1, QUIET).await);

        // Same connection, while /a is still waiting.
        assert_eq!(get(&sender, "/b").await.unwrap(), "ok");
        assert_eq!(a.await.unwrap().unwrap(), "ok");
    });
}

#[test]
fn each_stream_handler_runs_in_a_task_of_its_own() {
    check("the HTTP/2 requests were never answered").paused(|| async {
        let (client, _server) = harness::duplex::raw(h2_streams::serve_connection);
        let sender = h2_client(client).await;

        let (slow, fast) = tokio::join!(get(&sender, "/slow"), get(&sender, "/fast"));
        assert_eq!(slow.unwrap(), "/slow: HTTP/2.0, own task: true\n");
        assert_eq!(fast.unwrap(), "/fast: HTTP/2.0, own task: true\n");
    });
}

#[test]
fn a_panic_in_one_stream_resets_that_stream_only() {
    check("a sibling stream was never answered after the panic").paused(|| async {
        let (client, server) = harness::duplex::raw(h2_streams::serve_connection);
        let sender = h2_client(client).await;

        let (slow, panicked) = tokio::join!(get(&sender, "/slow"), get(&sender, "/panic"));
        let err = panicked.expect_err("a panicking handler produced a response");
        // The client sees that stream reset; hyper reports it as an HTTP/2 error.
        let err = format!("{err:?}");
        assert!(err.contains("Reset") && err.contains("CANCEL"), "{err}");
        // The stream that was in flight next to it completes normally...
        assert_eq!(slow.unwrap(), "/slow: HTTP/2.0, own task: true\n");
        // ...and the connection still takes new streams.
        assert_eq!(
            get(&sender, "/fast").await.unwrap(),
            "/fast: HTTP/2.0, own task: true\n"
        );
        assert!(!server.is_finished());
    });
}

#[test]
fn hyper_s_client_obeys_the_default_limit_of_200_streams() {
    check("the parked streams were never released").paused(|| async {
        let server = ParkedServer::start(auto::Builder::new(TokioExecutor::new()));
        let sender = h2_client(server.client).await;
        // One full round trip first, so the client has the server's SETTINGS.
        get(&sender, "/warmup").await.unwrap();

        // hyper's client read the limit in the server's SETTINGS: it holds the 201st request
        // back until a stream ends. (A client that ignores the limit: see below.)
        let requests = spawn_parked(&sender, 201);

        assert!(server.parked.reaches_started(200, QUIET).await);
        assert!(
            !server.parked.reaches_started(201, QUIET).await,
            "a 201st stream was opened while 200 were in flight"
        );
        // One stream finishes: the queued one gets its slot.
        server.release.add_permits(1);
        assert!(server.parked.reaches_started(201, QUIET).await);

        server.release.add_permits(200);
        assert_all_done(requests).await;
    });
}

#[test]
fn max_concurrent_streams_lowers_the_limit() {
    check("the parked streams were never released").paused(|| async {
        let server = ParkedServer::start(h2_streams::builder());
        let sender = h2_client(server.client).await;
        get(&sender, "/warmup").await.unwrap();

        let limit = h2_streams::MAX_STREAMS as usize;
        let requests = spawn_parked(&sender, limit + 1);

        assert!(server.parked.reaches_started(limit, QUIET).await);
        assert!(!server.parked.reaches_started(limit + 1, QUIET).await);

        server.release.add_permits(limit + 1);
        assert_all_done(requests).await;
    });
}

#[test]
fn a_client_reset_drops_only_that_streams_handler() {
    check("the surviving stream was never answered").paused(|| async {
        let server = ParkedServer::start(auto::Builder::new(TokioExecutor::new()));
        let sender = h2_client(server.client).await;

        let cancelled = spawn_get(&sender, "/cancelled");
        let survivor = spawn_get(&sender, "/survivor");
        assert!(server.parked.reaches_started(2, QUIET).await);

        // The client gives up on one request: dropping its response future makes hyper's
        // client send RST_STREAM(CANCEL) for that stream.
        cancelled.abort();
        assert!(
            server.parked.settles_to(1, QUIET).await,
            "the reset stream's handler is still alive"
        );

        // The other stream, and the connection, are untouched.
        server.release.add_permits(1);
        assert_eq!(survivor.await.unwrap().unwrap(), "done");
        assert!(!server.connection.is_finished());
    });
}

#[test]
fn closing_the_connection_drops_every_stream_handler() {
    check("the handlers outlived their connection").paused(|| async {
        let server = ParkedServer::start(auto::Builder::new(TokioExecutor::new()));
        let (client, relay) = cuttable(server.client);
        let sender = h2_client(client).await;

        let in_flight = spawn_parked(&sender, 3);
        assert!(server.parked.reaches_started(3, QUIET).await);

        // The connection is cut: no reset frames, just a closed connection.
        relay.abort();
        assert!(
            server.parked.settles_to(0, QUIET).await,
            "stream handlers outlived the connection"
        );
        for request in in_flight {
            assert!(request.await.unwrap().is_err());
        }
        server.connection.task.await.unwrap();
    });
}

/// A real server on loopback whose handlers each hold a guard of `parked` until `release`
/// gives them a permit; every connection is served with `builder`.
async fn parked_server_on_loopback(
    builder: auto::Builder<TokioExecutor>,
) -> (harness::server::TestServer, Gauge, Arc<Semaphore>) {
    let parked = Gauge::new();
    let release = Arc::new(Semaphore::new(0));
    let (service_parked, service_release) = (parked.clone(), Arc::clone(&release));
    let server = harness::server::TestServer::start(move |listener| async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (parked, release) = (service_parked.clone(), Arc::clone(&service_release));
            let service = service_fn(move |_request: Request<Incoming>| {
                let (parked, release) = (parked.clone(), Arc::clone(&release));
                async move {
                    let _guard = parked.guard();
                    release.acquire().await.unwrap().forget();
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("done"))))
                }
            });
            let builder = builder.clone();
            tokio::spawn(async move {
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
    .await;
    (server, parked, release)
}

#[test]
fn the_server_announces_its_stream_limit_in_its_settings() {
    check("the server never sent its SETTINGS").real(|| async {
        for (builder, announced) in [
            (auto::Builder::new(TokioExecutor::new()), 200),
            (h2_streams::builder(), h2_streams::MAX_STREAMS),
        ] {
            let (server, _parked, _release) = parked_server_on_loopback(builder).await;
            let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
            raw::open_streams(&mut stream, 0).await;
            // The server's first frame is its SETTINGS.
            let settings = raw::next_frame(&mut stream)
                .await
                .expect("the server closed the connection");
            assert_eq!(settings.kind, raw::SETTINGS);
            assert_eq!(settings.max_concurrent_streams(), Some(announced));
        }
    });
}

#[test]
fn a_client_that_ignores_the_limit_gets_the_extra_stream_refused() {
    check("the server never answered the raw HTTP/2 client").real(|| async {
        let (server, parked, release) = parked_server_on_loopback(h2_streams::builder()).await;
        let limit = h2_streams::MAX_STREAMS;
        let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();

        // limit + 1 streams at once, as if the SETTINGS frame had never been sent.
        raw::open_streams(&mut stream, limit + 1).await;
        let refused = loop {
            let frame = raw::next_frame(&mut stream)
                .await
                .expect("the server closed the connection");
            if frame.kind == raw::RST_STREAM {
                break frame;
            }
        };
        // The last stream opened, and only that one, is reset with REFUSED_STREAM...
        assert_eq!(refused.stream, 2 * limit + 1);
        assert_eq!(refused.error_code(), raw::REFUSED_STREAM);
        // ...and its handler is never called: the refusal happens before the service.
        assert!(parked.reaches_started(limit as usize, QUIET).await);
        assert_eq!(parked.started(), limit as usize);

        // The connection is still up: the streams that were accepted are answered.
        release.add_permits(limit as usize);
        let mut answered = std::collections::BTreeSet::new();
        while answered.len() < limit as usize {
            let frame = raw::next_frame(&mut stream)
                .await
                .expect("the server closed the connection");
            assert_ne!(frame.kind, raw::RST_STREAM, "{frame:?}");
            if frame.kind == raw::HEADERS {
                answered.insert(frame.stream);
            }
        }
        assert_eq!(answered, (0..limit).map(|n| 2 * n + 1).collect());
    });
}
