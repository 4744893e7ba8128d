//! Blob garbage collection, safe to run on every node at once.
//!
//! Two mechanisms:
//! - **Release rows** (the normal path). A metadata write that leaves blobs
//!   unreferenced records "delete blob X not before T" in the same
//!   transaction ([`MetaStore`] docs). [`reap_released`] claims due rows
//!   under a lease, deletes the blobs and forgets the rows; a node that dies
//!   mid-way leaves its claims to expire and be taken by another node.
//! - **The orphan sweep** (the safety net). A write that crashed after
//!   [`crate::BlobWriter::finish`] but before its metadata commit leaves a
//!   blob no row mentions. [`sweep_orphans`] deletes committed blobs that
//!   nothing references and that are older than a grace period (a younger
//!   one may belong to a write on another node that is about to commit),
//!   and temp files older than the same grace.
//!
//! [`spawn_gc`] runs both in the background.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{FutureExt, TryStreamExt};
use time::OffsetDateTime;

use crate::{BlobId, BlobInfo, BlobStore, MetaStore, StoreResult};

/// What [`sweep_orphans`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Temp files of writes that never finished, removed.
    pub temp_files: usize,
    /// Committed blobs that nothing referenced, removed.
    pub orphan_blobs: usize,
    /// Committed blobs kept: referenced, or unreferenced but younger than
    /// the grace.
    pub kept_blobs: usize,
}

/// Claims up to `limit` release rows due at `now` (for `lease`), deletes
/// their blobs (a blob already gone is fine) and forgets the rows whose
/// blob is deleted. A blob whose deletion fails stays claimed, so it is
/// retried, here or on another node, once the lease has run out. Returns
/// how many blobs were deleted.
pub async fn reap_released(
    meta: &dyn MetaStore,
    blobs: &dyn BlobStore,
    now: OffsetDateTime,
    lease: Duration,
    limit: usize,
) -> StoreResult<usize> {
    let claimed = meta.claim_released_blobs(now, lease, limit).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let mut deleted: Vec<BlobId> = Vec::with_capacity(claimed.len());
    let mut failed = 0usize;
    for id in claimed {
        match blobs.delete(&id).await {
            Ok(()) => deleted.push(id),
            Err(e) => {
                if failed == 0 {
                    tracing::warn!(blob = %id, error = %e, "deleting a released blob failed; retried after the lease");
                }
                failed += 1;
            }
        }
    }
    meta.forget_released_blobs(&deleted).await?;
    if failed > 0 {
        tracing::warn!(
            failed,
            deleted = deleted.len(),
            "some released blobs could not be deleted"
        );
    }
    tracing::debug!(deleted = deleted.len(), "reaped released blobs");
    Ok(deleted.len())
}

/// Removes temp files older than `grace`, then every committed blob that no
/// object, part or pending release row references and that was last written
/// more than `grace` ago. Younger unreferenced blobs are kept (and counted
/// as kept): a write on another node may be about to commit them.
///
/// Safe while writes go on, on any number of nodes, as long as no write
/// takes longer than `grace` between finishing its blob and committing it.
pub async fn sweep_orphans(
    meta: &dyn MetaStore,
    blobs: &dyn BlobStore,
    grace: Duration,
) -> StoreResult<SweepReport> {
    // Fixed before the references are read: a blob finished after this
    // point is young whatever the scan below misses.
    let cutoff = SystemTime::now().checked_sub(grace);
    let temp_files = blobs.sweep_temp(grace).await?;
    let referenced = Referenced::collect(meta).await?;
    let mut report = SweepReport {
        temp_files,
        ..SweepReport::default()
    };
    let mut listed = blobs.list();
    while let Some(BlobInfo { id, modified }) = listed.try_next().await? {
        let old_enough = cutoff.is_some_and(|cutoff| modified <= cutoff);
        if referenced.contains(&id) || !old_enough {
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

/// The blob ids the metadata references, held compactly for the sweep: a
/// well-formed id (32 hex digits, what [`BlobId::new`] makes) as its 128
/// bits in a sorted vector, 16 bytes a blob; any other id as a string.
struct Referenced {
    ids: Vec<u128>,
    others: HashSet<String>,
}

impl Referenced {
    async fn collect(meta: &dyn MetaStore) -> StoreResult<Self> {
        let mut set = Referenced {
            ids: Vec::new(),
            others: HashSet::new(),
        };
        let mut stream = meta.referenced_blobs();
        while let Some(id) = stream.try_next().await? {
            match bits(&id) {
                Some(v) => set.ids.push(v),
                None => {
                    set.others.insert(id.0);
                }
            }
        }
        set.ids.sort_unstable();
        set.ids.dedup();
        Ok(set)
    }

    fn contains(&self, id: &BlobId) -> bool {
        match bits(id) {
            Some(v) => self.ids.binary_search(&v).is_ok(),
            None => self.others.contains(&id.0),
        }
    }
}

fn bits(id: &BlobId) -> Option<u128> {
    BlobId::is_well_formed(&id.0)
        .then(|| u128::from_str_radix(&id.0, 16).ok())
        .flatten()
}

/// How [`spawn_gc`] runs.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// How often due release rows are reaped.
    pub reap_interval: Duration,
    /// How long a claimed release row is hidden from other reapers.
    pub release_lease: Duration,
    /// Release rows claimed at a time.
    pub batch: usize,
    /// How old an unreferenced blob or temp file must be to be swept.
    pub orphan_grace: Duration,
    /// How often the orphan sweep runs (once at start, then this often).
    pub orphan_sweep_interval: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            reap_interval: Duration::from_secs(5),
            release_lease: Duration::from_secs(60),
            batch: 1000,
            orphan_grace: Duration::from_secs(3600),
            orphan_sweep_interval: Duration::from_secs(6 * 3600),
        }
    }
}

/// The shortest period [`spawn_gc`] accepts (a zero interval would spin).
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// Runs the garbage collector in the background until the handle is
/// aborted: one orphan sweep at start and then every
/// `orphan_sweep_interval`, and a reap of due release rows every
/// `reap_interval` (again at once while full batches come back). Errors are
/// logged and retried at the next tick; nothing here panics the task. Every
/// node may run one.
pub fn spawn_gc(
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    options: GcOptions,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let reaping = reap_loop(meta.as_ref(), blobs.as_ref(), &options);
        let sweeping = sweep_loop(meta.as_ref(), blobs.as_ref(), &options);
        tokio::join!(reaping, sweeping);
    })
}

async fn reap_loop(meta: &dyn MetaStore, blobs: &dyn BlobStore, options: &GcOptions) {
    let mut ticks = tokio::time::interval(options.reap_interval.max(MIN_PERIOD));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let batch = options.batch.max(1);
    loop {
        ticks.tick().await;
        loop {
            let reap = reap_released(
                meta,
                blobs,
                OffsetDateTime::now_utc(),
                options.release_lease,
                batch,
            );
            match AssertUnwindSafe(reap).catch_unwind().await {
                // A full batch: more may be due.
                Ok(Ok(n)) if n >= batch => continue,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "reaping released blobs failed"),
                Err(_) => tracing::warn!("reaping released blobs panicked"),
            }
            break;
        }
    }
}

async fn sweep_loop(meta: &dyn MetaStore, blobs: &dyn BlobStore, options: &GcOptions) {
    // The first tick completes at once: a sweep at start.
    let mut ticks = tokio::time::interval(options.orphan_sweep_interval.max(MIN_PERIOD));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let sweep = sweep_orphans(meta, blobs, options.orphan_grace);
        match AssertUnwindSafe(sweep).catch_unwind().await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "sweeping orphan blobs failed"),
            Err(_) => tracing::warn!("sweeping orphan blobs panicked"),
        }
    }
}

#[cfg(test)]
mod tests;
