//! In-memory view of bucket settings, so that the hot path (every preflight,
//! every access check) never touches the metadata store.
//!
//! The cache is loaded once at startup and updated by the handlers that change
//! a bucket, right after the metadata store committed the change.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use preflight_cors::CorsConfig;
use preflight_store::{BucketRecord, MetaStore, StoreResult};

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
    fn new(record: BucketRecord) -> Self {
        // A stored configuration was validated when it was put; one that no
        // longer parses (a newer rule set) is treated as absent and logged.
        let cors = record.cors.as_deref().and_then(|xml| {
            CorsConfig::from_xml(xml.as_bytes())
                .map_err(|e| tracing::error!(bucket = %record.name, error = %e, "stored CORS configuration does not parse"))
                .ok()
                .map(Arc::new)
        });
        let policy = record.policy.as_deref().and_then(|text| {
            BucketPolicy::parse(text, &record.name)
                .map_err(|e| tracing::error!(bucket = %record.name, error = %e, "stored bucket policy does not parse"))
                .ok()
                .map(Arc::new)
        });
        let public_access_block = record
            .public_access_block
            .as_deref()
            .and_then(PublicAccessBlock::from_json)
            .unwrap_or_default();
        Self {
            record,
            cors,
            policy,
            public_access_block,
        }
    }
}

/// Bucket name → settings.
#[derive(Debug, Default)]
pub struct BucketCache {
    map: RwLock<HashMap<String, Arc<BucketEntry>>>,
}

impl BucketCache {
    /// Loads every bucket from the store.
    pub async fn load(meta: &dyn MetaStore) -> StoreResult<Self> {
        let cache = Self::default();
        for record in meta.list_buckets().await? {
            cache.insert(record);
        }
        Ok(cache)
    }

    pub fn get(&self, name: &str) -> Option<Arc<BucketEntry>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Adds or replaces a bucket's entry.
    pub fn insert(&self, record: BucketRecord) {
        let entry = Arc::new(BucketEntry::new(record));
        let name = entry.record.name.clone();
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, entry);
    }

    pub fn remove(&self, name: &str) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// Re-reads one bucket from the store after a change was committed.
    pub async fn refresh(&self, meta: &dyn MetaStore, name: &str) -> StoreResult<()> {
        match meta.get_bucket(name).await? {
            Some(record) => self.insert(record),
            None => self.remove(name),
        }
        Ok(())
    }
}
