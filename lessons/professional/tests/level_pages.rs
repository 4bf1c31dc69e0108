//! Claims made by the professional level's review pages (mental models, pitfalls, cheat sheet)
//! that no chapter's test covers on its own.

use std::sync::Arc;
use std::time::Duration;

use harness::watchdog::check;
use lessons_professional::Config;
use lessons_professional::Server;
use lessons_professional::outbound::{CONNECT_TIMEOUT, POOL_IDLE_TIMEOUT, TOTAL_TIMEOUT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const HANG: &str = "a server never answered: a request is stuck in its queue";
/// Generous: every wait below ends on an event long before this.
const DEADLINE: Duration = Duration::from_secs(10);

/// The cheat sheet lists the template's defaults in one table. This pins them, and the
/// reasons the book gives for them, so that the table and the code cannot drift apart.
#[test]
fn the_templates_defaults_are_the_ones_the_cheat_sheet_lists() {
    let config = Config::default();
    assert_eq!(config.max_connections, 4096);
    assert_eq!(config.header_timeout, Duration::from_secs(10));
    assert_eq!(config.body_deadline, Duration::from_secs(30));
    assert_eq!(config.max_body_bytes, 1024 * 1024);
    assert_eq!(config.max_in_flight, 1024);
    assert_eq!(
        config.rate_per_second, 0,
        "the rate limit is off by default"
    );
    assert_eq!(config.handler_timeout, Duration::from_secs(15));
    assert_eq!(config.shutdown_deadline, Duration::from_secs(25));
    assert_eq!(config.h1_max_buf_size, 64 * 1024);
    assert_eq!(config.h1_max_headers, 64);
    assert_eq!(config.h2_max_concurrent_streams, 128);
    assert_eq!(config.h2_keep_alive_interval, Duration::from_secs(20));
    assert_eq!(config.h2_keep_alive_timeout, Duration::from_secs(10));
    assert_eq!(CONNECT_TIMEOUT, Duration::from_secs(2));
    assert_eq!(TOTAL_TIMEOUT, Duration::from_secs(10));
    assert_eq!(config.upstream_timeout, TOTAL_TIMEOUT);
    assert_eq!(POOL_IDLE_TIMEOUT, Duration::from_secs(20));

    // The reasons, as the cheat sheet states them.
    assert!(
        config.shutdown_deadline < Duration::from_secs(30),
        "the drain must end inside Kubernetes' default 30 s grace period"
    );
    assert!(
        config.upstream_timeout < config.handler_timeout,
        "a slow upstream must get our 504 before the handler timeout's 503"
    );
    assert!(
        POOL_IDLE_TIMEOUT < Duration::from_secs(30),
        "the pool must retire a connection before a hyper upstream's 30 s idle close"
    );
    assert!(
        Duration::from_millis(10_000) < config.handler_timeout,
        "/work's 10 s cap must stay under the handler timeout"
    );
}

/// A server with one worker that takes `SERVICE` per request and stalls once, for a second,
/// from `stall_from`: a pause such as a blocked worker or a slow dependency would cause.
/// tokio's `Mutex` is fair, so waiting requests are served first come, first served.
struct StallingServer {
    worker: Mutex<()>,
    stall: std::ops::Range<Instant>,
}

const SERVICE: Duration = Duration::from_millis(1);
const RUN: Duration = Duration::from_secs(2);

impl StallingServer {
    fn new(start: Instant) -> Arc<Self> {
        let from = start + Duration::from_millis(100);
        Arc::new(StallingServer {
            worker: Mutex::new(()),
            stall: from..from + Duration::from_secs(1),
        })
    }

    async fn serve(&self) {
        let _worker = self.worker.lock().await;
        if self.stall.contains(&Instant::now()) {
            tokio::time::sleep_until(self.stall.end).await;
        }
        tokio::time::sleep(SERVICE).await;
    }
}

/// The latency below which `share` of the samples fall.
fn percentile(samples: &mut [Duration], share: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 * share) as usize).min(samples.len() - 1)]
}

/// What a closed-loop tool such as wrk measures (one connection: send, wait for the answer,
/// send the next), and what the same stall does to users who arrive on their own schedule,
/// one every 2 ms, each measured from the moment it arrived. On the paused clock, exactly.
#[test]
fn a_closed_loop_tool_records_one_slow_sample_where_arriving_users_pile_up() {
    check(HANG).paused(|| async {
        let slow = Duration::from_millis(100);

        // Closed loop: while the server stalls, the tool has one request out and sends nothing.
        let start = Instant::now();
        let server = StallingServer::new(start);
        let mut closed = vec![];
        while start.elapsed() < RUN {
            let sent = Instant::now();
            server.serve().await;
            closed.push(sent.elapsed());
        }
        let closed_slow = closed.iter().filter(|l| **l > slow).count();

        // Open loop: users keep arriving during the stall, and each one waits.
        let start = Instant::now();
        let server = StallingServer::new(start);
        let gap = Duration::from_millis(2);
        let users: Vec<_> = (0..(RUN.as_millis() / gap.as_millis()) as u32)
            .map(|i| {
                let (server, arrives) = (Arc::clone(&server), start + gap * i);
                tokio::spawn(async move {
                    tokio::time::sleep_until(arrives).await;
                    server.serve().await;
                    arrives.elapsed()
                })
            })
            .collect();
        let mut open = vec![];
        for user in users {
            open.push(user.await.unwrap());
        }
        let open_slow = open.iter().filter(|l| **l > slow).count();

        // The tool saw the stall once, in about a thousand samples: its p99 is the fast path.
        assert!(closed.len() > 900, "{} closed-loop samples", closed.len());
        assert_eq!(
            closed_slow, 1,
            "closed loop: {closed_slow} samples over {slow:?}"
        );
        assert!(percentile(&mut closed, 0.99) <= 2 * SERVICE);
        // The same stall, met by arriving users: most of them waited, the unlucky a second.
        assert!(
            open_slow > open.len() / 2,
            "open loop: only {open_slow} of {} over {slow:?}",
            open.len()
        );
        assert!(percentile(&mut open, 0.50) > Duration::from_millis(400));
        assert!(percentile(&mut open, 0.99) > Duration::from_millis(900));
    });
}

/// Sends one request with `lines` header lines (`Host` included) to the template and returns
/// its status line. `Connection: close` makes the server close once it has answered.
async fn status_with_header_lines(addr: std::net::SocketAddr, lines: usize) -> String {
    let mut head = String::from("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for n in 2..lines {
        head.push_str(&format!("X-Line-{n}: {n}\r\n"));
    }
    head.push_str("\r\n");
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, client.read_to_end(&mut answer))
        .await
        .expect("the server neither answered nor closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// The cheat sheet says the template's `max_headers` of 64 refuses a 65th header line with
/// 431, as its `max_buf_size` refuses a head too large (hyper maps httparse's
/// `TooManyHeaders` to the same 431).
#[test]
fn a_65th_header_line_gets_431_from_the_template() {
    check(HANG).real(|| async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = Server::new(Config::default()).unwrap();
        let running = tokio::spawn(server.run(listener, shutdown.clone()));

        assert_eq!(status_with_header_lines(addr, 64).await, "HTTP/1.1 200 OK");
        assert_eq!(
            status_with_header_lines(addr, 65).await,
            "HTTP/1.1 431 Request Header Fields Too Large"
        );

        shutdown.cancel();
        running.await.unwrap();
    });
}
