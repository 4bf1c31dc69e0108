//! Claims of the admission-control chapter, demonstrated.
//!
//! The connection limit runs on real sockets with the real clock (the backlog is the
//! kernel's); everything that depends on time (rates, queue latencies) runs on the paused
//! clock, over in-memory connections where a server is involved.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use harness::duplex;
use harness::leak::Gauge;
use harness::server::H1Connection;
use harness::watchdog::check;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::limit::ConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::load_shed::error::Overloaded;
use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};

#[allow(dead_code)]
#[path = "../examples/admission_server.rs"]
mod server;

#[allow(dead_code)]
#[path = "../examples/admission_queue_vs_shed.rs"]
mod simulation;

use server::{Admission, PerIpLimiter, RateLimiter, accept_loop, client_key, serve_one};

const DEADLINE: Duration = Duration::from_secs(10);
const HANG: &str = "a request never got its answer: is a limit waiting instead of refusing?";
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

/// A backend held until the test releases it, counted while it runs.
#[derive(Clone)]
struct Held {
    running: Gauge,
    release: Arc<Semaphore>,
}

impl Held {
    fn new() -> Self {
        Self {
            running: Gauge::new(),
            release: Arc::new(Semaphore::new(0)),
        }
    }

    fn backend(&self) -> impl Fn() -> futures::future::BoxFuture<'static, ()> + Clone + use<> {
        let held = self.clone();
        move || {
            let held = held.clone();
            Box::pin(async move {
                let _running = held.running.guard();
                held.release.acquire().await.unwrap().forget();
            })
        }
    }
}

fn generous() -> PerIpLimiter {
    PerIpLimiter::new(1_000, 1_000, 1_000)
}

// ---- A connection limit before accept ----

#[test]
fn a_connection_over_the_limit_waits_in_the_backlog_until_a_slot_frees() {
    check(HANG).real(|| async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let admission = Admission {
            per_ip: generous(),
            in_flight: Arc::new(Semaphore::new(100)),
            backend: || async {},
        };
        let server = tokio::spawn(accept_loop(listener, 1, admission, Arc::clone(&accepted)));

        let mut first = H1Connection::handshake(TcpStream::connect(addr).await.unwrap()).await;
        assert_eq!(first.get("/a").await.unwrap().status, 200);

        // The kernel completes the second handshake into the backlog: `connect` succeeds...
        let second = TcpStream::connect(addr).await.unwrap();
        let mut second = H1Connection::handshake(second).await;
        let waiting = tokio::spawn(async move { second.get("/b").await });
        // ...but the server is busy with the first connection only: it still serves it, and
        // the second connection's request is still unanswered afterwards.
        assert_eq!(first.get("/a").await.unwrap().status, 200);
        assert!(
            !waiting.is_finished(),
            "served past a limit of one connection"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);

        // Closing the first connection frees the slot: the loop accepts the second one.
        first.close().await;
        let response = waiting
            .await
            .unwrap()
            .expect("the queued connection was dropped");
        assert_eq!(response.status, 200);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        server.abort();
    });
}

// ---- Shedding: LoadShed's error, and try_acquire's 503 ----

#[test]
fn load_shed_reports_overload_as_an_error_not_a_response() {
    check(HANG).paused(|| async {
        let release = Arc::new(Semaphore::new(0));
        let backend = {
            let release = Arc::clone(&release);
            service_fn(move |_: ()| {
                let release = Arc::clone(&release);
                async move {
                    release.acquire().await.unwrap().forget();
                    Ok::<_, BoxError>("ok")
                }
            })
        };
        let service = ServiceBuilder::new()
            .layer(LoadShedLayer::new())
            .layer(ConcurrencyLimitLayer::new(1))
            .service(backend);

        let busy = tokio::spawn(service.clone().oneshot(()));
        tokio::task::yield_now().await; // the first call takes the only permit

        let refused = service.clone().oneshot(()).await.unwrap_err();
        assert!(
            refused.is::<Overloaded>(),
            "not a response: an error the stack must map"
        );
        release.add_permits(1);
        assert_eq!(busy.await.unwrap().unwrap(), "ok");
    });
}

#[test]
fn a_full_server_sheds_with_503_and_retry_after_without_reaching_the_backend() {
    check(HANG).paused(|| async {
        let held = Held::new();
        let admission = Admission {
            per_ip: generous(),
            in_flight: Arc::new(Semaphore::new(1)),
            backend: held.backend(),
        };
        let (mut busy, _a) = duplex::http1(|io| serve_one(io, CLIENT, admission.clone())).await;
        let first = tokio::spawn(async move { busy.get("/report").await });
        assert!(held.running.reaches_started(1, DEADLINE).await);

        let (mut other, _b) = duplex::http1(|io| serve_one(io, CLIENT, admission.clone())).await;
        let refused = other.get("/report").await.unwrap();
        assert_eq!(refused.status, 503);
        assert_eq!(refused.header("retry-after"), Some("1"));
        assert_eq!(
            held.running.started(),
            1,
            "the shed request reached the backend"
        );

        held.release.add_permits(1);
        assert_eq!(first.await.unwrap().unwrap().status, 200);
        held.release.add_permits(1);
        assert_eq!(other.get("/report").await.unwrap().status, 200);
    });
}

// ---- Queue or shed under overload ----

// ANCHOR: measured
#[test]
fn under_overload_a_queue_serves_everyone_late_and_shedding_serves_some_on_time() {
    check(HANG).paused(|| async {
        let ms = Duration::from_millis;
        let queued = simulation::queueing().await;
        let shed = simulation::shedding().await;
        // (served, refused, median latency, worst latency)
        assert_eq!(simulation::summary(&queued), (40, 0, ms(500), ms(860)));
        assert_eq!(simulation::summary(&shed), (20, 20, ms(100), ms(100)));

        // With clients that give up after 250 ms, most of the queue's work is wasted: it
        // answers fewer requests in time than shedding does, and serves the rest too late.
        let in_time = |outcomes: &[simulation::Outcome]| {
            outcomes.iter().flatten().filter(|l| **l <= ms(250)).count()
        };
        assert_eq!(in_time(&queued), 8);
        assert_eq!(in_time(&shed), 20);
    });
}
// ANCHOR_END: measured

// ---- Rate limits ----

#[test]
fn one_bucket_shared_by_every_connection_answers_429_then_refills_on_tokio_time() {
    check(HANG).paused(|| async {
        let limiter = RateLimiter::new(5, 5);
        let clones = [limiter.clone(), limiter.clone()];
        let mut verdicts = Vec::new();
        for i in 0..10 {
            verdicts.push(clones[i % 2].check());
        }
        let admitted = verdicts.iter().filter(|v| v.is_ok()).count();
        assert_eq!(admitted, 5, "the clones share one bucket");
        // Empty bucket, 5 tokens a second: the next token is 200 ms away.
        assert_eq!(verdicts[9], Err(Duration::from_millis(200)));

        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(limiter.check(), Ok(()), "refilled by tokio's clock");
    });
}

#[test]
fn a_per_client_limit_answers_429_with_retry_after_across_connections() {
    check(HANG).paused(|| async {
        let admission = Admission {
            per_ip: PerIpLimiter::new(5, 5, 1_000),
            in_flight: Arc::new(Semaphore::new(100)),
            backend: || async {},
        };
        let (mut a, _a) = duplex::http1(|io| serve_one(io, CLIENT, admission.clone())).await;
        let (mut b, _b) = duplex::http1(|io| serve_one(io, CLIENT, admission.clone())).await;
        let mut statuses = Vec::new();
        for i in 0..6 {
            let conn = if i % 2 == 0 { &mut a } else { &mut b };
            statuses.push(conn.get("/").await.unwrap().status.as_u16());
        }
        assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
        let refused = a.get("/").await.unwrap();
        assert_eq!(refused.header("retry-after"), Some("1"));

        // Another client has its own bucket.
        let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        let (mut c, _c) = duplex::http1(|io| serve_one(io, other, admission.clone())).await;
        assert_eq!(c.get("/").await.unwrap().status, 200);

        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.get("/").await.unwrap().status, 200);
    });
}

#[test]
fn a_per_client_map_forgets_refilled_clients_and_refuses_newcomers_when_full() {
    check(HANG).paused(|| async {
        let limiter = PerIpLimiter::new(2, 1, 3);
        for last in 1..=3 {
            let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, last));
            assert!(limiter.check(ip).is_ok());
        }
        assert_eq!(limiter.clients(), 3);
        // A fourth client while the three buckets are still draining: refused, map unchanged.
        let newcomer = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 99));
        assert!(limiter.check(newcomer).is_err());
        assert_eq!(limiter.clients(), 3);

        // Once their buckets are full again they carry no information and are forgotten.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limiter.check(newcomer).is_ok());
        assert_eq!(limiter.clients(), 1);
    });
}

#[test]
fn ipv6_clients_are_keyed_by_their_64_bit_prefix() {
    let one = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1));
    let same_prefix = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0xdead, 0xbeef, 0, 2));
    let other_prefix = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
    assert_eq!(client_key(one), client_key(same_prefix));
    assert_ne!(client_key(one), client_key(other_prefix));
}

/// The backlog is not a queue without end: past it, the kernel drops the client's SYN, and
/// the client's `connect` waits for its own retransmission (1 s later on Linux).
#[test]
fn past_a_full_backlog_a_new_connect_does_not_complete() {
    check(HANG).real(|| async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap(); // and never accepted from
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        // Linux queues backlog + 1 completed connections.
        for _ in 0..2 {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        let next = tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr));
        assert!(
            next.await.is_err(),
            "the kernel completed a connection past its backlog"
        );
        drop(listener);
    });
}
