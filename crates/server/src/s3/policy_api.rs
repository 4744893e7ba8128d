//! Bucket policy and public access block operations: Put/Get/DeleteBucketPolicy,
//! GetBucketPolicyStatus, Put/Get/DeletePublicAccessBlock. s3s routes them as
//! ordinary operations; the documents are validated by `crate::policy` and
//! stored as bucket settings, and the bucket cache holds them parsed.

use preflight_store::BucketSetting;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::PreflightS3;
use crate::errors::{s3_err, store_err};
use crate::policy::{BucketPolicy, PolicyError, PublicAccessBlock};

fn policy_error(e: PolicyError) -> S3Error {
    match e {
        PolicyError::Malformed(m) => S3Error::with_message(S3ErrorCode::MalformedPolicy, m),
        PolicyError::NotImplemented(m) => S3Error::with_message(S3ErrorCode::NotImplemented, m),
    }
}

fn no_such_policy() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchBucketPolicy,
        "The bucket policy does not exist",
    )
}

fn no_such_pab() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("NoSuchPublicAccessBlockConfiguration".into()),
        "The public access block configuration was not found",
    );
    e.set_status_code(http::StatusCode::NOT_FOUND);
    e
}

async fn set_setting(
    s3: &PreflightS3,
    bucket: &str,
    setting: BucketSetting,
    value: Option<&str>,
) -> S3Result<()> {
    s3.buckets
        .set(bucket, setting, value.map(str::to_owned))
        .await
        .map_err(store_err)
}

pub async fn put_bucket_policy(
    s3: &PreflightS3,
    req: S3Request<PutBucketPolicyInput>,
) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let input = req.input;
    let entry = s3.bucket(&input.bucket)?;
    let policy = BucketPolicy::parse(&input.policy, &input.bucket).map_err(policy_error)?;
    // BlockPublicPolicy: S3 refuses a public policy outright.
    if entry.public_access_block.block_public_policy && policy.is_public() {
        tracing::info!(bucket = %input.bucket, "public policy refused by BlockPublicPolicy");
        return Err(s3_err(S3ErrorCode::AccessDenied));
    }
    set_setting(s3, &input.bucket, BucketSetting::Policy, Some(&policy.text)).await?;
    tracing::info!(
        bucket = %input.bucket,
        statements = policy.statements.len(),
        public = policy.is_public(),
        "bucket policy set"
    );
    Ok(S3Response::new(PutBucketPolicyOutput::default()))
}

pub async fn get_bucket_policy(
    s3: &PreflightS3,
    req: S3Request<GetBucketPolicyInput>,
) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let entry = s3.bucket(&req.input.bucket)?;
    let policy = entry.policy.as_ref().ok_or_else(no_such_policy)?;
    let mut res = S3Response::new(GetBucketPolicyOutput {
        policy: Some(policy.text.clone()),
    });
    res.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

pub async fn delete_bucket_policy(
    s3: &PreflightS3,
    req: S3Request<DeleteBucketPolicyInput>,
) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    let bucket = &req.input.bucket;
    s3.bucket(bucket)?;
    set_setting(s3, bucket, BucketSetting::Policy, None).await?;
    Ok(S3Response::new(DeleteBucketPolicyOutput::default()))
}

pub async fn get_bucket_policy_status(
    s3: &PreflightS3,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
    let entry = s3.bucket(&req.input.bucket)?;
    let policy = entry.policy.as_ref().ok_or_else(no_such_policy)?;
    Ok(S3Response::new(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus {
            is_public: Some(policy.is_public()),
        }),
    }))
}

pub async fn put_public_access_block(
    s3: &PreflightS3,
    req: S3Request<PutPublicAccessBlockInput>,
) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
    let input = req.input;
    s3.bucket(&input.bucket)?;
    let c = &input.public_access_block_configuration;
    let pab = PublicAccessBlock {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    };
    set_setting(
        s3,
        &input.bucket,
        BucketSetting::PublicAccessBlock,
        Some(&pab.to_json()),
    )
    .await?;
    tracing::info!(bucket = %input.bucket, ?pab, "public access block set");
    Ok(S3Response::new(PutPublicAccessBlockOutput::default()))
}

pub async fn get_public_access_block(
    s3: &PreflightS3,
    req: S3Request<GetPublicAccessBlockInput>,
) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
    let entry = s3.bucket(&req.input.bucket)?;
    if entry.record.public_access_block.is_none() {
        return Err(no_such_pab());
    }
    let pab = entry.public_access_block;
    Ok(S3Response::new(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(pab.block_public_acls),
            ignore_public_acls: Some(pab.ignore_public_acls),
            block_public_policy: Some(pab.block_public_policy),
            restrict_public_buckets: Some(pab.restrict_public_buckets),
        }),
    }))
}

pub async fn delete_public_access_block(
    s3: &PreflightS3,
    req: S3Request<DeletePublicAccessBlockInput>,
) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
    let bucket = &req.input.bucket;
    s3.bucket(bucket)?;
    set_setting(s3, bucket, BucketSetting::PublicAccessBlock, None).await?;
    Ok(S3Response::new(DeletePublicAccessBlockOutput::default()))
}
