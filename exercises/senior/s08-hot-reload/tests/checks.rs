//! Checks for S08 over a real server. The race itself is caught by the loom model in
//! `tests/loom.rs`: a link mixed from two configurations shows up on a real server only when a
//! reload lands between two reads, which no check here could make certain. These checks pin
//! down what a correct gateway must keep doing: sign every link for its own mirror, and let the
//! very next request use a reloaded configuration.

use std::sync::Arc;
use std::time::Duration;

use harness::server::{H1Connection, TestServer};
use harness::watchdog::check;
use s08_hot_reload::{LiveConfig, MirrorConfig, serve, sign};

const HANG: &str = "the server stopped answering: does a request wait for a lock that a reload, \
                    or the request itself, still holds?";

/// Real sockets on loopback answer in milliseconds; a request stuck on a lock never does, and
/// five seconds is long enough to be sure of that.
const LIMIT: Duration = Duration::from_secs(5);

fn europe() -> MirrorConfig {
    MirrorConfig {
        mirror: "https://eu.mirror.example".to_owned(),
        signing_key: "eu-key-2025".to_owned(),
    }
}

fn america() -> MirrorConfig {
    MirrorConfig {
        mirror: "https://us.mirror.example".to_owned(),
        signing_key: "us-key-2026".to_owned(),
    }
}

async fn start(live: &Arc<LiveConfig>) -> TestServer {
    let live = Arc::clone(live);
    TestServer::start(|listener| async move {
        let _ = serve(listener, live).await;
    })
    .await
}

/// Asks for `file` and asserts the redirect points to it on `config`'s mirror, signed with
/// `config`'s key.
async fn assert_link(client: &mut H1Connection, file: &str, config: &MirrorConfig, when: &str) {
    let response = client.get(&format!("/download/{file}")).await.unwrap();
    assert_eq!(response.status, 302, "GET /download/{file} {when}");
    let expected = format!(
        "{}/{file}?sig={}",
        config.mirror,
        sign(&config.signing_key, file)
    );
    assert_eq!(
        response.header("location"),
        Some(expected.as_str()),
        "the redirect for {file} {when}: it must point to the mirror in force, signed with \
         that mirror's key"
    );
}

async fn assert_status(client: &mut H1Connection, config: &MirrorConfig, when: &str) {
    let status = client.get("/status").await.unwrap();
    assert_eq!(
        status.text(),
        format!("mirror={}\n", config.mirror),
        "the status page {when}"
    );
}

/// With no reload at all, downloads redirect to the configured mirror with links signed for
/// it, and the status page names it.
#[test]
fn links_are_signed_for_their_mirror() {
    check(HANG).limit(LIMIT).real(|| async {
        let live = Arc::new(LiveConfig::new(europe()));
        let server = start(&live).await;
        let mut client = server.connect().await;
        for file in ["tool-4.2.tar.gz", "tool-4.2.zip"] {
            assert_link(&mut client, file, &europe(), "before any reload").await;
        }
        assert_status(&mut client, &europe(), "before any reload").await;
    });
}

/// The operator reloads between two requests of the same connection: the second request, and
/// a connection opened afterwards, use the new mirror and its key. A gateway that reads the
/// configuration once per connection (or once at start) keeps old links alive for as long as
/// a client keeps its connection open, which for a download manager is hours.
#[test]
fn a_reload_is_seen_by_the_next_request() {
    check(HANG).limit(LIMIT).real(|| async {
        let live = Arc::new(LiveConfig::new(europe()));
        let server = start(&live).await;
        let mut client = server.connect().await;
        assert_link(
            &mut client,
            "tool-4.2.tar.gz",
            &europe(),
            "before the reload",
        )
        .await;
        live.reload(america());
        let when = "on a connection opened before the reload, after it";
        assert_link(&mut client, "tool-4.2.tar.gz", &america(), when).await;
        assert_status(&mut client, &america(), when).await;
        let mut newcomer = server.connect().await;
        let when = "on a connection opened after the reload";
        assert_link(&mut newcomer, "tool-4.2.zip", &america(), when).await;
        live.reload(europe());
        let when = "after a second reload, back to the first mirror";
        assert_link(&mut client, "tool-4.2.zip", &europe(), when).await;
    });
}
