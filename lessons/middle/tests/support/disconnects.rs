//! Test support for the disconnects and limits chapters: an in-memory connection whose server
//! side counts the bytes hyper has read from it.
#![allow(dead_code)] // each test file uses part of it

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// The server's end of an in-memory pipe, counting every byte the server reads from it.
///
/// "How much has hyper read?" is the question behind every disconnect: the end of a stream is
/// seen only by a read that gets past every byte in front of it.
pub struct CountingIo {
    inner: DuplexStream,
    read: Arc<AtomicUsize>,
}

/// How many bytes the server has read so far, shared with the check.
#[derive(Clone, Default)]
pub struct BytesRead(Arc<AtomicUsize>);

impl BytesRead {
    /// Bytes read by the server until now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A pipe with room for `capacity` bytes in each direction: the client's end, and the
/// server's counting end with its counter.
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
