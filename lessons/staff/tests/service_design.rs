//! The reviewed design's core, checked: the bounded queue refuses with 503 when it is full,
//! and shutdown delivers every job it accepted, in order, before the worker ends.

mod support {
    pub mod service_design;
}

use std::time::Duration;

use harness::server::request;
use harness::watchdog::check;
use support::service_design::{Outbound, deliver, serve};
use tokio::sync::mpsc;

const HANG: &str = "the worker never ended: is a Sender of the job queue still alive?";
const DEADLINE: Duration = Duration::from_secs(5);

#[test]
fn a_full_queue_refuses_with_503_and_shutdown_drains_it_in_order() {
    check(HANG).paused(|| async {
        let (jobs, queue) = mpsc::channel(2);
        let outbound = Outbound::default();
        let worker = tokio::spawn(deliver(queue, outbound.clone()));
        let (mut conn, server) = harness::duplex::http1(move |io| serve(io, jobs)).await;
        let mut notify = async |id: u32| {
            let answer = conn
                .send(request("POST", &format!("/notify/{id}"), ""))
                .await;
            answer.unwrap()
        };

        // Job 1 goes straight to the worker, which is stuck on the outbound call.
        assert_eq!(notify(1).await.status, 202);
        assert!(outbound.started.reaches_started(1, DEADLINE).await);
        // Jobs 2 and 3 fill the queue; job 4 is refused at once, with a hint to come back.
        assert_eq!(notify(2).await.status, 202);
        assert_eq!(notify(3).await.status, 202);
        let refused = tokio::time::timeout(Duration::from_secs(1), notify(4))
            .await
            .expect("a full queue answers at once: the handler must not wait for room");
        assert_eq!(refused.status, 503);
        assert_eq!(refused.header("retry-after"), Some("1"));

        // Shutdown: the front stops (the connection ends, and with it the last Sender), then
        // the outbound side recovers; the worker delivers what it accepted and ends.
        conn.close().await;
        server.task.await.unwrap().unwrap();
        outbound.gate.add_permits(100);
        tokio::time::timeout(DEADLINE, worker)
            .await
            .expect("the worker ends once the closed queue is empty")
            .unwrap();
        assert_eq!(*outbound.delivered.lock().unwrap(), [1, 2, 3]);
    });
}

#[test]
fn a_broadcast_never_waits_and_a_lagging_subscriber_learns_what_it_missed() {
    check(HANG).paused(|| async {
        let (events, mut session) = tokio::sync::broadcast::channel(2);
        // Five events with a session that reads none: the sender never waits.
        for event in 1..=5 {
            events.send(event).unwrap();
        }
        // The session finds out on its next read, with the count it missed, then goes on
        // from the oldest event still held.
        assert_eq!(
            session.recv().await,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(3))
        );
        assert_eq!(session.recv().await, Ok(4));
    });
}
