//! Claims of the chapter "The life of a request", on in-memory connections and a paused clock:
//! every step happens at a virtual instant, and "did not happen" means "did not happen before
//! the runtime had nothing left to do".

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use harness::leak::Gauge;
use harness::watchdog::check;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::Notify;

mod support;
use support::{QUIET, serve_auto};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/lifecycle.rs"]
mod lifecycle;

/// Reads from `stream` until `needle` has been seen `times` times, and returns everything read.
async fn read_until_seen(stream: &mut DuplexStream, needle: &str, times: usize) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if text.matches(needle).count() >= times {
            return text;
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed the connection; so far: {text:?}");
        seen.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn an_http1_handler_runs_inside_the_connection_task() {
    check("the HTTP/1 request was never answered").paused(|| async {
        let (mut client, server) =
            harness::duplex::http1(|io| lifecycle::serve_connection(io, 1)).await;

        let response = client.get("/a").await.unwrap();
        assert_eq!(
            response.text(),
            "HTTP/1.1 /a: the handler ran inside the connection task\n"
        );

        client.close().await;
        server.task.await.unwrap();
    });
}

#[test]
fn an_http2_handler_runs_in_a_task_of_its_own() {
    check("the HTTP/2 request was never answered").paused(|| async {
        let (client, server) = harness::duplex::raw(|io| lifecycle::serve_connection(io, 1));
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client))
                .await
                .unwrap();
        tokio::spawn(connection);

        let request = Request::get("http://workshop.test/a")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "HTTP/2.0 /a: the handler ran in a task of its own\n");

        drop(sender);
        server.task.await.unwrap();
    });
}

#[test]
fn the_handler_is_called_once_the_head_is_parsed_before_the_body_arrives() {
    check("the upload was never answered").paused(|| async {
        let called = Gauge::new();
        let service_called = called.clone();
        let (mut client, _server) = harness::duplex::raw(move |io| {
            let service = service_fn(move |request: Request<Incoming>| {
                let guard = service_called.guard();
                async move {
                    // The body is read here, by the handler, as it arrives.
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    drop(guard);
                    let text = format!("got {} bytes\n", body.len());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                }
            });
            serve_auto(io, service)
        });

        // The head and 3 of the 11 body bytes.
        client
            .write_all(
                b"POST /upload HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 11\r\n\r\nhel",
            )
            .await
            .unwrap();
        assert!(
            called.reaches_started(1, QUIET).await,
            "the handler was not called until the whole body had arrived"
        );
        assert_eq!(called.live(), 1, "the handler finished without its body");

        client.write_all(b"lo world").await.unwrap();
        let response = read_until_seen(&mut client, "got 11 bytes\n", 1).await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    });
}

#[test]
fn requests_on_one_http1_connection_are_handled_one_after_another() {
    check("the pipelined requests were never answered").paused(|| async {
        let handlers = Gauge::new();
        let release_first = Arc::new(Notify::new());
        let (service_handlers, service_release) = (handlers.clone(), Arc::clone(&release_first));
        let (mut client, _server) = harness::duplex::raw(move |io| {
            let service = service_fn(move |request: Request<Incoming>| {
                let guard = service_handlers.guard();
                let release = Arc::clone(&service_release);
                async move {
                    if request.uri().path() == "/first" {
                        release.notified().await;
                    }
                    drop(guard);
                    let text = format!("{}\n", request.uri().path());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                }
            });
            serve_auto(io, service)
        });

        // Both requests are in the server's buffer at once (HTTP/1 pipelining).
        client
            .write_all(
                b"GET /first HTTP/1.1\r\nhost: workshop.test\r\n\r\n\
                  GET /second HTTP/1.1\r\nhost: workshop.test\r\n\r\n",
            )
            .await
            .unwrap();

        assert!(handlers.reaches_started(1, QUIET).await);
        assert!(
            !handlers.reaches_started(2, QUIET).await,
            "the second request's handler started while the first was still running"
        );

        release_first.notify_one();
        let responses = read_until_seen(&mut client, "HTTP/1.1 200 OK", 2).await;
        let first = responses.find("/first\n").unwrap();
        let second = responses.find("/second\n").unwrap();
        assert!(first < second, "responses out of order: {responses}");
        assert_eq!(handlers.started(), 2);
    });
}

#[test]
fn after_a_response_the_connection_waits_for_the_next_request() {
    check("a keep-alive request was never answered").paused(|| async {
        let (mut client, mut server) =
            harness::duplex::http1(|io| lifecycle::serve_connection(io, 1)).await;

        assert_eq!(client.get("/a").await.unwrap().status, 200);
        // Wait for the connection task to end, for a minute of virtual time: it does not.
        // It is waiting for the next request head.
        let ended = tokio::time::timeout(QUIET, &mut server.task).await;
        assert!(ended.is_err(), "the connection closed after one response");

        assert_eq!(client.get("/b").await.unwrap().status, 200);

        // The client hangs up: the keep-alive loop ends, and so does the task.
        client.close().await;
        server.task.await.unwrap();
    });
}

#[test]
fn connection_close_ends_the_keep_alive_loop() {
    check("the server never closed the connection").paused(|| async {
        let (mut client, server) = harness::duplex::raw(|io| lifecycle::serve_connection(io, 1));

        client
            .write_all(b"GET /a HTTP/1.1\r\nhost: workshop.test\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        // The server answers and then closes its end: reading to the end terminates.
        let mut response = String::new();
        client.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("the handler ran inside the connection task\n"));

        server.task.await.unwrap();
    });
}

#[test]
fn a_panic_in_an_http1_handler_ends_its_connection_task() {
    check("the panicking connection never ended").paused(|| async {
        let (mut client, server) = harness::duplex::http1(|io| async move {
            let service = service_fn(|_request: Request<Incoming>| async {
                if true {
                    panic!("a bug in the handler");
                }
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            });
            serve_auto(io, service).await;
        })
        .await;

        // The handler runs inside the connection task, so the panic unwinds through it:
        // no response, the connection is gone, and the task ended in a panic.
        assert!(client.get("/").await.is_err());
        assert!(server.task.await.unwrap_err().is_panic());
    });
}

#[test]
fn a_client_closing_between_requests_ends_the_connection_cleanly() {
    check("the connection never ended after the client closed it").paused(|| async {
        let (mut client, server) = harness::duplex::http1(|io| async move {
            let service = service_fn(|_request: Request<Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok\n"))))
            });
            auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service)
                .await
        })
        .await;

        assert_eq!(client.get("/").await.unwrap().status, 200);
        client.close().await;
        // Between two requests, a client that leaves is a normal end: `Ok(())`.
        assert!(server.task.await.unwrap().is_ok());
    });
}
