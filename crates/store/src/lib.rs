//! Preflight storage: object metadata and immutable blobs.
//!
//! Two traits keep the engines swappable:
//! - [`MetaStore`]: buckets, objects, multipart uploads (SQLite embedded today,
//!   PostgreSQL later; same schema through sqlx runtime queries).
//! - [`BlobStore`]: immutable byte blobs named by a fresh [`BlobId`] (local
//!   filesystem today, OpenDAL later).
//!
//! The durability protocol for a write: bytes go to a temp file, which is
//! fsynced, renamed into place and its directory fsynced
//! ([`BlobWriter::finish`]); only then does one metadata transaction point the
//! object at the new blob. That transaction is the commit point: a crash before
//! it leaves an orphan blob, never a half-written object.
//! A commit point, once started, runs to completion even when its caller is
//! dropped (a client hanging up): [`SqliteMetaStore`] runs every write in a
//! task of its own.
//!
//! Blobs are collected without coordination between nodes (see the `gc`
//! module): a write that leaves blobs unreferenced records release rows in the
//! same transaction, and any node's reaper ([`reap_released`], run by
//! [`spawn_gc`]) claims the due rows under a lease, deletes the blobs and
//! forgets the rows. The orphans of crashed writes are removed by a periodic
//! sweep ([`sweep_orphans`]) once they are older than a grace period.

mod blob_fs;
mod blob_opendal;
// The crate's own tests run the suites on SQLite and the filesystem too.
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod error;
mod gc;
#[cfg(feature = "postgres")]
mod meta_postgres;
mod meta_sqlite;
mod open;
mod types;

pub use blob_fs::FsBlobStore;
pub use blob_opendal::{
    OpenDalBlobStore, OpenDalFailure, OpenDalOptions, PART_CONCURRENCY, PART_SIZE,
};
pub use error::{StoreError, StoreResult};
pub use gc::{GcOptions, SweepReport, reap_released, spawn_gc, sweep_orphans};
#[cfg(feature = "postgres")]
pub use meta_postgres::{PostgresMetaStore, SETTINGS_CHANNEL};
pub use meta_sqlite::SqliteMetaStore;
pub use open::{
    BlobLocation, MetaLocation, MetaOptions, OPENDAL_SCHEMES, open_blob_store, open_meta_store,
};
pub use types::*;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

/// A stream of blob bytes.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Metadata of buckets, objects and multipart uploads.
///
/// Every method that changes an object returns what it replaced or removed, so
/// the caller can hand the now-unreferenced blobs to the garbage collector.
#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    // --- buckets ---
    /// Fails with [`StoreError::BucketExists`] when the name is taken.
    async fn create_bucket(&self, bucket: &BucketRecord) -> StoreResult<()>;
    async fn get_bucket(&self, name: &str) -> StoreResult<Option<BucketRecord>>;
    /// All buckets, ordered by name.
    async fn list_buckets(&self) -> StoreResult<Vec<BucketRecord>>;
    /// Deletes the bucket and, in the same transaction, aborts its multipart
    /// uploads in progress (S3 deletes a bucket whose only content is
    /// uploads); returns their parts, whose blobs are now unreferenced.
    /// Fails with [`StoreError::BucketNotEmpty`] when objects remain,
    /// [`StoreError::NoSuchBucket`] when absent.
    async fn delete_bucket(&self, name: &str) -> StoreResult<Vec<PartRecord>>;
    /// Sets (Some) or clears (None) one bucket setting: ACL, CORS, policy...
    /// Fails with [`StoreError::NoSuchBucket`].
    async fn set_bucket_setting(
        &self,
        name: &str,
        setting: BucketSetting,
        value: Option<&str>,
    ) -> StoreResult<()>;

    // --- objects ---
    async fn get_object(&self, bucket: &str, key: &str) -> StoreResult<Option<ObjectRecord>>;
    /// Inserts or replaces the object; returns the replaced record.
    /// Fails with [`StoreError::NoSuchBucket`].
    async fn put_object(&self, object: &ObjectRecord) -> StoreResult<Option<ObjectRecord>> {
        self.put_object_if(object, &WriteCondition::NONE).await
    }
    /// [`MetaStore::put_object`] when `condition` holds for the object it
    /// would replace, checked in the same transaction; else fails as
    /// [`WriteCondition::check_write`] says, changing nothing.
    async fn put_object_if(
        &self,
        object: &ObjectRecord,
        condition: &WriteCondition,
    ) -> StoreResult<Option<ObjectRecord>>;
    /// Removes the object; returns the removed record.
    async fn delete_object(&self, bucket: &str, key: &str) -> StoreResult<Option<ObjectRecord>> {
        self.delete_object_if(bucket, key, &WriteCondition::NONE)
            .await
    }
    /// [`MetaStore::delete_object`] when `condition` holds for the object
    /// (see [`WriteCondition::check_delete`]), checked in the same
    /// transaction.
    async fn delete_object_if(
        &self,
        bucket: &str,
        key: &str,
        condition: &WriteCondition,
    ) -> StoreResult<Option<ObjectRecord>>;
    /// Objects with `key` starting with `prefix` and `key > after` (byte order),
    /// ordered by key bytes, at most `limit`.
    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ObjectRecord>>;
    /// Updates only the ACL of an object. Fails with [`StoreError::NoSuchKey`].
    async fn set_object_acl(&self, bucket: &str, key: &str, acl: &str) -> StoreResult<()>;

    // --- multipart uploads ---
    async fn create_upload(&self, upload: &UploadRecord) -> StoreResult<()>;
    async fn get_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<Option<UploadRecord>>;
    /// Uploads of the bucket with `key` starting with `prefix`, ordered by
    /// (key, initiated, upload_id), at most `limit`, after the given
    /// (key, upload_id) marker when set.
    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> StoreResult<Vec<UploadRecord>>;
    /// Uploads of every bucket initiated before `cutoff`, oldest first, at
    /// most `limit` (for aborting incomplete uploads).
    async fn list_uploads_initiated_before(
        &self,
        cutoff: time::OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<UploadRecord>>;
    /// Records a part; returns the part it replaced (same number).
    /// Fails with [`StoreError::NoSuchUpload`].
    async fn put_part(&self, upload_id: &str, part: &PartRecord)
    -> StoreResult<Option<PartRecord>>;
    /// Parts ordered by number, numbers > `after`, at most `limit`.
    async fn list_parts(
        &self,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> StoreResult<Vec<PartRecord>>;
    /// In one transaction: removes the upload and all its parts, and puts
    /// `object` (whose layout references some of those parts' blobs).
    /// Returns the replaced object and the parts that the object does not use.
    /// Fails with [`StoreError::NoSuchUpload`], and with
    /// [`StoreError::InvalidPart`] (changing nothing) when `object` names a
    /// blob that is not one of the upload's parts at commit time.
    async fn complete_upload(
        &self,
        upload_id: &str,
        object: &ObjectRecord,
    ) -> StoreResult<(Option<ObjectRecord>, Vec<PartRecord>)> {
        self.complete_upload_if(upload_id, object, &WriteCondition::NONE)
            .await
    }
    /// [`MetaStore::complete_upload`] when `condition` holds for the object
    /// it would replace, checked in the same transaction; else fails as
    /// [`WriteCondition::check_write`] says and the upload stays as it was.
    async fn complete_upload_if(
        &self,
        upload_id: &str,
        object: &ObjectRecord,
        condition: &WriteCondition,
    ) -> StoreResult<(Option<ObjectRecord>, Vec<PartRecord>)>;
    /// Removes the upload; returns its parts. Fails with [`StoreError::NoSuchUpload`].
    async fn abort_upload(&self, upload_id: &str) -> StoreResult<Vec<PartRecord>>;

    // --- blob garbage collection ---
    //
    // Every write that leaves blobs unreferenced records them, in the same
    // transaction, as release rows "delete blob X not before T": T is now +
    // the store's release grace for the blobs of a replaced or deleted
    // object (a GET that read the old record may still open them), and now
    // for the parts of an aborted upload or a deleted bucket's uploads, and
    // for the parts a completed upload does not use. The writes concerned:
    // `put_object` (the replaced object), `delete_object`, `complete_upload`
    // (the replaced object and the unused parts), `abort_upload`,
    // `put_part` (the replaced part) and `delete_bucket`. Any node's reaper
    // then claims due rows, deletes the blobs and forgets the rows.
    /// Records blobs to delete not before `not_before` (e.g. the new blob
    /// of a write whose commit definitely failed).
    async fn release_blobs(
        &self,
        blobs: &[BlobId],
        not_before: time::OffsetDateTime,
    ) -> StoreResult<()>;
    /// Claims up to `limit` release rows due at `now` that no other sweeper
    /// holds: each claimed row is hidden from other claims for `lease` (a
    /// sweeper that dies mid-way leaves them to the next one). Returns the
    /// claimed blob ids.
    async fn claim_released_blobs(
        &self,
        now: time::OffsetDateTime,
        lease: std::time::Duration,
        limit: usize,
    ) -> StoreResult<Vec<BlobId>>;
    /// Forgets release rows whose blobs are deleted.
    async fn forget_released_blobs(&self, blobs: &[BlobId]) -> StoreResult<()>;
    /// Every blob id that an object, a part or a pending release row
    /// references, in no particular order, read page by page (for the
    /// orphan sweep; a blob in a pending release row is still readable).
    fn referenced_blobs(&self) -> BoxStream<'_, StoreResult<BlobId>>;

    // --- access keys ---
    /// Adds a user key. Fails with [`StoreError::UserExists`] when the name
    /// or the access key is taken.
    async fn create_user_key(&self, key: &UserKeyRecord) -> StoreResult<()>;
    /// Removes a user key. Fails with [`StoreError::NoSuchUser`].
    async fn delete_user_key(&self, name: &str) -> StoreResult<()>;
    /// All user keys, ordered by name.
    async fn list_user_keys(&self) -> StoreResult<Vec<UserKeyRecord>>;
    /// The root credentials kept in the store: the first call stores
    /// `candidate`, every later call (on any node) returns what was stored.
    /// The flag is whether this call stored them.
    async fn root_credentials(
        &self,
        candidate: &RootKeyRecord,
    ) -> StoreResult<(RootKeyRecord, bool)>;

    // --- change tracking (the per-node settings caches) ---
    /// A number that grows, in the same transaction, with every change to
    /// the cached state: a bucket created or deleted, a bucket setting set
    /// or cleared, a user key added or removed.
    async fn settings_generation(&self) -> StoreResult<i64>;
    /// A stream that yields a generation whenever another node (or process)
    /// may have changed the cached state (PostgreSQL `LISTEN`); `None` when
    /// the backend has no such channel, and the caller polls
    /// [`MetaStore::settings_generation`]. The stream ends or fails when the
    /// channel is lost; call again to resubscribe.
    async fn watch_settings(&self) -> StoreResult<Option<BoxStream<'static, StoreResult<i64>>>>;
    /// A cheap round trip: whether the store answers at all.
    async fn ping(&self) -> StoreResult<()>;
}

/// Immutable blobs. A blob is written once through a [`BlobWriter`] and never
/// changed; it is deleted only when no metadata references it.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Starts a new blob in a temp location.
    async fn create(&self) -> StoreResult<Box<dyn BlobWriter>>;
    /// Reads `len` bytes from `offset` of a blob, in chunks.
    async fn read(&self, id: &BlobId, offset: u64, len: u64) -> StoreResult<ByteStream>;
    /// Deletes a blob; a missing blob is not an error.
    async fn delete(&self, id: &BlobId) -> StoreResult<()>;
    /// Every committed blob with its last-modified time, read page by page
    /// (for the orphan sweep).
    fn list(&self) -> BoxStream<'_, StoreResult<BlobInfo>>;
    /// Removes leftovers of writes that never finished and were last
    /// written to more than `older_than` ago (on a shared store another
    /// node may still be writing a younger one). Returns how many.
    async fn sweep_temp(&self, older_than: std::time::Duration) -> StoreResult<usize>;
    /// Checks that the store is reachable and accepts our credentials, by
    /// a cheap request (the start of `preflight serve`).
    async fn check(&self) -> StoreResult<()>;
}

/// An unfinished blob. Dropping it without [`BlobWriter::finish`] discards it.
#[async_trait]
pub trait BlobWriter: Send {
    async fn write(&mut self, chunk: &[u8]) -> StoreResult<()>;
    /// Makes the blob durable (fsync file, rename, fsync directory) and
    /// returns its id and size.
    async fn finish(self: Box<Self>) -> StoreResult<(BlobId, u64)>;
}
