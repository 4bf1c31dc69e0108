//! Claims of the chapter "Panics and poisoning": what a panicking handler costs on HTTP/1 and
//! HTTP/2, what `CatchPanicLayer` answers and what it cannot catch, and how a panic under a
//! lock poisons it.

mod support {
    pub mod panics;
}

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use harness::leak::Gauge;
use harness::server::TestServer;
use harness::watchdog::check;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, oneshot};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use support::panics::{Ending, PanicServer, panic_message};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/panics_ledger.rs"]
mod panics_ledger;

/// Generous, on the real clock: only a broken server takes this long.
const PATIENCE: Duration = Duration::from_secs(10);

fn text(body: &'static str) -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from_static(body.as_bytes())))
}

/// Reads from `stream` until `needle` has arrived; returns everything read.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut chunk = [0; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .expect("the server went quiet")
            .expect("reading from the server");
        assert!(n > 0, "the connection closed before {needle:?} arrived");
        seen.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Reads until the server closes the connection; returns what arrived before that.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await;
    // A close with unread data in the server's buffers would be a reset; both mean "closed".
    match read.expect("the server never closed the connection") {
        Ok(_) => {}
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
    }
    rest
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
}

#[test]
fn an_http1_panic_closes_the_connection_with_no_response() {
    check("the connection was never closed").real(|| async {
        let mut server = PanicServer::start(|request: Request<Incoming>| async move {
            match request.uri().path() {
                "/boom" => panic!("the report template is missing"),
                _ => text("ok\n"),
            }
        })
        .await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();

        // A first request on the connection is served as usual...
        stream.write_all(get("/ok").as_bytes()).await.unwrap();
        assert!(
            read_until(&mut stream, "ok\n")
                .await
                .starts_with("HTTP/1.1 200 OK")
        );
        // ...then the panic, with `/ok` pipelined behind it: not one byte of a response to
        // either, just the connection closing.
        let pipelined = get("/boom") + &get("/ok");
        stream.write_all(pipelined.as_bytes()).await.unwrap();
        assert_eq!(read_to_close(&mut stream).await, b"");

        // The panic unwound the whole connection task; tokio caught it at the task's edge.
        let ending = tokio::time::timeout(PATIENCE, server.endings.recv()).await;
        assert_eq!(
            ending.unwrap(),
            Some(Ending::Panicked(
                "the report template is missing".to_owned()
            ))
        );
    });
}

#[test]
fn tokio_hands_a_task_s_panic_to_whoever_awaits_its_handle() {
    check("the panicking task was never joined").paused(|| async {
        let task = tokio::spawn(async { panic!("lookup failed: {}", 42) });
        let error = task.await.unwrap_err();
        assert!(error.is_panic() && !error.is_cancelled());
        assert_eq!(panic_message(error.into_panic()), "lookup failed: 42");

        // In a JoinSet the panic is one `Err` among the results; the siblings carry on.
        let mut set = tokio::task::JoinSet::new();
        set.spawn(async { panic!("one replica") });
        set.spawn(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "the other replica"
        });
        assert!(set.join_next().await.unwrap().unwrap_err().is_panic());
        assert_eq!(set.join_next().await.unwrap().unwrap(), "the other replica");
    });
}

async fn h2_get(
    sender: &hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    addr: SocketAddr,
    path: &str,
) -> Result<StatusCode, hyper::Error> {
    let request = Request::get(format!("http://{addr}{path}"))
        .body(Empty::new())
        .unwrap();
    let response = sender.clone().send_request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    Ok(status)
}

#[test]
fn an_http2_panic_resets_only_its_stream() {
    check("a sibling stream was never answered after the panic").real(|| async {
        let in_flight = Gauge::new();
        let release = Arc::new(Semaphore::new(0));
        let mut server = PanicServer::start({
            let (in_flight, release) = (in_flight.clone(), Arc::clone(&release));
            move |request: Request<Incoming>| {
                let (in_flight, release) = (in_flight.clone(), Arc::clone(&release));
                async move {
                    match request.uri().path() {
                        "/boom" => panic!("the report template is missing"),
                        "/slow" => {
                            let _guard = in_flight.guard();
                            release.acquire().await.unwrap().forget();
                            text("slow\n")
                        }
                        _ => text("ok\n"),
                    }
                }
            }
        })
        .await;
        let stream = TcpStream::connect(server.addr).await.unwrap();
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);

        let slow = tokio::spawn({
            let sender = sender.clone();
            let addr = server.addr;
            async move { h2_get(&sender, addr, "/slow").await }
        });
        assert!(in_flight.reaches_started(1, PATIENCE).await);

        // The panicking stream is reset with CANCEL...
        let error = h2_get(&sender, server.addr, "/boom").await.unwrap_err();
        let error = format!("{error:?}");
        assert!(
            error.contains("Reset") && error.contains("CANCEL"),
            "{error}"
        );
        // ...the stream in flight beside it completes...
        release.add_permits(1);
        assert_eq!(slow.await.unwrap().unwrap(), StatusCode::OK);
        // ...and the connection takes new streams: its task did not unwind.
        assert_eq!(
            h2_get(&sender, server.addr, "/ok").await.unwrap(),
            StatusCode::OK
        );
        assert!(
            server.endings.try_recv().is_err(),
            "the connection task ended"
        );
    });
}

type Body = BoxBody<Bytes, Infallible>;

/// The second frame of a streamed report: it waits for `go`, then hits a bug.
async fn failing_row(go: oneshot::Receiver<()>) -> Result<Frame<Bytes>, Infallible> {
    let _ = go.await;
    panic!("the row formatter failed")
}

/// A response that streams `partial`, then panics while hyper polls its body: after the
/// handler has returned, outside the future `CatchPanicLayer` wraps.
fn report_that_panics_midway(go: oneshot::Receiver<()>) -> Response<Body> {
    use futures::StreamExt;
    let first = futures::stream::once(async { Ok(Frame::data(Bytes::from_static(b"partial"))) });
    let frames = first.chain(futures::stream::once(failing_row(go)));
    Response::new(BodyExt::boxed(StreamBody::new(frames)))
}

type Go = Arc<Mutex<Option<oneshot::Receiver<()>>>>;

async fn route(request: Request<Incoming>, go: Go) -> Response<Body> {
    match request.uri().path() {
        "/boom" => panic!("the report template is missing"),
        "/report" => {
            let go = go.lock().unwrap().take().expect("one report per check");
            report_that_panics_midway(go)
        }
        _ => Response::new(Full::new(Bytes::from_static(b"ok\n")).boxed()),
    }
}

/// A real server with tower-http's `CatchPanicLayer` and its default response.
async fn catch_panic_server(go: Go) -> TestServer {
    // ANCHOR: default_layer
    let service = ServiceBuilder::new()
        .layer(CatchPanicLayer::new())
        .service_fn(move |request: Request<Incoming>| {
            if request.uri().path() == "/eager" {
                // A panic in `call` itself, before any future exists.
                panic!("a panic while building the future");
            }
            let response = route(request, Arc::clone(&go));
            async move { Ok::<_, Infallible>(response.await) }
        });
    // ANCHOR_END: default_layer
    TestServer::start(move |listener| async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
    .await
}

#[test]
fn catch_panic_layer_answers_a_plain_text_500_and_keeps_the_connection() {
    check("the server never answered").real(|| async {
        let server = catch_panic_server(Go::default()).await;
        let mut connection = server.connect().await;

        let response = connection.get("/boom").await.unwrap();
        assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
        // The doc comment of `DefaultResponseForPanic` says "empty body"; the code sends this.
        assert_eq!(response.text(), "Service panicked");
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        // The connection task never unwound: the same connection serves the next request.
        assert_eq!(connection.get("/ok").await.unwrap().text(), "ok\n");
    });
}

#[test]
fn catch_panic_layer_also_catches_a_panic_in_call() {
    check("the server never answered").real(|| async {
        let server = catch_panic_server(Go::default()).await;
        let mut connection = server.connect().await;
        let response = connection.get("/eager").await.unwrap();
        assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(connection.get("/ok").await.unwrap().text(), "ok\n");
    });
}

#[test]
fn catch_panic_layer_cannot_catch_a_panic_in_the_response_body() {
    check("the connection was never closed").real(|| async {
        let (go_tx, go_rx) = oneshot::channel();
        let server = catch_panic_server(Arc::new(Mutex::new(Some(go_rx)))).await;
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        stream.write_all(get("/report").as_bytes()).await.unwrap();

        // The head and the first chunk are on the wire: the 200 is committed.
        let head = read_until(&mut stream, "partial").await;
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        go_tx.send(()).unwrap();
        // The panic unwinds the connection task: no 500, no final chunk, just the close.
        let all = head + &String::from_utf8_lossy(&read_to_close(&mut stream).await);
        assert!(all.ends_with("\r\n\r\n7\r\npartial\r\n"), "{all}");
        assert!(!all.contains("500"), "{all}");
    });
}

#[test]
fn a_custom_panic_handler_chooses_the_response() {
    check("the server never answered").real(|| async {
        let ledger = panics_ledger::demo_ledger();
        let server = TestServer::start(move |listener| async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(panics_ledger::serve_connection(stream, Arc::clone(&ledger)));
            }
        })
        .await;
        let mut connection = server.connect().await;
        let response = connection.get("/boom").await.unwrap();
        assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.text(), "{\"error\":\"internal\"}\n");
    });
}

// ANCHOR: by_index
/// The transfer as first written: debit, then credit, each by a lookup that panics if the
/// account does not exist. An unknown `to` panics after the debit, with the guard held.
fn transfer_by_index(ledger: &panics_ledger::Ledger, from: &str, to: &str, amount: u64) {
    let mut accounts = ledger.lock().expect("ledger lock poisoned");
    *accounts.get_mut(from).expect("no such account") -= amount;
    *accounts.get_mut(to).expect("no such account") += amount;
}
// ANCHOR_END: by_index

/// Runs `transfer_by_index` on a thread of its own and reports whether it panicked.
fn panics_on_a_thread(ledger: &panics_ledger::Ledger, to: &'static str) -> bool {
    let ledger = Arc::clone(ledger);
    std::thread::spawn(move || transfer_by_index(&ledger, "alice", to, 30))
        .join()
        .is_err()
}

fn total(accounts: &HashMap<String, u64>) -> u64 {
    accounts.values().sum()
}

#[test]
fn a_panic_while_a_guard_is_held_poisons_the_mutex_and_leaves_half_an_update() {
    check("the poisoning check hung").run(|| {
        let ledger = panics_ledger::demo_ledger();
        assert!(panics_on_a_thread(&ledger, "nobody"));

        assert!(ledger.is_poisoned());
        // Every later `lock()` is an `Err`; with `unwrap` or `expect`, it panics in turn.
        assert!(ledger.lock().is_err());
        // `into_inner` hands the guard over anyway, and the data is exactly as the panic left
        // it: debited, never credited. 30 cents have left the ledger.
        let mut accounts = ledger.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(accounts["alice"], 70);
        assert_eq!(total(&accounts), 70);
        // Only once the data is repaired may the flag be cleared.
        accounts.insert("alice".to_owned(), 100);
        drop(accounts);
        ledger.clear_poison();
        assert!(ledger.lock().is_ok());
    });
}

#[test]
fn after_one_panic_under_the_lock_every_request_that_locks_it_fails() {
    check("the server never answered").real(|| async {
        let ledger = panics_ledger::demo_ledger();
        assert!(panics_on_a_thread(&ledger, "nobody"));
        let server = TestServer::start({
            let ledger = Arc::clone(&ledger);
            move |listener| async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(panics_ledger::serve_connection(stream, Arc::clone(&ledger)));
                }
            }
        })
        .await;
        let mut connection = server.connect().await;
        // The layer turns each of them into a 500, and each is a new panic: for good.
        for _ in 0..3 {
            let response = connection.get("/balance/bob").await.unwrap();
            assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
        }
        // A route that does not lock the ledger is unaffected.
        let response = connection.get("/nowhere").await.unwrap();
        assert_eq!(response.status, StatusCode::NOT_FOUND);
    });
}

#[test]
fn validating_before_writing_leaves_nothing_to_poison() {
    check("the ledger check hung").run(|| {
        let ledger = panics_ledger::demo_ledger();
        let refused = panics_ledger::transfer(&ledger, "alice", "nobody", 30);
        assert_eq!(refused, Err(panics_ledger::TransferError::UnknownAccount));
        let refused = panics_ledger::transfer(&ledger, "alice", "bob", 1000);
        assert_eq!(
            refused,
            Err(panics_ledger::TransferError::InsufficientFunds)
        );
        assert!(!ledger.is_poisoned());
        assert_eq!(total(&ledger.lock().unwrap()), 100);

        panics_ledger::transfer(&ledger, "alice", "bob", 30).unwrap();
        let accounts = ledger.lock().unwrap();
        assert_eq!((accounts["alice"], accounts["bob"]), (70, 30));
        drop(accounts);

        // A credit that would overflow is refused before anything is written...
        ledger
            .lock()
            .unwrap()
            .insert("bob".to_owned(), u64::MAX - 10);
        let refused = panics_ledger::transfer(&ledger, "alice", "bob", 30);
        assert_eq!(refused, Err(panics_ledger::TransferError::BalanceOverflow));
        // ...and a transfer to oneself moves nothing.
        panics_ledger::transfer(&ledger, "alice", "alice", 30).unwrap();
        let accounts = ledger.lock().unwrap();
        assert_eq!((accounts["alice"], accounts["bob"]), (70, u64::MAX - 10));
        assert!(!ledger.is_poisoned());
    });
}

#[test]
fn a_tokio_mutex_does_not_poison_and_hides_the_half_update() {
    check("the tokio mutex check hung").paused(|| async {
        let accounts = HashMap::from([("alice".to_owned(), 100_u64), ("bob".to_owned(), 0)]);
        let ledger = Arc::new(tokio::sync::Mutex::new(accounts));
        let task = tokio::spawn({
            let ledger = Arc::clone(&ledger);
            async move {
                let mut accounts = ledger.lock().await;
                *accounts.get_mut("alice").unwrap() -= 30;
                *accounts.get_mut("nobody").expect("no such account") += 30;
            }
        });
        assert!(task.await.unwrap_err().is_panic());
        // The guard was released during the unwind, with no flag: the next caller locks
        // normally and reads a ledger that lost 30 cents.
        let accounts = ledger.lock().await;
        assert_eq!(total(&accounts), 70);
    });
}
