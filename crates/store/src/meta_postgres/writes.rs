//! The write transactions of [`PostgresMetaStore`]. Each runs inside
//! [`PostgresMetaStore::run_write`], in a task of its own, so that it always
//! ends in COMMIT or ROLLBACK whatever happens to the caller. Each takes its
//! locks in the order the module documentation gives.

use super::rows::*;
use super::*;

impl PostgresMetaStore {
    pub(super) async fn create_bucket_now(&self, bucket: &BucketRecord) -> StoreResult<()> {
        let mut tx = self.begin().await?;
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
        .execute(&mut *tx)
        .await
        .pg()?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::BucketExists);
        }
        bump_generation(&mut tx).await?;
        tx.commit().await.pg()
    }

    /// Deletes a bucket without objects, aborting its uploads in progress
    /// in the same transaction (as S3 does); returns their parts.
    pub(super) async fn delete_bucket_now(&self, name: &str) -> StoreResult<Vec<PartRecord>> {
        let times = self.release_times()?;
        let mut tx = self.begin().await?;
        // Waits for the object writes under way in the bucket (they hold
        // the row FOR KEY SHARE), then keeps new ones out until commit.
        let exists = sqlx::query("SELECT 1 FROM buckets WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .pg()?;
        if exists.is_none() {
            return Err(StoreError::NoSuchBucket);
        }
        let in_use = sqlx::query("SELECT 1 FROM objects WHERE bucket = $1 LIMIT 1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .pg()?;
        if in_use.is_some() {
            return Err(StoreError::BucketNotEmpty);
        }
        // Lock the uploads before reading their parts: a part being recorded
        // holds its upload FOR KEY SHARE, so it is either committed (and
        // read below) or waits and then finds its upload gone.
        let uploads: Vec<String> = sqlx::query_scalar(
            "SELECT upload_id FROM uploads WHERE bucket = $1 ORDER BY upload_id FOR UPDATE",
        )
        .bind(name)
        .fetch_all(&mut *tx)
        .await
        .pg()?;
        let sql = format!(
            "SELECT {PART_COLUMNS} FROM parts WHERE upload_id = ANY($1)
             ORDER BY upload_id, number"
        );
        let parts = sqlx::query(&sql)
            .bind(&uploads)
            .fetch_all(&mut *tx)
            .await
            .pg()?
            .iter()
            .map(part_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        sqlx::query("DELETE FROM parts WHERE upload_id = ANY($1)")
            .bind(&uploads)
            .execute(&mut *tx)
            .await
            .pg()?;
        sqlx::query("DELETE FROM uploads WHERE bucket = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .pg()?;
        sqlx::query("DELETE FROM buckets WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .pg()?;
        let blobs = parts.iter().map(|p| p.blob.clone()).collect();
        record_releases(&mut tx, blobs, times.now).await?;
        bump_generation(&mut tx).await?;
        tx.commit().await.pg()?;
        Ok(parts)
    }

    pub(super) async fn set_bucket_setting_now(
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
        let mut tx = self.begin().await?;
        let updated = sqlx::query(sql)
            .bind(value)
            .bind(name)
            .execute(&mut *tx)
            .await
            .pg()?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::NoSuchBucket);
        }
        bump_generation(&mut tx).await?;
        tx.commit().await.pg()
    }

    pub(super) async fn put_object_now(
        &self,
        object: &ObjectRecord,
        condition: &WriteCondition,
    ) -> StoreResult<Option<ObjectRecord>> {
        let times = self.release_times()?;
        let mut tx = self.begin().await?;
        let previous = replace_object(&mut tx, object, condition, times).await?;
        tx.commit().await.pg()?;
        Ok(previous)
    }

    pub(super) async fn delete_object_now(
        &self,
        bucket: &str,
        key: &str,
        condition: &WriteCondition,
    ) -> StoreResult<Option<ObjectRecord>> {
        let times = self.release_times()?;
        let mut tx = self.begin().await?;
        lock_object_key(&mut tx, bucket, key).await?;
        let Some(previous) = fetch_object(&mut tx, bucket, key).await? else {
            return Ok(None);
        };
        condition.check_delete(Some(&previous))?;
        sqlx::query("DELETE FROM objects WHERE bucket = $1 AND key = $2")
            .bind(bucket)
            .bind(key.as_bytes())
            .execute(&mut *tx)
            .await
            .pg()?;
        record_releases(&mut tx, previous.layout.blobs(), times.after_grace).await?;
        tx.commit().await.pg()?;
        Ok(Some(previous))
    }

    pub(super) async fn set_object_acl_now(
        &self,
        bucket: &str,
        key: &str,
        acl: &str,
    ) -> StoreResult<()> {
        // One statement: atomic on its own, and it waits for a concurrent
        // replace of the row.
        let updated = sqlx::query("UPDATE objects SET acl = $1 WHERE bucket = $2 AND key = $3")
            .bind(acl)
            .bind(bucket)
            .bind(key.as_bytes())
            .execute(&self.pool)
            .await
            .pg()?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::NoSuchKey);
        }
        Ok(())
    }

    pub(super) async fn create_upload_now(&self, upload: &UploadRecord) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        if !lock_bucket_shared(&mut tx, &upload.bucket).await? {
            return Err(StoreError::NoSuchBucket);
        }
        sqlx::query(
            "INSERT INTO uploads (upload_id, bucket, key, initiated, acl, headers)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&upload.upload_id)
        .bind(&upload.bucket)
        .bind(upload.key.as_bytes())
        .bind(time_to_db(upload.initiated)?)
        .bind(&upload.acl)
        .bind(json_to_db(&upload.headers)?)
        .execute(&mut *tx)
        .await
        .map_err(or_missing(StoreError::NoSuchBucket))?;
        tx.commit().await.pg()
    }

    pub(super) async fn put_part_now(
        &self,
        upload_id: &str,
        part: &PartRecord,
    ) -> StoreResult<Option<PartRecord>> {
        let times = self.release_times()?;
        let mut tx = self.begin().await?;
        // Keeps complete, abort and delete_bucket out until commit.
        let upload = sqlx::query("SELECT 1 FROM uploads WHERE upload_id = $1 FOR KEY SHARE")
            .bind(upload_id)
            .fetch_optional(&mut *tx)
            .await
            .pg()?;
        if upload.is_none() {
            return Err(StoreError::NoSuchUpload);
        }
        lock_part(&mut tx, upload_id, part.number).await?;
        let sql = format!("SELECT {PART_COLUMNS} FROM parts WHERE upload_id = $1 AND number = $2");
        let previous = sqlx::query(&sql)
            .bind(upload_id)
            .bind(i64::from(part.number))
            .fetch_optional(&mut *tx)
            .await
            .pg()?
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
        .execute(&mut *tx)
        .await
        .map_err(or_missing(StoreError::NoSuchUpload))?;
        if let Some(previous) = previous.as_ref().filter(|p| p.blob != part.blob) {
            // No GET reads a part of an upload in progress: released now,
            // as the contract says (and as SQLite does).
            record_releases(&mut tx, vec![previous.blob.clone()], times.now).await?;
        }
        tx.commit().await.pg()?;
        Ok(previous)
    }

    pub(super) async fn complete_upload_now(
        &self,
        upload_id: &str,
        object: &ObjectRecord,
        condition: &WriteCondition,
    ) -> StoreResult<(Option<ObjectRecord>, Vec<PartRecord>)> {
        let times = self.release_times()?;
        let mut tx = self.begin().await?;
        // Bucket row first (lock order); no bucket, no upload either.
        if !lock_bucket_shared(&mut tx, &object.bucket).await? {
            return Err(StoreError::NoSuchUpload);
        }
        // An upload id used with another bucket or key is "no such upload",
        // as in S3.
        match lock_upload(&mut tx, upload_id).await? {
            Some(u) if u.bucket == object.bucket && u.key == object.key => {}
            _ => return Err(StoreError::NoSuchUpload),
        }
        let parts = remove_upload(&mut tx, upload_id).await?;
        let unused = object.layout.unused_parts(parts)?;
        let previous = replace_object(&mut tx, object, condition, times).await?;
        let blobs = unused.iter().map(|p| p.blob.clone()).collect();
        record_releases(&mut tx, blobs, times.now).await?;
        tx.commit().await.pg()?;
        Ok((previous, unused))
    }

    pub(super) async fn abort_upload_now(&self, upload_id: &str) -> StoreResult<Vec<PartRecord>> {
        let times = self.release_times()?;
        let mut tx = self.begin().await?;
        if lock_upload(&mut tx, upload_id).await?.is_none() {
            return Err(StoreError::NoSuchUpload);
        }
        let parts = remove_upload(&mut tx, upload_id).await?;
        let blobs = parts.iter().map(|p| p.blob.clone()).collect();
        record_releases(&mut tx, blobs, times.now).await?;
        tx.commit().await.pg()?;
        Ok(parts)
    }

    /// Claims due, unclaimed release rows. `SKIP LOCKED` lets concurrent
    /// sweepers take disjoint rows instead of queueing; a row another
    /// sweeper claimed and committed meanwhile is re-checked against
    /// `claimed_until` and passed over.
    pub(super) async fn claim_released_now(
        &self,
        now: i64,
        until: i64,
        limit: usize,
    ) -> StoreResult<Vec<BlobId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE blob_releases SET claimed_until = $2
             WHERE blob IN (
                 SELECT blob FROM blob_releases
                 WHERE not_before <= $1 AND claimed_until <= $1
                 ORDER BY not_before, blob
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             RETURNING blob",
        )
        .bind(now)
        .bind(until)
        .bind(limit_to_db(limit))
        .fetch_all(&self.pool)
        .await
        .pg()?;
        Ok(ids.into_iter().map(BlobId).collect())
    }

    pub(super) async fn create_user_key_now(&self, key: &UserKeyRecord) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        // ON CONFLICT without a target covers the name and the access key.
        let inserted = sqlx::query(
            "INSERT INTO user_keys (name, access_key, secret_key, created)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(&key.name)
        .bind(&key.access_key)
        .bind(&key.secret_key)
        .bind(time_to_db(key.created)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::UserExists(key.name.clone())
            } else {
                pg_error(e)
            }
        })?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::UserExists(key.name.clone()));
        }
        bump_generation(&mut tx).await?;
        tx.commit().await.pg()
    }

    pub(super) async fn delete_user_key_now(&self, name: &str) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM user_keys WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .pg()?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NoSuchUser(name.to_owned()));
        }
        bump_generation(&mut tx).await?;
        tx.commit().await.pg()
    }

    /// First wins: concurrent first calls on several nodes queue on the
    /// primary key, one inserts, the others read what it stored.
    pub(super) async fn root_credentials_now(
        &self,
        candidate: &RootKeyRecord,
    ) -> StoreResult<(RootKeyRecord, bool)> {
        let inserted = sqlx::query(
            "INSERT INTO root_credentials (id, access_key, secret_key) VALUES (1, $1, $2)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&candidate.access_key)
        .bind(&candidate.secret_key)
        .execute(&self.pool)
        .await
        .pg()?
        .rows_affected();
        if inserted == 1 {
            return Ok((candidate.clone(), true));
        }
        let row = sqlx::query("SELECT access_key, secret_key FROM root_credentials WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .pg()?;
        let stored = RootKeyRecord {
            access_key: row.try_get("access_key").pg()?,
            secret_key: row.try_get("secret_key").pg()?,
        };
        Ok((stored, false))
    }
}
