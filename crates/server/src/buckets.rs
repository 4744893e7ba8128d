//! In-memory view of bucket settings, so that the hot path (every preflight,
//! every access check) never touches the metadata store.
//!
//! The cache is loaded at startup; [`BucketDirectory`] is the only way to
//! change a bucket, and updates it in the same commit point as the store;
//! the follower (`follow.rs`) reloads it when another node changed one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use preflight_cors::CorsConfig;
use preflight_store::{
    BucketRecord, BucketSetting, MetaStore, PartRecord, StoreError, StoreResult,
};

use crate::policy::{BucketPolicy, PublicAccessBlock};

/// One bucket as the hot path sees it.
#[derive(Debug)]
pub struct BucketEntry {
    pub record: BucketRecord,
    /// The parsed CORS configuration, when the bucket has one.
    pub cors: Option<Arc<CorsConfig>>,
    /// The parsed bucket policy, when the bucket has one.
    pub policy: Option<Arc<BucketPolicy>>,
    /// The public access block (all off when none is set).
    pub public_access_block: PublicAccessBlock,
}

impl BucketEntry {
    /// Parses the stored settings. Each was validated when it was put; one
    /// that no longer parses (a corrupted row, a rule set that changed) is
    /// logged at error and replaced by its most restrictive value, never
    /// treated as "off": the bucket fails closed until its owner puts the
    /// setting again.
    fn new(mut record: BucketRecord) -> Self {
        let name = record.name.clone();
        let unreadable = |setting: &str, error: &dyn std::fmt::Display| {
            tracing::error!(
                bucket = %name,
                setting,
                error = %error,
                "stored bucket setting does not parse; enforcing its most restrictive value"
            );
        };
        let cors = record.cors.as_deref().map(|xml| {
            CorsConfig::from_xml(xml.as_bytes()).unwrap_or_else(|e| {
                unreadable("cors", &e);
                // No rule: every cross-origin request is refused.
                CorsConfig { rules: Vec::new() }
            })
        });
        let policy = record.policy.as_deref().map(|text| {
            BucketPolicy::parse(text, &record.name).unwrap_or_else(|e| {
                unreadable("policy", &e);
                deny_everything(&record.name)
            })
        });
        let public_access_block = match record.public_access_block.as_deref() {
            None => PublicAccessBlock::default(),
            Some(json) => PublicAccessBlock::from_json(json).unwrap_or_else(|| {
                unreadable(
                    "public access block",
                    &"not a PublicAccessBlockConfiguration",
                );
                PublicAccessBlock::all_on()
            }),
        };
        if !is_canned_acl(&record.acl) {
            unreadable("acl", &format!("unknown canned ACL {:?}", record.acl));
            record.acl = "private".to_owned();
        }
        Self {
            record,
            cors: cors.map(Arc::new),
            policy: policy.map(Arc::new),
            public_access_block,
        }
    }
}

/// The ACLs a bucket row may hold (what CreateBucket and PutBucketAcl store).
fn is_canned_acl(acl: &str) -> bool {
    matches!(
        acl,
        "private" | "public-read" | "public-read-write" | "authenticated-read"
    )
}

/// The policy enforced in place of one that no longer parses: an explicit
/// Deny of every action to everyone. The owner keeps Get/Put/DeleteBucketPolicy
/// (as it does under any Deny), so it can repair the bucket.
fn deny_everything(bucket: &str) -> BucketPolicy {
    let text = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PreflightStoredPolicyUnreadable",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        }],
    })
    .to_string();
    BucketPolicy::parse(&text, bucket)
        .unwrap_or_else(|e| unreachable!("the deny-everything policy of {bucket} must parse: {e}"))
}

/// Bucket name → settings: the one directory of bucket settings on a node.
///
/// Every change of a bucket (create, delete, a setting set or cleared) goes
/// through it: the store is written and the cache updated in one commit
/// point, a task of its own, so a client that hangs up never leaves them
/// apart. Changes made through other nodes (or `preflight` processes on the
/// same SQLite file) arrive through [`crate::follow`], which swaps the whole
/// map when the store's settings generation moves.
pub struct BucketDirectory {
    meta: Arc<dyn MetaStore>,
    map: RwLock<Arc<HashMap<String, Arc<BucketEntry>>>>,
    /// Serializes the changes of this node with the follower's reloads, so
    /// a reload that read the store before a local change never swaps it
    /// out after the change was applied.
    update: tokio::sync::Mutex<()>,
    /// The settings generation the map reflects (at least).
    loaded: AtomicI64,
    /// Names [`BucketDirectory::find`] looked up in the store and did not
    /// find, with when: a client asking for a missing bucket costs one
    /// query per name per [`MISS_TTL`], not one per request.
    misses: std::sync::Mutex<HashMap<String, Instant>>,
}

/// How long a store lookup that found no bucket is trusted. Matches the
/// propagation bound of settings: a bucket created through another node is
/// seen here within this, even when its notification is lost.
const MISS_TTL: Duration = Duration::from_secs(1);
/// At most this many remembered misses; past it the expired ones go, and
/// if none has expired, all of them (a flood of names then costs queries,
/// never memory).
const MAX_MISSES: usize = 4096;

impl std::fmt::Debug for BucketDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketDirectory")
            .field("loaded", &self.loaded.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl BucketDirectory {
    /// Loads every bucket from the store.
    pub async fn load(meta: Arc<dyn MetaStore>) -> StoreResult<Self> {
        let generation = meta.settings_generation().await?;
        let map = Self::read_all(meta.as_ref()).await?;
        Ok(Self {
            meta,
            map: RwLock::new(Arc::new(map)),
            update: tokio::sync::Mutex::new(()),
            loaded: AtomicI64::new(generation),
            misses: std::sync::Mutex::new(HashMap::new()),
        })
    }

    async fn read_all(meta: &dyn MetaStore) -> StoreResult<HashMap<String, Arc<BucketEntry>>> {
        Ok(meta
            .list_buckets()
            .await?
            .into_iter()
            .map(|record| (record.name.clone(), Arc::new(BucketEntry::new(record))))
            .collect())
    }

    /// The cached entry of a bucket (no store round trip).
    pub fn get(&self, name: &str) -> Option<Arc<BucketEntry>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// The entry of a bucket, consulting the store when the cache has none:
    /// a bucket created through another node a moment ago is served here
    /// before the follower's reload brings it. A miss is remembered for
    /// [`MISS_TTL`]. Errors are the store's (unreachable: the caller
    /// answers 503 rather than a NoSuchBucket it cannot vouch for).
    pub async fn find(&self, name: &str) -> StoreResult<Option<Arc<BucketEntry>>> {
        if let Some(entry) = self.get(name) {
            return Ok(Some(entry));
        }
        if self.missed_recently(name) {
            return Ok(None);
        }
        let _update = self.update.lock().await;
        // A change or a reload may have brought it while this waited.
        if let Some(entry) = self.get(name) {
            return Ok(Some(entry));
        }
        match self.meta.get_bucket(name).await? {
            Some(record) => {
                let entry = Arc::new(BucketEntry::new(record));
                self.edit(|map| {
                    map.insert(name.to_owned(), entry.clone());
                });
                Ok(Some(entry))
            }
            None => {
                self.remember_miss(name);
                Ok(None)
            }
        }
    }

    fn missed_recently(&self, name: &str) -> bool {
        let misses = self.misses.lock().unwrap_or_else(|e| e.into_inner());
        misses.get(name).is_some_and(|at| at.elapsed() < MISS_TTL)
    }

    fn remember_miss(&self, name: &str) {
        let mut misses = self.misses.lock().unwrap_or_else(|e| e.into_inner());
        if misses.len() >= MAX_MISSES {
            misses.retain(|_, at| at.elapsed() < MISS_TTL);
            if misses.len() >= MAX_MISSES {
                misses.clear();
            }
        }
        misses.insert(name.to_owned(), Instant::now());
    }

    /// Forgets every remembered miss (the map just changed).
    fn forget_misses(&self) {
        self.misses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The generation the cache reflects.
    pub fn loaded_generation(&self) -> i64 {
        self.loaded.load(Ordering::Acquire)
    }

    fn edit(&self, change: impl FnOnce(&mut HashMap<String, Arc<BucketEntry>>)) {
        let mut guard = self.map.write().unwrap_or_else(|e| e.into_inner());
        let mut next = HashMap::clone(&guard);
        change(&mut next);
        *guard = Arc::new(next);
    }

    /// Creates a bucket: the row, then the cache entry, in one commit point.
    pub async fn create(self: &Arc<Self>, record: BucketRecord) -> StoreResult<()> {
        let dir = self.clone();
        run_to_completion(async move {
            let _update = dir.update.lock().await;
            dir.meta.create_bucket(&record).await?;
            let entry = Arc::new(BucketEntry::new(record));
            dir.edit(|map| {
                map.insert(entry.record.name.clone(), entry);
            });
            dir.forget_misses();
            Ok(())
        })
        .await
    }

    /// Deletes a bucket (its settings go with its row) and aborts its
    /// uploads, whose parts the store releases; returns them.
    pub async fn delete(self: &Arc<Self>, name: &str) -> StoreResult<Vec<PartRecord>> {
        let dir = self.clone();
        let name = name.to_owned();
        run_to_completion(async move {
            let _update = dir.update.lock().await;
            let parts = dir.meta.delete_bucket(&name).await;
            // Gone from the store, or never there: gone from the cache too.
            if matches!(parts, Ok(_) | Err(StoreError::NoSuchBucket)) {
                dir.edit(|map| {
                    map.remove(&name);
                });
            }
            parts
        })
        .await
    }

    /// Sets (Some) or clears (None) one setting of a bucket: the store,
    /// then the cache entry re-read from it, in one commit point.
    pub async fn set(
        self: &Arc<Self>,
        bucket: &str,
        setting: BucketSetting,
        value: Option<String>,
    ) -> StoreResult<()> {
        let dir = self.clone();
        let bucket = bucket.to_owned();
        run_to_completion(async move {
            let _update = dir.update.lock().await;
            let written = dir
                .meta
                .set_bucket_setting(&bucket, setting, value.as_deref())
                .await;
            // Whatever the outcome, the entry is what the store now holds
            // (an unknown outcome is settled by the follower).
            match dir.meta.get_bucket(&bucket).await {
                Ok(Some(record)) => {
                    let entry = Arc::new(BucketEntry::new(record));
                    dir.edit(|map| {
                        map.insert(bucket.clone(), entry);
                    });
                }
                Ok(None) => dir.edit(|map| {
                    map.remove(&bucket);
                }),
                Err(e) => {
                    written?;
                    return Err(e);
                }
            }
            written
        })
        .await
    }

    /// Reloads every bucket when `generation`, just read from the store,
    /// is newer than what the cache reflects. Returns whether it reloaded.
    pub async fn reload_if_behind(&self, generation: i64) -> StoreResult<bool> {
        if generation <= self.loaded_generation() {
            return Ok(false);
        }
        let _update = self.update.lock().await;
        let map = Self::read_all(self.meta.as_ref()).await?;
        *self.map.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
        self.forget_misses();
        self.loaded.fetch_max(generation, Ordering::AcqRel);
        Ok(true)
    }
}

/// Runs a store change to completion in a task of its own: a dropped
/// `JoinHandle` does not cancel it, so the store and the cache never
/// disagree because a client hung up.
async fn run_to_completion<T, F>(change: F) -> StoreResult<T>
where
    F: Future<Output = StoreResult<T>> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(change)
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_everything_parses_for_any_valid_bucket_name() {
        for name in ["abc", "a.b-c", "logs.example.com", "x-1-2-3"] {
            let policy = deny_everything(name);
            assert_eq!(policy.statements.len(), 1);
            assert!(!policy.statements[0].allow);
        }
    }

    #[test]
    fn unreadable_public_access_block_is_all_on() {
        let record = BucketRecord {
            name: "b".to_owned(),
            region: "us-east-1".to_owned(),
            owner: "owner".to_owned(),
            created: time::OffsetDateTime::UNIX_EPOCH,
            acl: "private".to_owned(),
            cors: None,
            policy: None,
            public_access_block: Some("{not json".to_owned()),
        };
        assert_eq!(
            BucketEntry::new(record).public_access_block,
            PublicAccessBlock::all_on()
        );
    }
}
