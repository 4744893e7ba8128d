//! Conversions between records and PostgreSQL rows.
//!
//! Timestamps are BIGINT unix nanoseconds (exact round trip, valid until
//! 2262), sizes BIGINT, keys BYTEA holding UTF-8, structured fields JSON text.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use super::PgResultExt;
use crate::{
    BlobId, BucketRecord, ObjectLayout, ObjectRecord, PartRecord, StoreError, StoreResult,
    UploadRecord, UserKeyRecord,
};

/// Column lists in the order the `*_from_row` functions expect by name.
pub(super) const BUCKET_COLUMNS: &str =
    "name, region, owner, created, acl, cors, policy, public_access_block";
pub(super) const OBJECT_COLUMNS: &str =
    "bucket, key, size, etag, last_modified, acl, headers, layout";
pub(super) const UPLOAD_COLUMNS: &str = "upload_id, bucket, key, initiated, acl, headers";
pub(super) const PART_COLUMNS: &str = "number, blob, size, etag, last_modified, checksums";
pub(super) const USER_KEY_COLUMNS: &str = "name, access_key, secret_key, created";

pub(super) fn time_to_db(t: OffsetDateTime) -> StoreResult<i64> {
    i64::try_from(t.unix_timestamp_nanos())
        .map_err(|_| StoreError::Corrupt(format!("timestamp {t} out of range")))
}

pub(super) fn time_from_db(nanos: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {nanos}: {e}")))
}

/// A duration in nanoseconds, saturating (a lease beyond 2262 is forever).
pub(super) fn duration_to_db(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

pub(super) fn size_to_db(size: u64) -> StoreResult<i64> {
    i64::try_from(size).map_err(|_| StoreError::Corrupt(format!("size {size} out of range")))
}

pub(super) fn size_from_db(size: i64) -> StoreResult<u64> {
    u64::try_from(size).map_err(|_| StoreError::Corrupt(format!("negative size {size}")))
}

/// Limits beyond i64 are as good as unlimited.
pub(super) fn limit_to_db(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

pub(super) fn json_to_db<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("encoding JSON: {e}")))
}

fn json_from_db<T: DeserializeOwned>(row: &PgRow, column: &str) -> StoreResult<T> {
    let text: String = row.try_get(column).pg()?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
}

/// A key column: bytes that must be UTF-8 (they were written from a `&str`).
fn key_from_db(row: &PgRow, column: &str) -> StoreResult<String> {
    let bytes: Vec<u8> = row.try_get(column).pg()?;
    String::from_utf8(bytes).map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
}

pub(super) fn bucket_from_row(row: &PgRow) -> StoreResult<BucketRecord> {
    Ok(BucketRecord {
        name: row.try_get("name").pg()?,
        region: row.try_get("region").pg()?,
        owner: row.try_get("owner").pg()?,
        created: time_from_db(row.try_get("created").pg()?)?,
        acl: row.try_get("acl").pg()?,
        cors: row.try_get("cors").pg()?,
        policy: row.try_get("policy").pg()?,
        public_access_block: row.try_get("public_access_block").pg()?,
    })
}

pub(super) fn object_from_row(row: &PgRow) -> StoreResult<ObjectRecord> {
    Ok(ObjectRecord {
        bucket: row.try_get("bucket").pg()?,
        key: key_from_db(row, "key")?,
        size: size_from_db(row.try_get("size").pg()?)?,
        etag: row.try_get("etag").pg()?,
        last_modified: time_from_db(row.try_get("last_modified").pg()?)?,
        acl: row.try_get("acl").pg()?,
        headers: json_from_db(row, "headers")?,
        layout: layout_from_row(row)?,
    })
}

pub(super) fn layout_from_row(row: &PgRow) -> StoreResult<ObjectLayout> {
    json_from_db(row, "layout")
}

pub(super) fn upload_from_row(row: &PgRow) -> StoreResult<UploadRecord> {
    Ok(UploadRecord {
        upload_id: row.try_get("upload_id").pg()?,
        bucket: row.try_get("bucket").pg()?,
        key: key_from_db(row, "key")?,
        initiated: time_from_db(row.try_get("initiated").pg()?)?,
        acl: row.try_get("acl").pg()?,
        headers: json_from_db(row, "headers")?,
    })
}

pub(super) fn part_from_row(row: &PgRow) -> StoreResult<PartRecord> {
    let number: i64 = row.try_get("number").pg()?;
    Ok(PartRecord {
        number: u32::try_from(number)
            .map_err(|_| StoreError::Corrupt(format!("part number {number} out of range")))?,
        blob: BlobId(row.try_get("blob").pg()?),
        size: size_from_db(row.try_get("size").pg()?)?,
        etag: row.try_get("etag").pg()?,
        last_modified: time_from_db(row.try_get("last_modified").pg()?)?,
        checksums: json_from_db(row, "checksums")?,
    })
}

pub(super) fn user_key_from_row(row: &PgRow) -> StoreResult<UserKeyRecord> {
    Ok(UserKeyRecord {
        name: row.try_get("name").pg()?,
        access_key: row.try_get("access_key").pg()?,
        secret_key: row.try_get("secret_key").pg()?,
        created: time_from_db(row.try_get("created").pg()?)?,
    })
}

/// The smallest byte string greater than every string that starts with
/// `prefix`, or `None` when there is none (empty prefix, or only 0xFF bytes,
/// which UTF-8 never has).
///
/// Keys are BYTEA, compared as bytes: drop trailing 0xFF bytes and add one
/// to the last byte, so `prefix <= key < bound` exactly when `key` starts
/// with `prefix`. Unlike LIKE, this has no wildcards and uses the index.
pub(super) fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bound = prefix.to_vec();
    while let Some(last) = bound.pop() {
        if let Some(next) = last.checked_add(1) {
            bound.push(next);
            return Some(bound);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound(b""), None);
        assert_eq!(prefix_upper_bound(b"a"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b"photos/"), Some(b"photos0".to_vec()));
        assert_eq!(prefix_upper_bound(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b"\xff\xff"), None);
        // "é" is C3 A9: every key starting with it is below C3 AA.
        assert_eq!(prefix_upper_bound("é".as_bytes()), Some(vec![0xC3, 0xAA]));
        assert!("é\u{10FFFF}".as_bytes() < &[0xC3, 0xAA][..]);
    }

    #[test]
    fn times_round_trip_exactly() {
        let t = time::macros::datetime!(2024-02-29 23:59:59.123456789 UTC);
        assert_eq!(time_from_db(time_to_db(t).unwrap()).unwrap(), t);
        assert_eq!(duration_to_db(std::time::Duration::MAX), i64::MAX);
    }
}
