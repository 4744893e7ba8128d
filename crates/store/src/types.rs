//! Records kept by the metadata store.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Identifier of an immutable blob: a fresh random id, never reused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlobId(pub String);

impl BlobId {
    /// A new random id (32 lowercase hex digits).
    pub fn new() -> Self {
        BlobId(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Whether `s` has the shape of an id made by [`BlobId::new`]; blob
    /// stores use it to refuse paths built from anything else.
    pub fn is_well_formed(s: &str) -> bool {
        s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

impl Default for BlobId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bucket and its settings. Settings are opaque strings to the store
/// (canned ACL name, CORS XML, policy JSON...); the server parses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRecord {
    pub name: String,
    pub region: String,
    pub owner: String,
    pub created: OffsetDateTime,
    pub acl: String,
    pub cors: Option<String>,
    pub policy: Option<String>,
    pub public_access_block: Option<String>,
}

/// A bucket setting that [`crate::MetaStore::set_bucket_setting`] can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketSetting {
    /// Canned ACL name; `None` is not allowed for it (treated as `private`).
    Acl,
    Cors,
    Policy,
    PublicAccessBlock,
}

/// Where an object's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ObjectLayout {
    /// One blob holds the whole object.
    Single { blob: BlobId },
    /// A completed multipart upload: the parts' blobs in order (a manifest;
    /// Complete does not copy data).
    Parts { parts: Vec<PartRef> },
}

impl ObjectLayout {
    /// Every blob this layout references.
    /// Splits an upload's current `parts` (what a completion removes) into
    /// the ones this layout uses and the ones it leaves unused; returns the
    /// unused. Fails with [`crate::StoreError::InvalidPart`] when the layout
    /// names a blob none of them holds: the manifest was built from a part
    /// that was replaced since, whose blob is already released.
    pub fn unused_parts(&self, parts: Vec<PartRecord>) -> crate::StoreResult<Vec<PartRecord>> {
        let used = self.blobs();
        if used
            .iter()
            .any(|blob| !parts.iter().any(|p| &p.blob == blob))
        {
            return Err(crate::StoreError::InvalidPart);
        }
        Ok(parts
            .into_iter()
            .filter(|p| !used.contains(&p.blob))
            .collect())
    }

    pub fn blobs(&self) -> Vec<BlobId> {
        match self {
            ObjectLayout::Single { blob } => vec![blob.clone()],
            ObjectLayout::Parts { parts } => parts.iter().map(|p| p.blob.clone()).collect(),
        }
    }
}

/// One part of a multipart object's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRef {
    pub number: u32,
    pub blob: BlobId,
    pub size: u64,
    pub etag: String,
}

/// HTTP metadata stored with an object and returned on GET/HEAD.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHeaders {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    /// The `Expires` header value as sent.
    pub expires: Option<String>,
    /// `x-amz-meta-*` pairs, names lower-cased without the prefix, in order.
    pub user_metadata: Vec<(String, String)>,
    /// Full-object checksums (`x-amz-checksum-*`): algorithm name (e.g.
    /// `CRC32`) and base64 value.
    pub checksums: Vec<(String, String)>,
}

/// An object version visible under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// The ETag with its quotes, e.g. `"9a0364b9e99bb480dd25e1f0284c8555"`
    /// or `"…-3"` for multipart objects.
    pub etag: String,
    pub last_modified: OffsetDateTime,
    pub acl: String,
    pub headers: ObjectHeaders,
    pub layout: ObjectLayout,
}

/// An unfinished multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub initiated: OffsetDateTime,
    pub acl: String,
    /// Headers to give the object on completion.
    pub headers: ObjectHeaders,
}

/// One uploaded part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub number: u32,
    pub blob: BlobId,
    pub size: u64,
    /// With quotes.
    pub etag: String,
    pub last_modified: OffsetDateTime,
    /// Part checksums (`x-amz-checksum-*`): algorithm name and base64 value.
    pub checksums: Vec<(String, String)>,
}

/// A committed blob as the blob store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub id: BlobId,
    /// When its last byte was written (an orphan younger than the sweep's
    /// grace may belong to a write that is about to commit).
    pub modified: std::time::SystemTime,
}

/// A user's access key. The secret is stored as it is: SigV4 needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct UserKeyRecord {
    pub name: String,
    pub access_key: String,
    pub secret_key: String,
    pub created: OffsetDateTime,
}

impl std::fmt::Debug for UserKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("UserKeyRecord")
            .field("name", &self.name)
            .field("access_key", &self.access_key)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// The root credentials of every node sharing a store.
#[derive(Clone, PartialEq, Eq)]
pub struct RootKeyRecord {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for RootKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootKeyRecord")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// An ETag a condition names, or `*` (any object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagMatch {
    Any,
    /// Compared without quotes and without a weak `W/` prefix.
    Etag(String),
}

impl EtagMatch {
    /// Parses a header value: `*`, or one ETag with or without quotes.
    pub fn parse(value: &str) -> Self {
        match value.trim() {
            "*" => EtagMatch::Any,
            etag => EtagMatch::Etag(bare_etag(etag).to_owned()),
        }
    }

    fn matches(&self, object: &ObjectRecord) -> bool {
        match self {
            EtagMatch::Any => true,
            EtagMatch::Etag(etag) => bare_etag(&object.etag) == etag,
        }
    }
}

fn bare_etag(etag: &str) -> &str {
    let etag = etag.trim();
    etag.strip_prefix("W/").unwrap_or(etag).trim_matches('"')
}

/// What the object a write replaces (or a delete removes) must be for the
/// write to happen: S3's conditional writes and deletes. Decided by the
/// store inside the write's transaction, so of two racing conditional
/// writers at most one sees its condition hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteCondition {
    /// `If-Match`: an object must exist and (unless `*`) have this ETag.
    pub if_match: Option<EtagMatch>,
    /// `If-None-Match`: no object (`*`), or one with another ETag.
    pub if_none_match: Option<EtagMatch>,
    /// `x-amz-if-match-last-modified-time` (deletes).
    pub if_match_last_modified: Option<OffsetDateTime>,
    /// `x-amz-if-match-size` (deletes).
    pub if_match_size: Option<u64>,
}

impl WriteCondition {
    /// No condition: the write always happens.
    pub const NONE: WriteCondition = WriteCondition {
        if_match: None,
        if_none_match: None,
        if_match_last_modified: None,
        if_match_size: None,
    };

    pub fn is_none(&self) -> bool {
        self == &Self::NONE
    }

    /// Checks a write over `current` (the object it would replace).
    /// [`crate::StoreError::NoSuchKey`] when `If-Match` finds no object,
    /// [`crate::StoreError::PreconditionFailed`] when a condition fails.
    pub fn check_write(&self, current: Option<&ObjectRecord>) -> crate::StoreResult<()> {
        if self.if_match.is_some() && current.is_none() {
            return Err(crate::StoreError::NoSuchKey);
        }
        let Some(current) = current else {
            return Ok(());
        };
        self.check_existing(current)?;
        if self
            .if_none_match
            .as_ref()
            .is_some_and(|m| m.matches(current))
        {
            return Err(crate::StoreError::PreconditionFailed);
        }
        Ok(())
    }

    /// Checks a delete of `current`; deleting nothing always succeeds.
    pub fn check_delete(&self, current: Option<&ObjectRecord>) -> crate::StoreResult<()> {
        current.map_or(Ok(()), |c| self.check_existing(c))
    }

    fn check_existing(&self, current: &ObjectRecord) -> crate::StoreResult<()> {
        let failed = self.if_match.as_ref().is_some_and(|m| !m.matches(current))
            || self
                .if_match_last_modified
                .is_some_and(|t| t.unix_timestamp() != current.last_modified.unix_timestamp())
            || self.if_match_size.is_some_and(|s| s != current.size);
        if failed {
            Err(crate::StoreError::PreconditionFailed)
        } else {
            Ok(())
        }
    }
}
