//! Tests for the claims of `book/src/junior/anti-patterns.md`: each Go anti-pattern's Rust
//! shape, what it does, and what its fix does. The listings are compiled in as modules.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use harness::duplex;
use harness::leak::{Gauge, Guard};
use harness::server::{H1Connection, TestServer, request};
use harness::watchdog::check;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::RETRY_AFTER;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

mod support;
use support::serve_auto;

#[allow(dead_code)]
#[path = "../examples/anti_late_send.rs"]
mod anti_late_send;

#[allow(dead_code)]
#[path = "../examples/anti_stored_request.rs"]
mod anti_stored_request;

#[allow(dead_code)]
#[path = "../examples/anti_lock_scope.rs"]
mod anti_lock_scope;

#[allow(dead_code)]
#[path = "../examples/anti_detached_upstream.rs"]
mod anti_detached_upstream;

#[allow(dead_code)]
#[path = "../examples/anti_stray_sender.rs"]
mod anti_stray_sender;

#[allow(dead_code)]
#[path = "../examples/anti_semaphore.rs"]
mod anti_semaphore;

#[allow(dead_code)]
#[path = "../examples/anti_client_per_request.rs"]
mod anti_client_per_request;

#[allow(dead_code)]
#[path = "../examples/anti_fan_out.rs"]
mod anti_fan_out;

use anti_late_send::Producer;

// ------------------------------------------------ 1. writing after the handler returned

/// Serves `progress(steps, 1 s)` on an in-memory connection; the producer's handle of each
/// request arrives on the returned channel.
fn progress_connection(
    steps: u32,
) -> (
    DuplexStream,
    mpsc::UnboundedReceiver<tokio::task::JoinHandle<Producer>>,
) {
    let (handles, received) = mpsc::unbounded_channel();
    let (client, _server) = duplex::raw(move |io: DuplexStream| async move {
        let service = service_fn(move |_request| {
            let (response, producer) = anti_late_send::progress(steps, Duration::from_secs(1));
            let _ = handles.send(producer);
            async move { Ok::<_, Infallible>(response) }
        });
        serve_auto(io, service).await;
    });
    (client, received)
}

#[test]
fn producer_send_fails_once_the_client_is_gone() {
    check("the producer never noticed the client left").paused(|| async {
        let (mut client, mut handles) = progress_connection(100);
        client
            .write_all(b"GET /progress HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        let mut received = Vec::new();
        let mut chunk = [0u8; 1024];
        while !String::from_utf8_lossy(&received).contains("step 2 of 100") {
            let n = client.read(&mut chunk).await.unwrap();
            received.extend_from_slice(&chunk[..n]);
        }
        drop(client);
        let producer = handles.recv().await.unwrap();
        match producer.await.unwrap() {
            Producer::ClientLeft { after_steps } => assert!((2..10).contains(&after_steps)),
            Producer::Finished => panic!("the producer ran all 100 steps for nobody"),
        }
    });
}

#[test]
fn producer_that_finishes_ends_the_body() {
    check("the streamed response never ended").paused(|| async {
        let (client, mut handles) = progress_connection(3);
        let mut connection = H1Connection::handshake(client).await;
        let response = connection.get("/progress").await.unwrap();
        assert_eq!(response.text(), "step 1 of 3\nstep 2 of 3\nstep 3 of 3\n");
        let producer = handles.recv().await.unwrap();
        assert_eq!(producer.await.unwrap(), Producer::Finished);
    });
}

// ------------------------------------------------ 2. storing the request in a queue

/// The size of the upload both checks send: more than the in-memory pipe's buffer
/// (`harness::duplex::PIPE_BYTES`).
const UPLOAD_BYTES: usize = 200_000;

/// Serves `handler` on a new in-memory connection, and returns an HTTP/1 client connection to it.
async fn in_memory_connection<H, Fut>(handler: H) -> H1Connection
where
    H: Fn(Request<Incoming>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let (connection, _server) =
        duplex::http1(move |io: DuplexStream| serve_auto(io, service_fn(handler))).await;
    connection
}

/// Sends `POST /thumbnails` with an upload of [`UPLOAD_BYTES`] bytes.
async fn post_upload(connection: &mut H1Connection) -> harness::TestResponse {
    let upload = vec![b'x'; UPLOAD_BYTES];
    connection
        .send(request("POST", "/thumbnails", upload))
        .await
        .unwrap()
}

#[test]
fn queued_request_with_a_body_still_arriving_stalls_the_connection() {
    check("this test bounds its wait with a timeout; it should not hang").paused(|| async {
        let (queue, mut stored) = mpsc::unbounded_channel();
        let mut connection = in_memory_connection(move |request| {
            anti_stored_request::enqueue_request(request, queue.clone())
        })
        .await;
        let first = post_upload(&mut connection).await;
        assert_eq!(first.status, StatusCode::ACCEPTED);
        let _held_by_the_worker = stored.recv().await.unwrap();
        let second = tokio::time::timeout(Duration::from_secs(60), connection.get("/next")).await;
        assert!(
            second.is_err(),
            "a minute later the next request on this connection still has no answer"
        );
    });
}

#[test]
fn queued_job_with_owned_data_keeps_the_connection_moving() {
    check("the next request on the connection was never answered").paused(|| async {
        let (queue, mut jobs) = mpsc::unbounded_channel();
        let mut connection = in_memory_connection(move |request| {
            anti_stored_request::enqueue_job(request, queue.clone())
        })
        .await;
        let first = post_upload(&mut connection).await;
        assert_eq!(first.status, StatusCode::ACCEPTED);
        let second = connection.get("/next").await.unwrap();
        assert_eq!(second.status, StatusCode::ACCEPTED);
        let job = jobs.recv().await.unwrap();
        assert_eq!(job.uri.path(), "/thumbnails");
        assert_eq!(job.body.len(), UPLOAD_BYTES);
    });
}

// ------------------------------------------------ 3. sleeping while holding a lock

async fn four_at_once(held: bool) -> (Duration, u64) {
    let total = Arc::new(tokio::sync::Mutex::new(0));
    let start = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let total = Arc::clone(&total);
        calls.spawn(async move {
            if held {
                anti_lock_scope::record_held(total).await
            } else {
                anti_lock_scope::record_scoped(total).await
            }
        });
    }
    while calls.join_next().await.is_some() {}
    let sum = *total.lock().await;
    (start.elapsed(), sum)
}

#[test]
fn lock_held_across_an_await_serialises_requests() {
    check("the four requests never finished").paused(|| async {
        assert_eq!(four_at_once(true).await, (Duration::from_secs(4), 4));
    });
}

#[test]
fn lock_scoped_to_the_update_lets_requests_overlap() {
    check("the four requests never finished").paused(|| async {
        assert_eq!(four_at_once(false).await, (Duration::from_secs(1), 4));
    });
}

// ------------------------------------------------ 4. an upstream call without the request's lifetime

/// Stands for an upstream call that takes 10 s; its guard shows whether it is still running.
async fn slow_upstream(_running: Guard) -> String {
    tokio::time::sleep(Duration::from_secs(10)).await;
    "quote\n".to_owned()
}

#[test]
fn spawned_upstream_call_outlives_the_dropped_handler() {
    check("the detached upstream call never finished").paused(|| async {
        let gauge = Gauge::new();
        let handler = anti_detached_upstream::quote_detached(slow_upstream(gauge.guard()));
        // hyper drops the handler when the client leaves; a timeout drops it the same way.
        let start = Instant::now();
        assert!(
            tokio::time::timeout(Duration::from_secs(1), handler)
                .await
                .is_err()
        );
        assert_eq!(
            gauge.live(),
            1,
            "the handler is gone, the upstream call is not"
        );
        assert!(gauge.settles_to(0, Duration::from_secs(60)).await);
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(10),
            "it ran to its end, for nobody"
        );
    });
}

#[test]
fn inline_upstream_call_is_dropped_with_the_handler() {
    check("the inline upstream call was never dropped").paused(|| async {
        let gauge = Gauge::new();
        let handler = anti_detached_upstream::quote(slow_upstream(gauge.guard()));
        assert!(
            tokio::time::timeout(Duration::from_secs(1), handler)
                .await
                .is_err()
        );
        assert_eq!(gauge.live(), 0, "dropped together with the handler future");
    });
}

#[test]
fn stuck_upstream_answers_504_at_the_deadline() {
    check("the deadline never fired").paused(|| async {
        let start = Instant::now();
        let response = anti_detached_upstream::quote(std::future::pending()).await;
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(start.elapsed(), anti_detached_upstream::UPSTREAM_DEADLINE);
    });
}

// ------------------------------------------------ 5. closing a channel from many places

#[test]
fn stray_sender_keeps_the_worker_waiting() {
    check("this test bounds its wait with a timeout; it should not hang").paused(|| async {
        let (events, worker) = anti_stray_sender::start_worker();
        let audit_log = events.clone();
        events.send("login".into()).await.unwrap();
        drop(events);
        let waited = tokio::time::timeout(Duration::from_secs(60), worker).await;
        assert!(
            waited.is_err(),
            "one Sender is still alive: the queue never closes"
        );
        drop(audit_log);
    });
}

#[test]
fn worker_ends_when_the_last_sender_is_dropped() {
    check("the worker never ended although every Sender was dropped").paused(|| async {
        let (events, worker) = anti_stray_sender::start_worker();
        let audit_log = events.clone();
        events.send("login".into()).await.unwrap();
        audit_log.send("audit".into()).await.unwrap();
        drop(events);
        drop(audit_log);
        assert_eq!(
            worker.await.unwrap(),
            2,
            "it drained the queue, then returned"
        );
    });
}

// ------------------------------------------------ 6. a semaphore to limit concurrency

#[test]
fn waiting_for_a_permit_bounds_the_work_and_queues_requests() {
    check("the queued requests never finished").paused(|| async {
        let limit = Arc::new(Semaphore::new(1));
        let most = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let limit = Arc::clone(&limit);
            requests.spawn(anti_semaphore::queued(limit, Duration::from_secs(1)));
        }
        // Sample how many hold a permit while the requests run.
        while !requests.is_empty() {
            let at_work = 1 - limit.available_permits();
            most.fetch_max(at_work, Ordering::Relaxed);
            tokio::select! {
                done = requests.join_next() => {
                    assert_eq!(done.unwrap().unwrap().status(), StatusCode::OK);
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        assert_eq!(
            most.load(Ordering::Relaxed),
            1,
            "never more than one at work"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(3),
            "the others waited their turn"
        );
    });
}

#[test]
fn shedding_answers_503_with_retry_after() {
    check("the shedding handler never answered").paused(|| async {
        let limit = Arc::new(Semaphore::new(1));
        let busy = Arc::clone(&limit).try_acquire_owned().unwrap(); // another request at work
        let start = Instant::now();
        let response = anti_semaphore::shed(Arc::clone(&limit), Duration::from_secs(1)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "answered at once, no waiting"
        );
        assert_eq!(response.headers().get(RETRY_AFTER).unwrap(), "1");
        drop(busy);
        let response = anti_semaphore::shed(limit, Duration::from_secs(1)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, Bytes::from("done\n"));
    });
}

// ------------------------------------------------ 7. a client per request

/// An upstream that numbers the TCP connections it accepts and answers each request with the
/// number of the connection that carried it.
async fn numbering_upstream() -> TestServer {
    let accepted = Arc::new(AtomicUsize::new(0));
    TestServer::start(move |listener| async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let number = accepted.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::spawn(async move {
                let service = service_fn(move |_request| async move {
                    let body = Bytes::from(format!("connection {number}"));
                    Ok::<_, Infallible>(Response::new(Full::new(body)))
                });
                serve_auto(stream, service).await;
            });
        }
    })
    .await
}

/// Runs `body` on a one-thread runtime with the real clock. On several threads, reqwest's pool
/// may start a spare connection while the previous one is on its way back to the pool
/// (hyper-util races a checkout against a connect); on one thread the returned connection is
/// back before the next request looks, so the checks below are exact.
fn on_one_thread<F>(body: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    check("the upstream stopped answering").run(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(body())
    });
}

#[test]
fn shared_client_reuses_one_connection() {
    on_one_thread(|| async {
        let upstream = numbering_upstream().await;
        let client = anti_client_per_request::upstream_client();
        let mut served_on = Vec::new();
        for _ in 0..3 {
            let text = anti_client_per_request::fetch(&client, &upstream.url("/")).await;
            served_on.push(text.unwrap());
        }
        assert_eq!(served_on, ["connection 1", "connection 1", "connection 1"]);
    });
}

#[test]
fn client_per_request_opens_a_connection_each_time() {
    on_one_thread(|| async {
        let upstream = numbering_upstream().await;
        let mut served_on = Vec::new();
        for _ in 0..3 {
            let text = anti_client_per_request::fetch_with_new_client(&upstream.url("/")).await;
            served_on.push(text.unwrap());
        }
        assert_eq!(served_on, ["connection 1", "connection 2", "connection 3"]);
    });
}

// ------------------------------------------------ 8. fan-out that returns on the first error

/// One lookup: holds `running` while it works, then fails or answers.
async fn lookup(running: Guard, took: Duration, fails: bool) -> Result<u32, String> {
    let _running = running;
    tokio::time::sleep(took).await;
    if fails {
        Err("orders: 500".into())
    } else {
        Ok(1)
    }
}

/// Two lookups counted by `gauge`: orders fails after 10 ms, the other would answer after 10 s.
fn failing_fast_and_slow(
    gauge: &Gauge,
) -> Vec<impl Future<Output = Result<u32, String>> + Send + 'static> {
    vec![
        lookup(gauge.guard(), Duration::from_millis(10), true),
        lookup(gauge.guard(), Duration::from_secs(10), false),
    ]
}

#[test]
fn detached_fan_out_leaves_the_other_lookups_running() {
    check("the detached lookup never finished").paused(|| async {
        let gauge = Gauge::new();
        let result = anti_fan_out::first_error_detached(failing_fast_and_slow(&gauge)).await;
        assert_eq!(result, Err("orders: 500".into()));
        assert_eq!(
            gauge.live(),
            1,
            "the answer is out, the slow lookup still runs"
        );
    });
}

#[test]
fn join_set_fan_out_aborts_the_other_lookups() {
    check("the slow lookup was never aborted").paused(|| async {
        let gauge = Gauge::new();
        let result = anti_fan_out::first_error(failing_fast_and_slow(&gauge)).await;
        assert_eq!(result, Err("orders: 500".into()));
        assert!(
            gauge.settles_to(0, Duration::from_secs(1)).await,
            "dropping the JoinSet aborted the slow lookup"
        );
    });
}
