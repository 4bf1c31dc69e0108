//! The testing chapter's listings: one test per technique, all against `examples/testing.rs`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use harness::TestResponse;
use harness::duplex;
use harness::leak::Gauge;
use harness::server::{H1Connection, TestServer, request};
use harness::transcript::Transcript;
use harness::watchdog::check;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

#[allow(dead_code)]
#[path = "../examples/testing.rs"]
mod example;

use example::App;

const DEADLINE: Duration = Duration::from_secs(10);

// ANCHOR: direct
#[test]
fn the_handler_can_be_called_directly() {
    check("the handler never returned").paused(|| async {
        let app = Arc::new(App::default());
        // No socket, no server: a Request<Full<Bytes>> and a function call.
        let response = example::handle(request("GET", "/health", ""), app).await;
        let response = TestResponse::collect(response).await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.text(), "ok\n");
    });
}
// ANCHOR_END: direct

// ANCHOR: real_server
#[test]
fn a_real_server_on_a_free_port() {
    check("the server never answered").real(|| async {
        let app = Arc::new(App::default());
        // 127.0.0.1:0: the kernel picks a free port, so tests can run in parallel.
        let server = TestServer::serve(move |request: Request<Incoming>| {
            example::handle(request, Arc::clone(&app))
        })
        .await;
        let response = reqwest::get(server.url("/health")).await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        assert_eq!(response.text().await.unwrap(), "ok\n");
    });
}
// ANCHOR_END: real_server

// ANCHOR: paused_clock
/// Serves `app` on an in-memory connection: no kernel, no real time, nothing for the clock
/// to race. Returns the client's end, an HTTP/1 connection.
async fn in_memory(app: Arc<App>) -> H1Connection {
    let (client, _server) = duplex::http1(move |io| async move {
        let service = service_fn(move |request| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(example::handle(request, app).await) }
        });
        example::builder()
            .serve_connection(TokioIo::new(io), service)
            .await
    })
    .await;
    client
}

#[test]
fn the_report_deadline_on_the_paused_clock() {
    check("the report never answered").paused(|| async {
        let mut client = in_memory(Arc::new(App::default())).await;

        let start = Instant::now();
        let response = client.get("/report").await.unwrap();
        assert_eq!(response.status, StatusCode::GATEWAY_TIMEOUT);
        // Exactly the deadline, in virtual time; the test itself takes microseconds.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    });
}
// ANCHOR_END: paused_clock

// ANCHOR: tracker
#[test]
fn background_renders_finish() {
    check("a background render never finished").paused(|| async {
        let app = Arc::new(App::default());
        let response =
            example::handle(request("POST", "/thumbnails", "cat.png"), Arc::clone(&app)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(app.renders.len(), 1, "the render outlives the request");

        // Wait for the event under a deadline; never sleep and then look.
        app.renders.close();
        tokio::time::timeout(DEADLINE, app.renders.wait())
            .await
            .expect("every render should end");
        assert_eq!(app.rendered.load(Ordering::Relaxed), 1);
    });
}
// ANCHOR_END: tracker

// ANCHOR: gauge
#[test]
fn a_handler_is_dropped_when_its_client_goes_away() {
    check("the handler future was never dropped").real(|| async {
        let handlers = Gauge::new();
        let gauge = handlers.clone();
        let server = TestServer::serve(move |_request: Request<Incoming>| {
            // The guard lives inside the handler future: it is dropped with it.
            let running = gauge.guard();
            async move {
                let _running = running;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Response::new(Full::new(Bytes::from("too late\n")))
            }
        })
        .await;

        let mut client = server.connect().await;
        let request = tokio::spawn(async move {
            let _ = client.get("/slow").await;
        });
        assert!(
            handlers.reaches_started(1, DEADLINE).await,
            "the handler never started"
        );
        request.abort(); // the client vanishes: its connection is dropped
        assert!(
            handlers.settles_to(0, DEADLINE).await,
            "hyper should drop the handler of a GET whose client left"
        );
    });
}
// ANCHOR_END: gauge

// ANCHOR: snapshot
#[test]
fn the_conversation_as_a_snapshot() {
    check("the server never answered").paused(|| async {
        // The in-memory connection of the paused-clock test.
        let mut client = in_memory(Arc::new(App::default())).await;

        let mut transcript = Transcript::new();
        for (method, path, body) in [
            ("GET", "/health", ""),
            ("POST", "/thumbnails", "cat.png"),
            ("POST", "/thumbnails", ""),
            ("GET", "/report", ""),
            ("GET", "/nowhere", ""),
        ] {
            let response = client.send(request(method, path, body)).await.unwrap();
            transcript.request(method, path).response(&response);
        }
        // No dates, ports or timings in it: the snapshot changes only when behaviour does.
        insta::assert_snapshot!(transcript.render());
    });
}
// ANCHOR_END: snapshot
