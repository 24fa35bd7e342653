//! openraft's snapshot data, as a stream: a checkpoint read lazily from disk when it goes out
//! (`store::archive`), or a staging file on disk when one comes in. Never a blob in memory.
//!
//! The I/O is ordinary blocking file I/O inside `poll_*`: openraft moves a snapshot in chunks
//! of a few MiB on the state machine's task, and local file reads of that size are shorter than
//! the apply of one entry.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use croupier_store::archive::CheckpointArchive;
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

pub(crate) enum CheckpointData {
    /// A checkpoint going out.
    Outgoing(CheckpointArchive),
    /// A checkpoint coming in, written to a staging file.
    Incoming { file: std::fs::File, path: PathBuf },
    /// Nothing to transfer (the checkpoint before any entry).
    Empty,
}

impl CheckpointData {
    pub(crate) fn incoming(path: PathBuf) -> io::Result<CheckpointData> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        Ok(CheckpointData::Incoming { file, path })
    }
}

impl AsyncRead for CheckpointData {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let target = buf.initialize_unfilled();
        let read = match self.get_mut() {
            CheckpointData::Outgoing(archive) => archive.read(target),
            CheckpointData::Incoming { file, .. } => file.read(target),
            CheckpointData::Empty => Ok(0),
        };
        Poll::Ready(read.map(|n| buf.advance(n)))
    }
}

impl AsyncWrite for CheckpointData {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(match self.get_mut() {
            CheckpointData::Incoming { file, .. } => file.write(bytes),
            _ => Err(io::Error::other("an outgoing checkpoint is read-only")),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(match self.get_mut() {
            CheckpointData::Incoming { file, .. } => file.flush(),
            _ => Ok(()),
        })
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl AsyncSeek for CheckpointData {
    fn start_seek(self: Pin<&mut Self>, to: SeekFrom) -> io::Result<()> {
        match self.get_mut() {
            CheckpointData::Outgoing(archive) => archive.seek(to).map(|_| ()),
            CheckpointData::Incoming { file, .. } => file.seek(to).map(|_| ()),
            CheckpointData::Empty => Ok(()),
        }
    }

    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(match self.get_mut() {
            CheckpointData::Outgoing(archive) => archive.stream_position(),
            CheckpointData::Incoming { file, .. } => file.stream_position(),
            CheckpointData::Empty => Ok(0),
        })
    }
}
