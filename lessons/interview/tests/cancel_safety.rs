//! R1 of the bank: a `select!` loop that restarts a half-finished `read_exact` loses data; one
//! read that lives across the heartbeat's ticks does not.
//!
//! A client sends a frame in two halves with a heartbeat tick between them, on the paused
//! clock over an in-memory pipe, so the tick lands mid-frame every time.

use harness::watchdog::check;
use lessons_interview::frames::{self, HEARTBEAT};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

const HANG: &str = "the frame reader never delivered a frame";

/// Two frames, "hello" and "world", the first one cut in the middle of its payload by a tick.
async fn send_with_a_tick_in_the_middle(client: &mut DuplexStream) {
    client.write_all(&[0, 0, 0, 5]).await.unwrap();
    client.write_all(b"he").await.unwrap();
    tokio::time::sleep(HEARTBEAT * 2).await; // a tick fires while the frame is half read
    client.write_all(b"llo").await.unwrap();
    client.write_all(&[0, 0, 0, 5]).await.unwrap();
    client.write_all(b"world").await.unwrap();
}

#[test]
fn restarting_read_exact_in_select_loses_the_half_read_frame() {
    check(HANG).paused(|| async {
        let (mut client, server) = tokio::io::duplex(1024);
        let (tx, mut frames) = mpsc::unbounded_channel();
        tokio::spawn(frames::restarting_read(server, tx));
        send_with_a_tick_in_the_middle(&mut client).await;
        drop(client);
        let mut received = Vec::new();
        while let Some(frame) = frames.recv().await {
            received.push(frame);
        }
        // "llo" then the next length were read as a length: the stream is misaligned.
        assert_ne!(received, [b"hello".to_vec(), b"world".to_vec()]);
        assert!(!received.contains(&b"hello".to_vec()), "{received:?}");
    });
}

#[test]
fn one_read_pinned_across_ticks_keeps_every_frame_whole() {
    check(HANG).paused(|| async {
        let (mut client, server) = tokio::io::duplex(1024);
        let (tx, mut frames) = mpsc::unbounded_channel();
        tokio::spawn(frames::pinned_read(server, tx));
        send_with_a_tick_in_the_middle(&mut client).await;
        assert_eq!(frames.recv().await.unwrap(), b"hello");
        assert_eq!(frames.recv().await.unwrap(), b"world");
    });
}
