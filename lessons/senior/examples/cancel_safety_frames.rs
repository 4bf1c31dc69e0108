//! Cancel safety: three frame readers with a heartbeat, fed the same bytes, one frame cut in
//! the middle by a pause longer than the heartbeat.
//!
//! Run it with `cargo run -p lessons-senior --example cancel_safety_frames`.

use std::future::Future;
use std::io;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

/// Heartbeats go out every 100 ms; the peer pauses 300 ms in the middle of a frame.
const HEARTBEAT: Duration = Duration::from_millis(100);
/// A length prefix above this is refused rather than allocated: after a misaligned read, four
/// payload bytes are taken for a length ("llo\0" is 1,819,045,632).
const MAX_FRAME: usize = 64 * 1024;

/// One length-prefixed frame: four bytes of big-endian length, then the payload.
async fn read_frame(socket: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let len = socket.read_u32().await? as usize;
    if len > MAX_FRAME {
        let error = format!("a {len}-byte frame: the stream is misaligned");
        return Err(io::Error::new(io::ErrorKind::InvalidData, error));
    }
    let mut payload = vec![0; len];
    socket.read_exact(&mut payload).await?;
    Ok(payload)
}

// ANCHOR: restarting
/// Wrong: every turn of the loop makes a new `read_frame` future. When the heartbeat wins,
/// the half-read frame is dropped, and the bytes its `read_exact` had taken go with it.
async fn restarting(mut socket: DuplexStream) -> io::Result<Vec<Vec<u8>>> {
    let (mut frames, mut heartbeat) = (Vec::new(), tokio::time::interval(HEARTBEAT));
    loop {
        tokio::select! {
            frame = read_frame(&mut socket) => match frame {
                Ok(frame) => frames.push(frame),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(frames),
                Err(e) => return Err(e),
            },
            _ = heartbeat.tick() => tracing::debug!("heartbeat"),
        }
    }
}
// ANCHOR_END: restarting

// ANCHOR: pinned
/// Right: one `read_frame` future lives across turns; the heartbeat branch only pauses it.
/// A new one is made only after the previous frame completed.
async fn pinned(mut socket: DuplexStream) -> io::Result<Vec<Vec<u8>>> {
    let (mut frames, mut heartbeat) = (Vec::new(), tokio::time::interval(HEARTBEAT));
    loop {
        let next = read_frame(&mut socket);
        tokio::pin!(next);
        let frame = loop {
            tokio::select! {
                frame = &mut next => break frame,
                _ = heartbeat.tick() => tracing::debug!("heartbeat"),
            }
        };
        match frame {
            Ok(frame) => frames.push(frame),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(frames),
            Err(e) => return Err(e),
        }
    }
}
// ANCHOR_END: pinned

// ANCHOR: codec
/// Right, and the usual shape: the partial frame lives in `FramedRead`'s buffer, which the
/// loop owns, and `next()` only ever takes whole frames out of it.
async fn codec(socket: DuplexStream) -> io::Result<Vec<Vec<u8>>> {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec();
    let mut reader = FramedRead::new(socket, codec);
    let (mut frames, mut heartbeat) = (Vec::new(), tokio::time::interval(HEARTBEAT));
    loop {
        tokio::select! {
            frame = reader.next() => match frame {
                Some(frame) => frames.push(frame?.to_vec()),
                None => return Ok(frames),
            },
            _ = heartbeat.tick() => tracing::debug!("heartbeat"),
        }
    }
}
// ANCHOR_END: codec

/// Sends "hello" and "world" as two frames, pausing in the middle of the first payload.
async fn peer(mut client: DuplexStream) -> io::Result<()> {
    client.write_all(&[0, 0, 0, 5]).await?;
    client.write_all(b"he").await?;
    tokio::time::sleep(HEARTBEAT * 3).await;
    client.write_all(b"llo").await?;
    client.write_all(&[0, 0, 0, 5]).await?;
    client.write_all(b"world").await
}

async fn run<F, Fut>(name: &str, reader: F)
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: Future<Output = io::Result<Vec<Vec<u8>>>>,
{
    let (client, server) = tokio::io::duplex(1024);
    let (_, frames) = tokio::join!(peer(client), reader(server));
    match frames {
        Ok(frames) => {
            let frames: Vec<_> = frames.iter().map(|f| String::from_utf8_lossy(f)).collect();
            tracing::info!("{name}: frames {frames:?}");
        }
        Err(error) => tracing::warn!("{name}: {error}"),
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .init();
    run("restarting read_exact", restarting).await;
    run("pinned read_frame", pinned).await;
    run("FramedRead", codec).await;
}
