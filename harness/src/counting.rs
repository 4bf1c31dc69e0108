//! An in-memory connection whose server end counts the bytes the server reads from it.
//!
//! A status says what a server decided; only a count says how much it read to decide it. A
//! server that reads a whole oversized body before its 413, reads on after it, or buffers a head
//! it should have refused, gives the right status and still spends the memory and the time a
//! limit is there to save. And the end of a stream is seen only by a read that gets past every
//! byte in front of it: the count is also what tells whether hyper could have seen a client leave.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// The server's end of the pipe: every byte read through it is counted.
#[derive(Debug)]
pub struct CountingIo {
    inner: DuplexStream,
    read: Arc<AtomicUsize>,
}

/// How many bytes the server has read so far, shared with the check.
#[derive(Debug, Clone, Default)]
pub struct BytesRead(Arc<AtomicUsize>);

impl BytesRead {
    /// Bytes the server has read until now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A new in-memory pipe with room for `capacity` bytes in each direction: the client's end, the
/// server's counting end, and its counter. [`crate::duplex::PIPE_BYTES`] is the usual size.
pub fn pipe(capacity: usize) -> (DuplexStream, CountingIo, BytesRead) {
    let (client, server) = tokio::io::duplex(capacity);
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
