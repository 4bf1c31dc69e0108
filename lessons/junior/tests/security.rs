//! Claims of the security chapter, measured against hyper 1.12 and http-body-util 0.1.5.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, stream};
use harness::duplex;
use harness::server::H1Connection;
use harness::watchdog::check;
use http_body_util::StreamBody;
use hyper::StatusCode;
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

#[allow(dead_code)]
#[path = "../examples/security.rs"]
mod example;

use example::MAX_UPLOAD;

const HANG: &str =
    "the server never answered: is it waiting for a body or a header that never comes?";
const DEADLINE: Duration = Duration::from_secs(10);

/// What a connection served by the auto builder ends with.
type Served = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A raw in-memory connection to the example's builder and upload handler.
fn connect_raw() -> (DuplexStream, duplex::ServerSide<Served>) {
    duplex::raw(|io| async move {
        let service =
            service_fn(|request| async { Ok::<_, Infallible>(example::upload(request).await) });
        example::builder()
            .serve_connection(TokioIo::new(io), service)
            .await
    })
}

/// Everything the server sends until it closes the connection.
async fn read_until_closed(client: &mut DuplexStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(DEADLINE, client.read_to_end(&mut received))
        .await
        .expect("the server should close the connection")
        .expect("reading from the pipe");
    String::from_utf8_lossy(&received).into_owned()
}

#[test]
fn a_body_over_the_limit_is_refused_even_without_a_length() {
    check(HANG).paused(|| async {
        // A chunked upload: 8 KiB chunks, 2 MiB in all, no size announced up front.
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pulled);
        let chunks = stream::iter(0..256).map(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>(Frame::data(Bytes::from(vec![0u8; 8 * 1024])))
        });
        let request = hyper::Request::post("/upload")
            .body(StreamBody::new(chunks))
            .unwrap();

        let response = example::upload(request).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // Limited stopped pulling right after the chunk that crossed 1 MiB.
        assert_eq!(pulled.load(Ordering::SeqCst), MAX_UPLOAD / (8 * 1024) + 1);
    });
}

#[test]
fn an_announced_oversized_body_is_refused_before_it_is_read() {
    check(HANG).paused(|| async {
        let (mut client, server) = connect_raw();
        // 100 MiB announced, not one byte of it sent.
        client
            .write_all(b"POST /upload HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 104857600\r\n\r\n")
            .await
            .unwrap();
        let answer = read_until_closed(&mut client).await;
        assert!(answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n"), "{answer}");
        // hyper does not drain an unread body: it answers, then closes the connection
        // (read_until_closed returned), without even a `connection: close` header.
        assert!(!answer.contains("connection: close"), "{answer}");
        assert!(server.task.await.unwrap().is_ok());
    });
}

#[test]
fn a_body_within_the_limit_is_accepted() {
    check(HANG).paused(|| async {
        let (client, _server) = duplex::raw(|io| async move {
            let service =
                service_fn(|request| async { Ok::<_, Infallible>(example::upload(request).await) });
            example::builder()
                .serve_connection(TokioIo::new(io), service)
                .await
        });
        let mut conn = H1Connection::handshake(client).await;
        let body = vec![b'x'; 1000];
        let response = conn
            .send(harness::server::request("POST", "/upload", body))
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.text(), "received 1000 bytes\n");
    });
}

fn head_with(extra_headers: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nhost: workshop.test\r\n{extra_headers}\r\n").into_bytes()
}

#[test]
fn too_many_header_lines_are_answered_431() {
    check(HANG).paused(|| async {
        let (mut client, _server) = connect_raw();
        let many: String = (0..40).map(|i| format!("x-tag-{i}: {i}\r\n")).collect();
        client.write_all(&head_with(&many)).await.unwrap();
        let answer = read_until_closed(&mut client).await;
        assert!(
            answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{answer}"
        );
        assert!(answer.contains("connection: close\r\n"), "{answer}");
    });
}

#[test]
fn a_request_head_larger_than_the_buffer_is_answered_431() {
    check(HANG).paused(|| async {
        let (mut client, _server) = connect_raw();
        // One 20 KiB header: more than the 16 KiB max_buf_size.
        let huge = format!("cookie: {}\r\n", "a".repeat(20 * 1024));
        client.write_all(&head_with(&huge)).await.unwrap();
        let answer = read_until_closed(&mut client).await;
        assert!(
            answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{answer}"
        );
    });
}

#[test]
fn by_default_hyper_buffers_about_400_kib_of_request_head() {
    check(HANG).paused(|| async {
        let default_builder = || {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(hyper_util::rt::TokioTimer::new());
            builder
        };
        let service =
            || service_fn(|request| async { Ok::<_, Infallible>(example::upload(request).await) });
        // 300 KiB of headers fit in the default buffer...
        let (mut client, _server) = duplex::raw(move |io| async move {
            default_builder()
                .serve_connection(TokioIo::new(io), service())
                .await
        });
        let cookie = format!("cookie: {}\r\n", "a".repeat(300 * 1024));
        client.write_all(&head_with(&cookie)).await.unwrap();
        let mut first = vec![0; 64];
        let n = client.read(&mut first).await.unwrap();
        assert!(first[..n].starts_with(b"HTTP/1.1 200 OK"));

        // ...500 KiB do not.
        let (client, _server) = duplex::raw(move |io| async move {
            default_builder()
                .serve_connection(TokioIo::new(io), service())
                .await
        });
        let cookie = format!("cookie: {}\r\n", "a".repeat(500 * 1024));
        // The server stops reading once its buffer is full, so write while reading.
        let writer = tokio::spawn(async move {
            let (mut read_half, mut write_half) = tokio::io::split(client);
            let _ = write_half.write_all(&head_with(&cookie)).await;
            let mut received = Vec::new();
            let _ = read_half.read_to_end(&mut received).await;
            String::from_utf8_lossy(&received).into_owned()
        });
        let answer = tokio::time::timeout(DEADLINE, writer)
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    });
}

/// A raw in-memory connection to the example's HTTP/1-only builder and upload handler.
fn connect_raw_http1() -> (DuplexStream, duplex::ServerSide<hyper::Result<()>>) {
    duplex::raw(|io| async move {
        let service =
            service_fn(|request| async { Ok::<_, Infallible>(example::upload(request).await) });
        example::http1_builder()
            .serve_connection(TokioIo::new(io), service)
            .await
    })
}

#[test]
fn max_header_size_answers_431_for_a_head_over_the_limit() {
    check(HANG).paused(|| async {
        // A 10 KiB head fits hyper's default read buffer (about 400 KiB): only
        // `max_header_size(8 * 1024)` can refuse it.
        let (mut client, _server) = connect_raw_http1();
        let cookie = format!("cookie: {}\r\n", "a".repeat(10 * 1024));
        client.write_all(&head_with(&cookie)).await.unwrap();
        let answer = read_until_closed(&mut client).await;
        assert!(
            answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{answer}"
        );
        assert!(answer.contains("connection: close\r\n"), "{answer}");

        // A 4 KiB head is under the limit and served.
        let (client, _server) = connect_raw_http1();
        let mut client = H1Connection::handshake(client).await;
        let mut request = harness::server::get("/upload");
        request
            .headers_mut()
            .insert("cookie", "a".repeat(4 * 1024).parse().unwrap());
        let response = client.send(request).await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
    });
}

#[test]
fn max_header_size_refuses_a_head_still_arriving() {
    check(HANG).paused(|| async {
        let (mut client, server) = connect_raw_http1();
        // 10 KiB of a head that is not finished (no blank line), and the client stops there:
        // hyper does not wait for the end of the head to measure it.
        let partial = format!(
            "GET / HTTP/1.1\r\nhost: workshop.test\r\ncookie: {}\r\n",
            "a".repeat(10 * 1024)
        );
        client.write_all(partial.as_bytes()).await.unwrap();
        let answer = read_until_closed(&mut client).await;
        assert!(
            answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{answer}"
        );
        let error = server.task.await.unwrap().unwrap_err();
        assert!(error.is_parse_too_large(), "{error:?}");
    });
}

#[test]
fn a_slow_body_holds_its_connection_for_a_day() {
    check(HANG).paused(|| async {
        // The example's builder bounds the head, not the body: a client that announces 10
        // bytes and sends 2 keeps `upload` waiting and the connection open.
        let (mut client, server) = connect_raw();
        client
            .write_all(
                b"POST /upload HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: 10\r\n\r\nab",
            )
            .await
            .unwrap();
        let day = Duration::from_secs(24 * 3600);
        let mut byte = [0; 1];
        assert!(
            tokio::time::timeout(day, client.read(&mut byte))
                .await
                .is_err(),
            "a day later, the upload has neither been answered nor cut"
        );
        assert!(
            !server.is_finished(),
            "the connection, and the slot it holds, are still there"
        );
    });
}

#[test]
fn the_connection_limit_holds_the_next_client_until_a_slot_frees() {
    check(HANG).real(|| async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let slots = Arc::new(Semaphore::new(2));
        let server = tokio::spawn(example::serve(listener, Arc::clone(&slots)));

        let mut first = H1Connection::handshake(TcpStream::connect(addr).await.unwrap()).await;
        let mut second = H1Connection::handshake(TcpStream::connect(addr).await.unwrap()).await;
        first
            .send(harness::server::request("POST", "/upload", "a"))
            .await
            .unwrap();
        second
            .send(harness::server::request("POST", "/upload", "b"))
            .await
            .unwrap();
        // Two live connections hold both permits: the accept loop is parked before accept().
        assert_eq!(slots.available_permits(), 0);

        // A third client connects (the kernel completes the handshake into the backlog)
        // and sends its request, which nobody reads yet.
        let mut third = H1Connection::handshake(TcpStream::connect(addr).await.unwrap()).await;
        let waiting = tokio::spawn(async move {
            third
                .send(harness::server::request("POST", "/upload", "c"))
                .await
        });
        assert_eq!(slots.available_permits(), 0, "still no free slot for it");

        // One connection ends: its task drops the permit, the loop accepts the third client.
        first.close().await;
        let answered = tokio::time::timeout(DEADLINE, waiting)
            .await
            .expect("the third client should be served once a slot freed")
            .unwrap()
            .unwrap();
        assert_eq!(answered.text(), "received 1 bytes\n");
        server.abort();
    });
}

#[test]
fn let_underscore_releases_a_permit_at_once() {
    check(HANG).paused(|| async {
        let slots = Arc::new(Semaphore::new(1));

        let _ = Arc::clone(&slots).acquire_owned().await.unwrap();
        assert_eq!(
            slots.available_permits(),
            1,
            "`let _ =` dropped the permit on the spot"
        );

        let _permit = Arc::clone(&slots).acquire_owned().await.unwrap();
        assert_eq!(
            slots.available_permits(),
            0,
            "`let _permit =` keeps it to the end of scope"
        );
    });
}
