//! Conversions between records and database rows.
//!
//! Timestamps are stored as BIGINT unix nanoseconds (exact round trip, valid
//! until 2262), sizes as BIGINT, structured fields as JSON text.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

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

pub(super) fn size_to_db(size: u64) -> StoreResult<i64> {
    i64::try_from(size).map_err(|_| StoreError::Corrupt(format!("size {size} out of range")))
}

pub(super) fn size_from_db(size: i64) -> StoreResult<u64> {
    u64::try_from(size).map_err(|_| StoreError::Corrupt(format!("negative size {size}")))
}

/// A duration in nanoseconds; beyond i64 (292 years) is as good as forever.
pub(super) fn duration_to_db(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Limits beyond i64 are as good as unlimited.
pub(super) fn limit_to_db(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

pub(super) fn json_to_db<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("encoding JSON: {e}")))
}

fn json_from_db<T: DeserializeOwned>(row: &SqliteRow, column: &str) -> StoreResult<T> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
}

pub(super) fn bucket_from_row(row: &SqliteRow) -> StoreResult<BucketRecord> {
    Ok(BucketRecord {
        name: row.try_get("name")?,
        region: row.try_get("region")?,
        owner: row.try_get("owner")?,
        created: time_from_db(row.try_get("created")?)?,
        acl: row.try_get("acl")?,
        cors: row.try_get("cors")?,
        policy: row.try_get("policy")?,
        public_access_block: row.try_get("public_access_block")?,
    })
}

pub(super) fn object_from_row(row: &SqliteRow) -> StoreResult<ObjectRecord> {
    Ok(ObjectRecord {
        bucket: row.try_get("bucket")?,
        key: row.try_get("key")?,
        size: size_from_db(row.try_get("size")?)?,
        etag: row.try_get("etag")?,
        last_modified: time_from_db(row.try_get("last_modified")?)?,
        acl: row.try_get("acl")?,
        headers: json_from_db(row, "headers")?,
        layout: layout_from_row(row)?,
    })
}

pub(super) fn layout_from_row(row: &SqliteRow) -> StoreResult<ObjectLayout> {
    json_from_db(row, "layout")
}

pub(super) fn upload_from_row(row: &SqliteRow) -> StoreResult<UploadRecord> {
    Ok(UploadRecord {
        upload_id: row.try_get("upload_id")?,
        bucket: row.try_get("bucket")?,
        key: row.try_get("key")?,
        initiated: time_from_db(row.try_get("initiated")?)?,
        acl: row.try_get("acl")?,
        headers: json_from_db(row, "headers")?,
    })
}

pub(super) fn user_key_from_row(row: &SqliteRow) -> StoreResult<UserKeyRecord> {
    Ok(UserKeyRecord {
        name: row.try_get("name")?,
        access_key: row.try_get("access_key")?,
        secret_key: row.try_get("secret_key")?,
        created: time_from_db(row.try_get("created")?)?,
    })
}

pub(super) fn part_from_row(row: &SqliteRow) -> StoreResult<PartRecord> {
    let number: i64 = row.try_get("number")?;
    Ok(PartRecord {
        number: u32::try_from(number)
            .map_err(|_| StoreError::Corrupt(format!("part number {number} out of range")))?,
        blob: BlobId(row.try_get("blob")?),
        size: size_from_db(row.try_get("size")?)?,
        etag: row.try_get("etag")?,
        last_modified: time_from_db(row.try_get("last_modified")?)?,
        checksums: json_from_db(row, "checksums")?,
    })
}

/// The smallest string greater than every string that starts with `prefix`,
/// or `None` when there is none (empty prefix, or only `char::MAX`).
///
/// UTF-8 preserves code point order, so incrementing the last code point
/// that can be incremented gives the exclusive upper bound of a byte-order
/// range scan: `prefix <= key < bound` exactly when `key` starts with
/// `prefix`. Unlike LIKE, this is case-sensitive, has no wildcards and uses
/// the index.
pub(super) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            // Skip the surrogate range, which no `char` can hold.
            '\u{D7FF}' => Some('\u{E000}'),
            _ => char::from_u32(u32::from(last) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a"), Some("b".into()));
        assert_eq!(prefix_upper_bound("photos/"), Some("photos0".into()));
        assert_eq!(prefix_upper_bound("a\u{D7FF}"), Some("a\u{E000}".into()));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_upper_bound("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound("é"), Some("ê".into()));
    }

    #[test]
    fn times_round_trip_exactly() {
        let t = time::macros::datetime!(2024-02-29 23:59:59.123456789 UTC);
        assert_eq!(time_from_db(time_to_db(t).unwrap()).unwrap(), t);
        let offset = time::macros::datetime!(2024-01-01 10:00:00.5 +02:00);
        assert_eq!(time_from_db(time_to_db(offset).unwrap()).unwrap(), offset);
    }
}
