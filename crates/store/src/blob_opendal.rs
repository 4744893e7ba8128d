//! Immutable blobs in an object store reached through OpenDAL: S3 (and
//! S3-compatible servers, Preflight itself included), Google Cloud Storage
//! and Azure Blob Storage.
//!
//! Locations (`--blobs`):
//! - `s3://BUCKET/PREFIX?endpoint=URL&region=R` (`virtual_host_style=true`
//!   for servers that want the bucket in the host name). Credentials:
//!   `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, with
//!   `AWS_SESSION_TOKEN` for temporary ones. Without keys in the
//!   environment, OpenDAL's AWS chain runs (`AWS_PROFILE` and the shared
//!   config files, web identity via `AWS_ROLE_ARN` and
//!   `AWS_WEB_IDENTITY_TOKEN_FILE`, the EC2 instance metadata). The region
//!   defaults to `AWS_REGION`, then `AWS_DEFAULT_REGION`, then `us-east-1`;
//!   the endpoint to `AWS_ENDPOINT_URL`, then AWS itself.
//! - `gcs://BUCKET/PREFIX` (`?endpoint=URL` for an emulator). Credentials:
//!   the service-account JSON file named by `GOOGLE_APPLICATION_CREDENTIALS`,
//!   else the gcloud application-default credentials
//!   (`~/.config/gcloud/application_default_credentials.json`), else the
//!   metadata server of a Google Cloud VM.
//! - `azblob://CONTAINER/PREFIX?endpoint=URL` (or `?account=NAME` for
//!   `https://NAME.blob.core.windows.net`). Credentials:
//!   `AZURE_STORAGE_ACCOUNT` with `AZURE_STORAGE_KEY` (shared key) or
//!   `AZURE_STORAGE_SAS_TOKEN`; the account name may also come from the
//!   endpoint's host.
//!
//! Layout: committed blobs at `PREFIX/blobs/<id>`, nothing else. Only ids
//! that pass [`BlobId::is_well_formed`] are ever turned into object names.
//!
//! The write protocol: [`OpenDalBlobStore::create`] opens an OpenDAL writer
//! that uploads in parts of [`PART_SIZE`] bytes (S3 multipart: every part
//! but the last is at least 5 MiB), [`PART_CONCURRENCY`] parts in flight;
//! a blob smaller than one part is sent by a single PUT at the end. The
//! object becomes visible only when [`BlobWriter::finish`] closes the writer
//! (the multipart upload completes, or the single PUT lands), and only then
//! may metadata reference it. A writer dropped before `finish` aborts its
//! upload in the background. If even that fails (the process dies, the
//! backend is unreachable), what remains is an unfinished multipart upload,
//! which is never visible as an object: expiring those is the backend's job
//! (an S3 lifecycle rule `AbortIncompleteMultipartUpload`), which is why
//! [`BlobStore::sweep_temp`] has nothing to do here.
//!
//! Memory per writer: the caller's chunks pass through a channel of
//! [`WRITE_QUEUE`] chunks to a task that owns the OpenDAL writer, which
//! gathers one part while up to [`PART_CONCURRENCY`] upload; that is about
//! `PART_SIZE × (PART_CONCURRENCY + 1)` = 24 MiB. (OpenDAL keeps the bytes
//! of a finished part until every older part has finished, so a part that
//! stalls until its I/O timeout can hold a few more.) Reads are one ranged
//! GET whose body is streamed as it arrives.
//!
//! Every request goes through OpenDAL's timeout layer and then its retry
//! layer (a few attempts with jittered backoff, for errors OpenDAL marks
//! temporary: connection failures, 5xx answers, throttling).

mod config;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt, TryStreamExt};
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, Operator};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{
    BlobId, BlobInfo, BlobLocation, BlobStore, BlobWriter, ByteStream, StoreError, StoreResult,
};
use config::{ServiceConfig, Target};

/// Size of one uploaded part. S3 wants every part but the last to be at
/// least 5 MiB; 8 MiB keeps 10 000 parts above 78 GiB.
pub const PART_SIZE: usize = 8 << 20;
/// Parts of one blob uploading at once.
pub const PART_CONCURRENCY: usize = 2;
/// Chunks queued between a [`BlobWriter`] and the task that uploads them.
const WRITE_QUEUE: usize = 2;
/// The directory of committed blobs under the prefix.
const BLOBS_DIR: &str = "blobs/";

/// How requests to the backend are bounded and retried.
#[derive(Debug, Clone)]
pub struct OpenDalOptions {
    /// Limit of one request that moves no data (stat, delete, a list page).
    pub timeout: Duration,
    /// Limit of one read or write of data (a part upload, a body chunk).
    pub io_timeout: Duration,
    /// Attempts after the first for errors OpenDAL marks temporary.
    pub retries: usize,
}

impl Default for OpenDalOptions {
    fn default() -> Self {
        OpenDalOptions {
            timeout: Duration::from_secs(30),
            io_timeout: Duration::from_secs(60),
            retries: 3,
        }
    }
}

/// Blobs as objects of an OpenDAL service, under one prefix.
#[derive(Clone)]
pub struct OpenDalBlobStore {
    op: Operator,
    /// `s3`, `gcs` or `azblob`: the `backend` of errors.
    backend: &'static str,
    /// `s3://bucket/prefix`: how errors name the location.
    label: String,
}

impl fmt::Debug for OpenDalBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenDalBlobStore")
            .field("location", &self.label)
            .finish_non_exhaustive()
    }
}

impl OpenDalBlobStore {
    /// Opens the store at an OpenDAL location, with credentials from the
    /// process environment (see the module documentation) and the default
    /// [`OpenDalOptions`]. Sends no request; [`BlobStore::check`] does.
    pub fn from_location(location: &BlobLocation) -> StoreResult<OpenDalBlobStore> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_location_with(location, &env, &OpenDalOptions::default())
    }

    /// Opens the store at an OpenDAL location, with the environment
    /// variables of the credentials taken from `env` instead of the process
    /// environment (the keys named in the module documentation).
    pub fn from_location_with(
        location: &BlobLocation,
        env: &HashMap<String, String>,
        options: &OpenDalOptions,
    ) -> StoreResult<OpenDalBlobStore> {
        let BlobLocation::OpenDal { url, .. } = location else {
            return Err(StoreError::Corrupt(format!(
                "{}: not an OpenDAL location",
                location.display()
            )));
        };
        let target = Target::parse(url).map_err(config_error)?;
        let backend = target.service.name();
        let label = target.label();
        let built = match target.config(env).map_err(config_error)? {
            ServiceConfig::S3(c) => Operator::from_config(*c).map(|b| b.finish()),
            ServiceConfig::Gcs(c) => Operator::from_config(*c).map(|b| b.finish()),
            ServiceConfig::Azblob(c) => Operator::from_config(*c).map(|b| b.finish()),
        };
        let op = built.map_err(|e| failure(backend, &label, e))?;
        Ok(Self::from_operator(op, backend, label, options))
    }

    /// Wraps an operator (any OpenDAL service) with the timeout and retry
    /// layers. `backend` names it in errors, `label` is its location.
    pub fn from_operator(
        op: Operator,
        backend: &'static str,
        label: String,
        options: &OpenDalOptions,
    ) -> OpenDalBlobStore {
        // Timeout inside retry: a timed-out attempt is retried, and the
        // retry layer never sees a future dropped half-way.
        let op = op
            .layer(
                TimeoutLayer::new()
                    .with_timeout(options.timeout)
                    .with_io_timeout(options.io_timeout),
            )
            .layer(
                RetryLayer::new()
                    .with_max_times(options.retries)
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(Duration::from_secs(2))
                    .with_jitter(),
            );
        OpenDalBlobStore { op, backend, label }
    }

    /// The location as errors name it, e.g. `s3://bucket/prefix`.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn blob_path(&self, id: &BlobId) -> StoreResult<String> {
        if !BlobId::is_well_formed(&id.0) {
            return Err(StoreError::Corrupt(format!("malformed blob id {:?}", id.0)));
        }
        Ok(format!("{BLOBS_DIR}{}", id.0))
    }

    fn error(&self, e: opendal::Error) -> StoreError {
        failure(self.backend, &self.label, e)
    }

    /// A blob's last-modified time, when the lister did not carry it;
    /// `None` when the blob is gone since.
    async fn modified(&self, path: &str) -> StoreResult<Option<SystemTime>> {
        match self.op.stat(path).await {
            Ok(meta) => Ok(Some(
                meta.last_modified()
                    .map_or(SystemTime::UNIX_EPOCH, Into::into),
            )),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }
}

#[async_trait]
impl BlobStore for OpenDalBlobStore {
    async fn create(&self) -> StoreResult<Box<dyn BlobWriter>> {
        let id = BlobId::new();
        let path = self.blob_path(&id)?;
        let writer = self
            .op
            .writer_with(&path)
            .chunk(PART_SIZE)
            .concurrent(PART_CONCURRENCY)
            .await
            .map_err(|e| self.error(e))?;
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let task = tokio::spawn(upload(writer, rx));
        Ok(Box::new(OpenDalBlobWriter {
            id,
            store: self.clone(),
            tx: Some(tx),
            task: Some(task),
            size: 0,
        }))
    }

    async fn read(&self, id: &BlobId, offset: u64, len: u64) -> StoreResult<ByteStream> {
        let path = self.blob_path(id)?;
        let missing = |e: &opendal::Error| e.kind() == ErrorKind::NotFound;
        if len == 0 {
            // Nothing to fetch, but a missing blob is still an error.
            return match self.op.stat(&path).await {
                Ok(_) => Ok(stream::empty().boxed()),
                Err(e) if missing(&e) => Err(StoreError::NoSuchBlob(id.0.clone())),
                Err(e) => Err(self.error(e)),
            };
        }
        let end = offset.checked_add(len).ok_or_else(|| {
            StoreError::Corrupt(format!("range {offset}+{len} of blob {id} overflows"))
        })?;
        let mut body = self
            .op
            .reader(&path)
            .await
            .map_err(|e| self.error(e))?
            .into_bytes_stream(offset..end)
            .await
            .map_err(|e| match missing(&e) {
                true => StoreError::NoSuchBlob(id.0.clone()),
                false => self.error(e),
            })?;
        // The GET is answered before any byte is handed out, so a missing
        // blob is an error of `read`, not of the stream.
        let first = match body.next().await {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return Err(self.read_error(id, e)),
            None => Bytes::new(),
        };
        let checked = Exact {
            inner: stream::once(async { Ok(first) }).chain(body).boxed(),
            remaining: len,
        };
        Ok(checked.boxed())
    }

    async fn delete(&self, id: &BlobId) -> StoreResult<()> {
        let path = self.blob_path(id)?;
        match self.op.delete(&path).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(self.error(e)),
            _ => Ok(()),
        }
    }

    fn list(&self) -> BoxStream<'_, StoreResult<BlobInfo>> {
        let entries = async move {
            let lister = self
                .op
                .lister_with(BLOBS_DIR)
                .await
                .map_err(|e| self.error(e))?;
            Ok::<_, StoreError>(lister.map_err(|e| self.error(e)))
        };
        stream::once(entries)
            .try_flatten()
            .try_filter_map(move |entry| async move {
                let (path, meta) = entry.into_parts();
                let name = path.rsplit('/').next().unwrap_or_default();
                if !BlobId::is_well_formed(name) {
                    return Ok(None);
                }
                let modified = match meta.last_modified() {
                    Some(t) => Some(t.into()),
                    None => self.modified(&path).await?,
                };
                Ok(modified.map(|modified| BlobInfo {
                    id: BlobId(name.to_owned()),
                    modified,
                }))
            })
            .boxed()
    }

    /// Nothing of ours is temporary here: an unfinished upload is not an
    /// object, and the backend expires it (an S3 lifecycle rule
    /// `AbortIncompleteMultipartUpload`; GCS and Azure drop uncommitted
    /// data on their own).
    async fn sweep_temp(&self, _older_than: Duration) -> StoreResult<usize> {
        Ok(0)
    }

    /// Lists at most one blob: the bucket exists, the endpoint answers and
    /// the credentials are accepted (for reading; a write-only refusal
    /// shows at the first upload).
    async fn check(&self) -> StoreResult<()> {
        let mut lister = self
            .op
            .lister_with(BLOBS_DIR)
            .limit(1)
            .await
            .map_err(|e| self.error(e))?;
        match lister.next().await {
            Some(Err(e)) => Err(self.error(e)),
            _ => Ok(()),
        }
    }
}

impl OpenDalBlobStore {
    /// Maps an error of the body stream (an `io::Error` around OpenDAL's).
    fn read_error(&self, id: &BlobId, e: io::Error) -> StoreError {
        if e.kind() == io::ErrorKind::NotFound {
            return StoreError::NoSuchBlob(id.0.clone());
        }
        let kind = e.kind();
        match e
            .into_inner()
            .map(|inner| inner.downcast::<opendal::Error>())
        {
            Some(Ok(e)) if e.kind() == ErrorKind::NotFound => StoreError::NoSuchBlob(id.0.clone()),
            Some(Ok(e)) => self.error(*e),
            Some(Err(other)) => StoreError::Io(io::Error::new(kind, other)),
            None => StoreError::Io(io::Error::from(kind)),
        }
    }
}

/// What a [`BlobWriter`] sends to its upload task.
enum Upload {
    Chunk(Bytes),
    /// Close the writer: complete the upload, make the object visible.
    Finish,
}

/// The upload task: owns the OpenDAL writer, so that no OpenDAL future is
/// ever dropped half-way (a client hanging up drops our `write` future, not
/// this task). Ends with the writer closed on [`Upload::Finish`], or
/// aborted when the channel closes first or a write fails.
async fn upload(
    mut writer: opendal::Writer,
    mut rx: mpsc::Receiver<Upload>,
) -> Result<(), opendal::Error> {
    loop {
        match rx.recv().await {
            Some(Upload::Chunk(chunk)) => {
                if let Err(e) = writer.write(chunk).await {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            }
            Some(Upload::Finish) => {
                return match writer.close().await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let _ = writer.abort().await;
                        Err(e)
                    }
                };
            }
            None => {
                if let Err(e) = writer.abort().await {
                    tracing::debug!(error = %e, "aborting an unfinished blob upload failed");
                }
                return Ok(());
            }
        }
    }
}

/// A blob being uploaded.
struct OpenDalBlobWriter {
    id: BlobId,
    store: OpenDalBlobStore,
    /// Dropped (closing the channel) to abort.
    tx: Option<mpsc::Sender<Upload>>,
    task: Option<JoinHandle<Result<(), opendal::Error>>>,
    size: u64,
}

impl OpenDalBlobWriter {
    /// The error that stopped the upload task.
    async fn task_error(&mut self) -> StoreError {
        self.tx = None;
        let Some(task) = self.task.take() else {
            return StoreError::Io(io::Error::other("blob writer failed earlier"));
        };
        match task.await {
            Ok(Err(e)) => self.store.error(e),
            Ok(Ok(())) => StoreError::Io(io::Error::other("blob upload ended early")),
            Err(e) => StoreError::Io(io::Error::other(e)),
        }
    }

    async fn send(&mut self, message: Upload) -> StoreResult<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(message).await.is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.task_error().await)
        }
    }
}

#[async_trait]
impl BlobWriter for OpenDalBlobWriter {
    async fn write(&mut self, chunk: &[u8]) -> StoreResult<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.send(Upload::Chunk(Bytes::copy_from_slice(chunk)))
            .await?;
        self.size += chunk.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<(BlobId, u64)> {
        self.send(Upload::Finish).await?;
        self.tx = None;
        let Some(task) = self.task.take() else {
            return Err(StoreError::Io(io::Error::other(
                "blob writer failed earlier",
            )));
        };
        match task.await {
            Ok(Ok(())) => Ok((self.id.clone(), self.size)),
            Ok(Err(e)) => Err(self.store.error(e)),
            Err(e) => Err(StoreError::Io(io::Error::other(e))),
        }
    }
}

// Dropping an unfinished writer drops `tx`: the upload task sees the
// channel closed before `Finish` and aborts the upload (Drop cannot await).

/// A body stream that must yield exactly `remaining` bytes: a shorter body
/// is an `UnexpectedEof` error, as a truncated blob is.
struct Exact {
    inner: ByteStream,
    remaining: u64,
}

impl Stream for Exact {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let n = chunk.len() as u64;
                if n > self.remaining {
                    self.remaining = 0;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the backend sent more bytes than asked for",
                    ))));
                }
                self.remaining -= n;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) if self.remaining > 0 => {
                self.remaining = 0;
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob is shorter than its recorded size",
                ))))
            }
            other => other,
        }
    }
}

/// Checks what a `--blobs` URL of an OpenDAL service says (bucket, prefix,
/// query parameters), without credentials or requests.
pub(crate) fn check_location(url: &url::Url) -> Result<(), String> {
    Target::parse(url).map(drop)
}

/// A location that cannot even be configured.
fn config_error(message: String) -> StoreError {
    StoreError::Corrupt(message)
}

/// An OpenDAL error as a [`StoreError::Backend`] naming the location and
/// saying why in words.
fn failure(backend: &'static str, label: &str, e: opendal::Error) -> StoreError {
    let unavailable = match answered_status(&e) {
        // The backend answered: unavailable when it says so (5xx, 429).
        Some(status) => status >= 500 || status == 429 || status == 499,
        // No answer: a connection failure or a timeout. The retry layer
        // marks every error it returns persistent, so that cannot tell
        // temporary ones from others; the kind can.
        None => {
            e.kind() == ErrorKind::RateLimited
                || (e.kind() == ErrorKind::Unexpected && (e.is_temporary() || e.is_persistent()))
        }
    };
    StoreError::Backend {
        backend,
        unavailable,
        source: Box::new(OpenDalFailure {
            location: label.to_owned(),
            unavailable,
            inner: e,
        }),
    }
}

/// The HTTP status of the backend's answer, when the error is one.
///
/// OpenDAL keeps the answer only as text, in the error's `response`
/// context (`response: Parts { status: 403, … }`), so this reads it from
/// the error's display. Should that format change, every answer is taken
/// for no answer (still a failure, just classified by kind alone).
fn answered_status(e: &opendal::Error) -> Option<u16> {
    let text = e.to_string();
    let (_, after) = text.split_once("response: Parts { status: ")?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The source of an OpenDAL [`StoreError::Backend`]: one line such as
/// `s3://bucket/prefix: access denied (credentials refused)`.
#[derive(Debug)]
pub struct OpenDalFailure {
    location: String,
    unavailable: bool,
    inner: opendal::Error,
}

impl OpenDalFailure {
    /// OpenDAL's error kind.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind()
    }
}

impl fmt::Display for OpenDalFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location)?;
        match self.inner.kind() {
            ErrorKind::PermissionDenied => {
                return f.write_str("access denied (credentials refused)");
            }
            // OpenDAL files S3's NoSuchBucket under ConfigInvalid.
            ErrorKind::NotFound | ErrorKind::ConfigInvalid
                if answered_status(&self.inner) == Some(404) =>
            {
                return f.write_str("not found (no such bucket or container?)");
            }
            ErrorKind::NotFound => return f.write_str("not found (no such bucket or container?)"),
            ErrorKind::ConfigInvalid => write!(f, "invalid configuration ({})", self.inner)?,
            ErrorKind::RateLimited => f.write_str("throttled by the backend")?,
            _ => match answered_status(&self.inner) {
                Some(status) if self.unavailable => {
                    write!(f, "unavailable (it answered HTTP {status})")?;
                }
                Some(status) => write!(f, "refused (HTTP {status}): {}", self.inner)?,
                None if self.unavailable => {
                    write!(f, "unreachable ({})", root_cause(&self.inner))?;
                }
                None => write!(f, "{}", self.inner)?,
            },
        }
        Ok(())
    }
}

impl std::error::Error for OpenDalFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.inner)
    }
}

/// The innermost cause, e.g. `Connection refused (os error 111)`, or the
/// whole OpenDAL error when it has none (a timeout).
fn root_cause(e: &opendal::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests;
