//! A small framed protocol (a 4-byte big-endian length, then the payload) served with a
//! heartbeat, for R1 of the bank: which `select!` loop loses data, and which one does not.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// The heartbeat's period.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// What the server writes at each heartbeat: an empty frame.
pub const PING: &[u8] = &[0, 0, 0, 0];

/// Reads one frame. Not cancel-safe: it is two `read_exact` calls, and whatever they have read
/// is lost if the future is dropped before it completes.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let len = reader.read_u32().await? as usize;
    let mut payload = vec![0; len];
    reader.read_exact(&mut payload).await?;
    Ok(payload)
}

/// The bug: a new `read_frame` every time round the loop. When the tick wins while a frame is
/// half read, the half frame is dropped with the read, and the next read starts in the middle
/// of it. Every frame read is sent to `frames`.
pub async fn restarting_read<S>(socket: S, frames: mpsc::UnboundedSender<Vec<u8>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(socket);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            frame = read_frame(&mut reader) => match frame {
                Ok(frame) => {
                    if frames.send(frame).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
            _ = heartbeat.tick() => {
                if writer.write_all(PING).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The fix: the read half is moved into one read that lives across ticks (pinned outside the
/// loop) and handed back with the frame, so a tick never restarts a read; the write half serves
/// the pings.
pub async fn pinned_read<S>(socket: S, frames: mpsc::UnboundedSender<Vec<u8>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    async fn owned_read<R: AsyncRead + Unpin>(mut reader: R) -> (R, std::io::Result<Vec<u8>>) {
        let frame = read_frame(&mut reader).await;
        (reader, frame)
    }

    let (reader, mut writer) = tokio::io::split(socket);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let read = owned_read(reader);
    tokio::pin!(read);
    loop {
        tokio::select! {
            (reader, frame) = &mut read => match frame {
                Ok(frame) => {
                    if frames.send(frame).is_err() {
                        return;
                    }
                    read.set(owned_read(reader));
                }
                Err(_) => return,
            },
            _ = heartbeat.tick() => {
                if writer.write_all(PING).await.is_err() {
                    return;
                }
            }
        }
    }
}
