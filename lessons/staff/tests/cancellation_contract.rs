//! Claims of the cancellation-contract chapter: which work a disconnect cancels depends on
//! where the endpoint put it, and an idempotency key turns a retry into a replay.
//!
//! Every check runs on the paused clock over in-memory connections: the commit's payment call
//! takes 50 ms of virtual time, and the client vanishes in the middle of it.

mod support {
    pub mod cancellation_contract;
}

use std::time::Duration;

use harness::server::{H1Connection, request};
use harness::watchdog::check;
use support::cancellation_contract::{Orders, PAYMENT_CALL, serve};
use tokio::io::{AsyncWriteExt, DuplexStream};

const HANG: &str = "the commit or the preview never finished: is something waiting on the client?";
const DEADLINE: Duration = Duration::from_secs(5);

/// Opens a raw connection to the service and sends a request head with no body.
async fn send_raw(
    orders: &Orders,
    head: &str,
) -> (DuplexStream, harness::duplex::ServerSide<hyper::Result<()>>) {
    let orders = orders.clone();
    let (mut client, server) = harness::duplex::raw(move |io| serve(io, orders));
    client.write_all(head.as_bytes()).await.unwrap();
    (client, server)
}

const INLINE: &str = "POST /orders/inline HTTP/1.1\r\nhost: shop\r\ncontent-length: 0\r\n\r\n";
const TRACKED: &str =
    "POST /orders HTTP/1.1\r\nhost: shop\r\nidempotency-key: k1\r\ncontent-length: 0\r\n\r\n";

#[test]
fn a_disconnect_mid_commit_cuts_an_inline_commit_in_half() {
    check(HANG).paused(|| async {
        let orders = Orders::default();
        let (client, server) = send_raw(&orders, INLINE).await;
        orders.ledger.written(1).await;
        drop(client); // the client gives up in the middle of the payment call
        assert!(
            server.task.await.unwrap().is_err(),
            "hyper saw the client leave"
        );
        // Long after the commit would have finished, it is still half done.
        tokio::time::sleep(PAYMENT_CALL * 10).await;
        assert_eq!(orders.ledger.rows(), ["reserve order 1"]);
    });
}

#[test]
fn a_disconnect_mid_commit_does_not_stop_a_tracked_commit() {
    check(HANG).paused(|| async {
        let orders = Orders::default();
        let (client, server) = send_raw(&orders, TRACKED).await;
        orders.ledger.written(1).await;
        drop(client);
        assert!(
            server.task.await.unwrap().is_err(),
            "hyper saw the client leave"
        );
        // Shutdown's last step: close the tracker and wait for the work it holds.
        orders.commits.close();
        tokio::time::timeout(DEADLINE, orders.commits.wait())
            .await
            .expect("the tracker waits for the commit, and the commit finishes");
        assert_eq!(
            orders.ledger.rows(),
            ["reserve order 1", "charge order 1"],
            "the commit completed, exactly once"
        );
    });
}

#[test]
fn the_same_key_twice_commits_once_and_replays_the_first_answer() {
    check(HANG).paused(|| async {
        let orders = Orders::default();
        let served = orders.clone();
        let (mut conn, _server) = harness::duplex::http1(move |io| serve(io, served)).await;
        let post = |key: &str| {
            let mut post = request("POST", "/orders", "");
            post.headers_mut()
                .insert("idempotency-key", key.parse().unwrap());
            post
        };
        let first = conn.send(post("k1")).await.unwrap();
        let again = conn.send(post("k1")).await.unwrap();
        let other = conn.send(post("k2")).await.unwrap();
        assert_eq!(
            (first.status.as_u16(), first.text()),
            (201, "order 1 committed".into())
        );
        assert_eq!((again.status, again.text()), (first.status, first.text()));
        assert_eq!(
            other.text(),
            "order 2 committed",
            "a new key is a new order"
        );
        assert_eq!(
            orders.ledger.rows(),
            [
                "reserve order 1",
                "charge order 1",
                "reserve order 2",
                "charge order 2"
            ]
        );
    });
}

#[test]
fn a_retry_during_the_first_commit_waits_for_it_and_gets_its_answer() {
    check(HANG).paused(|| async {
        let orders = Orders::default();
        // The first attempt's client times out mid-commit and leaves.
        let (client, _server) = send_raw(&orders, TRACKED).await;
        orders.ledger.written(1).await;
        drop(client);
        // Its retry arrives on a new connection while the commit is still running.
        let served = orders.clone();
        let (mut conn, _server) = harness::duplex::http1(move |io| serve(io, served)).await;
        let mut retry = request("POST", "/orders", "");
        retry
            .headers_mut()
            .insert("idempotency-key", "k1".parse().unwrap());
        assert_eq!(
            orders.ledger.rows().len(),
            1,
            "the first commit is still under way"
        );
        let answer = conn.send(retry).await.unwrap();
        assert_eq!(
            (answer.status.as_u16(), answer.text()),
            (201, "order 1 committed".into())
        );
        assert_eq!(orders.ledger.rows(), ["reserve order 1", "charge order 1"]);
    });
}

#[test]
fn a_caller_that_leaves_takes_its_preview_work_with_it() {
    check(HANG).paused(|| async {
        let orders = Orders::default();
        let served = orders.clone();
        let (conn, server) = harness::duplex::http1(move |io| serve(io, served)).await;
        let client = tokio::spawn(async move {
            let mut conn: H1Connection = conn;
            let _ = conn.get("/preview").await;
            conn
        });
        assert!(orders.previews.reaches_started(1, DEADLINE).await);
        client.abort(); // the caller vanishes: its connection is dropped with the task
        assert!(
            server.task.await.unwrap().is_err(),
            "hyper saw the client leave"
        );
        // The render would take 10 s; it is gone well before 1 s.
        assert!(
            orders.previews.settles_to(0, Duration::from_secs(1)).await,
            "the preview task was aborted with its handle"
        );
    });
}
