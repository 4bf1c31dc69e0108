//! Checks for S06: a real server on 127.0.0.1, searched with reqwest, over three fake shards
//! the check controls. Each shard call holds a guard of a gauge while it runs, so "a call was
//! still running after the answer" is a count, not a guess. A shard that hangs waits on a
//! gate that never opens: a server that waits for it never answers, and one that forgets it
//! leaves its guard alive for good, however fast or slow the machine.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use harness::leak::Gauge;
use harness::server::TestServer;
use harness::watchdog::check;
use s06_fan_out::{Hit, Shard, ShardError, Shards, serve};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const HANG: &str = "the check never got past waiting on the server; is the search still waiting \
                    for a shard that will never answer?";

const SHARDS: usize = 3;

/// How long a search may take to answer on loopback: it needs a few milliseconds.
const ANSWERS_WITHIN: Duration = Duration::from_secs(2);

/// How long a cancelled shard call may linger once the search is over, counted from the 502's
/// arrival or the hang-up: aborting a task takes microseconds, and this leaves room for a
/// loaded machine, not for a call that is left to time out on its own.
const STOPS_WITHIN: Duration = Duration::from_millis(250);

/// How long a slow but healthy shard takes to answer: slower than any deadline a search
/// could put on a shard call without cutting healthy shards off.
const SLOW_SHARD: Duration = Duration::from_secs(1);

/// What a fake shard does once every shard has been asked.
#[derive(Clone)]
enum Behaviour {
    Answers(Vec<Hit>),
    AnswersSlowly(Vec<Hit>),
    Fails,
    Hangs,
    Panics,
}

/// A shard the check controls. Every call holds a guard of `calls` while it runs, and waits
/// until every shard has been asked before it does anything: a fan-out asks all shards at
/// once, and a shard that fails then fails while its siblings are certainly still running.
struct FakeShard {
    behaviour: Behaviour,
    calls: Gauge,
}

impl Shard for FakeShard {
    fn search(&self, _query: String) -> BoxFuture<'static, Result<Vec<Hit>, ShardError>> {
        let (behaviour, calls) = (self.behaviour.clone(), self.calls.clone());
        Box::pin(async move {
            let _in_flight = calls.guard();
            // Long enough never to matter: a server that asks one shard at a time stalls here.
            calls
                .reaches_started(SHARDS, Duration::from_secs(3600))
                .await;
            match behaviour {
                Behaviour::Answers(hits) => Ok(hits),
                Behaviour::AnswersSlowly(hits) => {
                    tokio::time::sleep(SLOW_SHARD).await;
                    Ok(hits)
                }
                Behaviour::Fails => Err(ShardError("index rebuilding".into())),
                Behaviour::Hangs => std::future::pending().await,
                // A bug in a shard's client (a page it cannot parse, say).
                Behaviour::Panics => panic!("shard client bug: unexpected page format"),
            }
        })
    }
}

fn hit(product: &str, score: u32) -> Hit {
    Hit {
        product: product.into(),
        score,
    }
}

/// A server over three fake shards, and the gauge of their calls in flight.
async fn start(behaviours: [Behaviour; SHARDS]) -> (TestServer, Gauge) {
    let calls = Gauge::new();
    let shards: Shards = behaviours
        .into_iter()
        .map(|behaviour| {
            Arc::new(FakeShard {
                behaviour,
                calls: calls.clone(),
            }) as Arc<dyn Shard>
        })
        .collect();
    let server = TestServer::start(move |listener| serve(listener, shards)).await;
    (server, calls)
}

/// Shard `failing` fails; the two others hang.
fn one_fails(failing: usize) -> [Behaviour; SHARDS] {
    std::array::from_fn(|n| {
        if n == failing {
            Behaviour::Fails
        } else {
            Behaviour::Hangs
        }
    })
}

fn position(n: usize) -> &'static str {
    ["first", "middle", "last"][n]
}

/// Sends `GET /search?q=lamp` and returns the status and body, failing the check if no answer
/// comes within [`ANSWERS_WITHIN`].
async fn search(server: &TestServer, waiting_for: &str) -> (u16, String) {
    // No proxy from the environment: the request goes straight to loopback.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client");
    let request = client.get(server.url("/search?q=lamp")).send();
    let response = tokio::time::timeout(ANSWERS_WITHIN, request)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no answer within {} s while {waiting_for}. The shards do nothing until all \
                 {SHARDS} have been asked, and a hung shard never answers: is the search asking \
                 one shard at a time, or waiting for a shard whose answer no longer matters?",
                ANSWERS_WITHIN.as_secs()
            )
        })
        .expect("the server closed the connection instead of answering");
    let status = response.status().as_u16();
    (status, response.text().await.expect("reading the body"))
}

/// Every shard answers, one of them only after a second: the search merges their hits, best
/// first, and no call is left over. A slow shard is a healthy one.
#[test]
fn every_shard_answers_and_the_hits_are_merged() {
    check(HANG).real(|| async {
        let (server, calls) = start([
            Behaviour::Answers(vec![hit("desk lamp", 70), hit("lamp shade", 40)]),
            Behaviour::AnswersSlowly(vec![hit("lamp post", 20)]),
            Behaviour::Answers(vec![hit("floor lamp", 90), hit("lamp oil", 10)]),
        ])
        .await;
        let (status, body) = search(&server, "every shard answers").await;
        assert_eq!(
            (status, body.as_str()),
            (
                200,
                "floor lamp\ndesk lamp\nlamp shade\nlamp post\nlamp oil\n"
            ),
            "with every shard answering (one of them after {} s), the search must merge all \
             their hits, best first: a shard that is slow is not a shard that failed, and a \
             deadline on each call turns one slow shard into a 502 for every search",
            SLOW_SHARD.as_secs(),
        );
        assert_eq!(
            calls.started(),
            SHARDS,
            "each shard must be asked exactly once"
        );
        assert!(
            calls.settles_to(0, STOPS_WITHIN).await,
            "the search answered, yet a shard call was still running"
        );
    });
}

/// One shard fails while the two others have not answered: the search must answer 502 now,
/// without waiting for shards whose answer can no longer change the outcome. The failing
/// shard is the first, then the middle, then the last one asked.
#[test]
fn a_failing_shard_answers_502_at_once() {
    check(HANG).real(|| async {
        for failing in 0..SHARDS {
            let (server, _calls) = start(one_fails(failing)).await;
            let waiting_for = format!("the {} shard failed", position(failing));
            let (status, body) = search(&server, &waiting_for).await;
            assert_eq!(
                status,
                502,
                "the {} shard failed, so the search must answer 502; it said: {body}",
                position(failing)
            );
        }
    });
}

/// After a 502, the calls to the shards that had not answered must stop: nobody will read
/// their hits, and each one costs the shard's service a search.
#[test]
fn the_other_shards_are_cancelled_after_a_failure() {
    check(HANG).real(|| async {
        for failing in 0..SHARDS {
            let (server, calls) = start(one_fails(failing)).await;
            let waiting_for = format!("the {} shard failed", position(failing));
            let (status, _) = search(&server, &waiting_for).await;
            assert_eq!(status, 502, "a failing shard must fail the search");
            assert!(
                calls.settles_to(0, STOPS_WITHIN).await,
                "the search answered 502 when the {} shard failed, yet {} call(s) to the other \
                 shards were still running {} ms later: the search returned, but the tasks it \
                 spawned for the other shards were detached (or left to time out), not cancelled",
                position(failing),
                calls.live(),
                STOPS_WITHIN.as_millis(),
            );
        }
    });
}

/// A client asks, then hangs up while every shard is still searching: every call must stop.
#[test]
fn a_client_that_hangs_up_cancels_every_shard_call() {
    check(HANG).real(|| async {
        let (server, calls) = start(std::array::from_fn(|_| Behaviour::Hangs)).await;
        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        client
            .write_all(b"GET /search?q=lamp HTTP/1.1\r\nhost: shop.test\r\n\r\n")
            .await
            .unwrap();
        assert!(
            calls.reaches_started(SHARDS, ANSWERS_WITHIN).await,
            "a search was sent, but the server never asked all {SHARDS} shards"
        );
        drop(client);
        assert!(
            calls.settles_to(0, STOPS_WITHIN).await,
            "the client hung up, yet {} shard call(s) were still running {} ms later: hyper \
             dropped the handler, but dropping a JoinHandle detaches its task",
            calls.live(),
            STOPS_WITHIN.as_millis(),
        );
    });
}

/// A shard's client panics (a bug in it, not an outage): the search must answer 502 like any
/// other shard failure, and the connection must live on for the client's next search.
#[test]
fn a_panicking_shard_call_answers_502() {
    check(HANG).real(|| async {
        let (server, _calls) = start([
            Behaviour::Answers(vec![]),
            Behaviour::Panics,
            Behaviour::Answers(vec![]),
        ])
        .await;
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a reqwest client");
        let request = client.get(server.url("/search?q=lamp")).send();
        let response = tokio::time::timeout(ANSWERS_WITHIN, request)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no answer within {} s while a shard call panicked",
                    ANSWERS_WITHIN.as_secs()
                )
            });
        let answered = match response {
            Ok(response) => format!("answered {}", response.status().as_u16()),
            Err(_) => "got no answer: the connection was closed".to_owned(),
        };
        assert_eq!(
            answered, "answered 502",
            "a shard's client panicked, and the client {answered}, not a 502: a panic inside \
             the handler unwinds through hyper's connection task and takes the connection with \
             it; a panic in a task of its own comes back as a JoinError the search can answer",
        );
    });
}
