//! Claims of the chapter "HTTP/2 inside hyper": where stream tasks come from, what bounds
//! they carry and why, and what a reset or a panic does to one stream and its siblings. All
//! run over in-memory connections on a paused clock.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use harness::leak::Gauge;
use harness::watchdog::check;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

mod support {
    pub mod http2;
}
use support::http2::{Gate, OK, PIPE, get, h2_reason, hyper_client};

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/http2_executor.rs"]
mod http2_executor;
use http2_executor::{StreamExecutor, current_stream_task, handle};

const HANG: &str = "a stream never finished: its handler or the connection is stuck";
const LONG: Duration = Duration::from_secs(30);

#[test]
fn every_stream_task_goes_through_the_executor_given_to_the_builder() {
    check(HANG).paused(|| async {
        let executor = StreamExecutor::new();
        let (client_io, server_io) = tokio::io::duplex(PIPE);
        let server_executor = executor.clone();
        tokio::spawn(async move {
            hyper::server::conn::http2::Builder::new(server_executor)
                .serve_connection(TokioIo::new(server_io), service_fn(handle))
                .await
        });
        let sender = hyper_client(client_io).await;
        let (a, b, c) = tokio::join!(get(&sender, "/a"), get(&sender, "/b"), get(&sender, "/c"));
        // Each handler ran inside a future our executor numbered: none ran in the connection
        // task, and no two shared a task.
        let mut tasks: Vec<String> = [a, b, c]
            .into_iter()
            .map(|answer| {
                let body = answer.expect("answered").1;
                body.trim_end().rsplit(' ').next().unwrap().to_owned()
            })
            .collect();
        tasks.sort();
        assert_eq!(tasks, ["1", "2", "3"]);
        assert_eq!(executor.spawned(), 3);
        assert_eq!(
            current_stream_task(),
            None,
            "the test itself is no stream task"
        );
    });
}

/// Spawns stream tasks with `spawn_local`: no `Send` needed, `'static` still is.
#[derive(Clone)]
struct LocalExecutor;

impl<F: Future + 'static> hyper::rt::Executor<F> for LocalExecutor {
    fn execute(&self, stream_task: F) {
        tokio::task::spawn_local(stream_task);
    }
}

#[test]
fn a_local_executor_serves_http2_handlers_that_are_not_send() {
    check(HANG).paused(|| async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (client_io, server_io) = tokio::io::duplex(PIPE);
                // An `Rc` held across an `.await`: this future is not `Send`.
                let service = service_fn(|_: Request<Incoming>| async {
                    let visits = Rc::new(Cell::new(0));
                    tokio::task::yield_now().await;
                    visits.set(visits.get() + 1);
                    let body = format!("visits: {}\n", visits.get());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                tokio::task::spawn_local(
                    hyper::server::conn::http2::Builder::new(LocalExecutor)
                        .serve_connection(TokioIo::new(server_io), service),
                );
                let sender = hyper_client(client_io).await;
                let answer = get(&sender, "/").await.expect("answered");
                assert_eq!(answer, (OK, "visits: 1\n".to_owned()));
            })
            .await;
    });
}

#[test]
fn a_panicking_stream_task_is_seen_only_by_an_executor_that_watches_it() {
    check(HANG).paused(|| async {
        let executor = StreamExecutor::new();
        let (client_io, server_io) = tokio::io::duplex(PIPE);
        let server_executor = executor.clone();
        tokio::spawn(async move {
            hyper::server::conn::http2::Builder::new(server_executor)
                .serve_connection(TokioIo::new(server_io), service_fn(handle))
                .await
        });
        let sender = hyper_client(client_io).await;
        let (slow, panicked) = tokio::join!(get(&sender, "/slow"), get(&sender, "/panic"));
        // The panic dropped the stream's `SendResponse` before any response: h2 resets the
        // stream with CANCEL. Its sibling and the connection carry on.
        let error = panicked.expect_err("the panicking stream gets no response");
        assert_eq!(h2_reason(&error), Some(h2::Reason::CANCEL));
        assert_eq!(slow.expect("answered").0, OK);
        assert_eq!(get(&sender, "/after").await.expect("answered").0, OK);
        let mut panics = executor.panics();
        let seen = tokio::time::timeout(LONG, panics.wait_for(|n| *n == 1)).await;
        assert!(seen.is_ok(), "the watcher saw the JoinError");
    });
}

#[test]
fn a_reset_after_the_head_drops_the_response_body_and_spares_the_siblings() {
    check(HANG).paused(|| async {
        let bodies = Gauge::new();
        let gate = Gate::closed();
        let (client_io, server_io) = tokio::io::duplex(PIPE);
        let (service_bodies, service_gate) = (bodies.clone(), gate.clone());
        let service = service_fn(move |request: Request<Incoming>| {
            let (bodies, gate) = (service_bodies.clone(), service_gate.clone());
            async move {
                if request.uri().path() == "/parked" {
                    gate.pass().await;
                }
                // An endless body that owns a guard: the guard lives as long as the body.
                let guard = bodies.guard();
                let chunks = futures::stream::repeat_with(move || {
                    let _alive = &guard;
                    Ok::<_, Infallible>(Frame::data(Bytes::from_static(&[b'x'; 1024])))
                });
                Ok::<_, Infallible>(Response::new(StreamBody::new(chunks)))
            }
        });
        tokio::spawn(
            hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(TokioIo::new(server_io), service),
        );
        let sender = hyper_client(client_io).await;
        let parked = tokio::spawn({
            let sender = sender.clone();
            async move { get(&sender, "/parked").await }
        });
        let mut streaming = sender.clone();
        streaming.ready().await.unwrap();
        let request = Request::get("http://workshop.test/stream")
            .body(http_body_util::Empty::new())
            .unwrap();
        let mut response = streaming.send_request(request).await.unwrap();
        let first = response.body_mut().frame().await.unwrap().unwrap();
        assert!(first.is_data(), "the body is streaming");
        assert_eq!(bodies.live(), 1);
        // Dropping the response makes hyper's client reset the stream (RST_STREAM, CANCEL).
        drop(response);
        assert!(
            bodies.settles_to(0, LONG).await,
            "the server dropped the streaming body when the client reset its stream"
        );
        // The parked sibling was not touched: let it go, and it builds its own body.
        assert!(!parked.is_finished());
        gate.open();
        assert!(
            bodies.reaches_started(2, LONG).await,
            "the sibling's handler survived the reset"
        );
        let mut sibling = sender.clone();
        sibling.ready().await.unwrap();
        let request = Request::get("http://workshop.test/next")
            .body(http_body_util::Empty::new())
            .unwrap();
        let next = sibling
            .send_request(request)
            .await
            .expect("the connection serves on");
        assert_eq!(next.status().as_u16(), OK);
        parked.abort();
    });
}
