//! openraft's snapshot data, as a stream: a checkpoint read lazily from disk when it goes out
//! (`store::archive`), or a staging file on disk when one comes in. Never a blob in memory.
//! The staging file goes through the node's `FileSystem`, like every other file it writes (a
//! simulated disk sees, and may lose, it too).
//!
//! The I/O is ordinary blocking file I/O inside `poll_*`: openraft moves a snapshot in chunks
//! of a few MiB on the state machine's task, and local file reads of that size are shorter than
//! the apply of one entry.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use croupier_store::archive::CheckpointArchive;
use croupier_store::fs::{FileSystem, StorageFile};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

pub(crate) enum CheckpointData {
    /// A checkpoint going out.
    Outgoing(CheckpointArchive),
    /// A checkpoint coming in, written to a staging file.
    Incoming(Staging),
    /// Nothing to transfer (the checkpoint before any entry).
    Empty,
}

/// The staging file of an incoming checkpoint: appended to while it streams in, then read
/// from the start by the install.
pub(crate) struct Staging {
    fs: Arc<dyn FileSystem>,
    file: Box<dyn StorageFile>,
    pub(crate) path: PathBuf,
    position: u64,
}

impl Staging {
    pub(crate) fn rewind(&mut self) {
        self.position = 0;
    }

    /// Removes the staging file (after the install unpacked it).
    pub(crate) fn remove(self) {
        let Staging { fs, file, path, .. } = self;
        drop(file);
        let _ = fs.remove_file(&path);
    }

    fn seek_to(&mut self, to: SeekFrom) -> io::Result<u64> {
        let size = self.file.size()?;
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
            SeekFrom::End(delta) => size.checked_add_signed(delta),
        };
        self.position = target.ok_or_else(|| io::Error::other("seek before the start"))?;
        Ok(self.position)
    }
}

impl Read for Staging {
    fn read(&mut self, target: &mut [u8]) -> io::Result<usize> {
        let left = self.file.size()?.saturating_sub(self.position);
        let n = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(target.len());
        self.file.read_exact_at(&mut target[..n], self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl CheckpointData {
    pub(crate) fn incoming(fs: Arc<dyn FileSystem>, path: PathBuf) -> io::Result<CheckpointData> {
        let file = fs.create(&path)?;
        Ok(CheckpointData::Incoming(Staging {
            fs,
            file,
            path,
            position: 0,
        }))
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
            CheckpointData::Incoming(staging) => staging.read(target),
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
            CheckpointData::Incoming(staging) => staging.file.append(bytes).map(|()| bytes.len()),
            _ => Err(io::Error::other("an outgoing checkpoint is read-only")),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Appends go straight to the file; the install fsyncs what it unpacks, so the staging
        // file itself needs no sync.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl AsyncSeek for CheckpointData {
    fn start_seek(self: Pin<&mut Self>, to: SeekFrom) -> io::Result<()> {
        match self.get_mut() {
            CheckpointData::Outgoing(archive) => archive.seek(to).map(|_| ()),
            CheckpointData::Incoming(staging) => staging.seek_to(to).map(|_| ()),
            CheckpointData::Empty => Ok(()),
        }
    }

    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(match self.get_mut() {
            CheckpointData::Outgoing(archive) => archive.stream_position(),
            CheckpointData::Incoming(staging) => Ok(staging.position),
            CheckpointData::Empty => Ok(0),
        })
    }
}
