//! Claims of the chapter "Your first server", demonstrated against the example's own code.

use harness::server::TestServer;
use harness::watchdog::check;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/first_server.rs"]
mod first_server;

/// Sends the first half of a request head: the server's connection task is now waiting for
/// the rest of the headers.
async fn half_sent_request(server: &TestServer) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nhost: workshop.test\r\n")
        .await
        .unwrap();
    stream
}

/// Sends the end of the head with `connection: close`, then reads the whole response.
async fn finish_request(mut stream: TcpStream) -> String {
    stream
        .write_all(b"connection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[test]
fn the_auto_builder_serves_http1_and_http2_on_one_port() {
    check("the first server never answered: is the accept loop running?").real(|| async {
        let server = TestServer::start(first_server::serve).await;

        let h1 = reqwest::Client::new();
        let response = h1.get(server.url("/hello")).send().await.unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_11);
        assert_eq!(
            response.text().await.unwrap(),
            "hello, you asked for /hello over HTTP/1.1\n"
        );

        let h2 = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap();
        let response = h2.get(server.url("/hello")).send().await.unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(
            response.text().await.unwrap(),
            "hello, you asked for /hello over HTTP/2.0\n"
        );
    });
}

#[test]
fn a_stalled_connection_does_not_hold_up_the_next_one() {
    check("the second connection was never served: does the loop await each connection?").real(
        || async {
            let server = TestServer::start(first_server::serve).await;

            // Connection A is stuck in the middle of its headers.
            let stalled = half_sent_request(&server).await;

            // Connection B is served anyway: A's wait happens in A's own task.
            let mut other = server.connect().await;
            let response = other.get("/other").await.unwrap();
            assert_eq!(
                response.text(),
                "hello, you asked for /other over HTTP/1.1\n"
            );

            // And A is answered as soon as its headers are complete.
            let response = finish_request(stalled).await;
            assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        },
    );
}

#[test]
fn the_accept_loop_takes_every_connection_it_is_offered() {
    check("a connection was never served: did the loop stop accepting?").real(|| async {
        let server = TestServer::start(first_server::serve).await;

        // 64 connections, each holding its own task in the middle of a request head.
        let mut stalled = Vec::new();
        for _ in 0..64 {
            stalled.push(half_sent_request(&server).await);
        }

        // One more still gets a full answer: nothing in the loop says "64 is enough".
        let mut extra = server.connect().await;
        assert_eq!(extra.get("/extra").await.unwrap().status, 200);

        // And every one of the 64 is still being served.
        for stream in stalled {
            let response = finish_request(stream).await;
            assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        }
    });
}

#[test]
fn a_handler_error_closes_the_connection_without_a_response() {
    check("the failing request never ended").paused(|| async {
        let (mut client, server) = harness::duplex::http1(|io| async move {
            let service = hyper::service::service_fn(|_request| async {
                Err::<hyper::Response<http_body_util::Full<bytes::Bytes>>, _>("database down")
            });
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(io), service)
                .await
        })
        .await;

        // No 500, no response at all: the connection ends and the client sees an error.
        let outcome = client.get("/").await;
        assert!(outcome.is_err(), "the client got a response: {outcome:?}");
        let served = server.task.await.unwrap();
        assert!(
            served.is_err(),
            "serve_connection did not report the service error"
        );
    });
}
