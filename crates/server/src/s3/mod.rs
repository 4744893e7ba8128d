//! The S3 implementation behind s3s: one file per feature area.

mod acl;
mod bucket;
mod copy_source;
pub mod cors_api;
mod headers;
pub mod integrity;
mod list;
mod multipart;
mod object;
mod policy_api;
pub mod post_object;
mod post_policy;
mod probes;
mod read;
mod write;

use std::sync::Arc;

use preflight_store::{BlobId, BlobStore, MetaStore};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};

use crate::buckets::{BucketDirectory, BucketEntry};
use crate::config::RootCredentials;
use crate::errors::s3_err;

/// The largest object a single PUT may create: 5 GiB.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// How long the release rows claimed by [`PreflightS3::reap_due_now`] stay
/// hidden from the other reapers, and how many it claims.
const REAP_LEASE: std::time::Duration = std::time::Duration::from_secs(60);
const REAP_BATCH: usize = 10_000;

/// Shared state of the S3 operations.
#[derive(Clone)]
pub struct PreflightS3 {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    buckets: Arc<BucketDirectory>,
    region: String,
    owner: Owner,
}

impl PreflightS3 {
    pub fn new(
        meta: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        buckets: Arc<BucketDirectory>,
        region: String,
        root: &RootCredentials,
    ) -> Self {
        Self {
            meta,
            blobs,
            buckets,
            region,
            owner: owner_of(&root.access_key),
        }
    }

    /// Starts the background worker that aborts multipart uploads initiated
    /// more than `age` ago and releases their parts (S3's lifecycle rule
    /// AbortIncompleteMultipartUpload, server-wide).
    pub fn spawn_upload_expiry(&self, age: std::time::Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(multipart::expire_uploads_forever(self.clone(), age))
    }

    /// The bucket's cached entry, or NoSuchBucket.
    fn bucket(&self, name: &str) -> S3Result<Arc<BucketEntry>> {
        self.buckets
            .get(name)
            .ok_or_else(|| s3_err(s3s::S3ErrorCode::NoSuchBucket))
    }

    /// Streams a PutObject/UploadPart body into a new blob and checks it
    /// against what the client sent: the size limit, `Content-MD5`, and the
    /// `x-amz-checksum-*` values of headers or aws-chunked trailers. A body
    /// that fails a check is discarded at once (its unfinished blob is
    /// dropped); one that passes is made durable by the commit point.
    async fn receive_body(
        &self,
        headers: &http::HeaderMap,
        trailers: Option<s3s::TrailingHeaders>,
        body: Option<StreamingBlob>,
        content_length: Option<i64>,
        content_md5: Option<&str>,
    ) -> S3Result<write::Received> {
        let expected_len = content_length.map(|n| u64::try_from(n).unwrap_or(0));
        if expected_len.is_some_and(|n| n > MAX_PUT_SIZE) {
            return Err(s3_err(s3s::S3ErrorCode::EntityTooLarge));
        }
        // The header as sent: s3s reads an empty `Content-MD5:` as none,
        // which S3 refuses (InvalidDigest) before it reads the body.
        let content_md5 = headers
            .get("content-md5")
            .map(|v| v.to_str().unwrap_or(""))
            .or(content_md5);
        if let Some(sent) = content_md5 {
            write::parse_content_md5(sent)?;
        }
        let (algos, mut expected) = headers::requested_checksums(headers);
        let received = write::write_blob(
            self.blobs.as_ref(),
            body,
            &algos,
            MAX_PUT_SIZE,
            expected_len,
        )
        .await?;
        write::verify_content_md5(content_md5, &received.md5)?;
        expected.extend(headers::trailer_checksums(trailers.and_then(|t| t.take())));
        write::verify_checksums(&expected, &received)?;
        Ok(received)
    }

    /// Deletes the blobs whose release rows are due now (the parts of an
    /// aborted upload or of a deleted bucket's uploads need no grace: no GET
    /// reads a part of an upload in progress), so that they are gone when
    /// the client gets its answer, as before the GC moved into the store. A
    /// failure only leaves them to the background reaper.
    async fn reap_due_now(&self) {
        let reaped = preflight_store::reap_released(
            self.meta.as_ref(),
            self.blobs.as_ref(),
            time::OffsetDateTime::now_utc(),
            REAP_LEASE,
            REAP_BATCH,
        )
        .await;
        if let Err(e) = reaped {
            tracing::warn!(error = %e, "could not delete released parts now; the reaper will");
        }
    }

    /// The end of a commit point that points a name at a new blob: `put` is
    /// the metadata commit. Once it committed, the store has recorded the
    /// blobs of what it replaced for release (the reaper deletes them after
    /// the grace, on whichever node). If it definitely failed (NoSuchBucket,
    /// NoSuchUpload...), the new blobs, which nothing references, are
    /// deleted at once; if its outcome is unknown (the store could not be
    /// reached), they may be referenced after all, and are left to the
    /// orphan sweep, which only deletes what no row references.
    async fn commit_new_blobs<R>(
        &self,
        put: impl Future<Output = preflight_store::StoreResult<R>>,
        new_blobs: impl FnOnce() -> Vec<BlobId>,
    ) -> S3Result<R> {
        match put.await {
            Ok(replaced) => Ok(replaced),
            Err(e) => {
                if !e.is_unavailable() {
                    for id in new_blobs() {
                        if let Err(e) = self.blobs.delete(&id).await {
                            tracing::warn!(blob = %id, error = %e, "could not delete the blob of a failed write");
                        }
                    }
                }
                Err(crate::errors::store_err(e))
            }
        }
    }
}

/// Runs a commit point to completion in a task of its own and waits for it.
///
/// hyper drops a request's future when the client hangs up, at whatever
/// await it had reached. Everything from "the blob is durable" on (the
/// metadata commit, the deletion of its own blobs when it failed)
/// goes into `commit`, so it is never half done: a dropped `JoinHandle` does
/// not cancel its task.
pub(crate) async fn commit_point<T, F>(commit: F) -> S3Result<T>
where
    F: Future<Output = S3Result<T>> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(commit).await.map_err(|e| {
        tracing::error!(error = %e, "a commit task failed");
        s3_err(s3s::S3ErrorCode::InternalError)
    })?
}

/// A size as S3's headers and XML carry it: a signed 64-bit integer. Sizes
/// are at most a few TiB, so the saturation never happens in practice.
fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count or part number as S3's XML carries it: a signed 32-bit integer.
/// Listings hold at most 1000 entries and parts number at most 10000.
fn saturating_i32(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

/// A `max-parts` or `max-uploads` request value: at most `limit`, and a
/// negative one asks for none.
fn page_size(requested: Option<i32>, limit: usize) -> usize {
    requested.map_or(limit, |n| usize::try_from(n).unwrap_or(0).min(limit))
}

/// The canonical owner of everything a root key creates.
fn owner_of(access_key: &str) -> Owner {
    use sha2::Digest;
    Owner {
        display_name: Some("preflight".to_owned()),
        id: Some(hex::encode(sha2::Sha256::digest(access_key.as_bytes()))),
    }
}

#[async_trait::async_trait]
impl S3 for PreflightS3 {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        bucket::list_buckets(self, req).await
    }
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        bucket::create_bucket(self, req).await
    }
    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        bucket::head_bucket(self, req).await
    }
    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        bucket::delete_bucket(self, req).await
    }
    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        bucket::get_bucket_location(self, req).await
    }
    async fn get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        acl::get_bucket_acl(self, req).await
    }
    async fn put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        acl::put_bucket_acl(self, req).await
    }
    async fn get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        acl::get_object_acl(self, req).await
    }
    async fn put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        acl::put_object_acl(self, req).await
    }
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        object::put_object(self, req).await
    }
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        object::get_object(self, req).await
    }
    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        object::head_object(self, req).await
    }
    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        object::delete_object(self, req).await
    }
    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        object::delete_objects(self, req).await
    }
    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        object::copy_object(self, req).await
    }
    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        list::list_objects(self, req).await
    }
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        list::list_objects_v2(self, req).await
    }
    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        multipart::create_multipart_upload(self, req).await
    }
    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        multipart::upload_part(self, req).await
    }
    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        multipart::upload_part_copy(self, req).await
    }
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        multipart::complete_multipart_upload(self, req).await
    }
    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        multipart::abort_multipart_upload(self, req).await
    }
    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        multipart::list_parts(self, req).await
    }
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        multipart::list_multipart_uploads(self, req).await
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        policy_api::put_bucket_policy(self, req).await
    }
    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        policy_api::get_bucket_policy(self, req).await
    }
    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        policy_api::delete_bucket_policy(self, req).await
    }
    async fn get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
        policy_api::get_bucket_policy_status(self, req).await
    }
    async fn put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
        policy_api::put_public_access_block(self, req).await
    }
    async fn get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        policy_api::get_public_access_block(self, req).await
    }
    async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
        policy_api::delete_public_access_block(self, req).await
    }
    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        probes::get_bucket_encryption(self, &req)
    }
    async fn get_bucket_website(
        &self,
        req: S3Request<GetBucketWebsiteInput>,
    ) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
        probes::get_bucket_website(self, &req)
    }
    async fn get_bucket_replication(
        &self,
        req: S3Request<GetBucketReplicationInput>,
    ) -> S3Result<S3Response<GetBucketReplicationOutput>> {
        probes::get_bucket_replication(self, &req)
    }
    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        probes::get_object_lock_configuration(self, &req)
    }
    async fn get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        probes::get_bucket_ownership_controls(self, &req)
    }
    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        probes::get_bucket_tagging(self, &req)
    }
    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        probes::get_bucket_lifecycle_configuration(self, &req)
    }
    async fn get_bucket_logging(
        &self,
        req: S3Request<GetBucketLoggingInput>,
    ) -> S3Result<S3Response<GetBucketLoggingOutput>> {
        probes::get_bucket_logging(self, &req)
    }
    async fn get_bucket_request_payment(
        &self,
        req: S3Request<GetBucketRequestPaymentInput>,
    ) -> S3Result<S3Response<GetBucketRequestPaymentOutput>> {
        probes::get_bucket_request_payment(self, &req)
    }
    async fn get_bucket_accelerate_configuration(
        &self,
        req: S3Request<GetBucketAccelerateConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketAccelerateConfigurationOutput>> {
        probes::get_bucket_accelerate_configuration(self, &req)
    }
    async fn get_bucket_notification_configuration(
        &self,
        req: S3Request<GetBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketNotificationConfigurationOutput>> {
        probes::get_bucket_notification_configuration(self, &req)
    }
    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        probes::get_bucket_versioning(self, &req)
    }
    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        probes::get_object_tagging(self, req).await
    }
    async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        probes::get_object_attributes(self, req).await
    }
}
