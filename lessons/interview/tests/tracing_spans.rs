//! Which span an event lands in, in async code (tracing 0.1, tracing-subscriber 0.3).
//!
//! Backs R10 of the bank. A `span.enter()` guard held across an `.await` leaves the span
//! entered on the thread while the task is suspended, so whatever runs next on that thread
//! logs into it; `.instrument(span)` enters the span only while the future is polled. hyper
//! spawns each HTTP/2 stream's handler through the executor, so a span on the connection's
//! future does not reach the handlers unless the executor carries it.
//!
//! Everything runs on one thread (the paused current-thread runtime), so a thread-local
//! subscriber sees every event, and the order of events is fixed by handshakes.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use harness::watchdog::check;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::oneshot;
use tracing::field::{Field, Visit};
use tracing::{Instrument, Subscriber, info, info_span};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const HANG: &str = "a task waited for a handshake that never came";

/// An event's message, and the name of the span it was recorded in.
type Recorded = (String, Option<String>);

/// Every event recorded so far.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Recorded>>>);

impl Events {
    /// The span the event with this message was recorded in.
    fn span_of(&self, message: &str) -> Option<String> {
        let events = self.0.lock().unwrap();
        let (_, span) = events
            .iter()
            .find(|(m, _)| m == message)
            .unwrap_or_else(|| panic!("no event {message:?} in {events:?}"));
        span.clone()
    }
}

impl<S> tracing_subscriber::Layer<S> for Events
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        struct Message(String);
        impl Visit for Message {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let span = ctx.event_span(event).map(|span| span.name().to_owned());
        self.0.lock().unwrap().push((message.0, span));
    }
}

/// Installs a recording subscriber on this thread for as long as the guard lives.
fn record() -> (Events, tracing::subscriber::DefaultGuard) {
    let events = Events::default();
    let subscriber = tracing_subscriber::registry().with(events.clone());
    (events, tracing::subscriber::set_default(subscriber))
}

/// Request A holds its span across an `.await`, request B logs while A is suspended. `enter`
/// chooses between `span.enter()` and `.instrument(span)` for A.
async fn two_requests(enter: bool) -> Events {
    let (events, _guard) = record();
    let (a_waiting_tx, a_waiting) = oneshot::channel::<()>();
    let (b_done_tx, b_done) = oneshot::channel::<()>();
    let request_b = tokio::spawn(async move {
        a_waiting.await.unwrap();
        info!("b: served");
        b_done_tx.send(()).unwrap();
    });
    let span = info_span!("request_a");
    if enter {
        let _entered = span.enter();
        a_waiting_tx.send(()).unwrap();
        b_done.await.unwrap(); // suspended with the span still entered on this thread
        info!("a: served");
    } else {
        async {
            a_waiting_tx.send(()).unwrap();
            b_done.await.unwrap();
            info!("a: served");
        }
        .instrument(span)
        .await;
    }
    request_b.await.unwrap();
    events
}

#[test]
fn an_entered_span_held_across_an_await_swallows_another_tasks_events() {
    check(HANG).paused(|| async {
        let events = two_requests(true).await;
        assert_eq!(events.span_of("a: served").as_deref(), Some("request_a"));
        assert_eq!(events.span_of("b: served").as_deref(), Some("request_a"));
    });
}

#[test]
fn an_instrumented_future_keeps_its_span_to_itself() {
    check(HANG).paused(|| async {
        let events = two_requests(false).await;
        assert_eq!(events.span_of("a: served").as_deref(), Some("request_a"));
        assert_eq!(events.span_of("b: served"), None);
    });
}

async fn handler(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    info!("handler ran");
    Ok(Response::new(Full::new(Bytes::from("ok\n"))))
}

fn get() -> Request<Empty<Bytes>> {
    Request::get("http://bank.test/")
        .body(Empty::new())
        .unwrap()
}

/// hyper's executor for HTTP/2 stream tasks: plain `tokio::spawn` like `TokioExecutor`, or,
/// with `carry_span`, each future spawned inside the span that is current when hyper hands it
/// over (the connection's span, since hyper does that while polling the connection).
#[derive(Clone, Copy)]
struct Spawner {
    carry_span: bool,
}

impl<F> hyper::rt::Executor<F> for Spawner
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        if self.carry_span {
            tokio::spawn(future.in_current_span());
        } else {
            tokio::spawn(future);
        }
    }
}

/// Serves one request with the connection future instrumented by a span named "connection":
/// the span the handler's event was recorded in.
async fn handler_span(http2: Option<Spawner>) -> Option<String> {
    let (events, _guard) = record();
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let connection = info_span!("connection");
    let io = TokioIo::new(server_io);
    let server = match http2 {
        None => tokio::spawn(
            async move {
                http1::Builder::new()
                    .serve_connection(io, service_fn(handler))
                    .await
                    .is_ok()
            }
            .instrument(connection),
        ),
        Some(spawner) => tokio::spawn(
            async move {
                http2::Builder::new(spawner)
                    .serve_connection(io, service_fn(handler))
                    .await
                    .is_ok()
            }
            .instrument(connection),
        ),
    };
    let client_io = TokioIo::new(client_io);
    let response = if http2.is_some() {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), client_io)
                .await
                .unwrap();
        tokio::spawn(conn);
        sender.send_request(get()).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(client_io)
            .await
            .unwrap();
        tokio::spawn(conn);
        sender.send_request(get()).await.unwrap()
    };
    response.into_body().collect().await.unwrap();
    server.abort();
    events.span_of("handler ran")
}

#[test]
fn an_http1_handler_runs_inside_the_connections_span() {
    check(HANG).paused(|| async {
        assert_eq!(handler_span(None).await.as_deref(), Some("connection"));
    });
}

#[test]
fn an_http2_handler_is_spawned_outside_the_connections_span() {
    check(HANG).paused(|| async {
        let plain = Spawner { carry_span: false };
        assert_eq!(handler_span(Some(plain)).await, None);
    });
}

#[test]
fn an_executor_that_carries_the_span_brings_it_to_http2_handlers() {
    check(HANG).paused(|| async {
        let carrying = Spawner { carry_span: true };
        assert_eq!(
            handler_span(Some(carrying)).await.as_deref(),
            Some("connection")
        );
    });
}
