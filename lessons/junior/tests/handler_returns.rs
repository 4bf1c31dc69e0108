//! Claims of the chapter "Handlers return responses", against the `handler_returns` example,
//! over in-memory connections on a paused clock.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use harness::duplex::ServerSide;
use harness::server::{H1Connection, request};
use harness::watchdog::check;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

mod support;
use support::{QUIET, serve_auto};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/handler_returns.rs"]
mod handler_returns;

use handler_returns::App;

/// Whether every task on `tracker` has ended within `deadline` (virtual time).
async fn all_ended(tracker: &TaskTracker, deadline: Duration) -> bool {
    tracker.close();
    tokio::time::timeout(deadline, tracker.wait()).await.is_ok()
}

/// A raw hyper HTTP/1 client over `io`, and the task that owns the client's end of the pipe:
/// aborting that task is a client that vanishes.
async fn client(
    io: DuplexStream,
) -> (
    hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    JoinHandle<()>,
) {
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    (sender, driver)
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header("host", "workshop.test")
        .body(Empty::new())
        .unwrap()
}

/// Serves the example's `app` on a new in-memory connection, and returns the raw client end.
fn serve_app(app: &App) -> (DuplexStream, ServerSide<()>) {
    let app = app.clone();
    harness::duplex::raw(move |io| handler_returns::serve_connection(io, app))
}

/// Asks for `/ticks` over `io` and reads the first tick; then the client vanishes mid-stream.
/// Returns once the server's connection task has ended.
async fn read_a_tick_then_vanish(io: DuplexStream, server: ServerSide<()>) {
    let (mut sender, driver) = client(io).await;
    let response = sender.send_request(get("/ticks")).await.unwrap();
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();

    driver.abort();
    drop(body);
    server.task.await.unwrap();
}

#[test]
fn an_upload_is_collected_then_shared_with_a_background_task() {
    check("the upload was never answered").paused(|| async {
        let app = App::default();
        let (io, _server) = serve_app(&app);
        let mut connection = H1Connection::handshake(io).await;

        let response = connection
            .send(request("POST", "/upload", "hello"))
            .await
            .unwrap();
        assert_eq!(response.text(), "stored 5 bytes\n");
        // The audit task it started has run to its end.
        assert!(all_ended(&app.background, QUIET).await);
    });
}

#[test]
fn cloning_bytes_shares_the_buffer() {
    check("cloning bytes hung").run(|| {
        let upload = Bytes::from(vec![7u8; 4096]);
        let for_audit = upload.clone();
        // Same memory, two owners: no copy was made.
        assert_eq!(upload.as_ptr(), for_audit.as_ptr());
    });
}

#[test]
fn an_upload_over_the_limit_is_refused_with_413() {
    check("the oversized upload was never answered").paused(|| async {
        let (client, _server) = serve_app(&App::default());
        let (mut reader, mut writer) = tokio::io::split(client);

        // One byte over the limit, written by its own task: the server stops reading once
        // the limit is passed, so the writer may never get to the end.
        let size = handler_returns::UPLOAD_LIMIT + 1;
        tokio::spawn(async move {
            let head = format!(
                "POST /upload HTTP/1.1\r\nhost: workshop.test\r\ncontent-length: {size}\r\n\r\n"
            );
            let _ = writer.write_all(head.as_bytes()).await;
            let _ = writer.write_all(&vec![b'x'; size]).await;
        });

        let mut response = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&response).contains("upload too large\n") {
            let n = reader.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "connection closed: {}",
                String::from_utf8_lossy(&response)
            );
            response.extend_from_slice(&buf[..n]);
        }
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
            "{response}"
        );
    });
}

#[test]
fn the_head_goes_out_when_the_handler_returns_and_the_body_follows() {
    check("the ticks never arrived").paused(|| async {
        let (io, _server) = serve_app(&App::default());
        let (mut sender, _driver) = client(io).await;

        // The status arrives although the body has no end.
        let response = sender.send_request(get("/ticks")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);

        let mut body = response.into_body();
        for n in 1..=3 {
            let frame = body.frame().await.unwrap().unwrap();
            assert_eq!(frame.into_data().unwrap(), format!("tick {n}\n"));
        }
    });
}

#[test]
fn a_producer_that_checks_send_errors_stops_when_the_client_leaves() {
    check("the ticks never arrived").paused(|| async {
        let app = App::default();
        let (io, server) = serve_app(&app);
        read_a_tick_then_vanish(io, server).await;
        assert!(
            all_ended(&app.background, QUIET).await,
            "the producer kept running after the client left"
        );
    });
}

// ANCHOR: ignores_send_errors
/// The mistake the type system cannot catch: a producer ignoring the send error.
fn ticks_ignoring_send_errors(
    background: TaskTracker,
) -> Response<impl Body<Data = Bytes, Error = Infallible>> {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    background.spawn(async move {
        for n in 1u64.. {
            let chunk = Bytes::from(format!("tick {n}\n"));
            let _ = tx.send(chunk).await; // the client left? we will never know
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Response::new(handler_returns::channel_body(rx))
}
// ANCHOR_END: ignores_send_errors

#[test]
fn a_producer_that_ignores_send_errors_outlives_the_client() {
    check("the ticks never arrived").paused(|| async {
        let background = TaskTracker::new();
        let (io, server) = harness::duplex::raw({
            let background = background.clone();
            move |io| async move {
                let service = service_fn(move |_request: Request<Incoming>| {
                    let response = ticks_ignoring_send_errors(background.clone());
                    async move { Ok::<_, Infallible>(response) }
                });
                serve_auto(io, service).await;
            }
        });
        read_a_tick_then_vanish(io, server).await;
        // The connection is gone, and a minute later the producer is still ticking.
        assert!(
            !all_ended(&background, QUIET).await,
            "the producer stopped although it ignores send errors"
        );
    });
}

#[test]
fn the_status_is_a_field_of_the_returned_value_and_is_written_once() {
    check("the response was never written").paused(|| async {
        let (mut client, _server) = harness::duplex::raw(|io| async move {
            let service = service_fn(|_request: Request<Incoming>| async {
                let mut response = Response::new(Full::new(Bytes::from("created\n")));
                // Changing your mind is an assignment; nothing has been sent yet.
                *response.status_mut() = StatusCode::OK;
                *response.status_mut() = StatusCode::CREATED;
                Ok::<_, Infallible>(response)
            });
            serve_auto(io, service).await;
        });
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: workshop.test\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        client.read_to_string(&mut response).await.unwrap();

        assert!(
            response.starts_with("HTTP/1.1 201 Created\r\n"),
            "{response}"
        );
        assert_eq!(response.matches("HTTP/1.1 ").count(), 1, "{response}");
    });
}

#[test]
fn a_bounded_channel_holds_the_producer_at_four_chunks_ahead() {
    check("a bounded send never completed").paused(|| async {
        let (tx, mut rx) = mpsc::channel::<Bytes>(4);
        for n in 1..=4 {
            tx.send(Bytes::from(format!("tick {n}\n"))).await.unwrap();
        }
        // A fifth send waits for room: it cannot complete until a chunk is taken.
        let mut fifth = Box::pin(tx.send(Bytes::from("tick 5\n")));
        assert!(futures::poll!(fifth.as_mut()).is_pending());
        assert_eq!(rx.recv().await.unwrap(), "tick 1\n");
        assert!(futures::poll!(fifth.as_mut()).is_ready());
    });
}
