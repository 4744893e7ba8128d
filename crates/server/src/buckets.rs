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
