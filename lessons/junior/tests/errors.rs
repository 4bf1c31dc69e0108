//! Claims of the error-handling chapter: what hyper 1.12 does with an `Err` or a panic from
//! the service, what `serve_connection` returns, and how `examples/errors.rs` maps errors.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use harness::TestResponse;
use harness::duplex;
use harness::server::{TestServer, request};
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[allow(dead_code)]
#[path = "../examples/errors.rs"]
mod example;

const HANG: &str = "the connection never ended: did hyper keep it open after the error?";
const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Broken;

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the handler gave up")
    }
}

impl std::error::Error for Broken {}

/// A service that fails on `/err`, panics on `/panic`, and says hello otherwise.
async fn fragile(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Broken> {
    match request.uri().path() {
        "/err" => Err(Broken),
        "/panic" => panic!("the handler panicked"),
        _ => Ok(Response::new(Full::new(Bytes::from("hello\n")))),
    }
}

fn http1_fragile(io: tokio::io::DuplexStream) -> impl Future<Output = hyper::Result<()>> {
    http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), service_fn(fragile))
}

#[test]
fn an_err_from_the_service_closes_the_http1_connection_without_a_response() {
    check(HANG).paused(|| async {
        let (mut client, server) = duplex::raw(http1_fragile);
        client
            .write_all(b"GET /err HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        assert!(
            received.is_empty(),
            "no status line, no 500: nothing at all"
        );

        let error = server.task.await.unwrap().unwrap_err();
        assert!(
            error.is_user(),
            "serve_connection reports the service's error: {error:?}"
        );
        assert_eq!(error.to_string(), "error from user's Service");
    });
}

#[test]
fn on_http2_an_err_or_a_panic_resets_only_that_stream() {
    check(HANG).paused(|| async {
        let (client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(server), service_fn(fragile))
                .await
        });
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client))
                .await
                .unwrap();
        tokio::spawn(connection);
        let get = |path: &str| {
            Request::get(format!("http://workshop.test{path}"))
                .body(Full::new(Bytes::new()))
                .unwrap()
        };

        let failed = sender.send_request(get("/err")).await.unwrap_err();
        assert!(
            format!("{failed:?}").contains("INTERNAL_ERROR"),
            "the stream is reset with INTERNAL_ERROR: {failed:?}"
        );
        // A panic kills the task of that one stream: the client sees it reset with CANCEL.
        let panicked = sender.send_request(get("/panic")).await.unwrap_err();
        assert!(format!("{panicked:?}").contains("CANCEL"), "{panicked:?}");
        // The connection itself is fine: the next stream on it is served.
        let next = sender.send_request(get("/")).await.unwrap();
        assert_eq!(next.status(), StatusCode::OK);
    });
}

#[test]
fn a_panic_in_an_http1_handler_kills_the_connection_task() {
    check(HANG).paused(|| async {
        let (mut client, server) = duplex::raw(http1_fragile);
        client
            .write_all(b"GET /panic HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        assert!(received.is_empty(), "the client gets no response");
        let failure = server.task.await.unwrap_err();
        assert!(failure.is_panic(), "hyper does not catch the panic");
    });
}

#[test]
fn catch_panic_layer_answers_500_and_keeps_the_connection() {
    check(HANG).paused(|| async {
        let (mut client, server) = duplex::http1(|io| async move {
            let service = example::recovering(tower::service_fn(example::service::<Incoming>));
            auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service)
                .await
        })
        .await;
        // The handler panics: the layer answers instead of letting the panic kill the task.
        let panicked = client
            .get("/boom")
            .await
            .expect("a response, not a closed connection");
        assert_eq!(panicked.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(panicked.text(), "Service panicked");
        // The same keep-alive connection serves the next request.
        let next = client.get("/notes/1").await.unwrap();
        assert_eq!(next.status, StatusCode::OK);
        assert!(!server.is_finished(), "the connection task is still alive");
    });
}

#[test]
fn routine_connection_endings_are_told_apart_from_our_own_failures() {
    check(HANG).paused(|| async {
        // (what the client sends, whether it waits for an answer, whether it then closes,
        //  whether the way the connection ends is routine)
        let cases: [(&[u8], bool, bool, bool); 5] = [
            // A complete request, then the client closes the idle connection: Ok(()).
            (
                b"GET / HTTP/1.1\r\nhost: workshop.test\r\n\r\n",
                true,
                true,
                true,
            ),
            // The client leaves halfway through its headers.
            (b"GET / HTTP/1.1\r\nhost:", false, true, true),
            // The client sends something that is not HTTP: hyper answers 400 itself.
            (b"HELLO THERE\r\n\r\n", true, false, true),
            // The client keeps the connection alive and goes quiet: the header timer fires.
            (
                b"GET / HTTP/1.1\r\nhost: workshop.test\r\n\r\n",
                true,
                false,
                true,
            ),
            // Our service fails.
            (
                b"GET /err HTTP/1.1\r\nhost: workshop.test\r\n\r\n",
                true,
                false,
                false,
            ),
        ];
        let mut outcomes = Vec::new();
        for (sent, waits, closes, routine) in cases {
            let (mut client, server) = duplex::raw(http1_fragile);
            client.write_all(sent).await.unwrap();
            let mut received = vec![0; 1024];
            let n = if waits {
                client.read(&mut received).await.unwrap()
            } else {
                0
            };
            if closes {
                drop(client);
            }
            let result = tokio::time::timeout(Duration::from_secs(3600), server.task)
                .await
                .expect("the connection ended")
                .unwrap();
            let first_line = String::from_utf8_lossy(&received[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            match result {
                Ok(()) => outcomes.push(format!("Ok(()) | client saw: {first_line:?}")),
                Err(error) => {
                    assert_eq!(example::is_routine(&error), routine, "{error:?}");
                    outcomes.push(format!("{error} | client saw: {first_line:?}"));
                }
            }
        }
        assert_eq!(
            outcomes,
            [
                "Ok(()) | client saw: \"HTTP/1.1 200 OK\"",
                "connection closed before message completed | client saw: \"\"",
                "invalid URI | client saw: \"HTTP/1.1 400 Bad Request\"",
                "read header from client timeout | client saw: \"HTTP/1.1 200 OK\"",
                "error from user's Service | client saw: \"\"",
            ]
        );
    });
}

async fn call(method: &str, path: &str, body: &'static str) -> TestResponse {
    let response = example::service(request(method, path, body)).await.unwrap();
    TestResponse::collect(response).await.unwrap()
}

// ANCHOR: status_codes_test
#[test]
fn api_errors_map_to_status_codes() {
    check(HANG).paused(|| async {
        // The service is generic over the body, so a test can call it directly.
        assert_eq!(call("GET", "/notes/1", "").await.status, StatusCode::OK);
        assert_eq!(
            call("GET", "/notes/abc", "").await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            call("GET", "/notes/9", "").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call("POST", "/notes", "hi").await.status,
            StatusCode::CREATED
        );
        let big: &'static str = "x".repeat(4096).leak();
        assert_eq!(
            call("POST", "/notes", big).await.status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    });
}
// ANCHOR_END: status_codes_test

#[test]
fn internal_errors_do_not_leak_their_details() {
    check(HANG).paused(|| async {
        let response = call("GET", "/notes/13", "").await;
        assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.text(), "internal error\n");
        assert!(!response.text().contains("/var/lib"));
    });
}

#[test]
fn the_service_answers_every_failure_over_a_real_connection() {
    check(HANG).real(|| async {
        let server = TestServer::serve(|request: Request<Incoming>| async move {
            match example::service(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        })
        .await;
        let mut conn = server.connect().await;
        // Three failures in a row on one keep-alive connection: each is a response, and
        // the connection survives them all.
        for (path, status) in [
            ("/notes/abc", StatusCode::BAD_REQUEST),
            ("/notes/9", StatusCode::NOT_FOUND),
            ("/notes/13", StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            assert_eq!(conn.get(path).await.unwrap().status, status);
        }
        assert_eq!(conn.get("/notes/2").await.unwrap().text(), "note 2\n");
        tokio::time::timeout(DEADLINE, conn.close()).await.unwrap();
    });
}

/// A connection whose client resets it before sending anything.
struct ResetByPeer;

impl tokio::io::AsyncRead for ResetByPeer {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        _buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()))
    }
}

impl tokio::io::AsyncWrite for ResetByPeer {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        _buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[test]
fn before_the_protocol_is_known_the_auto_builder_reports_plain_io_errors() {
    check(HANG).paused(|| async {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new());
        let error = builder
            .serve_connection(TokioIo::new(ResetByPeer), service_fn(fragile))
            .await
            .unwrap_err();
        let io_error = error
            .downcast_ref::<std::io::Error>()
            .expect("a plain std::io::Error, not a hyper::Error");
        assert_eq!(io_error.kind(), std::io::ErrorKind::ConnectionReset);
        assert!(example::is_routine(&*error));
    });
}
