//! Tests for the five programs of `book/src/junior/worked-examples.md`. Each program is
//! compiled in here as a module, so the code the chapter shows is the code under test.

use std::sync::Arc;
use std::time::Duration;

use harness::duplex;
use harness::server::{TestServer, request};
use harness::watchdog::check;
use hyper::StatusCode;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod support;
use support::serve_auto;

#[allow(dead_code)]
#[path = "../examples/worked_conn_vs_req.rs"]
mod worked_conn_vs_req;

#[allow(dead_code)]
#[path = "../examples/worked_disconnect.rs"]
mod worked_disconnect;

#[allow(dead_code)]
#[path = "../examples/worked_cache.rs"]
mod worked_cache;

#[allow(dead_code)]
#[path = "../examples/worked_fan_out.rs"]
mod worked_fan_out;

#[allow(dead_code)]
#[path = "../examples/worked_shutdown.rs"]
mod worked_shutdown;

// ---------------------------------------------------------------- 1. connections vs requests

#[test]
fn keep_alive_connection_carries_many_requests() {
    check("the counting server stopped answering").real(|| async {
        let totals = Arc::new(worked_conn_vs_req::Totals::default());
        let server =
            TestServer::start(|listener| worked_conn_vs_req::serve(listener, totals)).await;

        let mut first = server.connect().await;
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(first.get("/").await.unwrap().text());
        }
        assert_eq!(
            answers,
            [
                "connection 1 request 1; totals: connections=1 requests=1\n",
                "connection 1 request 2; totals: connections=1 requests=2\n",
                "connection 1 request 3; totals: connections=1 requests=3\n",
            ]
        );
        first.close().await;

        let mut second = server.connect().await;
        assert_eq!(
            second.get("/").await.unwrap().text(),
            "connection 2 request 1; totals: connections=2 requests=4\n",
            "a new connection starts its own count; the totals go on"
        );
    });
}

// ---------------------------------------------------------------- 2. observing a disconnect

fn report_connection() -> (
    DuplexStream,
    mpsc::UnboundedReceiver<worked_disconnect::Ended>,
) {
    let (events, ended) = mpsc::unbounded_channel();
    let (client, _server) =
        duplex::raw(move |io: DuplexStream| worked_disconnect::serve_connection(io, events));
    (client, ended)
}

#[test]
fn client_that_leaves_is_observed_by_the_guard() {
    check("the report handler neither finished nor was dropped").paused(|| async {
        let (mut client, mut ended) = report_connection();
        client
            .write_all(b"GET /report HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        // The client gives up after three and a half steps (virtual time).
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let left = Instant::now();
        drop(client);
        let how = ended.recv().await.unwrap();
        assert_eq!(how, worked_disconnect::Ended::ClientLeft { after_steps: 3 });
        assert_eq!(left.elapsed(), Duration::ZERO, "noticed at once");
    });
}

#[test]
fn client_that_stays_gets_the_report() {
    check("the report handler never finished").paused(|| async {
        let (client, mut ended) = report_connection();
        let mut connection = harness::server::H1Connection::handshake(client).await;
        let response = connection.get("/report").await.unwrap();
        assert_eq!(response.text(), "report: 10 steps\n");
        assert_eq!(
            ended.recv().await.unwrap(),
            worked_disconnect::Ended::Finished
        );
    });
}

// ---------------------------------------------------------------- 3. a shared cache

#[test]
fn concurrent_clients_share_one_cache() {
    check("the cache server stopped answering: is a lock held across an .await?").real(|| async {
        let server = TestServer::start(|listener| {
            worked_cache::serve(listener, worked_cache::Cache::default())
        })
        .await;
        let client = reqwest::Client::new();
        let mut writers = tokio::task::JoinSet::new();
        for i in 0..16 {
            let client = client.clone();
            let url = server.url(&format!("/key-{i}"));
            writers.spawn(async move {
                let put = client
                    .put(&url)
                    .body(format!("value-{i}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(put.status(), StatusCode::CREATED);
                let got = client.get(&url).send().await.unwrap().text().await.unwrap();
                assert_eq!(got, format!("value-{i}"));
            });
        }
        while let Some(done) = writers.join_next().await {
            done.unwrap();
        }
        let keys = client.get(server.url("/")).send().await.unwrap();
        assert_eq!(keys.text().await.unwrap(), "16 keys\n");
        let missing = client.get(server.url("/nope")).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    });
}

#[test]
fn oversized_value_is_refused() {
    check("the cache handler never answered").paused(|| async {
        let cache = worked_cache::Cache::default();
        let (mut connection, _server) = duplex::http1(move |io: DuplexStream| async move {
            let service = hyper::service::service_fn(move |request| {
                worked_cache::handle(request, Arc::clone(&cache))
            });
            serve_auto(io, service).await;
        })
        .await;
        let too_big = vec![b'x'; worked_cache::MAX_VALUE + 1];
        let response = connection
            .send(request("PUT", "/big", too_big))
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    });
}

// ---------------------------------------------------------------- 4. fan-out with a JoinSet

fn backend(latency_ms: [u64; 3]) -> Arc<worked_fan_out::Backend> {
    Arc::new(worked_fan_out::Backend {
        latency: latency_ms.map(Duration::from_millis),
        in_flight: watch::Sender::new(0),
    })
}

/// Whether every lookup of the backend `in_flight` watches has ended within a second
/// (virtual time).
async fn all_lookups_end(in_flight: &mut watch::Receiver<usize>) -> bool {
    tokio::time::timeout(Duration::from_secs(1), in_flight.wait_for(|n| *n == 0))
        .await
        .is_ok()
}

async fn body_of(response: hyper::Response<http_body_util::Full<bytes::Bytes>>) -> String {
    use http_body_util::BodyExt;
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn fan_out_combines_three_lookups() {
    check("the fan-out never answered").paused(|| async {
        let backend = backend([10, 20, 30]);
        let start = Instant::now();
        let response = worked_fan_out::profile("ada".into(), backend).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(30),
            "the lookups ran at the same time: the slowest one sets the pace"
        );
        assert_eq!(
            body_of(response).await,
            "Account of ada\nOrders of ada\nRecommendations of ada\n"
        );
    });
}

#[test]
fn first_error_answers_502_and_cancels_the_rest() {
    check("the fan-out never answered, or the slow lookup was never cancelled").paused(|| async {
        // Orders fails after 20 ms; recommendations would take 10 s.
        let backend = backend([10, 20, 10_000]);
        let mut in_flight = backend.in_flight.subscribe();
        let start = Instant::now();
        let response = worked_fan_out::profile("ghost".into(), Arc::clone(&backend)).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(20),
            "no waiting for the slow one"
        );
        assert!(
            all_lookups_end(&mut in_flight).await,
            "the 10 s lookup was aborted, not left running"
        );
    });
}

#[test]
fn client_leaving_cancels_every_lookup() {
    check("the lookups were never cancelled").paused(|| async {
        let backend = backend([10_000, 10_000, 10_000]);
        let mut in_flight = backend.in_flight.subscribe();
        let profile = worked_fan_out::profile("ada".into(), Arc::clone(&backend));
        // hyper drops the handler future when the client leaves; a timeout does the same.
        assert!(
            tokio::time::timeout(Duration::from_millis(5), profile)
                .await
                .is_err()
        );
        assert!(
            all_lookups_end(&mut in_flight).await,
            "dropping the handler dropped the JoinSet, which aborted all three"
        );
    });
}

// ---------------------------------------------------------------- 5. graceful shutdown

struct Running {
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    metrics: Arc<worked_shutdown::Metrics>,
    run: tokio::task::JoinHandle<worked_shutdown::Report>,
}

async fn start_shutdown_server(config: worked_shutdown::Config) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let metrics = Arc::new(worked_shutdown::Metrics::default());
    let run = tokio::spawn(worked_shutdown::run(
        listener,
        config,
        shutdown.clone(),
        Arc::clone(&metrics),
    ));
    Running {
        addr,
        shutdown,
        metrics,
        run,
    }
}

impl Running {
    /// Starts `GET /export` from a task of its own, waits until its handler is running, and
    /// returns the task (with the body it read) and a watch on the requests in flight.
    async fn start_export(
        &self,
        client: &reqwest::Client,
    ) -> (
        tokio::task::JoinHandle<reqwest::Result<String>>,
        watch::Receiver<usize>,
    ) {
        let mut in_flight = self.metrics.in_flight.subscribe();
        let export_url = format!("http://{}/export", self.addr);
        let export_client = client.clone();
        let export =
            tokio::spawn(async move { export_client.get(export_url).send().await?.text().await });
        in_flight.wait_for(|n| *n == 1).await.unwrap();
        (export, in_flight)
    }

    /// Starts the shutdown and waits for the server's report.
    async fn shut_down(&mut self) -> worked_shutdown::Report {
        self.shutdown.cancel();
        (&mut self.run).await.unwrap()
    }
}

async fn post_job(client: &reqwest::Client, addr: std::net::SocketAddr) -> StatusCode {
    let url = format!("http://{addr}/jobs");
    let status = client.post(url).body("job").send().await.unwrap().status();
    StatusCode::from_u16(status.as_u16()).unwrap()
}

#[test]
fn shutdown_lets_the_export_finish_and_drains_the_queue() {
    check("shutdown hung: is something still holding a Sender of the job queue?").real(|| async {
        let mut server = start_shutdown_server(worked_shutdown::Config {
            grace: Duration::from_secs(10),
            export_time: Duration::from_millis(300),
            job_time: Duration::from_millis(10),
            queue: 16,
        })
        .await;
        let client = reqwest::Client::new();
        for _ in 0..3 {
            assert_eq!(post_job(&client, server.addr).await, StatusCode::ACCEPTED);
        }
        let (export, _in_flight) = server.start_export(&client).await;

        let report = server.shut_down().await;
        assert_eq!(
            report,
            worked_shutdown::Report {
                forced: false,
                jobs_done: 3
            }
        );
        assert_eq!(export.await.unwrap().unwrap(), "export done\n");
        assert!(
            TcpStream::connect(server.addr).await.is_err(),
            "after shutdown, new connections are refused"
        );
    });
}

#[test]
fn shutdown_closes_a_stuck_export_after_the_grace_period() {
    check("shutdown hung although the grace period is 300 ms").real(|| async {
        let mut server = start_shutdown_server(worked_shutdown::Config {
            grace: Duration::from_millis(300),
            export_time: Duration::from_secs(3600),
            job_time: Duration::from_millis(10),
            queue: 16,
        })
        .await;
        let client = reqwest::Client::new();
        assert_eq!(post_job(&client, server.addr).await, StatusCode::ACCEPTED);
        let (export, in_flight) = server.start_export(&client).await;

        let report = server.shut_down().await;
        assert_eq!(
            report,
            worked_shutdown::Report {
                forced: true,
                jobs_done: 1
            }
        );
        assert!(
            export.await.unwrap().is_err(),
            "the stuck export's connection was closed"
        );
        assert_eq!(
            *in_flight.borrow(),
            0,
            "closing the connection dropped the handler"
        );
    });
}

#[test]
fn full_queue_answers_503() {
    check("the job server stopped answering").real(|| async {
        let server = start_shutdown_server(worked_shutdown::Config {
            grace: Duration::from_millis(100),
            export_time: Duration::from_millis(10),
            job_time: Duration::from_secs(3600),
            queue: 1,
        })
        .await;
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        // The worker holds at most one job and the queue one more: three cannot all fit.
        for _ in 0..3 {
            statuses.push(post_job(&client, server.addr).await);
        }
        assert_eq!(statuses[0], StatusCode::ACCEPTED);
        assert!(
            statuses.contains(&StatusCode::SERVICE_UNAVAILABLE),
            "a full queue answers 503: {statuses:?}"
        );
        server.run.abort();
    });
}
