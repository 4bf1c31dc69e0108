//! Claims of the closing junior chapters (security, pitfalls, patterns, testing) that no other
//! test file shows: what `let _ =` really does to an existing binding, what `Limited` does with
//! an announced length, hyper's smallest read buffer, when a header timeout without a timer
//! panics on the auto builder, and why the paused clock never goes with a real socket.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use harness::duplex;
use harness::watchdog::check;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

#[allow(dead_code)]
#[path = "../examples/security.rs"]
mod security;

#[allow(dead_code)]
#[path = "../examples/pitfall_builders.rs"]
mod pitfall_builders;

const HANG: &str = "a review check hung: is a permit, a body or a connection waiting forever?";

// ------------------------------------------------------------------ `let _ =` and permits

#[test]
fn let_underscore_on_an_existing_binding_does_not_drop_it() {
    check(HANG).paused(|| async {
        let slots = Arc::new(Semaphore::new(1));
        let permit = Arc::clone(&slots).acquire_owned().await.unwrap();

        // `_` is a pattern that binds nothing, so nothing is moved out of `permit`.
        let _ = permit;
        assert_eq!(
            slots.available_permits(),
            0,
            "`let _ = permit;` left the permit where it was"
        );

        drop(permit); // still ours to drop: it was never moved
        assert_eq!(slots.available_permits(), 1);
    });
}

#[test]
fn let_underscore_in_an_async_move_block_does_not_capture_the_permit() {
    check(HANG).paused(|| async {
        let slots = Arc::new(Semaphore::new(1));
        let release = Arc::new(Notify::new());

        let job = {
            let permit = Arc::clone(&slots).acquire_owned().await.unwrap();
            let release = Arc::clone(&release);
            tokio::spawn(async move {
                let _ = permit; // meant to hold the slot while the job runs
                release.notified().await;
            })
        }; // `permit` was never captured by the task: it is dropped here, at the end of scope
        tokio::task::yield_now().await; // the job starts and waits for `release`
        assert!(!job.is_finished(), "the job is still running");
        assert_eq!(
            slots.available_permits(),
            1,
            "the slot is free although the job that was meant to hold it still runs"
        );
        release.notify_one();
        job.await.unwrap();

        // A named binding inside the block is a use: the task captures the permit and holds it.
        let job = {
            let permit = Arc::clone(&slots).acquire_owned().await.unwrap();
            let release = Arc::clone(&release);
            tokio::spawn(async move {
                let _permit = permit;
                release.notified().await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!job.is_finished());
        assert_eq!(
            slots.available_permits(),
            0,
            "the task owns the permit while it runs"
        );
        release.notify_one();
        job.await.unwrap();
        assert_eq!(slots.available_permits(), 1, "and releases it when it ends");
    });
}

// ---------------------------------------------------------------- bodies and their lengths

/// A body that announces its exact length (as a `content-length` does) and hands out 8 KiB
/// frames, counting how many were pulled.
struct Announced {
    frames_left: usize,
    pulled: Arc<AtomicUsize>,
}

const FRAME: usize = 8 * 1024;

impl Body for Announced {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.frames_left == 0 {
            return Poll::Ready(None);
        }
        self.frames_left -= 1;
        self.pulled.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![0u8; FRAME])))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.frames_left * FRAME) as u64)
    }
}

/// 2 MiB announced up front, in 256 frames.
fn two_mib_announced() -> (Announced, Arc<AtomicUsize>) {
    let pulled = Arc::new(AtomicUsize::new(0));
    let body = Announced {
        frames_left: 2 * 1024 * 1024 / FRAME,
        pulled: Arc::clone(&pulled),
    };
    (body, pulled)
}

#[test]
fn limited_ignores_the_announced_length_and_reads_up_to_the_limit() {
    check(HANG).paused(|| async {
        let (body, pulled) = two_mib_announced();
        assert_eq!(body.size_hint().exact(), Some(2 * 1024 * 1024));

        let error = Limited::new(body, security::MAX_UPLOAD)
            .collect()
            .await
            .expect_err("2 MiB is over the 1 MiB limit");
        assert!(error.is::<LengthLimitError>());
        // It read the first megabyte, and one frame more, before it failed.
        assert_eq!(
            pulled.load(Ordering::SeqCst),
            security::MAX_UPLOAD / FRAME + 1
        );
    });
}

#[test]
fn checking_the_announced_length_first_refuses_without_reading() {
    check(HANG).paused(|| async {
        let (body, pulled) = two_mib_announced();
        let request = Request::post("/upload").body(body).unwrap();
        let response = security::upload(request).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(pulled.load(Ordering::SeqCst), 0, "not one frame was read");
    });
}

#[test]
fn max_buf_size_below_8192_panics() {
    check(HANG).run(|| {
        let too_small = std::panic::catch_unwind(|| {
            http1::Builder::new().max_buf_size(8191);
        });
        assert!(
            too_small.is_err(),
            "hyper's builder refuses a buffer under 8192 bytes"
        );
        let smallest = std::panic::catch_unwind(|| {
            http1::Builder::new().max_buf_size(8192);
        });
        assert!(smallest.is_ok(), "8192 itself is accepted");
    });
}

// ------------------------------------------------------- a header timeout without a timer

async fn ok(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from("ok\n"))))
}

#[test]
fn the_auto_builder_panics_only_once_a_connection_speaks_http1() {
    check(HANG).paused(|| async {
        let (mut client, mut server) = duplex::raw(|io: DuplexStream| async move {
            pitfall_builders::builder_with_timeout_but_no_timer()
                .serve_connection(TokioIo::new(io), service_fn(ok))
                .await
                .map_err(|error| error.to_string())
        });
        // A client that sends nothing: the auto builder is still waiting to learn the
        // protocol, and nothing has panicked an hour later. A test like this one passes.
        let hour = Duration::from_secs(3600);
        assert!(
            tokio::time::timeout(hour, &mut server.task).await.is_err(),
            "the connection task neither panicked nor ended"
        );

        // The first bytes of an HTTP/1 request: now the HTTP/1 side is built, and panics.
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: workshop.test\r\n\r\n")
            .await
            .unwrap();
        let failure = server.task.await.expect_err("the connection task panicked");
        assert!(failure.is_panic());
    });
}

// ------------------------------------------------------ the paused clock and real sockets

#[test]
fn on_the_paused_clock_a_timeout_beats_bytes_still_on_a_real_socket() {
    check(HANG).paused(|| async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A client on a plain thread: it connects at once, and writes after 2 s of real time.
        std::thread::spawn(move || {
            use std::io::Write;
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            std::thread::sleep(Duration::from_secs(2));
            let _ = stream.write_all(b"hello");
        });
        let (mut stream, _peer) = listener.accept().await.unwrap();

        let start = Instant::now();
        let real_start = std::time::Instant::now();
        let mut greeting = [0u8; 5];
        let read =
            tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut greeting)).await;
        // Nothing else to do, so tokio jumped the clock to the timer: 30 virtual seconds
        // passed before the bytes, due after 2 real seconds, could arrive.
        assert!(read.is_err(), "the timeout fired first");
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert!(real_start.elapsed() < Duration::from_secs(2));
    });
}
