//! The serving half of the template: the connection builder's timeouts, the first-bytes
//! deadline, the connection limit, panics, request ids and the metrics.

mod support {
    pub mod template;
}

use std::time::{Duration, Instant};

use harness::server::get;
use hyper::StatusCode;
use lessons_professional::Config;
use support::template::{DEADLINE, config, read_until_closed, send, start, until};

const HEADER_TIMEOUT: Duration = Duration::from_millis(150);

fn with_header_timeout() -> Config {
    Config {
        header_timeout: HEADER_TIMEOUT,
        ..config()
    }
}

#[tokio::test]
async fn a_stalled_request_head_is_closed_at_the_header_timeout() {
    let server = start(with_header_timeout()).await;
    let mut client = server.raw().await;
    let since = Instant::now();
    // Far enough to pick HTTP/1: from here on hyper's header timer runs.
    send(&mut client, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    let (answer, after) = read_until_closed(&mut client, since).await;
    assert!(
        after >= HEADER_TIMEOUT,
        "closed after {after:?}, before the timeout"
    );
    // hyper closes without a response: no 408.
    assert_eq!(answer, "");
}

#[tokio::test]
async fn a_client_that_sends_one_byte_of_the_h2_preface_is_closed() {
    let server = start(with_header_timeout()).await;
    let mut client = server.raw().await;
    let since = Instant::now();
    // `P` could still be HTTP/2's preface: hyper-util's version detection waits for more,
    // and hyper's header timer has not started. The template's first-bytes deadline fires.
    send(&mut client, b"P").await;
    let (answer, after) = read_until_closed(&mut client, since).await;
    assert!(after >= HEADER_TIMEOUT, "closed after {after:?}");
    assert_eq!(answer, "");
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_closed() {
    let server = start(with_header_timeout()).await;
    let mut client = server.raw().await;
    let since = Instant::now();
    let (answer, after) = read_until_closed(&mut client, since).await;
    assert!(after >= HEADER_TIMEOUT, "closed after {after:?}");
    assert_eq!(answer, "");
    until("the connection is released", || {
        server.metrics.connections_open() == 0
    })
    .await;
}

#[tokio::test]
async fn without_the_timer_a_stalled_head_holds_its_connection() {
    // `--no-timer`: the template as `axum::serve` builds it. The header timeout is inert.
    let server = start(Config {
        no_timer: true,
        ..with_header_timeout()
    })
    .await;
    let mut client = server.raw().await;
    send(&mut client, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    // A negative claim needs a wait: four times the timeout that would have applied.
    let closed = tokio::time::timeout(
        HEADER_TIMEOUT * 4,
        read_until_closed(&mut client, Instant::now()),
    )
    .await;
    assert!(closed.is_err(), "the connection was closed without a timer");
    assert_eq!(server.metrics.connections_open(), 1);
    // And the stalled client can still finish its request.
    send(&mut client, b"\r\n").await;
    let mut buf = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut client, &mut buf)
        .await
        .unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
}

#[tokio::test]
async fn the_connection_limit_holds_the_next_client_before_accept() {
    let server = start(Config {
        max_connections: 1,
        ..config()
    })
    .await;
    let mut first = server.connect().await;
    assert_eq!(first.get("/").await.unwrap().status, StatusCode::OK);

    // The kernel completes the second handshake (backlog), but the template does not accept.
    let mut second = server.connect().await;
    let waiting = tokio::spawn(async move {
        let status = second.get("/").await.unwrap().status;
        (status, second)
    });
    let held = tokio::time::timeout(Duration::from_millis(200), async {
        until("never", || waiting.is_finished()).await
    })
    .await;
    assert!(
        held.is_err(),
        "the second connection was served while the first was open"
    );
    assert_eq!(
        server.metrics.connections_total(),
        1,
        "the second was accepted"
    );

    first.close().await;
    let (status, _second) = tokio::time::timeout(DEADLINE, waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.metrics.connections_total(), 2);
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_lives() {
    let server = start(config()).await;
    let mut client = server.connect().await;
    assert_eq!(
        client.get("/panic").await.unwrap().status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // The same connection keeps working: CatchPanic turned the unwind into a response.
    assert_eq!(client.get("/").await.unwrap().status, StatusCode::OK);
    until("the panicked request is no longer in flight", || {
        server.metrics.requests_in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn a_request_id_is_set_when_missing_and_echoed_when_given() {
    let server = start(config()).await;
    let mut client = server.connect().await;
    let minted = client.get("/").await.unwrap();
    let id = minted
        .headers
        .get("x-request-id")
        .expect("an id was set")
        .to_str()
        .unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");

    let mut request = get("/");
    request
        .headers_mut()
        .insert("x-request-id", "abc-123".parse().unwrap());
    let echoed = client.send(request).await.unwrap();
    assert_eq!(echoed.headers.get("x-request-id").unwrap(), "abc-123");
}

#[tokio::test]
async fn metrics_count_connections_and_requests_and_return_to_zero() {
    let server = start(config()).await;
    let mut client = server.connect().await;
    let page = client.get("/metrics").await.unwrap().text();
    // Taken while serving: this connection and this request.
    assert!(page.contains("connections_open 1\n"), "{page}");
    assert!(page.contains("requests_in_flight 1\n"), "{page}");
    assert!(page.contains("tokio_alive_tasks "), "{page}");
    client.close().await;
    until("gauges back to zero", || {
        server.metrics.connections_open() == 0 && server.metrics.requests_in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn http2_is_served_on_the_same_port() {
    let server = start(config()).await;
    let stream = server.raw().await;
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(get("/").map(|_| http_body_util::Empty::<bytes::Bytes>::new()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
}

#[tokio::test]
async fn an_oversized_request_head_is_refused() {
    let server = start(Config {
        h1_max_buf_size: 8192,
        ..config()
    })
    .await;
    let mut client = server.raw().await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    // The server may close before reading it all: a failed write is fine.
    let _ = tokio::io::AsyncWriteExt::write_all(&mut client, big.as_bytes()).await;
    let (answer, _) = read_until_closed(&mut client, Instant::now()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
}

/// Collects what the fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_request_span_carries_the_request_id() {
    // A current-thread test runtime: the server's tasks run on this thread, under this
    // thread's default subscriber.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let server = start(config()).await;
    let mut client = server.connect().await;
    let mut request = get("/");
    request
        .headers_mut()
        .insert("x-request-id", "abc-123".parse().unwrap());
    assert_eq!(client.send(request).await.unwrap().status, StatusCode::OK);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|line| line.contains("finished processing request"))
        .unwrap_or_else(|| panic!("no response event in:\n{logs}"));
    assert!(
        line.contains("request{method=GET uri=/ id=abc-123}"),
        "{line}"
    );
}
