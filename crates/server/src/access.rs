//! The access layer: who may do what. The root key may do everything; an
//! anonymous request succeeds exactly where a canned ACL grants it.
//! CORS plays no part here: it never grants access (spec §8).

use std::sync::Arc;

use preflight_store::MetaStore;
use s3s::S3Result;
use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;

use crate::buckets::BucketCache;
use crate::front::OperationSlot;
use crate::errors::{s3_err, store_err};

/// What an ACL grant is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// READ on the bucket: list objects.
    BucketRead,
    /// WRITE on the bucket: create, overwrite, delete objects.
    BucketWrite,
    /// READ on the object: GET/HEAD.
    ObjectRead,
    /// Only the owner (ACLs, CORS, bucket settings, bucket lifecycle).
    Owner,
}

/// The permission an operation needs, by s3s operation name.
fn need_of(op: &str) -> Need {
    match op {
        "ListObjects" | "ListObjectsV2" | "HeadBucket" | "ListMultipartUploads" => Need::BucketRead,
        "PutObject" | "DeleteObject" | "DeleteObjects" | "CreateMultipartUpload" | "UploadPart"
        | "CompleteMultipartUpload" | "AbortMultipartUpload" | "ListParts" => Need::BucketWrite,
        "GetObject" | "HeadObject" => Need::ObjectRead,
        _ => Need::Owner,
    }
}

/// Whether a canned ACL lets anonymous users read.
pub fn acl_allows_public_read(acl: &str) -> bool {
    matches!(acl, "public-read" | "public-read-write")
}

/// Whether a canned ACL lets anonymous users write.
pub fn acl_allows_public_write(acl: &str) -> bool {
    acl == "public-read-write"
}

pub struct AclAccess {
    meta: Arc<dyn MetaStore>,
    buckets: Arc<BucketCache>,
    root_access_key: String,
}

impl AclAccess {
    pub fn new(meta: Arc<dyn MetaStore>, buckets: Arc<BucketCache>, root_access_key: String) -> Self {
        Self {
            meta,
            buckets,
            root_access_key,
        }
    }

    async fn check_anonymous(&self, op: &str, path: &S3Path) -> S3Result<()> {
        let (bucket, key) = match path {
            S3Path::Root => return Err(s3_err(s3s::S3ErrorCode::AccessDenied)),
            S3Path::Bucket { bucket } => (bucket.as_ref(), None),
            S3Path::Object { bucket, key } => (bucket.as_ref(), Some(key.as_ref())),
        };
        let need = need_of(op);
        // No ACL grants owner operations; deciding this before looking the
        // bucket up keeps an anonymous CreateBucket (whose bucket is missing
        // by definition) from going through.
        if need == Need::Owner {
            return Err(s3_err(s3s::S3ErrorCode::AccessDenied));
        }
        // A missing bucket is reported as NoSuchBucket by the operation.
        let Some(entry) = self.buckets.get(bucket) else { return Ok(()) };
        let bucket_acl = entry.record.acl.as_str();
        let allowed = match need {
            Need::BucketRead => acl_allows_public_read(bucket_acl),
            Need::BucketWrite => acl_allows_public_write(bucket_acl),
            Need::Owner => false,
            Need::ObjectRead => match key {
                None => false,
                Some(key) => match self.meta.get_object(bucket, key).await.map_err(store_err)? {
                    Some(obj) => acl_allows_public_read(&obj.acl),
                    // Without list permission a missing key is AccessDenied,
                    // with it NoSuchKey: S3 does not reveal what it hides.
                    None => acl_allows_public_read(bucket_acl),
                },
            },
        };
        if allowed {
            Ok(())
        } else {
            Err(s3_err(s3s::S3ErrorCode::AccessDenied))
        }
    }
}

#[async_trait::async_trait]
impl S3Access for AclAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_owned();
        if let Some(slot) = cx.extensions_mut().get::<OperationSlot>() {
            let _ = slot.0.set(op);
        }
        match cx.credentials() {
            Some(cred) if cred.access_key == self.root_access_key => Ok(()),
            Some(_) => Err(s3_err(s3s::S3ErrorCode::AccessDenied)),
            None => {
                let op = cx.s3_op().name();
                self.check_anonymous(op, cx.s3_path()).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_grants() {
        assert_eq!(need_of("GetObject"), Need::ObjectRead);
        assert_eq!(need_of("ListObjectsV2"), Need::BucketRead);
        assert_eq!(need_of("PutObject"), Need::BucketWrite);
        assert_eq!(need_of("PutBucketCors"), Need::Owner);
        assert_eq!(need_of("GetBucketAcl"), Need::Owner);
    }

    #[test]
    fn canned_acls() {
        assert!(acl_allows_public_read("public-read"));
        assert!(acl_allows_public_read("public-read-write"));
        assert!(!acl_allows_public_read("authenticated-read"));
        assert!(!acl_allows_public_read("private"));
        assert!(acl_allows_public_write("public-read-write"));
        assert!(!acl_allows_public_write("public-read"));
    }
}
