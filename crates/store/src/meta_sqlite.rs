//! Metadata in an embedded SQLite database (WAL, synchronous=FULL).
//!
//! Reads run concurrently on a small pool. Writes that read before they write
//! (replace an object, record a part, complete an upload) run in one
//! `BEGIN IMMEDIATE` transaction, so two writers of the same key can never
//! both see the same previous record; an in-process lock queues writers so
//! they wait on each other here instead of in SQLite's sleeping busy handler.
//!
//! Every write runs to completion in a task of its own ([`SqliteMetaStore::
//! run_write`]): the caller's future can be dropped at any await (hyper drops
//! a request's future when the client hangs up), and a transaction abandoned
//! between `BEGIN IMMEDIATE` and `COMMIT` would keep SQLite's write lock on a
//! pooled connection. As a second line of defence the pool closes any
//! connection that comes back, or is about to be handed out, inside a
//! transaction.

mod rows;
mod schema;
mod writes;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use time::OffsetDateTime;
use tokio::sync::{Mutex, MutexGuard};

use crate::{
    BlobId, BucketRecord, BucketSetting, MetaStore, ObjectRecord, PartRecord, RootKeyRecord,
    StoreError, StoreResult, UploadRecord, UserKeyRecord, WriteCondition,
};
use rows::*;

/// Connections in the pool: readers proceed in parallel under WAL.
const MAX_CONNECTIONS: u32 = 4;
/// How long a writer waits on another process holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the blobs of a replaced or deleted object stay readable unless
/// [`SqliteMetaStore::with_release_grace`] says otherwise.
const DEFAULT_RELEASE_GRACE: Duration = Duration::from_secs(60);
/// Rows read per query by [`MetaStore::referenced_blobs`].
const REFERENCE_PAGE: i64 = 1000;

/// [`MetaStore`] on one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteMetaStore {
    pool: SqlitePool,
    write_lock: Arc<Mutex<()>>,
    release_grace: Duration,
}

/// A write transaction and the in-process lock that serializes it.
struct WriteTx<'a> {
    tx: Transaction<'static, Sqlite>,
    _lock: MutexGuard<'a, ()>,
}

impl SqliteMetaStore {
    /// Opens the database at `path`, creating it if missing, and migrates it
    /// to the current schema.
    pub async fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path.as_ref())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // An acknowledged write must survive power loss: fsync the WAL
            // on every commit.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            .after_release(|conn, _| Box::pin(leaves_no_transaction(conn)))
            .before_acquire(|conn, _| Box::pin(leaves_no_transaction(conn)))
            .connect_with(options)
            .await?;
        schema::migrate(&pool).await?;
        Ok(SqliteMetaStore {
            pool,
            write_lock: Arc::new(Mutex::new(())),
            release_grace: DEFAULT_RELEASE_GRACE,
        })
    }

    /// Sets how long the blobs of a replaced or deleted object stay
    /// readable after the write (a GET that read the old record may still
    /// be opening them): their release rows are due that much later.
    #[must_use]
    pub fn with_release_grace(mut self, grace: Duration) -> Self {
        self.release_grace = grace;
        self
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs one write to completion in a task of its own and waits for it.
    ///
    /// A dropped `JoinHandle` does not cancel its task, so once a write has
    /// started it always ends in COMMIT or ROLLBACK, even when the caller
    /// goes away. (One task per write rather than a single writer task fed
    /// by a channel: writes already queue on `write_lock`, a spawn costs a
    /// few microseconds next to an fsync, and there is no queue to size or
    /// writer to restart. A writer task is the way to group commit later.)
    async fn run_write<T, F, Fut>(&self, write: F) -> StoreResult<T>
    where
        F: FnOnce(SqliteMetaStore) -> Fut,
        Fut: Future<Output = StoreResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        tokio::spawn(write(self.clone()))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }

    async fn begin_write(&self) -> StoreResult<WriteTx<'_>> {
        let lock = self.write_lock.lock().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _lock: lock })
    }
}

/// Pool hook: whether a connection is fit to be pooled or handed out, i.e.
/// not inside a transaction. A dropped `Transaction` queues its rollback on
/// the connection, which the ping flushes; a connection still inside one
/// after that (a `BEGIN` whose future was dropped before the `Transaction`
/// existed) is closed, which rolls back and frees SQLite's write lock.
async fn leaves_no_transaction(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("closing a pooled SQLite connection left inside a transaction");
        return Ok(false);
    }
    Ok(true)
}

impl WriteTx<'_> {
    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }

    async fn commit(self) -> StoreResult<()> {
        Ok(self.tx.commit().await?)
    }
}

async fn bucket_exists(conn: &mut SqliteConnection, name: &str) -> StoreResult<bool> {
    let row = sqlx::query("SELECT 1 FROM buckets WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

async fn fetch_object(
    conn: &mut SqliteConnection,
    bucket: &str,
    key: &str,
) -> StoreResult<Option<ObjectRecord>> {
    let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = $1 AND key = $2");
    let row = sqlx::query(&sql)
        .bind(bucket)
        .bind(key)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(object_from_row).transpose()
}

/// Inserts or replaces an object; returns the replaced record. Call inside a
/// write transaction.
async fn replace_object(
    conn: &mut SqliteConnection,
    object: &ObjectRecord,
    condition: &WriteCondition,
) -> StoreResult<Option<ObjectRecord>> {
    if !bucket_exists(conn, &object.bucket).await? {
        return Err(StoreError::NoSuchBucket);
    }
    let previous = fetch_object(conn, &object.bucket, &object.key).await?;
    condition.check_write(previous.as_ref())?;
    sqlx::query(
        "INSERT INTO objects (bucket, key, size, etag, last_modified, acl, headers, layout)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (bucket, key) DO UPDATE SET
             size = excluded.size, etag = excluded.etag,
             last_modified = excluded.last_modified, acl = excluded.acl,
             headers = excluded.headers, layout = excluded.layout",
    )
    .bind(&object.bucket)
    .bind(&object.key)
    .bind(size_to_db(object.size)?)
    .bind(&object.etag)
    .bind(time_to_db(object.last_modified)?)
    .bind(&object.acl)
    .bind(json_to_db(&object.headers)?)
    .bind(json_to_db(&object.layout)?)
    .execute(conn)
    .await?;
    Ok(previous)
}

async fn fetch_upload(
    conn: &mut SqliteConnection,
    upload_id: &str,
) -> StoreResult<Option<UploadRecord>> {
    let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = $1");
    let row = sqlx::query(&sql)
        .bind(upload_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(upload_from_row).transpose()
}

/// Deletes the upload and its parts; returns the parts. Call inside a write
/// transaction after checking that the upload exists.
async fn remove_upload(
    conn: &mut SqliteConnection,
    upload_id: &str,
) -> StoreResult<Vec<PartRecord>> {
    let sql = format!("SELECT {PART_COLUMNS} FROM parts WHERE upload_id = $1 ORDER BY number");
    let parts = sqlx::query(&sql)
        .bind(upload_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(part_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    sqlx::query("DELETE FROM parts WHERE upload_id = $1")
        .bind(upload_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM uploads WHERE upload_id = $1")
        .bind(upload_id)
        .execute(&mut *conn)
        .await?;
    Ok(parts)
}

/// Appends `AND key >= prefix AND key < bound(prefix)` for a prefix scan.
fn push_prefix_range<'a>(query: &mut sqlx::QueryBuilder<'a, Sqlite>, prefix: &'a str) {
    if prefix.is_empty() {
        return;
    }
    query.push(" AND key >= ").push_bind(prefix);
    if let Some(bound) = prefix_upper_bound(prefix) {
        query.push(" AND key < ").push_bind(bound);
    }
}

#[async_trait]
impl MetaStore for SqliteMetaStore {
    async fn create_bucket(&self, bucket: &BucketRecord) -> StoreResult<()> {
        let bucket = bucket.clone();
        self.run_write(|s| async move { s.create_bucket_now(&bucket).await })
            .await
    }

    async fn get_bucket(&self, name: &str) -> StoreResult<Option<BucketRecord>> {
        let sql = format!("SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(bucket_from_row).transpose()
    }

    async fn list_buckets(&self) -> StoreResult<Vec<BucketRecord>> {
        let sql = format!("SELECT {BUCKET_COLUMNS} FROM buckets ORDER BY name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(bucket_from_row).collect()
    }

    async fn delete_bucket(&self, name: &str) -> StoreResult<Vec<PartRecord>> {
        let name = name.to_owned();
        self.run_write(|s| async move { s.delete_bucket_now(&name).await })
            .await
    }

    async fn set_bucket_setting(
        &self,
        name: &str,
        setting: BucketSetting,
        value: Option<&str>,
    ) -> StoreResult<()> {
        let name = name.to_owned();
        let value = value.map(str::to_owned);
        self.run_write(move |s| async move {
            s.set_bucket_setting_now(&name, setting, value.as_deref())
                .await
        })
        .await
    }

    async fn get_object(&self, bucket: &str, key: &str) -> StoreResult<Option<ObjectRecord>> {
        let mut conn = self.pool.acquire().await?;
        fetch_object(&mut conn, bucket, key).await
    }

    async fn put_object_if(
        &self,
        object: &ObjectRecord,
        condition: &WriteCondition,
    ) -> StoreResult<Option<ObjectRecord>> {
        let (object, condition) = (object.clone(), condition.clone());
        self.run_write(|s| async move { s.put_object_now(&object, &condition).await })
            .await
    }

    async fn delete_object_if(
        &self,
        bucket: &str,
        key: &str,
        condition: &WriteCondition,
    ) -> StoreResult<Option<ObjectRecord>> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        let condition = condition.clone();
        self.run_write(|s| async move { s.delete_object_now(&bucket, &key, &condition).await })
            .await
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ObjectRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut query = sqlx::QueryBuilder::<Sqlite>::new(format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = "
        ));
        query.push_bind(bucket);
        match after {
            // A marker inside or past the prefix range raises the lower bound.
            Some(after) if after >= prefix => {
                query.push(" AND key > ").push_bind(after);
                if let Some(bound) = prefix_upper_bound(prefix) {
                    query.push(" AND key < ").push_bind(bound);
                }
            }
            _ => push_prefix_range(&mut query, prefix),
        }
        query
            .push(" ORDER BY key LIMIT ")
            .push_bind(limit_to_db(limit));
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(object_from_row).collect()
    }

    async fn set_object_acl(&self, bucket: &str, key: &str, acl: &str) -> StoreResult<()> {
        let (bucket, key, acl) = (bucket.to_owned(), key.to_owned(), acl.to_owned());
        self.run_write(|s| async move { s.set_object_acl_now(&bucket, &key, &acl).await })
            .await
    }

    async fn create_upload(&self, upload: &UploadRecord) -> StoreResult<()> {
        let upload = upload.clone();
        self.run_write(|s| async move { s.create_upload_now(&upload).await })
            .await
    }

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<Option<UploadRecord>> {
        let mut conn = self.pool.acquire().await?;
        let upload = fetch_upload(&mut conn, upload_id).await?;
        Ok(upload.filter(|u| u.bucket == bucket))
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> StoreResult<Vec<UploadRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        // Where the marker upload sits in (key, initiated, upload_id) order.
        let marker_initiated = match after {
            Some((key, upload_id)) if !upload_id.is_empty() => sqlx::query(
                "SELECT initiated FROM uploads
                     WHERE bucket = $1 AND key = $2 AND upload_id = $3",
            )
            .bind(bucket)
            .bind(key)
            .bind(upload_id)
            .fetch_optional(&mut *conn)
            .await?
            .map(|row| row.try_get::<i64, _>("initiated"))
            .transpose()?,
            _ => None,
        };

        let mut query = sqlx::QueryBuilder::<Sqlite>::new(format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE bucket = "
        ));
        query.push_bind(bucket);
        push_prefix_range(&mut query, prefix);
        match after {
            None => {}
            // No upload id marker: continue with the next key (S3 semantics).
            Some((key, "")) => {
                query.push(" AND key > ").push_bind(key);
            }
            // Resume right after the marker in listing order.
            Some((key, upload_id)) => {
                query.push(" AND (key > ").push_bind(key);
                query.push(" OR (key = ").push_bind(key);
                if let Some(initiated) = marker_initiated {
                    query.push(" AND (initiated > ").push_bind(initiated);
                    query.push(" OR (initiated = ").push_bind(initiated);
                    query.push(" AND upload_id > ").push_bind(upload_id);
                    query.push("))))");
                } else {
                    // The marker upload is gone: fall back to id order.
                    query.push(" AND upload_id > ").push_bind(upload_id);
                    query.push("))");
                }
            }
        }
        query
            .push(" ORDER BY key, initiated, upload_id LIMIT ")
            .push_bind(limit_to_db(limit));
        let rows = query.build().fetch_all(&mut *conn).await?;
        rows.iter().map(upload_from_row).collect()
    }

    async fn list_uploads_initiated_before(
        &self,
        cutoff: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<UploadRecord>> {
        let sql = format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE initiated < $1
             ORDER BY initiated, upload_id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(time_to_db(cutoff)?)
            .bind(limit_to_db(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(upload_from_row).collect()
    }

    async fn put_part(
        &self,
        upload_id: &str,
        part: &PartRecord,
    ) -> StoreResult<Option<PartRecord>> {
        let (upload_id, part) = (upload_id.to_owned(), part.clone());
        self.run_write(|s| async move { s.put_part_now(&upload_id, &part).await })
            .await
    }

    async fn list_parts(
        &self,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> StoreResult<Vec<PartRecord>> {
        let sql = format!(
            "SELECT {PART_COLUMNS} FROM parts WHERE upload_id = $1 AND number > $2
             ORDER BY number LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(upload_id)
            .bind(i64::from(after))
            .bind(limit_to_db(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(part_from_row).collect()
    }

    async fn complete_upload_if(
        &self,
        upload_id: &str,
        object: &ObjectRecord,
        condition: &WriteCondition,
    ) -> StoreResult<(Option<ObjectRecord>, Vec<PartRecord>)> {
        let (upload_id, object) = (upload_id.to_owned(), object.clone());
        let condition = condition.clone();
        self.run_write(
            |s| async move { s.complete_upload_now(&upload_id, &object, &condition).await },
        )
        .await
    }

    async fn abort_upload(&self, upload_id: &str) -> StoreResult<Vec<PartRecord>> {
        let upload_id = upload_id.to_owned();
        self.run_write(|s| async move { s.abort_upload_now(&upload_id).await })
            .await
    }

    async fn release_blobs(&self, blobs: &[BlobId], not_before: OffsetDateTime) -> StoreResult<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        let blobs = blobs.to_vec();
        self.run_write(move |s| async move {
            let mut w = s.begin_write().await?;
            record_releases(w.conn(), &blobs, time_to_db(not_before)?).await?;
            w.commit().await
        })
        .await
    }

    async fn claim_released_blobs(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> StoreResult<Vec<BlobId>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = time_to_db(now)?;
        let until = now.saturating_add(duration_to_db(lease));
        self.run_write(move |s| async move {
            let mut w = s.begin_write().await?;
            let rows = sqlx::query(
                "UPDATE blob_releases SET claimed_until = $1
                 WHERE blob IN (
                     SELECT blob FROM blob_releases
                     WHERE not_before <= $2 AND (claimed_until IS NULL OR claimed_until <= $2)
                     ORDER BY not_before LIMIT $3)
                 RETURNING blob",
            )
            .bind(until)
            .bind(now)
            .bind(limit_to_db(limit))
            .fetch_all(w.conn())
            .await?;
            let ids = rows
                .iter()
                .map(|row| row.try_get("blob").map(BlobId))
                .collect::<Result<Vec<_>, _>>()?;
            w.commit().await?;
            Ok(ids)
        })
        .await
    }

    async fn forget_released_blobs(&self, blobs: &[BlobId]) -> StoreResult<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        let blobs = blobs.to_vec();
        self.run_write(move |s| async move {
            let mut w = s.begin_write().await?;
            for blob in &blobs {
                sqlx::query("DELETE FROM blob_releases WHERE blob = $1")
                    .bind(&blob.0)
                    .execute(w.conn())
                    .await?;
            }
            w.commit().await
        })
        .await
    }

    fn referenced_blobs(&self) -> BoxStream<'_, StoreResult<BlobId>> {
        futures::stream::try_unfold(Some(ReferenceScan::Parts(None)), move |scan| async move {
            match scan {
                None => Ok(None),
                Some(scan) => self.reference_page(scan).await.map(Some),
            }
        })
        .map_ok(|page: Vec<BlobId>| futures::stream::iter(page.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    async fn create_user_key(&self, key: &UserKeyRecord) -> StoreResult<()> {
        let key = key.clone();
        self.run_write(|s| async move { s.create_user_key_now(&key).await })
            .await
    }

    async fn delete_user_key(&self, name: &str) -> StoreResult<()> {
        let name = name.to_owned();
        self.run_write(|s| async move { s.delete_user_key_now(&name).await })
            .await
    }

    async fn list_user_keys(&self) -> StoreResult<Vec<UserKeyRecord>> {
        let sql = format!("SELECT {USER_KEY_COLUMNS} FROM user_keys ORDER BY name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(user_key_from_row).collect()
    }

    async fn root_credentials(
        &self,
        candidate: &RootKeyRecord,
    ) -> StoreResult<(RootKeyRecord, bool)> {
        let candidate = candidate.clone();
        self.run_write(|s| async move { s.root_credentials_now(&candidate).await })
            .await
    }

    async fn settings_generation(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT generation FROM settings_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("generation")?)
    }

    async fn watch_settings(&self) -> StoreResult<Option<BoxStream<'static, StoreResult<i64>>>> {
        Ok(None)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Where [`MetaStore::referenced_blobs`] has got to: the table being read
/// and the last row read (keyset pagination, one short query per page, so
/// no transaction or lock is held across pages).
///
/// Tables are read in the order in which a reference moves: a part's blob
/// moves into an object (complete), an object's into a release row
/// (replace, delete). A reference that moves while the scan runs therefore
/// moves into a table not read yet, and is still seen. Blobs that become
/// referenced while the scan runs are new, hence younger than the orphan
/// sweep's grace.
enum ReferenceScan {
    /// Parts after this (upload_id, number).
    Parts(Option<(String, i64)>),
    /// Objects after this (bucket, key).
    Objects(Option<(String, String)>),
    /// Release rows after this blob id.
    Releases(Option<String>),
}

impl SqliteMetaStore {
    /// Reads one page of [`ReferenceScan`]; returns its blobs and where to
    /// go on (`None`: done).
    async fn reference_page(
        &self,
        scan: ReferenceScan,
    ) -> StoreResult<(Vec<BlobId>, Option<ReferenceScan>)> {
        match scan {
            ReferenceScan::Parts(after) => {
                let (upload_id, number) = after.unwrap_or((String::new(), i64::MIN));
                let rows = sqlx::query(
                    "SELECT upload_id, number, blob FROM parts
                     WHERE upload_id > $1 OR (upload_id = $1 AND number > $2)
                     ORDER BY upload_id, number LIMIT $3",
                )
                .bind(&upload_id)
                .bind(number)
                .bind(REFERENCE_PAGE)
                .fetch_all(&self.pool)
                .await?;
                let mut ids = Vec::with_capacity(rows.len());
                let mut last = None;
                for row in &rows {
                    ids.push(BlobId(row.try_get("blob")?));
                    last = Some((row.try_get("upload_id")?, row.try_get("number")?));
                }
                let next = match last {
                    Some(last) if page_is_full(rows.len()) => ReferenceScan::Parts(Some(last)),
                    _ => ReferenceScan::Objects(None),
                };
                Ok((ids, Some(next)))
            }
            ReferenceScan::Objects(after) => {
                // No bucket has an empty name.
                let (bucket, key) = after.unwrap_or_default();
                let rows = sqlx::query(
                    "SELECT bucket, key, layout FROM objects
                     WHERE bucket > $1 OR (bucket = $1 AND key > $2)
                     ORDER BY bucket, key LIMIT $3",
                )
                .bind(&bucket)
                .bind(&key)
                .bind(REFERENCE_PAGE)
                .fetch_all(&self.pool)
                .await?;
                let mut ids = Vec::with_capacity(rows.len());
                let mut last = None;
                for row in &rows {
                    ids.extend(layout_from_row(row)?.blobs());
                    last = Some((row.try_get("bucket")?, row.try_get("key")?));
                }
                let next = match last {
                    Some(last) if page_is_full(rows.len()) => ReferenceScan::Objects(Some(last)),
                    _ => ReferenceScan::Releases(None),
                };
                Ok((ids, Some(next)))
            }
            ReferenceScan::Releases(after) => {
                let rows = sqlx::query(
                    "SELECT blob FROM blob_releases WHERE blob > $1 ORDER BY blob LIMIT $2",
                )
                .bind(after.unwrap_or_default())
                .bind(REFERENCE_PAGE)
                .fetch_all(&self.pool)
                .await?;
                let ids = rows
                    .iter()
                    .map(|row| row.try_get("blob").map(BlobId))
                    .collect::<Result<Vec<_>, _>>()?;
                let next = match ids.last() {
                    Some(last) if page_is_full(ids.len()) => {
                        Some(ReferenceScan::Releases(Some(last.0.clone())))
                    }
                    _ => None,
                };
                Ok((ids, next))
            }
        }
    }
}

fn page_is_full(rows: usize) -> bool {
    i64::try_from(rows).is_ok_and(|n| n >= REFERENCE_PAGE)
}

/// Records release rows for `blobs`, due at `not_before` (unix ns). A blob
/// released twice keeps the later time. Call inside a write transaction.
async fn record_releases(
    conn: &mut SqliteConnection,
    blobs: &[BlobId],
    not_before: i64,
) -> StoreResult<()> {
    for blob in blobs {
        sqlx::query(
            "INSERT INTO blob_releases (blob, not_before) VALUES ($1, $2)
             ON CONFLICT (blob) DO UPDATE SET
                 not_before = max(blob_releases.not_before, excluded.not_before)",
        )
        .bind(&blob.0)
        .bind(not_before)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The blobs of `parts`.
fn part_blobs(parts: &[PartRecord]) -> Vec<BlobId> {
    parts.iter().map(|p| p.blob.clone()).collect()
}

/// Counts a change of the state the nodes cache (buckets, their settings,
/// user keys). Call inside the write transaction that makes the change.
async fn bump_generation(conn: &mut SqliteConnection) -> StoreResult<()> {
    sqlx::query("UPDATE settings_generation SET generation = generation + 1 WHERE id = 1")
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
