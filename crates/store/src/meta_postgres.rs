//! Metadata in PostgreSQL, shared by several stateless Preflight nodes.
//!
//! The semantics are the SQLite store's, operation for operation; what
//! differs is how atomicity is kept when the writers are other processes on
//! other machines, which no in-process lock can queue.
//!
//! # Locking
//!
//! Transactions run at READ COMMITTED: every statement sees what was
//! committed before it started, so a statement that runs after waiting on a
//! lock sees the work of the transaction it waited for. A write takes its
//! locks in one fixed order — bucket row, upload row, per-key advisory lock,
//! then the rows it changes, the settings generation row last — so two
//! writes never wait on each other in a cycle.
//!
//! - **Bucket row.** Object writes and `create_upload` take it `FOR KEY
//!   SHARE` (what a foreign key check takes): they do not block each other
//!   nor bucket setting updates, but `delete_bucket` takes it `FOR UPDATE`
//!   and so waits for every write under way in the bucket, then sees its
//!   object, and answers [`StoreError::BucketNotEmpty`]; a write that comes
//!   after it waits, finds the row gone and answers
//!   [`StoreError::NoSuchBucket`].
//! - **Upload row.** `put_part` takes it `FOR KEY SHARE`; `complete_upload`,
//!   `abort_upload` and `delete_bucket` (for each of the bucket's uploads)
//!   take it `FOR UPDATE` before they read the parts, so a part is either
//!   recorded before they read (and returned, and released) or refused with
//!   [`StoreError::NoSuchUpload`].
//! - **Per-key advisory lock.** A row lock cannot protect a key that has no
//!   row yet: two concurrent first puts would both read "no previous
//!   record". So every write that reads the previous record of an object
//!   (put, delete, complete) or of a part (put_part) first takes
//!   `pg_advisory_xact_lock` on a 64-bit hash of (bucket, key) or (upload,
//!   part number), held until commit. Writers of one key queue; writers of
//!   different keys do not (a hash collision only makes two of them queue).
//!   The hash is computed by the server (`md5`), so every node agrees.
//! - **Settings generation.** Every transaction that changes cached state
//!   bumps the single generation row (which also serializes those rare
//!   writes) and, in the same transaction, `pg_notify`s the new value on
//!   [`SETTINGS_CHANNEL`]; PostgreSQL delivers it on commit only.
//!
//! # Commit points
//!
//! Every write runs in a task of its own ([`PostgresMetaStore::run_write`]),
//! so it ends in COMMIT or ROLLBACK even when its caller is dropped (hyper
//! drops a request's future when the client hangs up).
//!
//! # Failures
//!
//! sqlx errors become [`StoreError::Backend`] with backend `PostgreSQL`;
//! those that mean the database cannot be reached (I/O, TLS, pool timeout,
//! SQLSTATE class 08, server shutting down, too many connections) are
//! `unavailable`, which the server answers with 503. Connecting fails fast:
//! a first connection is made directly with a short timeout, so its real
//! cause (refused, authentication, no such database) is reported with the
//! database's redacted URL.

mod rows;
mod schema;
mod writes;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row};
use time::OffsetDateTime;

use crate::open::redact;
use crate::{
    BlobId, BucketRecord, BucketSetting, MetaOptions, MetaStore, ObjectRecord, PartRecord,
    RootKeyRecord, StoreError, StoreResult, UploadRecord, UserKeyRecord, WriteCondition,
};
use rows::*;

/// The name in [`StoreError::Backend`].
const BACKEND: &str = "PostgreSQL";
/// The `LISTEN`/`NOTIFY` channel of settings generations.
pub const SETTINGS_CHANNEL: &str = "preflight_settings";
/// How long opening a connection may take before the database counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a pooled connection (all busy, or the
/// database unreachable) before it fails as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows per page of [`MetaStore::referenced_blobs`].
const REFERENCED_PAGE: i64 = 1000;

/// [`MetaStore`] on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresMetaStore {
    pool: PgPool,
    /// For the dedicated connection of each [`MetaStore::watch_settings`].
    connect_options: Arc<PgConnectOptions>,
    /// How long the blobs of a replaced or deleted object stay readable.
    release_grace: Duration,
}

impl PostgresMetaStore {
    /// Connects to the database at `url`, migrates it to the current schema
    /// (under an advisory lock, so several nodes may start at once) and keeps
    /// a pool of `options.pool_size` connections.
    pub async fn connect(url: &str, options: &MetaOptions) -> StoreResult<Self> {
        let database = redact(url);
        let connect_options = PgConnectOptions::from_str(url)
            .map_err(|e| start_error(&database, e))?
            .application_name("preflight");
        // One direct connection first: the pool retries a refused connection
        // until its deadline and then reports only "timed out".
        let mut conn = tokio::time::timeout(
            CONNECT_TIMEOUT,
            PgConnection::connect_with(&connect_options),
        )
        .await
        .map_err(|_| start_error(&database, sqlx::Error::PoolTimedOut))?
        .map_err(|e| start_error(&database, e))?;
        schema::migrate(&mut conn).await?;
        conn.close().await.pg()?;

        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // Writes run in tasks of their own, so a connection should never
            // come back inside a transaction; if one does, close it (which
            // rolls back) rather than hand it out.
            .after_release(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
            .connect_lazy_with(connect_options.clone());
        Ok(PostgresMetaStore {
            pool,
            connect_options: Arc::new(connect_options),
            release_grace: options.release_grace,
        })
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs one write to completion in a task of its own and waits for it.
    ///
    /// A dropped `JoinHandle` does not cancel its task, so once a write has
    /// started it always ends in COMMIT or ROLLBACK, even when the caller
    /// goes away.
    async fn run_write<T, F, Fut>(&self, write: F) -> StoreResult<T>
    where
        F: FnOnce(PostgresMetaStore) -> Fut,
        Fut: Future<Output = StoreResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        tokio::spawn(write(self.clone()))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }

    async fn begin(&self) -> StoreResult<sqlx::Transaction<'static, Postgres>> {
        self.pool.begin().await.pg()
    }

    /// "Now" and "now + release grace" for release rows, in nanoseconds.
    fn release_times(&self) -> StoreResult<ReleaseTimes> {
        let now = time_to_db(OffsetDateTime::now_utc())?;
        Ok(ReleaseTimes {
            now,
            after_grace: now.saturating_add(duration_to_db(self.release_grace)),
        })
    }
}

/// When the blobs a write leaves unreferenced may be deleted.
#[derive(Debug, Clone, Copy)]
struct ReleaseTimes {
    /// Parts no object uses: nobody can read them.
    now: i64,
    /// Blobs of a replaced or deleted object: a GET may still be reading.
    after_grace: i64,
}

/// Converts sqlx results into [`StoreResult`]s naming PostgreSQL.
pub(crate) trait PgResultExt<T> {
    fn pg(self) -> StoreResult<T>;
}

impl<T> PgResultExt<T> for Result<T, sqlx::Error> {
    fn pg(self) -> StoreResult<T> {
        self.map_err(pg_error)
    }
}

/// A sqlx error as a [`StoreError::Backend`]; `unavailable` when the
/// database could not be reached (the outcome of a write is then unknown).
fn pg_error(e: sqlx::Error) -> StoreError {
    StoreError::Backend {
        backend: BACKEND,
        unavailable: is_unreachable(&e),
        source: Box::new(e),
    }
}

fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception; 57P01-03: the server is shutting
        // down, crashed or starting; 53300: too many connections.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// Whether `e` is a unique or a foreign key violation.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Maps an insert's error: a foreign key violation means the row it points
/// to (a bucket, an upload) is gone, which is `missing`.
fn or_missing(missing: StoreError) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => missing,
        _ => pg_error(e),
    }
}

/// Connecting failed at start: one line naming the database and the cause.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {database}: {cause}")]
struct StartError {
    database: String,
    cause: String,
}

fn start_error(database: &str, e: sqlx::Error) -> StoreError {
    let cause = match e {
        sqlx::Error::PoolTimedOut => format!("no answer within {CONNECT_TIMEOUT:?}"),
        ref other => other.to_string(),
    };
    StoreError::Backend {
        backend: BACKEND,
        unavailable: is_unreachable(&e),
        source: Box::new(StartError {
            database: database.to_owned(),
            cause,
        }),
    }
}

/// Locks the bucket row against `delete_bucket` for the rest of the
/// transaction; false when there is no such bucket.
async fn lock_bucket_shared(conn: &mut PgConnection, name: &str) -> StoreResult<bool> {
    let row = sqlx::query("SELECT 1 FROM buckets WHERE name = $1 FOR KEY SHARE")
        .bind(name)
        .fetch_optional(conn)
        .await
        .pg()?;
    Ok(row.is_some())
}

/// Queues this transaction behind every other writer of the same object
/// key (until commit). Bucket names hold no NUL, so the hashed bytes are
/// unambiguous.
async fn lock_object_key(conn: &mut PgConnection, bucket: &str, key: &str) -> StoreResult<()> {
    let mut name = b"object\0".to_vec();
    name.extend_from_slice(bucket.as_bytes());
    name.push(0);
    name.extend_from_slice(key.as_bytes());
    advisory_xact_lock(conn, name).await
}

/// Queues this transaction behind every other writer of the same part.
async fn lock_part(conn: &mut PgConnection, upload_id: &str, number: u32) -> StoreResult<()> {
    let name = format!("part\0{upload_id}\0{number}").into_bytes();
    advisory_xact_lock(conn, name).await
}

async fn advisory_xact_lock(conn: &mut PgConnection, name: Vec<u8>) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(('x' || left(md5($1), 16))::bit(64)::bigint)")
        .bind(name)
        .execute(conn)
        .await
        .pg()?;
    Ok(())
}

async fn fetch_object(
    conn: &mut PgConnection,
    bucket: &str,
    key: &str,
) -> StoreResult<Option<ObjectRecord>> {
    let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = $1 AND key = $2");
    let row = sqlx::query(&sql)
        .bind(bucket)
        .bind(key.as_bytes())
        .fetch_optional(conn)
        .await
        .pg()?;
    row.as_ref().map(object_from_row).transpose()
}

/// Inserts or replaces an object and records the replaced object's blobs
/// for release; returns the replaced record. Call inside a transaction,
/// before any lock that comes after the bucket row in the lock order.
async fn replace_object(
    conn: &mut PgConnection,
    object: &ObjectRecord,
    condition: &WriteCondition,
    times: ReleaseTimes,
) -> StoreResult<Option<ObjectRecord>> {
    if !lock_bucket_shared(conn, &object.bucket).await? {
        return Err(StoreError::NoSuchBucket);
    }
    // Every writer of the key waits here, so the record read next is the
    // one this write replaces: the condition is decided on it.
    lock_object_key(conn, &object.bucket, &object.key).await?;
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
    .bind(object.key.as_bytes())
    .bind(size_to_db(object.size)?)
    .bind(&object.etag)
    .bind(time_to_db(object.last_modified)?)
    .bind(&object.acl)
    .bind(json_to_db(&object.headers)?)
    .bind(json_to_db(&object.layout)?)
    .execute(&mut *conn)
    .await
    .map_err(or_missing(StoreError::NoSuchBucket))?;
    if let Some(previous) = &previous {
        let kept = object.layout.blobs();
        let released = previous
            .layout
            .blobs()
            .into_iter()
            .filter(|b| !kept.contains(b))
            .collect();
        record_releases(conn, released, times.after_grace).await?;
    }
    Ok(previous)
}

/// Locks an upload row `FOR UPDATE` and reads it.
async fn lock_upload(
    conn: &mut PgConnection,
    upload_id: &str,
) -> StoreResult<Option<UploadRecord>> {
    let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = $1 FOR UPDATE");
    let row = sqlx::query(&sql)
        .bind(upload_id)
        .fetch_optional(conn)
        .await
        .pg()?;
    row.as_ref().map(upload_from_row).transpose()
}

/// Deletes the upload and its parts; returns the parts. Call inside a
/// transaction holding the upload row `FOR UPDATE`.
async fn remove_upload(conn: &mut PgConnection, upload_id: &str) -> StoreResult<Vec<PartRecord>> {
    let sql = format!("SELECT {PART_COLUMNS} FROM parts WHERE upload_id = $1 ORDER BY number");
    let parts = sqlx::query(&sql)
        .bind(upload_id)
        .fetch_all(&mut *conn)
        .await
        .pg()?
        .iter()
        .map(part_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    sqlx::query("DELETE FROM parts WHERE upload_id = $1")
        .bind(upload_id)
        .execute(&mut *conn)
        .await
        .pg()?;
    sqlx::query("DELETE FROM uploads WHERE upload_id = $1")
        .bind(upload_id)
        .execute(&mut *conn)
        .await
        .pg()?;
    Ok(parts)
}

/// Records release rows "delete blob X not before `not_before`". A blob
/// released twice keeps the later time.
async fn record_releases(
    conn: &mut PgConnection,
    blobs: Vec<BlobId>,
    not_before: i64,
) -> StoreResult<()> {
    let mut ids: Vec<String> = blobs.into_iter().map(|b| b.0).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO blob_releases (blob, not_before)
         SELECT blob, $2 FROM unnest($1::text[]) AS blob
         ON CONFLICT (blob) DO UPDATE
             SET not_before = GREATEST(blob_releases.not_before, excluded.not_before)",
    )
    .bind(ids)
    .bind(not_before)
    .execute(conn)
    .await
    .pg()?;
    Ok(())
}

/// Bumps the settings generation and notifies it on commit; returns it.
async fn bump_generation(conn: &mut PgConnection) -> StoreResult<i64> {
    let generation: i64 = sqlx::query_scalar(
        "UPDATE settings_generation SET generation = generation + 1 WHERE id = 1
         RETURNING generation",
    )
    .fetch_one(&mut *conn)
    .await
    .pg()?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(SETTINGS_CHANNEL)
        .bind(generation.to_string())
        .execute(conn)
        .await
        .pg()?;
    Ok(generation)
}

/// Appends `AND key >= prefix AND key < bound(prefix)` for a prefix scan.
fn push_prefix_range(query: &mut sqlx::QueryBuilder<'_, Postgres>, prefix: &str) {
    if prefix.is_empty() {
        return;
    }
    query
        .push(" AND key >= ")
        .push_bind(prefix.as_bytes().to_vec());
    if let Some(bound) = prefix_upper_bound(prefix.as_bytes()) {
        query.push(" AND key < ").push_bind(bound);
    }
}

/// Where [`MetaStore::referenced_blobs`] is. Tables are read in the order
/// blobs move between them — parts, then objects, then release rows — one
/// page per query, so a blob that moves while the scan runs (a part
/// completed into an object, an object's blob released) is met again
/// further on, never missed.
enum Scan {
    Parts(Option<(String, i64)>),
    Objects(Option<(String, Vec<u8>)>),
    Releases(Option<String>),
    Done,
}

#[async_trait]
impl MetaStore for PostgresMetaStore {
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
            .await
            .pg()?;
        row.as_ref().map(bucket_from_row).transpose()
    }

    async fn list_buckets(&self) -> StoreResult<Vec<BucketRecord>> {
        let sql = format!("SELECT {BUCKET_COLUMNS} FROM buckets ORDER BY name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await.pg()?;
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
        let mut conn = self.pool.acquire().await.pg()?;
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
        let mut query = sqlx::QueryBuilder::<Postgres>::new(format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = "
        ));
        query.push_bind(bucket);
        match after {
            // A marker inside or past the prefix range raises the lower bound.
            Some(after) if after >= prefix => {
                query
                    .push(" AND key > ")
                    .push_bind(after.as_bytes().to_vec());
                if let Some(bound) = prefix_upper_bound(prefix.as_bytes()) {
                    query.push(" AND key < ").push_bind(bound);
                }
            }
            _ => push_prefix_range(&mut query, prefix),
        }
        query
            .push(" ORDER BY key LIMIT ")
            .push_bind(limit_to_db(limit));
        let rows = query.build().fetch_all(&self.pool).await.pg()?;
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
        let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = $1");
        let row = sqlx::query(&sql)
            .bind(upload_id)
            .fetch_optional(&self.pool)
            .await
            .pg()?;
        let upload = row.as_ref().map(upload_from_row).transpose()?;
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
        let mut conn = self.pool.acquire().await.pg()?;
        // Where the marker upload sits in (key, initiated, upload_id) order.
        let marker_initiated = match after {
            Some((key, upload_id)) if !upload_id.is_empty() => sqlx::query(
                "SELECT initiated FROM uploads
                     WHERE bucket = $1 AND key = $2 AND upload_id = $3",
            )
            .bind(bucket)
            .bind(key.as_bytes())
            .bind(upload_id)
            .fetch_optional(&mut *conn)
            .await
            .pg()?
            .map(|row| row.try_get::<i64, _>("initiated"))
            .transpose()
            .pg()?,
            _ => None,
        };

        let mut query = sqlx::QueryBuilder::<Postgres>::new(format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE bucket = "
        ));
        query.push_bind(bucket);
        push_prefix_range(&mut query, prefix);
        match after {
            None => {}
            // No upload id marker: continue with the next key (S3 semantics).
            Some((key, "")) => {
                query.push(" AND key > ").push_bind(key.as_bytes().to_vec());
            }
            // Resume right after the marker in listing order.
            Some((key, upload_id)) => {
                let key = key.as_bytes().to_vec();
                query.push(" AND (key > ").push_bind(key.clone());
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
        let rows = query.build().fetch_all(&mut *conn).await.pg()?;
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
            .await
            .pg()?;
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
            .await
            .pg()?;
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
        let blobs = blobs.to_vec();
        let not_before = time_to_db(not_before)?;
        self.run_write(move |s| async move {
            let mut conn = s.pool.acquire().await.pg()?;
            record_releases(&mut conn, blobs, not_before).await
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
        self.run_write(move |s| async move { s.claim_released_now(now, until, limit).await })
            .await
    }

    async fn forget_released_blobs(&self, blobs: &[BlobId]) -> StoreResult<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = blobs.iter().map(|b| b.0.clone()).collect();
        self.run_write(move |s| async move {
            sqlx::query("DELETE FROM blob_releases WHERE blob = ANY($1)")
                .bind(ids)
                .execute(&s.pool)
                .await
                .pg()?;
            Ok(())
        })
        .await
    }

    fn referenced_blobs(&self) -> BoxStream<'_, StoreResult<BlobId>> {
        futures::stream::try_unfold(Scan::Parts(None), move |scan| async move {
            self.referenced_page(scan).await
        })
        .map_ok(|ids| futures::stream::iter(ids.into_iter().map(Ok)))
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
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await.pg()?;
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
        sqlx::query_scalar("SELECT generation FROM settings_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .pg()
    }

    async fn watch_settings(&self) -> StoreResult<Option<BoxStream<'static, StoreResult<i64>>>> {
        // A connection of its own, outside the pool: it stays in LISTEN for
        // as long as the stream lives.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with((*self.connect_options).clone());
        let mut listener = PgListener::connect_with(&pool).await.pg()?;
        // Notifications sent while reconnecting would be lost unseen: end the
        // stream instead, so the caller rereads the generation.
        listener.eager_reconnect(false);
        listener.listen(SETTINGS_CHANNEL).await.pg()?;
        let stream = futures::stream::unfold(Some(listener), |listener| async move {
            let mut listener = listener?;
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let item = notification.payload().parse::<i64>().map_err(|e| {
                        StoreError::Corrupt(format!(
                            "{SETTINGS_CHANNEL} notification {:?}: {e}",
                            notification.payload()
                        ))
                    });
                    Some((item, Some(listener)))
                }
                Ok(None) => Some((Err(pg_error(sqlx::Error::PoolClosed)), None)),
                Err(e) => Some((Err(pg_error(e)), None)),
            }
        });
        Ok(Some(stream.boxed()))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.pg()?;
        Ok(())
    }
}

impl PostgresMetaStore {
    /// One page of [`MetaStore::referenced_blobs`] and where to go next.
    async fn referenced_page(&self, scan: Scan) -> StoreResult<Option<(Vec<BlobId>, Scan)>> {
        let full = |n: usize| i64::try_from(n).is_ok_and(|n| n >= REFERENCED_PAGE);
        match scan {
            Scan::Parts(after) => {
                let query = match &after {
                    None => sqlx::query(
                        "SELECT upload_id, number, blob FROM parts
                         ORDER BY upload_id, number LIMIT $1",
                    )
                    .bind(REFERENCED_PAGE),
                    Some((upload_id, number)) => sqlx::query(
                        "SELECT upload_id, number, blob FROM parts
                         WHERE (upload_id, number) > ($2, $3)
                         ORDER BY upload_id, number LIMIT $1",
                    )
                    .bind(REFERENCED_PAGE)
                    .bind(upload_id)
                    .bind(number),
                };
                let rows = query.fetch_all(&self.pool).await.pg()?;
                let ids = rows
                    .iter()
                    .map(|r| r.try_get("blob").map(BlobId))
                    .collect::<Result<Vec<_>, _>>()
                    .pg()?;
                let next = match rows.last() {
                    Some(last) if full(rows.len()) => Scan::Parts(Some((
                        last.try_get("upload_id").pg()?,
                        last.try_get("number").pg()?,
                    ))),
                    _ => Scan::Objects(None),
                };
                Ok(Some((ids, next)))
            }
            Scan::Objects(after) => {
                let query = match &after {
                    None => sqlx::query(
                        "SELECT bucket, key, layout FROM objects ORDER BY bucket, key LIMIT $1",
                    )
                    .bind(REFERENCED_PAGE),
                    Some((bucket, key)) => sqlx::query(
                        "SELECT bucket, key, layout FROM objects
                         WHERE (bucket, key) > ($2, $3)
                         ORDER BY bucket, key LIMIT $1",
                    )
                    .bind(REFERENCED_PAGE)
                    .bind(bucket)
                    .bind(key),
                };
                let rows = query.fetch_all(&self.pool).await.pg()?;
                let mut ids = Vec::with_capacity(rows.len());
                for row in &rows {
                    ids.extend(layout_from_row(row)?.blobs());
                }
                let next = match rows.last() {
                    Some(last) if full(rows.len()) => Scan::Objects(Some((
                        last.try_get("bucket").pg()?,
                        last.try_get("key").pg()?,
                    ))),
                    _ => Scan::Releases(None),
                };
                Ok(Some((ids, next)))
            }
            Scan::Releases(after) => {
                let query = match &after {
                    None => sqlx::query("SELECT blob FROM blob_releases ORDER BY blob LIMIT $1")
                        .bind(REFERENCED_PAGE),
                    Some(blob) => sqlx::query(
                        "SELECT blob FROM blob_releases WHERE blob > $2 ORDER BY blob LIMIT $1",
                    )
                    .bind(REFERENCED_PAGE)
                    .bind(blob),
                };
                let ids = query
                    .fetch_all(&self.pool)
                    .await
                    .pg()?
                    .iter()
                    .map(|r| r.try_get("blob").map(BlobId))
                    .collect::<Result<Vec<_>, _>>()
                    .pg()?;
                let next = match ids.last() {
                    Some(last) if full(ids.len()) => Scan::Releases(Some(last.0.clone())),
                    _ => Scan::Done,
                };
                Ok(Some((ids, next)))
            }
            Scan::Done => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
