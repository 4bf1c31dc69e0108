//! A deadline on the bytes hyper-util's auto builder reads before it knows the protocol.
//!
//! `auto::Builder` first reads up to 24 bytes to compare them with HTTP/2's preface
//! (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`); only then does it hand the connection to hyper's
//! HTTP/1 or HTTP/2 code. hyper's `header_read_timeout` starts in HTTP/1's `poll_read_head`,
//! after that read, so a client that sends `P` (a valid start of the preface) and stalls sits
//! in hyper-util's `ReadVersion` with no timer at all. This wrapper fails reads with
//! `TimedOut` once the deadline passes, until the bytes seen decide the protocol.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// ANCHOR: first_bytes
/// An I/O whose reads fail with `TimedOut` if the protocol is still undecided at `deadline`.
pub struct FirstBytesDeadline<I> {
    io: I,
    /// `None` once the protocol is decided: from then on hyper's own timers govern.
    deadline: Option<Pin<Box<Sleep>>>,
    seen: usize,
}

impl<I> FirstBytesDeadline<I> {
    /// Wraps `io`; the clock starts now (at accept).
    pub fn new(io: I, timeout: Duration) -> Self {
        let deadline = Some(Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
        FirstBytesDeadline {
            io,
            deadline,
            seen: 0,
        }
    }

    /// Wraps `io` without a deadline (the `--no-timer` mode, as `axum::serve` serves).
    pub fn unbounded(io: I) -> Self {
        FirstBytesDeadline {
            io,
            deadline: None,
            seen: 0,
        }
    }

    /// Disarms once the bytes read so far tell HTTP/2's preface apart: all 24 of them, or
    /// the first byte that differs (then it is HTTP/1), exactly as `ReadVersion` decides.
    fn observe(&mut self, fresh: &[u8]) {
        for &byte in fresh {
            if self.seen >= H2_PREFACE.len() || byte != H2_PREFACE[self.seen] {
                self.deadline = None;
                return;
            }
            self.seen += 1;
        }
        if self.seen >= H2_PREFACE.len() {
            self.deadline = None;
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FirstBytesDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.deadline.is_some() {
                    let fresh = buf.filled()[before..].to_vec();
                    this.observe(&fresh);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                // Polling the sleep registers its waker: that is what wakes the connection
                // task at the deadline while the client sends nothing.
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                if expired {
                    let error =
                        io::Error::new(io::ErrorKind::TimedOut, "protocol not chosen in time");
                    return Poll::Ready(Err(error));
                }
                Poll::Pending
            }
        }
    }
}
// ANCHOR_END: first_bytes

impl<I: AsyncWrite + Unpin> AsyncWrite for FirstBytesDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
