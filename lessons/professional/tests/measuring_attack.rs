//! The attack chapter's claim about slow reading, on the template in-process over real TCP: a
//! small response fits in the socket's buffers, so a client that never reads it does not hold
//! the connection; the header timer, waiting for the next request, closes it.

use std::time::{Duration, Instant};

use lessons_professional::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Generous: every wait below ends on an event long before this.
const DEADLINE: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_millis(200);

#[tokio::test]
async fn a_client_that_never_reads_a_small_response_is_closed_by_the_header_timer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(Config {
        header_timeout: HEADER_TIMEOUT,
        ..Config::default()
    })
    .unwrap();
    let metrics = server.metrics();
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(listener, shutdown.clone()));

    let mut client = TcpStream::connect(addr).await.unwrap();
    let sent = Instant::now();
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    // The client reads nothing; the server's gauge says when the connection is gone.
    tokio::time::timeout(DEADLINE, async {
        while metrics.connections_open() != 0 || metrics.connections_total() == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the connection of a client that never reads was never closed");
    assert!(
        sent.elapsed() >= HEADER_TIMEOUT,
        "closed before the header timeout: {:?}",
        sent.elapsed()
    );

    // The whole response had been written before the close: it waits in the client's buffer.
    let mut received = Vec::new();
    tokio::time::timeout(DEADLINE, client.read_to_end(&mut received))
        .await
        .expect("the socket is closed")
        .ok();
    let received = String::from_utf8_lossy(&received);
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(
        received.ends_with("hello from the template\n"),
        "{received}"
    );
}
