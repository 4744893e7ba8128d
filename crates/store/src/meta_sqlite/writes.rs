//! The write transactions of [`SqliteMetaStore`]. Each runs inside
//! [`SqliteMetaStore::run_write`], in a task of its own, so that it always
//! ends in COMMIT or ROLLBACK whatever happens to the caller.

use super::rows::*;
use super::*;

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
        w.commit().await
    }

    pub(super) async fn put_object_now(
        &self,
        object: &ObjectRecord,
    ) -> StoreResult<Option<ObjectRecord>> {
        let mut w = self.begin_write().await?;
        let previous = replace_object(w.conn(), object).await?;
        w.commit().await?;
        Ok(previous)
    }

    pub(super) async fn delete_object_now(
        &self,
        bucket: &str,
        key: &str,
    ) -> StoreResult<Option<ObjectRecord>> {
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
        w.commit().await?;
        Ok(previous)
    }

    pub(super) async fn complete_upload_now(
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

    pub(super) async fn abort_upload_now(&self, upload_id: &str) -> StoreResult<Vec<PartRecord>> {
        let mut w = self.begin_write().await?;
        if fetch_upload(w.conn(), upload_id).await?.is_none() {
            return Err(StoreError::NoSuchUpload);
        }
        let parts = remove_upload(w.conn(), upload_id).await?;
        w.commit().await?;
        Ok(parts)
    }
}
