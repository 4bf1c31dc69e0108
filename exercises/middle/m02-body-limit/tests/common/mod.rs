//! An in-memory connection whose server end counts the bytes the server reads from it.
//!
//! A 413 says the server refused an upload; only the count says whether it stopped reading it.
//! A server that reads the whole body first, or goes on reading it after answering, gives the
//! right status and still spends the time, the bandwidth and (often) the memory the limit is
//! there to save.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use harness::duplex::PIPE_BYTES;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// The server's end of the pipe: every byte read through it is counted.
pub struct CountingIo {
    inner: DuplexStream,
    read: Arc<AtomicUsize>,
}

/// How many bytes the server has read so far, shared with the check.
#[derive(Clone, Default)]
pub struct BytesRead(Arc<AtomicUsize>);

impl BytesRead {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A new in-memory pipe, as big as `harness::duplex`'s: the client's end, the server's counting
/// end, and its counter.
pub fn counting_pipe() -> (DuplexStream, CountingIo, BytesRead) {
    let (client, server) = tokio::io::duplex(PIPE_BYTES);
    let read = BytesRead::default();
    let server = CountingIo {
        inner: server,
        read: Arc::clone(&read.0),
    };
    (client, server, read)
}

impl AsyncRead for CountingIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n, Ordering::SeqCst);
        polled
    }
}

impl AsyncWrite for CountingIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
