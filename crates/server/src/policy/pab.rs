//! The bucket's public access block: four switches an operator uses to lock
//! a bucket down whatever its ACLs and policy say.

use serde::{Deserialize, Serialize};

/// S3's `PublicAccessBlockConfiguration`; stored as JSON in the bucket row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicAccessBlock {
    /// Refuse requests that set a public ACL.
    #[serde(default)]
    pub block_public_acls: bool,
    /// Act as if public ACL grants did not exist.
    #[serde(default)]
    pub ignore_public_acls: bool,
    /// Refuse PutBucketPolicy with a public policy.
    #[serde(default)]
    pub block_public_policy: bool,
    /// With a public policy, only the account's principals keep access.
    #[serde(default)]
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// Every switch on: the most restrictive block.
    pub fn all_on() -> Self {
        Self {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        }
    }

    pub fn to_json(self) -> String {
        serde_json::to_string(&self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }
}
