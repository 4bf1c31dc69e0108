//! Claims of the chapter "Connections and requests", against the `keep_alive` example.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use harness::server::TestServer;
use harness::watchdog::check;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/keep_alive.rs"]
mod keep_alive;

use keep_alive::Totals;

async fn start() -> (TestServer, Arc<Totals>) {
    let totals = Arc::new(Totals::default());
    let server = TestServer::start({
        let totals = Arc::clone(&totals);
        move |listener| keep_alive::serve(listener, totals)
    })
    .await;
    (server, totals)
}

#[test]
fn one_keep_alive_connection_carries_many_requests() {
    check("a keep-alive request was never answered").real(|| async {
        let (server, totals) = start().await;

        let mut connection = server.connect().await;
        for n in 1..=3 {
            let response = connection.get("/").await.unwrap();
            assert_eq!(
                response.text(),
                format!("GET /: connection 1, request {n} on it, request {n} overall\n")
            );
        }

        assert_eq!(totals.connections.load(Ordering::Relaxed), 1);
        assert_eq!(totals.requests.load(Ordering::Relaxed), 3);
    });
}

#[test]
fn a_new_connection_gets_fresh_connection_state_and_shares_the_totals() {
    check("a request was never answered").real(|| async {
        let (server, totals) = start().await;

        let mut first = server.connect().await;
        first.get("/").await.unwrap();
        first.get("/").await.unwrap();

        let mut second = server.connect().await;
        let response = second.get("/").await.unwrap();
        assert_eq!(
            response.text(),
            "GET /: connection 2, request 1 on it, request 3 overall\n"
        );

        // The first connection is still open and still has its own count.
        let response = first.get("/").await.unwrap();
        assert_eq!(
            response.text(),
            "GET /: connection 1, request 3 on it, request 4 overall\n"
        );
        assert_eq!(totals.connections.load(Ordering::Relaxed), 2);
    });
}

#[test]
fn http2_requests_on_one_connection_share_its_state() {
    check("an HTTP/2 request was never answered").paused(|| async {
        let totals = Arc::new(Totals::default());
        let (client, _server) = harness::duplex::raw({
            let totals = Arc::clone(&totals);
            move |io| keep_alive::serve_connection(io, 1, totals)
        });
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client))
                .await
                .unwrap();
        tokio::spawn(connection);

        // Three requests at once, on one connection.
        let requests = (0..3).map(|_| {
            let mut sender = sender.clone();
            async move {
                let request = Request::get("http://workshop.test/")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let response = sender.send_request(request).await.unwrap();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                String::from_utf8(body.to_vec()).unwrap()
            }
        });
        let bodies: BTreeSet<String> = futures::future::join_all(requests)
            .await
            .into_iter()
            .collect();

        let expected: BTreeSet<String> = (1..=3)
            .map(|n| format!("GET /: connection 1, request {n} on it, request {n} overall\n"))
            .collect();
        assert_eq!(bodies, expected);
        assert_eq!(totals.requests.load(Ordering::Relaxed), 3);
    });
}

#[test]
fn with_keep_alive_off_the_server_closes_after_one_response() {
    check("the server never closed the connection").paused(|| async {
        let (mut client, server) = harness::duplex::raw(|io| async move {
            let service = hyper::service::service_fn(|_request| async {
                let body = http_body_util::Full::new(Bytes::from("one\n"));
                Ok::<_, std::convert::Infallible>(hyper::Response::new(body))
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http1().keep_alive(false);
            let _ = builder.serve_connection(TokioIo::new(io), service).await;
        });

        // A plain HTTP/1.1 request: the client would happily keep the connection.
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        client.read_to_string(&mut response).await.unwrap();
        assert!(response.contains("connection: close\r\n"), "{response}");
        server.task.await.unwrap();
    });
}
