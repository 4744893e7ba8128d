//! Metadata in an embedded SQLite database (WAL, synchronous=FULL).
//!
//! Reads run concurrently on a small pool. Writes that read before they write
//! (replace an object, record a part, complete an upload) run in one
//! `BEGIN IMMEDIATE` transaction, so two writers of the same key can never
//! both see the same previous record; an in-process lock queues writers so
//! they wait on each other here instead of in SQLite's sleeping busy handler.

mod rows;
mod schema;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use crate::{
    BlobId, BucketRecord, BucketSetting, MetaStore, ObjectRecord, PartRecord, StoreError,
    StoreResult, UploadRecord,
};
use rows::*;

/// Connections in the pool: readers proceed in parallel under WAL.
const MAX_CONNECTIONS: u32 = 4;
/// How long a writer waits on another process holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// [`MetaStore`] on one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteMetaStore {
    pool: SqlitePool,
    write_lock: Arc<Mutex<()>>,
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
            .connect_with(options)
            .await?;
        schema::migrate(&pool).await?;
        Ok(SqliteMetaStore {
            pool,
            write_lock: Arc::new(Mutex::new(())),
        })
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin_write(&self) -> StoreResult<WriteTx<'_>> {
        let lock = self.write_lock.lock().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _lock: lock })
    }
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
) -> StoreResult<Option<ObjectRecord>> {
    if !bucket_exists(conn, &object.bucket).await? {
        return Err(StoreError::NoSuchBucket);
    }
    let previous = fetch_object(conn, &object.bucket, &object.key).await?;
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
        let mut w = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO buckets
                 (name, region, owner, created, acl, cors, policy, public_access_block)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&bucket.name)
        .bind(&bucket.region)
        .bind(&bucket.owner)
        .bind(time_to_db(bucket.created)?)
        .bind(&bucket.acl)
        .bind(&bucket.cors)
        .bind(&bucket.policy)
        .bind(&bucket.public_access_block)
        .execute(w.conn())
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::BucketExists);
        }
        w.commit().await
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

    async fn delete_bucket(&self, name: &str) -> StoreResult<()> {
        let mut w = self.begin_write().await?;
        if !bucket_exists(w.conn(), name).await? {
            return Err(StoreError::NoSuchBucket);
        }
        let in_use = sqlx::query(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM objects WHERE bucket = $1)
                         OR EXISTS (SELECT 1 FROM uploads WHERE bucket = $1)",
        )
        .bind(name)
        .fetch_optional(w.conn())
        .await?;
        if in_use.is_some() {
            return Err(StoreError::BucketNotEmpty);
        }
        sqlx::query("DELETE FROM buckets WHERE name = $1")
            .bind(name)
            .execute(w.conn())
            .await?;
        w.commit().await
    }

    async fn set_bucket_setting(
        &self,
        name: &str,
        setting: BucketSetting,
        value: Option<&str>,
    ) -> StoreResult<()> {
        // Column names come from this match only, never from input.
        let (sql, value) = match setting {
            BucketSetting::Acl => (
                "UPDATE buckets SET acl = $1 WHERE name = $2",
                Some(value.unwrap_or("private")),
            ),
            BucketSetting::Cors => ("UPDATE buckets SET cors = $1 WHERE name = $2", value),
            BucketSetting::Policy => ("UPDATE buckets SET policy = $1 WHERE name = $2", value),
            BucketSetting::PublicAccessBlock => (
                "UPDATE buckets SET public_access_block = $1 WHERE name = $2",
                value,
            ),
        };
        let mut w = self.begin_write().await?;
        let updated = sqlx::query(sql)
            .bind(value)
            .bind(name)
            .execute(w.conn())
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::NoSuchBucket);
        }
        w.commit().await
    }

    async fn get_object(&self, bucket: &str, key: &str) -> StoreResult<Option<ObjectRecord>> {
        let mut conn = self.pool.acquire().await?;
        fetch_object(&mut conn, bucket, key).await
    }

    async fn put_object(&self, object: &ObjectRecord) -> StoreResult<Option<ObjectRecord>> {
        let mut w = self.begin_write().await?;
        let previous = replace_object(w.conn(), object).await?;
        w.commit().await?;
        Ok(previous)
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> StoreResult<Option<ObjectRecord>> {
        let mut w = self.begin_write().await?;
        let Some(previous) = fetch_object(w.conn(), bucket, key).await? else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM objects WHERE bucket = $1 AND key = $2")
            .bind(bucket)
            .bind(key)
            .execute(w.conn())
            .await?;
        w.commit().await?;
        Ok(Some(previous))
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
        let mut w = self.begin_write().await?;
        let updated = sqlx::query("UPDATE objects SET acl = $1 WHERE bucket = $2 AND key = $3")
            .bind(acl)
            .bind(bucket)
            .bind(key)
            .execute(w.conn())
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::NoSuchKey);
        }
        w.commit().await
    }

    async fn create_upload(&self, upload: &UploadRecord) -> StoreResult<()> {
        let mut w = self.begin_write().await?;
        if !bucket_exists(w.conn(), &upload.bucket).await? {
            return Err(StoreError::NoSuchBucket);
        }
        sqlx::query(
            "INSERT INTO uploads (upload_id, bucket, key, initiated, acl, headers)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&upload.upload_id)
        .bind(&upload.bucket)
        .bind(&upload.key)
        .bind(time_to_db(upload.initiated)?)
        .bind(&upload.acl)
        .bind(json_to_db(&upload.headers)?)
        .execute(w.conn())
        .await?;
        w.commit().await
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

    async fn put_part(
        &self,
        upload_id: &str,
        part: &PartRecord,
    ) -> StoreResult<Option<PartRecord>> {
        let mut w = self.begin_write().await?;
        if fetch_upload(w.conn(), upload_id).await?.is_none() {
            return Err(StoreError::NoSuchUpload);
        }
        let sql = format!("SELECT {PART_COLUMNS} FROM parts WHERE upload_id = $1 AND number = $2");
        let previous = sqlx::query(&sql)
            .bind(upload_id)
            .bind(i64::from(part.number))
            .fetch_optional(w.conn())
            .await?
            .as_ref()
            .map(part_from_row)
            .transpose()?;
        sqlx::query(
            "INSERT INTO parts (upload_id, number, blob, size, etag, last_modified, checksums)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (upload_id, number) DO UPDATE SET
                 blob = excluded.blob, size = excluded.size, etag = excluded.etag,
                 last_modified = excluded.last_modified, checksums = excluded.checksums",
        )
        .bind(upload_id)
        .bind(i64::from(part.number))
        .bind(&part.blob.0)
        .bind(size_to_db(part.size)?)
        .bind(&part.etag)
        .bind(time_to_db(part.last_modified)?)
        .bind(json_to_db(&part.checksums)?)
        .execute(w.conn())
        .await?;
        w.commit().await?;
        Ok(previous)
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

    async fn complete_upload(
        &self,
        upload_id: &str,
        object: &ObjectRecord,
    ) -> StoreResult<(Option<ObjectRecord>, Vec<PartRecord>)> {
        let mut w = self.begin_write().await?;
        // An upload id used with another bucket or key is "no such upload",
        // as in S3.
        match fetch_upload(w.conn(), upload_id).await? {
            Some(u) if u.bucket == object.bucket && u.key == object.key => {}
            _ => return Err(StoreError::NoSuchUpload),
        }
        let parts = remove_upload(w.conn(), upload_id).await?;
        let previous = replace_object(w.conn(), object).await?;
        w.commit().await?;
        let used = object.layout.blobs();
        let unused = parts
            .into_iter()
            .filter(|p| !used.contains(&p.blob))
            .collect();
        Ok((previous, unused))
    }

    async fn abort_upload(&self, upload_id: &str) -> StoreResult<Vec<PartRecord>> {
        let mut w = self.begin_write().await?;
        if fetch_upload(w.conn(), upload_id).await?.is_none() {
            return Err(StoreError::NoSuchUpload);
        }
        let parts = remove_upload(w.conn(), upload_id).await?;
        w.commit().await?;
        Ok(parts)
    }

    async fn referenced_blobs(&self) -> StoreResult<Vec<BlobId>> {
        // One read transaction: a consistent snapshot of objects and parts,
        // so a part's blob moving into an object is seen exactly once.
        let mut tx = self.pool.begin().await?;
        let mut ids = Vec::new();
        // Stream rows: a store can hold many objects.
        let mut layouts = sqlx::query("SELECT layout FROM objects").fetch(&mut *tx);
        while let Some(row) = layouts.try_next().await? {
            ids.extend(layout_from_row(&row)?.blobs());
        }
        drop(layouts);
        let mut parts = sqlx::query("SELECT blob FROM parts").fetch(&mut *tx);
        while let Some(row) = parts.try_next().await? {
            ids.push(BlobId(row.try_get("blob")?));
        }
        drop(parts);
        tx.commit().await?;
        Ok(ids)
    }
}

#[cfg(test)]
mod tests;
