//! Cancel safety (tokio 1.54): what a future dropped before it completes takes with it.
//!
//! Each check polls the future by hand (`tokio_test::task::spawn`) against a peer whose bytes
//! the test hands over one piece at a time (`tokio_test::io::Builder::build_with_handle`), so
//! "the future was dropped half-way" is a step of the test, not a race. The `select!` loop
//! checks run on the paused clock over an in-memory pipe, so the tick lands mid-frame on every
//! run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use futures::StreamExt;
use harness::watchdog::check;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, mpsc};
use tokio_test::{assert_pending, assert_ready, assert_ready_eq, task};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

const HANG: &str = "a reader waited for bytes that never came";

// ANCHOR: read_exact_loses
#[test]
fn a_dropped_read_exact_takes_the_bytes_it_had_read_with_it() {
    check(HANG).paused(|| async {
        let (mut socket, mut peer) = tokio_test::io::Builder::new().build_with_handle();
        peer.read(b"he"); // the first half of a 5-byte payload
        let mut payload = [0u8; 5];
        let mut read = task::spawn(socket.read_exact(&mut payload));
        assert_pending!(read.poll()); // "he" taken out of the socket
        drop(read); // what select! does to the branch that lost
        // The bytes landed in our array, but the count of them lived in the future: nothing
        // outside it knew that two of the five were filled.
        assert_eq!(&payload[..2], b"he");

        peer.read(b"llo").read(b"world"); // the rest, then the next payload
        let mut again = [0u8; 5];
        socket.read_exact(&mut again).await.unwrap();
        // The restarted read starts after "he": every later boundary has moved too.
        assert_eq!(&again, b"llowo");
        socket.read_exact(&mut again[..3]).await.unwrap(); // the mock wants every byte read
    });
}
// ANCHOR_END: read_exact_loses

// ANCHOR: read_buf_keeps
#[test]
fn a_dropped_read_buf_leaves_what_it_read_in_the_callers_buffer() {
    check(HANG).paused(|| async {
        let (mut socket, mut peer) = tokio_test::io::Builder::new().build_with_handle();
        peer.read(b"he");
        let mut buffer = BytesMut::new(); // owned by the loop, not by the future
        let mut read = task::spawn(socket.read_buf(&mut buffer));
        assert_ready_eq!(read.poll().map(Result::unwrap), 2);
        let mut read = task::spawn(socket.read_buf(&mut buffer));
        assert_pending!(read.poll()); // nothing more yet: this one is dropped empty-handed
        drop(read);

        peer.read(b"llo");
        while buffer.len() < 5 {
            socket.read_buf(&mut buffer).await.unwrap();
        }
        assert_eq!(&buffer[..], b"hello");
    });
}
// ANCHOR_END: read_buf_keeps

/// Two frames, "hello" and "world", length-prefixed; the first is cut in the middle of its
/// payload by a gap longer than the loop's heartbeat.
async fn send_two_frames_cut_by_a_tick(client: &mut tokio::io::DuplexStream) {
    client.write_all(&[0, 0, 0, 5]).await.unwrap();
    client.write_all(b"he").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    client.write_all(b"llo").await.unwrap();
    client.write_all(&[0, 0, 0, 5]).await.unwrap();
    client.write_all(b"world").await.unwrap();
}

// ANCHOR: framed
/// A heartbeat loop whose read branch is a codec: the partial frame lives in `FramedRead`'s
/// buffer, which outlives every turn of the loop.
async fn framed_loop(socket: tokio::io::DuplexStream, frames: mpsc::UnboundedSender<Vec<u8>>) {
    let mut reader = FramedRead::new(socket, LengthDelimitedCodec::new());
    let mut heartbeat = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            frame = reader.next() => match frame {
                Some(Ok(frame)) => frames.send(frame.to_vec()).unwrap(),
                _ => return, // end of stream or a bad length prefix
            },
            _ = heartbeat.tick() => tracing::debug!("tick"),
        }
    }
}
// ANCHOR_END: framed

#[test]
fn a_codec_in_a_select_loop_keeps_a_half_read_frame_across_ticks() {
    check(HANG).paused(|| async {
        let (mut client, server) = tokio::io::duplex(1024);
        let (tx, mut frames) = mpsc::unbounded_channel();
        tokio::spawn(framed_loop(server, tx));
        send_two_frames_cut_by_a_tick(&mut client).await;
        assert_eq!(frames.recv().await.unwrap(), b"hello");
        assert_eq!(frames.recv().await.unwrap(), b"world");
    });
}

/// A message that counts its own drops, to see whether a cancelled send destroyed it.
struct Job(Arc<AtomicUsize>);

impl Drop for Job {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

// ANCHOR: send_loses
#[test]
fn a_cancelled_send_on_a_full_channel_drops_its_message() {
    check(HANG).paused(|| async {
        let dropped = Arc::new(AtomicUsize::new(0));
        let (tx, _rx) = mpsc::channel::<Job>(1);
        tx.send(Job(dropped.clone())).await.unwrap(); // the channel is now full
        let mut send = task::spawn(tx.send(Job(dropped.clone())));
        assert_pending!(send.poll());
        drop(send); // another branch won: the message was inside the future
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "the second job is gone");
    });
}

#[test]
fn a_cancelled_reserve_loses_nothing_because_the_message_was_never_handed_over() {
    check(HANG).paused(|| async {
        let dropped = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = mpsc::channel::<Job>(1);
        tx.send(Job(dropped.clone())).await.unwrap();
        let job = Job(dropped.clone()); // still ours while we wait for room
        let mut reserve = task::spawn(tx.reserve());
        assert_pending!(reserve.poll());
        drop(reserve);
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        drop(rx.recv().await); // room again: the retry gets a permit, then sends
        tx.reserve().await.unwrap().send(job);
        assert!(rx.recv().await.is_some());
    });
}
// ANCHOR_END: send_loses

// ANCHOR: lock_queue
#[test]
fn a_cancelled_lock_loses_its_place_in_the_queue() {
    check(HANG).paused(|| async {
        let cache = Mutex::new(0);
        let held = cache.lock().await;
        let mut first = task::spawn(cache.lock());
        assert_pending!(first.poll()); // first in line
        let mut second = task::spawn(cache.lock());
        assert_pending!(second.poll());
        drop(first); // a timeout or a select! branch gave up on it...
        let mut retry = task::spawn(cache.lock());
        assert_pending!(retry.poll()); // ...and the retry queues behind `second`
        drop(held);
        assert!(second.is_woken());
        let _guard = assert_ready!(second.poll());
        assert_pending!(retry.poll());
    });
}
// ANCHOR_END: lock_queue
