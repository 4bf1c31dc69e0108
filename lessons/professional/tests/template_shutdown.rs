//! The template's shutdown: drain in order, close what GracefulShutdown cannot see, and force
//! at the deadline.

mod support {
    pub mod template;
}

use std::time::Duration;

use futures::StreamExt;
use hyper::StatusCode;
use lessons_professional::{Config, Drain, Step};
use support::template::{DEADLINE, config, read_until_closed, start, until};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const ORDER: [Step; 5] = [
    Step::StoppedAccepting,
    Step::Drained,
    Step::ClosedQueues,
    Step::StoppedBackground,
    Step::Flushed,
];

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let server = start(config()).await;
    let mut client = server.connect().await;
    let in_flight = tokio::spawn(async move { client.get("/work?ms=200").await });
    until("the request is in the handler", || {
        server.metrics.requests_in_flight() == 1
    })
    .await;

    let addr = server.addr;
    let report = server.stop().await;
    assert_eq!(report.drain, Drain::Drained);
    assert_eq!(report.steps, ORDER);
    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    // Stopped accepting: the listener is gone.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_closes_an_idle_keep_alive_connection() {
    let server = start(config()).await;
    let mut idle = server.raw().await;
    support::template::send(&mut idle, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut head = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut idle, &mut head)
        .await
        .unwrap();
    // The connection is now idle between requests: a keep-alive client that went quiet.
    let report = server.stop().await;
    assert_eq!(report.drain, Drain::Drained);
    let (_, _) = read_until_closed(&mut idle, std::time::Instant::now()).await;
}

#[tokio::test]
async fn shutdown_is_not_held_by_a_silent_preconnected_connection() {
    // A browser's speculative preconnect: TCP open, no byte sent (hyperium/hyper#3576). The
    // header timeout is a day, so only the graceful cancel of version detection can end it.
    let server = start(Config {
        header_timeout: Duration::from_secs(86_400),
        ..config()
    })
    .await;
    let mut silent = server.raw().await;
    until("the connection is accepted", || {
        server.metrics.connections_open() == 1
    })
    .await;
    let report = server.stop().await;
    assert_eq!(report.drain, Drain::Drained);
    read_until_closed(&mut silent, std::time::Instant::now()).await;
}

#[tokio::test]
async fn shutdown_sends_close_to_websocket_sessions() {
    let server = start(config()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .unwrap();
    until("the session is registered", || {
        server.metrics.websockets_open() == 1
    })
    .await;
    let reader = tokio::spawn(async move {
        match ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) => frame.code,
            other => panic!("expected a Close frame, got {other:?}"),
        }
    });
    let report = server.stop().await;
    assert_eq!(report.drain, Drain::Drained);
    assert_eq!(report.websockets_closed, 1);
    let code = tokio::time::timeout(DEADLINE, reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, CloseCode::Away);
}

#[tokio::test]
async fn shutdown_is_forced_at_the_deadline_when_a_handler_never_finishes() {
    let deadline = Duration::from_millis(200);
    let server = start(Config {
        shutdown_deadline: deadline,
        ..config()
    })
    .await;
    let mut client = server.connect().await;
    let stuck = tokio::spawn(async move { client.get("/work?ms=10000").await });
    until("the request is in the handler", || {
        server.metrics.requests_in_flight() == 1
    })
    .await;

    let metrics = server.metrics.clone();
    let since = std::time::Instant::now();
    let report = server.stop().await;
    assert!(since.elapsed() >= deadline);
    assert_eq!(report.drain, Drain::Forced { connections: 1 });
    assert_eq!(report.steps, ORDER);
    // The forced connection was dropped: the client sees an error, not a response.
    assert!(stuck.await.unwrap().is_err());
    assert_eq!(
        (metrics.connections_open(), metrics.requests_in_flight()),
        (0, 0)
    );
}

#[tokio::test]
async fn a_forced_shutdown_also_drops_http2_stream_handlers() {
    let deadline = Duration::from_millis(200);
    let server = start(Config {
        shutdown_deadline: deadline,
        ..config()
    })
    .await;
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(server.raw().await),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get("/work?ms=10000")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let stuck = tokio::spawn(async move { sender.send_request(request).await });
    until("the stream's handler runs", || {
        server.metrics.requests_in_flight() == 1
    })
    .await;

    let metrics = server.metrics.clone();
    let report = server.stop().await;
    assert_eq!(report.drain, Drain::Forced { connections: 1 });
    // HTTP/2 handlers run in tasks of their own, outside the connection task; dropping the
    // connection resets its streams, and each stream task then drops its handler.
    assert!(stuck.await.unwrap().is_err());
    until("the forced stream's handler is dropped", || {
        metrics.requests_in_flight() == 0
    })
    .await;
}
