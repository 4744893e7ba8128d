//! Startup garbage collection of blobs that no metadata references.
//!
//! Blobs become unreferenced in two ways: a write that crashed after
//! [`crate::BlobWriter::finish`] but before its metadata commit, and a blob
//! whose deletion after being replaced was lost (crash, I/O error). Both are
//! harmless until swept here.

use std::collections::HashSet;

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
    let temp_files = blobs.sweep_temp().await?;
    let referenced: HashSet<_> = meta.referenced_blobs().await?.into_iter().collect();
    let mut report = SweepReport {
        temp_files,
        ..SweepReport::default()
    };
    for id in blobs.list().await? {
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
