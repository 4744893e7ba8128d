//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
//! GetBucketLocation.

use preflight_store::{BucketRecord, StoreError};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use time::OffsetDateTime;

use super::acl::canned_bucket_acl;
use super::{PreflightS3, commit_point};
use crate::errors::{s3_err, store_err};

pub async fn list_buckets(
    s3: &PreflightS3,
    _req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let records = s3.meta.list_buckets().await.map_err(store_err)?;
    let buckets = records
        .into_iter()
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(Timestamp::from(b.created)),
            bucket_region: Some(b.region),
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(s3.owner.clone()),
        ..Default::default()
    }))
}

pub async fn create_bucket(
    s3: &PreflightS3,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let input = req.input;
    let acl = canned_bucket_acl(input.acl.as_ref().map(|a| a.as_str()))?;
    let location = input
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
        .map(|l| l.as_str().to_owned())
        .filter(|l| !l.is_empty());
    if let Some(location) = &location
        && *location != s3.region
    {
        return Err(S3Error::with_message(
            S3ErrorCode::IllegalLocationConstraintException,
            format!(
                "The {location} location constraint is incompatible for the region specific endpoint this request was sent to."
            ),
        ));
    }
    let record = BucketRecord {
        name: input.bucket.clone(),
        region: s3.region.clone(),
        owner: s3.owner.id.clone().unwrap_or_default(),
        created: OffsetDateTime::now_utc(),
        acl: acl.to_owned(),
        cors: None,
        policy: None,
        public_access_block: None,
    };
    // The row and the cache entry go together, even if the client hangs up.
    let owned = s3.clone();
    commit_point(async move {
        match owned.meta.create_bucket(&record).await {
            Ok(()) => {}
            // Every bucket belongs to the one account of this server.
            Err(StoreError::BucketExists) => {
                return Err(s3_err(S3ErrorCode::BucketAlreadyOwnedByYou));
            }
            Err(e) => return Err(store_err(e)),
        }
        owned.buckets.insert(record);
        Ok(())
    })
    .await?;
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{}", input.bucket)),
    }))
}

pub async fn head_bucket(
    s3: &PreflightS3,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    let entry = s3.bucket(&req.input.bucket)?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(entry.record.region.clone()),
        ..Default::default()
    }))
}

pub async fn delete_bucket(
    s3: &PreflightS3,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let name = &req.input.bucket;
    s3.bucket(name)?;
    // Uploads in progress are aborted with the bucket, as in S3; the commit
    // and the release of their parts run to completion together.
    let owned = s3.clone();
    let bucket = name.clone();
    commit_point(async move {
        let parts = owned.meta.delete_bucket(&bucket).await.map_err(store_err)?;
        // The CORS configuration, ACL and policy go with the bucket's row.
        owned.buckets.remove(&bucket);
        owned.discard_parts(parts).await;
        Ok(())
    })
    .await?;
    Ok(S3Response::with_status(
        DeleteBucketOutput::default(),
        http::StatusCode::NO_CONTENT,
    ))
}

pub async fn get_bucket_location(
    s3: &PreflightS3,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let entry = s3.bucket(&req.input.bucket)?;
    // S3 reports us-east-1 as an empty constraint.
    let location = (entry.record.region != "us-east-1")
        .then(|| BucketLocationConstraint::from(entry.record.region.clone()));
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint: location,
    }))
}
