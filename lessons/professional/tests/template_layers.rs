//! The middleware half of the template: shedding, rate limiting, the body limit and deadline,
//! the handler timeout, WebSockets and the outbound client.

mod support {
    pub mod template;
}

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use harness::server::request;
use hyper::StatusCode;
use lessons_professional::Config;
use support::template::{config, send, start, until};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn past_max_in_flight_a_request_is_shed_with_503_and_retry_after() {
    let server = start(Config {
        max_in_flight: 1,
        ..config()
    })
    .await;
    let mut busy = server.connect().await;
    let slow = tokio::spawn(async move { busy.get("/work?ms=10000").await });
    until("the slow request holds the only slot", || {
        server.metrics.requests_in_flight() == 1
    })
    .await;

    let mut client = server.connect().await;
    let shed = client.get("/").await.unwrap();
    assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.header("retry-after"), Some("1"));
    slow.abort();
}

#[tokio::test]
async fn past_the_rate_a_request_gets_429_and_retry_after() {
    // One token a second, burst one: the second request inside the same second is refused.
    let server = start(Config {
        rate_per_second: 1,
        ..config()
    })
    .await;
    let mut client = server.connect().await;
    assert_eq!(client.get("/").await.unwrap().status, StatusCode::OK);
    let limited = client.get("/").await.unwrap();
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.header("retry-after"), Some("1"));
}

#[tokio::test]
async fn the_rate_limit_is_shared_by_every_connection() {
    let server = start(Config {
        rate_per_second: 1,
        ..config()
    })
    .await;
    let mut first = server.connect().await;
    let mut second = server.connect().await;
    assert_eq!(first.get("/").await.unwrap().status, StatusCode::OK);
    // A bucket per connection (per service clone) would let this one through.
    assert_eq!(
        second.get("/").await.unwrap().status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_declared_body_over_the_limit_gets_413_before_it_is_read() {
    let server = start(Config {
        max_body_bytes: 16,
        ..config()
    })
    .await;
    let mut client = server.connect().await;
    let too_big = client
        .send(request("POST", "/echo", vec![b'x'; 17]))
        .await
        .unwrap();
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    let fits = client
        .send(request("POST", "/echo", vec![b'x'; 16]))
        .await
        .unwrap();
    assert_eq!(
        (fits.status, fits.text()),
        (StatusCode::OK, "16\n".to_owned())
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_gets_413_once_it_is_read() {
    let server = start(Config {
        max_body_bytes: 16,
        ..config()
    })
    .await;
    let mut client = server.raw().await;
    // No content-length: only the bytes themselves can cross the limit.
    send(
        &mut client,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await;
    send(&mut client, b"11\r\nxxxxxxxxxxxxxxxxx\r\n0\r\n\r\n").await;
    let mut head = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut client, &mut head)
        .await
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
}

#[tokio::test]
async fn a_body_that_stalls_past_the_deadline_gets_408() {
    let deadline = Duration::from_millis(150);
    let server = start(Config {
        body_deadline: deadline,
        ..config()
    })
    .await;
    let mut client = server.raw().await;
    let since = Instant::now();
    send(
        &mut client,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nx",
    )
    .await;
    let mut head = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut client, &mut head)
        .await
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 408");
    assert!(since.elapsed() >= deadline);
}

#[tokio::test]
async fn a_handler_past_its_timeout_gets_503() {
    let server = start(Config {
        handler_timeout: Duration::from_millis(100),
        ..config()
    })
    .await;
    let mut client = server.connect().await;
    let since = Instant::now();
    let timed_out = client.get("/work?ms=10000").await.unwrap();
    assert_eq!(timed_out.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(since.elapsed() < Duration::from_secs(5));
    until("the timed-out request left", || {
        server.metrics.requests_in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn websocket_echo_over_the_upgrade() {
    let server = start(config()).await;
    let url = format!("ws://{}/ws", server.addr);
    let (mut ws, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws.send(Message::text("ping")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("ping"));
    assert_eq!(server.metrics.websockets_open(), 1);
    ws.close(None).await.unwrap();
    until("the session ended", || {
        server.metrics.websockets_open() == 0
    })
    .await;
}

#[tokio::test]
async fn an_upstream_that_never_answers_gets_504_at_the_client_timeout() {
    // Accepts (the kernel does it, through the backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let timeout = Duration::from_millis(200);
    let server = start(Config {
        upstream: Some(format!("http://{}/", silent.local_addr().unwrap())),
        upstream_timeout: timeout,
        ..config()
    })
    .await;
    let mut client = server.connect().await;
    let since = Instant::now();
    let answer = client.get("/upstream").await.unwrap();
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(since.elapsed() >= timeout);
}

#[tokio::test]
async fn an_unreachable_upstream_gets_502() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed); // connection refused from now on
    let server = start(Config {
        upstream: Some(format!("http://{addr}/")),
        ..config()
    })
    .await;
    let mut client = server.connect().await;
    assert_eq!(
        client.get("/upstream").await.unwrap().status,
        StatusCode::BAD_GATEWAY
    );
}

#[tokio::test]
async fn a_working_upstream_is_called_through_the_shared_client() {
    let upstream = start(config()).await;
    let server = start(Config {
        upstream: Some(format!("http://{}/", upstream.addr)),
        ..config()
    })
    .await;
    let mut client = server.connect().await;
    for _ in 0..3 {
        let answer = client.get("/upstream").await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
}

#[tokio::test(start_paused = true)]
async fn the_bucket_refills_on_the_tokio_clock() {
    // No sockets here: the bucket alone, on the paused clock.
    let mut bucket = lessons_professional::admission::TokenBucket::new(2);
    assert!(bucket.try_take().is_ok());
    assert!(bucket.try_take().is_ok());
    let wait = bucket.try_take().unwrap_err();
    assert_eq!(wait, Duration::from_millis(500));
    tokio::time::advance(wait - Duration::from_millis(1)).await;
    assert!(bucket.try_take().is_err(), "a token 1 ms early");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(bucket.try_take().is_ok());
}

#[tokio::test]
async fn a_body_trickled_byte_by_byte_still_meets_the_total_deadline() {
    // A per-frame timeout restarts at every byte; the template's deadline does not.
    let deadline = Duration::from_millis(150);
    let server = start(Config {
        body_deadline: deadline,
        ..config()
    })
    .await;
    let mut client = server.raw().await;
    let since = Instant::now();
    send(
        &mut client,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
    )
    .await;
    let (mut reader, mut writer) = client.split();
    let trickle = async {
        // 100 bytes 20 ms apart: two seconds, far past the deadline, never 150 ms silent.
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if tokio::io::AsyncWriteExt::write_all(&mut writer, b"x")
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let mut head = [0u8; 12];
    tokio::select! {
        read = tokio::io::AsyncReadExt::read_exact(&mut reader, &mut head) => read.unwrap(),
        _ = trickle => panic!("the trickle finished without an answer"),
    };
    assert_eq!(&head, b"HTTP/1.1 408");
    assert!(since.elapsed() >= deadline);
}
