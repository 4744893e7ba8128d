//! Startup garbage collection of blobs that no metadata references.
//!
//! Blobs become unreferenced in two ways: a write that crashed after
//! [`crate::BlobWriter::finish`] but before its metadata commit, and a blob
//! whose deletion after being replaced was lost (crash, I/O error). Both are
//! harmless until swept here.

use std::collections::HashSet;

use futures::TryStreamExt;

use crate::{BlobStore, MetaStore, StoreResult};

/// What [`sweep_orphans`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Temp files of writes that never finished.
    pub temp_files: usize,
    /// Committed blobs that no object or part referenced.
    pub orphan_blobs: usize,
    /// Committed blobs kept because metadata references them.
    pub kept_blobs: usize,
}

/// Removes unfinished writes, then every committed blob that metadata does
/// not reference.
///
/// Startup only: it must not run concurrently with writes. A blob finished
/// after the referenced set was read, but not yet committed to metadata,
/// would look orphaned and be deleted under its writer.
pub async fn sweep_orphans(
    meta: &dyn MetaStore,
    blobs: &dyn BlobStore,
) -> StoreResult<SweepReport> {
    let temp_files = blobs.sweep_temp(std::time::Duration::ZERO).await?;
    let referenced: HashSet<_> = meta.referenced_blobs().try_collect().await?;
    let mut report = SweepReport {
        temp_files,
        ..SweepReport::default()
    };
    let listed: Vec<_> = blobs.list().try_collect().await?;
    for crate::BlobInfo { id, .. } in listed {
        if referenced.contains(&id) {
            report.kept_blobs += 1;
        } else {
            blobs.delete(&id).await?;
            report.orphan_blobs += 1;
        }
    }
    tracing::info!(
        temp_files = report.temp_files,
        orphan_blobs = report.orphan_blobs,
        kept_blobs = report.kept_blobs,
        "swept blob store"
    );
    Ok(report)
}

#[cfg(all(test, any()))]
mod tests {
    use super::*;
    use crate::{
        BlobId, BucketRecord, FsBlobStore, ObjectHeaders, ObjectLayout, ObjectRecord, PartRecord,
        SqliteMetaStore, UploadRecord,
    };
    use time::OffsetDateTime;

    async fn put_blob(blobs: &FsBlobStore) -> BlobId {
        let mut writer = blobs.create().await.unwrap();
        writer.write(b"data").await.unwrap();
        writer.finish().await.unwrap().0
    }

    #[tokio::test]
    async fn sweep_keeps_referenced_blobs_only() {
        let dir = tempfile::tempdir().unwrap();
        let meta = SqliteMetaStore::open(dir.path().join("meta.db"))
            .await
            .unwrap();
        let blobs = FsBlobStore::open(dir.path().join("data")).await.unwrap();
        let now = OffsetDateTime::now_utc();
        meta.create_bucket(&BucketRecord {
            name: "b".into(),
            region: "r".into(),
            owner: "o".into(),
            created: now,
            acl: "private".into(),
            cors: None,
            policy: None,
            public_access_block: None,
        })
        .await
        .unwrap();

        let object_blob = put_blob(&blobs).await;
        meta.put_object(&ObjectRecord {
            bucket: "b".into(),
            key: "k".into(),
            size: 4,
            etag: "\"e\"".into(),
            last_modified: now,
            acl: "private".into(),
            headers: ObjectHeaders::default(),
            layout: ObjectLayout::Single {
                blob: object_blob.clone(),
            },
        })
        .await
        .unwrap();
        let part_blob = put_blob(&blobs).await;
        meta.create_upload(&UploadRecord {
            upload_id: "u".into(),
            bucket: "b".into(),
            key: "k".into(),
            initiated: now,
            acl: "private".into(),
            headers: ObjectHeaders::default(),
        })
        .await
        .unwrap();
        meta.put_part(
            "u",
            &PartRecord {
                number: 1,
                blob: part_blob.clone(),
                size: 4,
                etag: "\"p\"".into(),
                last_modified: now,
                checksums: Vec::new(),
            },
        )
        .await
        .unwrap();
        let orphan = put_blob(&blobs).await;
        let unfinished = blobs.create().await.unwrap();
        std::mem::forget(unfinished); // as if the process had crashed

        let report = sweep_orphans(&meta, &blobs).await.unwrap();
        assert_eq!(
            report,
            SweepReport {
                temp_files: 1,
                orphan_blobs: 1,
                kept_blobs: 2
            }
        );
        let mut left = blobs.list().await.unwrap();
        left.sort();
        let mut expected = vec![object_blob, part_blob];
        expected.sort();
        assert_eq!(left, expected);
        assert!(!left.contains(&orphan));
        assert_eq!(sweep_orphans(&meta, &blobs).await.unwrap().orphan_blobs, 0);
    }
}
