//! The testing chapter's listings: one test per technique, all against `examples/testing.rs`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use harness::TestResponse;
use harness::duplex::{self, ServerSide};
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

use example::{App, Reports};

const DEADLINE: Duration = Duration::from_secs(10);

/// What a connection served by the auto builder ends with.
type Served = Result<(), Box<dyn std::error::Error + Send + Sync>>;

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
/// to race. Returns the client's end, an HTTP/1 connection, and the server's task.
async fn in_memory(app: Arc<App>) -> (H1Connection, ServerSide<Served>) {
    duplex::http1(move |io| async move {
        let service = service_fn(move |request| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(example::handle(request, app).await) }
        });
        example::builder()
            .serve_connection(TokioIo::new(io), service)
            .await
    })
    .await
}

#[test]
fn the_report_deadline_on_the_paused_clock() {
    check("the report never answered").paused(|| async {
        // The default upstream needs 5 s, on tokio's clock.
        let (mut client, _server) = in_memory(Arc::new(App::default())).await;

        let start = Instant::now();
        let response = client.get("/report").await.unwrap();
        assert_eq!(response.status, StatusCode::GATEWAY_TIMEOUT);
        // Exactly the deadline, in virtual time; the test itself takes microseconds.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    });
}
// ANCHOR_END: paused_clock

// ANCHOR: fake_upstream
/// A fake report upstream that answers after `latency`, measured on tokio's clock: on the
/// paused clock the delay is exact and costs no real time.
fn upstream_taking(latency: Duration) -> Reports {
    Arc::new(move || {
        Box::pin(async move {
            tokio::time::sleep(latency).await;
            "report\n".to_owned()
        })
    })
}

#[test]
fn injected_latency_on_either_side_of_the_deadline() {
    check("the report never answered").paused(|| async {
        for (latency, status, after) in [
            (
                Duration::from_millis(1999),
                StatusCode::OK,
                Duration::from_millis(1999),
            ),
            (
                Duration::from_millis(2001),
                StatusCode::GATEWAY_TIMEOUT,
                Duration::from_secs(2),
            ),
        ] {
            let app = App {
                reports: upstream_taking(latency),
                ..App::default()
            };
            let (mut client, _server) = in_memory(Arc::new(app)).await;
            let start = Instant::now();
            let response = client.get("/report").await.unwrap();
            assert_eq!(response.status, status, "upstream latency {latency:?}");
            assert_eq!(start.elapsed(), after, "upstream latency {latency:?}");
        }
    });
}
// ANCHOR_END: fake_upstream

#[test]
fn a_slow_upstream_does_not_hold_up_other_requests() {
    check("a request waited for another one's upstream").paused(|| async {
        let app = Arc::new(App {
            reports: upstream_taking(Duration::from_secs(60)),
            ..App::default()
        });
        let (mut reporting, _server) = in_memory(Arc::clone(&app)).await;
        let (mut checking, _other) = in_memory(app).await;
        let start = Instant::now();
        let report = tokio::spawn(async move { reporting.get("/report").await });
        // While the report waits for its upstream, another connection is served at once.
        let health = checking.get("/health").await.unwrap();
        assert_eq!(health.status, StatusCode::OK);
        assert_eq!(start.elapsed(), Duration::ZERO);
        let report = report.await.unwrap().unwrap();
        assert_eq!(report.status, StatusCode::GATEWAY_TIMEOUT);
    });
}

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

// ANCHOR: alive_tasks
#[test]
fn every_task_ends_once_its_client_is_gone() {
    check("a task the service started never ended").paused(|| async {
        // On a current-thread runtime (the paused one is), the count is exact between awaits.
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();

        let app = Arc::new(App::default());
        let (mut client, server) = in_memory(Arc::clone(&app)).await;
        client
            .send(request("POST", "/thumbnails", "cat.png"))
            .await
            .unwrap();
        assert!(
            metrics.num_alive_tasks() > before,
            "connection tasks and a render"
        );

        client.close().await; // the client hangs up...
        server.task.await.unwrap().unwrap(); // ...so its connection task ends,
        app.renders.close();
        tokio::time::timeout(DEADLINE, app.renders.wait()) // and the render finishes.
            .await
            .unwrap();
        assert_eq!(
            metrics.num_alive_tasks(),
            before,
            "a task outlived its request"
        );
    });
}
// ANCHOR_END: alive_tasks

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
        let (mut client, _server) = in_memory(Arc::new(App::default())).await;

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
