//! The write transactions of [`SqliteMetaStore`]. Each runs inside
//! [`SqliteMetaStore::run_write`], in a task of its own, so that it always
//! ends in COMMIT or ROLLBACK whatever happens to the caller.

use super::rows::*;
use super::*;

/// The current time in unix ns.
fn now_db() -> StoreResult<i64> {
    time_to_db(OffsetDateTime::now_utc())
}

impl SqliteMetaStore {
    pub(super) async fn create_bucket_now(&self, bucket: &BucketRecord) -> StoreResult<()> {
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
        bump_generation(w.conn()).await?;
        w.commit().await
    }

    /// Deletes a bucket without objects, aborting its uploads in progress
    /// in the same transaction (as S3 does); returns their parts.
    pub(super) async fn delete_bucket_now(&self, name: &str) -> StoreResult<Vec<PartRecord>> {
        let mut w = self.begin_write().await?;
        if !bucket_exists(w.conn(), name).await? {
            return Err(StoreError::NoSuchBucket);
        }
        let in_use = sqlx::query("SELECT 1 FROM objects WHERE bucket = $1 LIMIT 1")
            .bind(name)
            .fetch_optional(w.conn())
            .await?;
        if in_use.is_some() {
            return Err(StoreError::BucketNotEmpty);
        }
        let sql = format!(
            "SELECT {PART_COLUMNS} FROM parts WHERE upload_id IN
                 (SELECT upload_id FROM uploads WHERE bucket = $1)"
        );
        let parts = sqlx::query(&sql)
            .bind(name)
            .fetch_all(w.conn())
            .await?
            .iter()
            .map(part_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        sqlx::query(
            "DELETE FROM parts WHERE upload_id IN
                 (SELECT upload_id FROM uploads WHERE bucket = $1)",
        )
        .bind(name)
        .execute(w.conn())
        .await?;
        sqlx::query("DELETE FROM uploads WHERE bucket = $1")
            .bind(name)
            .execute(w.conn())
            .await?;
        sqlx::query("DELETE FROM buckets WHERE name = $1")
            .bind(name)
            .execute(w.conn())
            .await?;
        record_releases(w.conn(), &part_blobs(&parts), now_db()?).await?;
        bump_generation(w.conn()).await?;
        w.commit().await?;
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
        bump_generation(w.conn()).await?;
        w.commit().await
    }

    pub(super) async fn put_object_now(
        &self,
        object: &ObjectRecord,
        condition: &WriteCondition,
    ) -> StoreResult<Option<ObjectRecord>> {
        let mut w = self.begin_write().await?;
        let previous = replace_object(w.conn(), object, condition).await?;
        if let Some(previous) = &previous {
            self.release_replaced(w.conn(), previous, object).await?;
        }
        w.commit().await?;
        Ok(previous)
    }

    pub(super) async fn delete_object_now(
        &self,
        bucket: &str,
        key: &str,
        condition: &WriteCondition,
    ) -> StoreResult<Option<ObjectRecord>> {
        let mut w = self.begin_write().await?;
        let Some(previous) = fetch_object(w.conn(), bucket, key).await? else {
            return Ok(None);
        };
        condition.check_delete(Some(&previous))?;
        sqlx::query("DELETE FROM objects WHERE bucket = $1 AND key = $2")
            .bind(bucket)
            .bind(key)
            .execute(w.conn())
            .await?;
        let not_before = self.graced_db()?;
        record_releases(w.conn(), &previous.layout.blobs(), not_before).await?;
        w.commit().await?;
        Ok(Some(previous))
    }

    pub(super) async fn set_object_acl_now(
        &self,
        bucket: &str,
        key: &str,
        acl: &str,
    ) -> StoreResult<()> {
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

    pub(super) async fn create_upload_now(&self, upload: &UploadRecord) -> StoreResult<()> {
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

    pub(super) async fn put_part_now(
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
        if let Some(previous) = previous.as_ref().filter(|p| p.blob != part.blob) {
            record_releases(w.conn(), std::slice::from_ref(&previous.blob), now_db()?).await?;
        }
        w.commit().await?;
        Ok(previous)
    }

    pub(super) async fn complete_upload_now(
        &self,
        upload_id: &str,
        object: &ObjectRecord,
        condition: &WriteCondition,
    ) -> StoreResult<(Option<ObjectRecord>, Vec<PartRecord>)> {
        let mut w = self.begin_write().await?;
        // An upload id used with another bucket or key is "no such upload",
        // as in S3.
        match fetch_upload(w.conn(), upload_id).await? {
            Some(u) if u.bucket == object.bucket && u.key == object.key => {}
            _ => return Err(StoreError::NoSuchUpload),
        }
        let parts = remove_upload(w.conn(), upload_id).await?;
        let unused = object.layout.unused_parts(parts)?;
        let previous = replace_object(w.conn(), object, condition).await?;
        record_releases(w.conn(), &part_blobs(&unused), now_db()?).await?;
        if let Some(previous) = &previous {
            self.release_replaced(w.conn(), previous, object).await?;
        }
        w.commit().await?;
        Ok((previous, unused))
    }

    pub(super) async fn abort_upload_now(&self, upload_id: &str) -> StoreResult<Vec<PartRecord>> {
        let mut w = self.begin_write().await?;
        if fetch_upload(w.conn(), upload_id).await?.is_none() {
            return Err(StoreError::NoSuchUpload);
        }
        let parts = remove_upload(w.conn(), upload_id).await?;
        record_releases(w.conn(), &part_blobs(&parts), now_db()?).await?;
        w.commit().await?;
        Ok(parts)
    }

    pub(super) async fn create_user_key_now(&self, key: &UserKeyRecord) -> StoreResult<()> {
        let mut w = self.begin_write().await?;
        // Either uniqueness (name, access key) makes the insert a no-op.
        let inserted = sqlx::query(
            "INSERT INTO user_keys (name, access_key, secret_key, created)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(&key.name)
        .bind(&key.access_key)
        .bind(&key.secret_key)
        .bind(time_to_db(key.created)?)
        .execute(w.conn())
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::UserExists(key.name.clone()));
        }
        bump_generation(w.conn()).await?;
        w.commit().await
    }

    pub(super) async fn delete_user_key_now(&self, name: &str) -> StoreResult<()> {
        let mut w = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM user_keys WHERE name = $1")
            .bind(name)
            .execute(w.conn())
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NoSuchUser(name.to_owned()));
        }
        bump_generation(w.conn()).await?;
        w.commit().await
    }

    /// Stores `candidate` unless credentials are stored already; returns the
    /// stored ones and whether they are `candidate`'s doing.
    pub(super) async fn root_credentials_now(
        &self,
        candidate: &RootKeyRecord,
    ) -> StoreResult<(RootKeyRecord, bool)> {
        let mut w = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO root_credentials (id, access_key, secret_key) VALUES (1, $1, $2)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&candidate.access_key)
        .bind(&candidate.secret_key)
        .execute(w.conn())
        .await?
        .rows_affected();
        let row = sqlx::query("SELECT access_key, secret_key FROM root_credentials WHERE id = 1")
            .fetch_one(w.conn())
            .await?;
        let stored = RootKeyRecord {
            access_key: row.try_get("access_key")?,
            secret_key: row.try_get("secret_key")?,
        };
        w.commit().await?;
        Ok((stored, inserted > 0))
    }

    /// Records release rows, due after the release grace, for the blobs of
    /// `previous` that `current` (which replaced it) does not use.
    async fn release_replaced(
        &self,
        conn: &mut SqliteConnection,
        previous: &ObjectRecord,
        current: &ObjectRecord,
    ) -> StoreResult<()> {
        let kept = current.layout.blobs();
        let mut freed = previous.layout.blobs();
        freed.retain(|b| !kept.contains(b));
        record_releases(conn, &freed, self.graced_db()?).await
    }

    /// When the blobs of an object replaced or deleted now may go (unix ns).
    fn graced_db(&self) -> StoreResult<i64> {
        Ok(now_db()?.saturating_add(duration_to_db(self.release_grace)))
    }
}
