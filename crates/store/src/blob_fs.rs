//! Immutable blobs as files on the local filesystem.
//!
//! Layout under the root:
//! - `tmp/<id>.tmp`: blobs being written; never read; swept at startup.
//! - `blobs/<first two hex digits>/<id>`: committed blobs, immutable.
//!
//! Only ids that pass [`BlobId::is_well_formed`] are ever turned into paths.
//! All file I/O runs on tokio's blocking pool in chunks of [`IO_CHUNK`] bytes,
//! so memory per reader or writer stays bounded whatever the blob size.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tokio::task::{JoinHandle, spawn_blocking};

use crate::{BlobId, BlobInfo, BlobStore, BlobWriter, ByteStream, StoreError, StoreResult};

/// Size of one disk read or write: large enough to reach disk speed, small
/// enough that a few concurrent transfers stay cheap in memory.
const IO_CHUNK: usize = 1 << 20;

/// Blobs stored as files under one root directory.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

impl FsBlobStore {
    /// Opens (creating if needed) a blob store rooted at `root`, with its
    /// `blobs/` (and all 256 fan-out directories) and `tmp/` directories.
    pub async fn open(root: impl AsRef<Path>) -> StoreResult<FsBlobStore> {
        let root = root.as_ref().to_path_buf();
        let store = FsBlobStore {
            blobs: root.join("blobs"),
            tmp: root.join("tmp"),
        };
        let dirs = store.clone();
        spawn_blocking(move || -> io::Result<()> {
            fs::create_dir_all(&root)?;
            ensure_dir_durable(&root, &dirs.blobs)?;
            ensure_dir_durable(&root, &dirs.tmp)?;
            // Pre-creating the fan-out directories keeps directory creation
            // (and the parent fsync it needs) off the write path.
            let mut created = false;
            for byte in 0..=255u8 {
                created |= create_dir_if_missing(&dirs.blobs.join(format!("{byte:02x}")))?;
            }
            if created {
                sync_dir(&dirs.blobs)?;
            }
            Ok(())
        })
        .await
        .map_err(join_error)??;
        Ok(store)
    }

    /// The committed path of a blob; refuses ids that are not well formed.
    fn blob_path(&self, id: &BlobId) -> StoreResult<PathBuf> {
        Ok(self.fan_out_dir(id)?.join(&id.0))
    }

    fn fan_out_dir(&self, id: &BlobId) -> StoreResult<PathBuf> {
        if !BlobId::is_well_formed(&id.0) {
            return Err(StoreError::Corrupt(format!("malformed blob id {:?}", id.0)));
        }
        Ok(self.blobs.join(&id.0[..2]))
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn create(&self) -> StoreResult<Box<dyn BlobWriter>> {
        let id = BlobId::new();
        let final_dir = self.fan_out_dir(&id)?;
        let tmp_path = self.tmp.join(format!("{id}.tmp"));
        let file = create_temp(tmp_path.clone()).await?;
        Ok(Box::new(FsBlobWriter {
            id,
            tmp_path,
            final_dir,
            blobs_dir: self.blobs.clone(),
            file: Some(file),
            in_flight: None,
            buf: Vec::new(),
            size: 0,
            committed: false,
        }))
    }

    async fn read(&self, id: &BlobId, offset: u64, len: u64) -> StoreResult<ByteStream> {
        let path = self.blob_path(id)?;
        let first_len = chunk_len(len);
        let missing = id.clone();
        // One blocking call opens the file and reads the first chunk, so a
        // small object costs one open and one read, and a missing blob is
        // reported before any byte is streamed.
        let (file, first) = spawn_blocking(move || -> StoreResult<(File, Bytes)> {
            let mut file = File::open(&path).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => StoreError::NoSuchBlob(missing.0),
                _ => StoreError::Io(e),
            })?;
            if offset > 0 {
                file.seek(SeekFrom::Start(offset))?;
            }
            let chunk = read_chunk(&mut file, first_len)?;
            Ok((file, chunk))
        })
        .await
        .map_err(join_error)??;

        let rest = len - first_len as u64;
        let head = stream::once(async move { Ok(first) });
        if rest == 0 {
            return Ok(head.boxed());
        }
        Ok(head
            .chain(ChunkReader::start(file, rest).into_stream())
            .boxed())
    }

    async fn delete(&self, id: &BlobId) -> StoreResult<()> {
        let path = self.blob_path(id)?;
        spawn_blocking(move || match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
        .map_err(join_error)??;
        Ok(())
    }

    fn list(&self) -> BoxStream<'_, StoreResult<BlobInfo>> {
        let blobs = self.blobs.clone();
        let listed = async move {
            let infos: StoreResult<Vec<BlobInfo>> = spawn_blocking(move || list_blobs(&blobs))
                .await
                .map_err(join_error)?
                .map_err(StoreError::from);
            infos
        };
        stream::once(listed)
            .flat_map(|listed| match listed {
                Ok(infos) => stream::iter(infos.into_iter().map(Ok)).boxed(),
                Err(e) => stream::iter([Err(e)]).boxed(),
            })
            .boxed()
    }

    async fn sweep_temp(&self, older_than: Duration) -> StoreResult<usize> {
        let tmp = self.tmp.clone();
        Ok(spawn_blocking(move || remove_older_in(&tmp, older_than))
            .await
            .map_err(join_error)??)
    }

    async fn check(&self) -> StoreResult<()> {
        let blobs = self.blobs.clone();
        spawn_blocking(move || fs::metadata(&blobs).map(drop))
            .await
            .map_err(join_error)??;
        Ok(())
    }
}

/// A buffer being written; gives back the file and the emptied buffer.
type PendingWrite = JoinHandle<io::Result<(File, Vec<u8>)>>;
/// A chunk being read; gives back the file and the chunk.
type PendingRead = JoinHandle<io::Result<(File, Bytes)>>;

/// A blob being written to `tmp/`.
///
/// Writes are gathered into a buffer of [`IO_CHUNK`] bytes; a full buffer is
/// written on the blocking pool while the next one fills (double buffering),
/// so network receive and disk write overlap with at most two buffers alive.
struct FsBlobWriter {
    id: BlobId,
    tmp_path: PathBuf,
    final_dir: PathBuf,
    blobs_dir: PathBuf,
    /// The temp file when no write is in flight; `None` after an I/O error.
    file: Option<File>,
    /// A buffer being written; gives back the file and the emptied buffer.
    in_flight: Option<PendingWrite>,
    buf: Vec<u8>,
    size: u64,
    committed: bool,
}

impl FsBlobWriter {
    /// Waits for the write in flight, if any; returns the file and a spare
    /// buffer to fill next.
    async fn settle(&mut self) -> io::Result<(File, Vec<u8>)> {
        if let Some(pending) = self.in_flight.take() {
            return pending.await.map_err(io::Error::other)?;
        }
        match self.file.take() {
            Some(file) => Ok((file, Vec::new())),
            None => Err(io::Error::other("blob writer failed earlier")),
        }
    }

    /// Starts writing the full buffer in the background.
    async fn submit(&mut self) -> io::Result<()> {
        let (mut file, spare) = self.settle().await?;
        let mut full = std::mem::replace(&mut self.buf, spare);
        self.in_flight = Some(spawn_blocking(move || {
            file.write_all(&full)?;
            full.clear();
            Ok((file, full))
        }));
        Ok(())
    }
}

#[async_trait]
impl BlobWriter for FsBlobWriter {
    async fn write(&mut self, mut chunk: &[u8]) -> StoreResult<()> {
        self.size += chunk.len() as u64;
        while !chunk.is_empty() {
            let room = IO_CHUNK - self.buf.len();
            let (now, later) = chunk.split_at(room.min(chunk.len()));
            self.buf.extend_from_slice(now);
            chunk = later;
            if self.buf.len() == IO_CHUNK {
                self.submit().await?;
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<(BlobId, u64)> {
        let (mut file, _) = self.settle().await?;
        let last = std::mem::take(&mut self.buf);
        let tmp_path = self.tmp_path.clone();
        let final_dir = self.final_dir.clone();
        let blobs_dir = self.blobs_dir.clone();
        let final_path = final_dir.join(&self.id.0);
        spawn_blocking(move || -> io::Result<()> {
            file.write_all(&last)?;
            file.sync_all()?;
            drop(file);
            match fs::rename(&tmp_path, &final_path) {
                // The fan-out directory was removed behind our back: recreate
                // it durably and retry once.
                Err(e) if e.kind() == io::ErrorKind::NotFound && !final_dir.exists() => {
                    ensure_dir_durable(&blobs_dir, &final_dir)?;
                    fs::rename(&tmp_path, &final_path)?;
                }
                other => other?,
            }
            sync_dir(&final_dir)
        })
        .await
        .map_err(join_error)??;
        self.committed = true;
        Ok((self.id.clone(), self.size))
    }
}

impl Drop for FsBlobWriter {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: unlink is quick, and the startup sweep removes
            // whatever this misses. A write still in flight keeps going on
            // the unlinked file and is then discarded.
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

/// Creates a temp file on the blocking pool. The caller's future may be
/// dropped while the file is being created (a client hanging up): then
/// whichever of the two sides comes second removes the file, so it is not
/// left behind until the next startup sweep.
async fn create_temp(path: PathBuf) -> StoreResult<File> {
    /// Set when the waiting future is gone.
    struct Abandoned {
        flag: Arc<AtomicBool>,
        path: PathBuf,
        armed: bool,
    }
    impl Drop for Abandoned {
        fn drop(&mut self) {
            if self.armed {
                self.flag.store(true, Ordering::SeqCst);
                let _ = fs::remove_file(&self.path);
            }
        }
    }
    let flag = Arc::new(AtomicBool::new(false));
    let mut guard = Abandoned {
        flag: flag.clone(),
        path: path.clone(),
        armed: true,
    };
    let file = spawn_blocking(move || {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        if flag.load(Ordering::SeqCst) {
            let _ = fs::remove_file(&path);
        }
        Ok::<_, io::Error>(file)
    })
    .await
    .map_err(join_error)??;
    guard.armed = false;
    Ok(file)
}

/// Streams the rest of a blob, keeping one chunk read ahead.
struct ChunkReader {
    pending: Option<PendingRead>,
    /// Bytes still to read after the pending chunk.
    remaining: u64,
}

impl ChunkReader {
    fn start(file: File, len: u64) -> Self {
        let mut reader = ChunkReader {
            pending: None,
            remaining: len,
        };
        reader.schedule(file);
        reader
    }

    fn schedule(&mut self, mut file: File) {
        if self.remaining == 0 {
            return;
        }
        let n = chunk_len(self.remaining);
        self.remaining -= n as u64;
        self.pending = Some(spawn_blocking(move || {
            let chunk = read_chunk(&mut file, n)?;
            Ok((file, chunk))
        }));
    }

    fn into_stream(self) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
        stream::unfold(self, |mut reader| async move {
            let pending = reader.pending.take()?;
            let item = match pending.await {
                Ok(Ok((file, chunk))) => {
                    reader.schedule(file);
                    Ok(chunk)
                }
                // After an error `pending` stays empty: the stream ends.
                Ok(Err(e)) => Err(e),
                Err(e) => Err(io::Error::other(e)),
            };
            Some((item, reader))
        })
    }
}

fn chunk_len(remaining: u64) -> usize {
    usize::try_from(remaining).map_or(IO_CHUNK, |r| r.min(IO_CHUNK))
}

/// Reads exactly `n` bytes; a shorter file is an `UnexpectedEof` error.
fn read_chunk(file: &mut File, n: usize) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(n);
    // `read_to_end` fills spare capacity without zeroing it first.
    file.take(n as u64).read_to_end(&mut buf)?;
    if buf.len() < n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "blob is shorter than its recorded size",
        ));
    }
    Ok(Bytes::from(buf))
}

fn list_blobs(blobs: &Path) -> io::Result<Vec<BlobInfo>> {
    let mut infos = Vec::new();
    for dir in fs::read_dir(blobs)? {
        let dir = dir?;
        let Some(prefix) = dir.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if prefix.len() != 2 || !dir.file_type()?.is_dir() {
            continue;
        }
        for entry in fs::read_dir(dir.path())? {
            let entry = entry?;
            let name = entry.file_name();
            match name.to_str() {
                Some(name) if BlobId::is_well_formed(name) && name.starts_with(&prefix) => {
                    let modified = match entry.metadata() {
                        Ok(meta) => meta.modified()?,
                        // Deleted since the directory was read.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    };
                    infos.push(BlobInfo {
                        id: BlobId(name.to_owned()),
                        modified,
                    });
                }
                _ => {}
            }
        }
    }
    Ok(infos)
}

/// Removes the entries of `dir` last modified more than `older_than` ago.
fn remove_older_in(dir: &Path, older_than: Duration) -> io::Result<usize> {
    let cutoff = SystemTime::now().checked_sub(older_than);
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let old_enough = match cutoff {
            Some(cutoff) => meta.modified()? <= cutoff,
            None => true,
        };
        if !old_enough {
            continue;
        }
        let result = if meta.is_dir() {
            fs::remove_dir_all(entry.path())
        } else {
            fs::remove_file(entry.path())
        };
        match result {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Creates `dir`; returns whether it was new.
fn create_dir_if_missing(dir: &Path) -> io::Result<bool> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates `dir` inside `parent` if missing and makes its entry durable.
fn ensure_dir_durable(parent: &Path, dir: &Path) -> io::Result<()> {
    if create_dir_if_missing(dir)? {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Makes a directory's entries (renames, creations) durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened as files here; NTFS journals metadata.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

fn join_error(e: tokio::task::JoinError) -> StoreError {
    StoreError::Io(io::Error::other(e))
}

#[cfg(all(test, any()))]
mod tests;
