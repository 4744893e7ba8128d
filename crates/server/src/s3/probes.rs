//! The configuration reads that tools probe for features Preflight does
//! not have (Terraform's `aws_s3_bucket`, console-like clients read a
//! bucket's whole configuration): answered exactly as S3 answers a bucket
//! that has none of it, so that they go on. The matching Put calls stay
//! NotImplemented (the README's operation table), so these answers stay
//! true: nothing can give a bucket such a configuration.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::PreflightS3;
use super::read::load_object;

/// S3's "not configured" error of a setting: its code, status and message.
fn not_configured(code: S3ErrorCode, message: &str) -> S3Error {
    let mut e = S3Error::with_message(code, message.to_owned());
    e.set_status_code(http::StatusCode::NOT_FOUND);
    e
}

pub fn get_bucket_encryption(
    s3: &PreflightS3,
    req: &S3Request<GetBucketEncryptionInput>,
) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
    s3.bucket(&req.input.bucket)?;
    // Objects are stored as sent: no default encryption is claimed.
    Err(not_configured(
        S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
        "The server side encryption configuration was not found",
    ))
}

pub fn get_bucket_website(
    s3: &PreflightS3,
    req: &S3Request<GetBucketWebsiteInput>,
) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
    s3.bucket(&req.input.bucket)?;
    Err(not_configured(
        S3ErrorCode::NoSuchWebsiteConfiguration,
        "The specified bucket does not have a website configuration",
    ))
}

pub fn get_bucket_replication(
    s3: &PreflightS3,
    req: &S3Request<GetBucketReplicationInput>,
) -> S3Result<S3Response<GetBucketReplicationOutput>> {
    s3.bucket(&req.input.bucket)?;
    Err(not_configured(
        S3ErrorCode::ReplicationConfigurationNotFoundError,
        "The replication configuration was not found",
    ))
}

pub fn get_object_lock_configuration(
    s3: &PreflightS3,
    req: &S3Request<GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
    s3.bucket(&req.input.bucket)?;
    Err(not_configured(
        S3ErrorCode::ObjectLockConfigurationNotFoundError,
        "Object Lock configuration does not exist for this bucket",
    ))
}

pub fn get_bucket_ownership_controls(
    s3: &PreflightS3,
    req: &S3Request<GetBucketOwnershipControlsInput>,
) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
    s3.bucket(&req.input.bucket)?;
    // Preflight's buckets keep ACLs in force, as a bucket without
    // ownership controls does.
    Err(not_configured(
        S3ErrorCode::OwnershipControlsNotFoundError,
        "The bucket ownership controls were not found",
    ))
}

pub fn get_bucket_tagging(
    s3: &PreflightS3,
    req: &S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    s3.bucket(&req.input.bucket)?;
    Err(not_configured(
        S3ErrorCode::NoSuchTagSet,
        "The TagSet does not exist",
    ))
}

pub fn get_bucket_lifecycle_configuration(
    s3: &PreflightS3,
    req: &S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    s3.bucket(&req.input.bucket)?;
    Err(not_configured(
        S3ErrorCode::NoSuchLifecycleConfiguration,
        "The lifecycle configuration does not exist",
    ))
}

pub fn get_bucket_logging(
    s3: &PreflightS3,
    req: &S3Request<GetBucketLoggingInput>,
) -> S3Result<S3Response<GetBucketLoggingOutput>> {
    s3.bucket(&req.input.bucket)?;
    // Logging off: an empty BucketLoggingStatus.
    Ok(S3Response::new(GetBucketLoggingOutput::default()))
}

pub fn get_bucket_request_payment(
    s3: &PreflightS3,
    req: &S3Request<GetBucketRequestPaymentInput>,
) -> S3Result<S3Response<GetBucketRequestPaymentOutput>> {
    s3.bucket(&req.input.bucket)?;
    Ok(S3Response::new(GetBucketRequestPaymentOutput {
        payer: Some(Payer::from_static(Payer::BUCKET_OWNER)),
    }))
}

pub fn get_bucket_accelerate_configuration(
    s3: &PreflightS3,
    req: &S3Request<GetBucketAccelerateConfigurationInput>,
) -> S3Result<S3Response<GetBucketAccelerateConfigurationOutput>> {
    s3.bucket(&req.input.bucket)?;
    // Never enabled: no Status element.
    Ok(S3Response::new(
        GetBucketAccelerateConfigurationOutput::default(),
    ))
}

pub fn get_bucket_notification_configuration(
    s3: &PreflightS3,
    req: &S3Request<GetBucketNotificationConfigurationInput>,
) -> S3Result<S3Response<GetBucketNotificationConfigurationOutput>> {
    s3.bucket(&req.input.bucket)?;
    Ok(S3Response::new(
        GetBucketNotificationConfigurationOutput::default(),
    ))
}

pub fn get_bucket_versioning(
    s3: &PreflightS3,
    req: &S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    s3.bucket(&req.input.bucket)?;
    // A bucket that was never versioned reports no Status.
    Ok(S3Response::new(GetBucketVersioningOutput::default()))
}

pub async fn get_object_tagging(
    s3: &PreflightS3,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let input = req.input;
    s3.bucket(&input.bucket)?;
    // Objects are not versioned: only the "null" version exists.
    if input.version_id.as_deref().is_some_and(|v| v != "null") {
        return Err(S3Error::with_message(
            S3ErrorCode::NoSuchVersion,
            "The specified version does not exist.",
        ));
    }
    load_object(s3, &input.bucket, &input.key).await?;
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set: Vec::new(),
        version_id: None,
    }))
}

/// GetObjectAttributes: the attributes `x-amz-object-attributes` names,
/// from the object's record (no byte is read). The ETag comes unquoted, as
/// S3 sends it here; ObjectParts lists a multipart object's parts (number
/// and size), paged by `max-parts` and `part-number-marker`.
pub async fn get_object_attributes(
    s3: &PreflightS3,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    use preflight_store::ObjectLayout;

    use super::headers::stored_checksum;
    use super::write::ChecksumAlgo;

    let input = req.input;
    if input.version_id.as_deref().is_some_and(|v| v != "null") {
        return Err(S3Error::with_message(
            S3ErrorCode::NoSuchVersion,
            "The specified version does not exist.",
        ));
    }
    let wants = |name: &str| {
        input
            .object_attributes
            .iter()
            .any(|a| a.as_str().eq_ignore_ascii_case(name))
    };
    if input.object_attributes.is_empty()
        || input.object_attributes.iter().any(|a| {
            ![
                ObjectAttributes::CHECKSUM,
                ObjectAttributes::ETAG,
                ObjectAttributes::OBJECT_PARTS,
                ObjectAttributes::OBJECT_SIZE,
                ObjectAttributes::STORAGE_CLASS,
            ]
            .iter()
            .any(|known| a.as_str().eq_ignore_ascii_case(known))
        })
    {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Invalid attribute name specified.",
        ));
    }
    let obj = load_object(s3, &input.bucket, &input.key).await?;
    let mut out = GetObjectAttributesOutput {
        last_modified: Some(Timestamp::from(obj.last_modified)),
        ..Default::default()
    };
    if wants(ObjectAttributes::ETAG) {
        out.e_tag = Some(super::read::etag_of(&obj.etag));
    }
    if wants(ObjectAttributes::OBJECT_SIZE) {
        out.object_size = Some(super::saturating_i64(obj.size));
    }
    if wants(ObjectAttributes::STORAGE_CLASS) {
        out.storage_class = Some(StorageClass::from_static(StorageClass::STANDARD));
    }
    if wants(ObjectAttributes::CHECKSUM) {
        let sum = |algo| stored_checksum(&obj, algo);
        let checksum = Checksum {
            checksum_crc32: sum(ChecksumAlgo::Crc32),
            checksum_crc32c: sum(ChecksumAlgo::Crc32c),
            checksum_crc64nvme: sum(ChecksumAlgo::Crc64Nvme),
            checksum_sha1: sum(ChecksumAlgo::Sha1),
            checksum_sha256: sum(ChecksumAlgo::Sha256),
            checksum_type: None,
        };
        let any = checksum.checksum_crc32.is_some()
            || checksum.checksum_crc32c.is_some()
            || checksum.checksum_crc64nvme.is_some()
            || checksum.checksum_sha1.is_some()
            || checksum.checksum_sha256.is_some();
        if any {
            out.checksum = Some(Checksum {
                checksum_type: Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT)),
                ..checksum
            });
        }
    }
    if wants(ObjectAttributes::OBJECT_PARTS)
        && let ObjectLayout::Parts { parts } = &obj.layout
    {
        let marker = input.part_number_marker.unwrap_or(0).max(0);
        let max = input.max_parts.map_or(1000, |m| m.clamp(0, 1000));
        let page_size = usize::try_from(max).unwrap_or(0);
        let after: Vec<_> = parts
            .iter()
            .filter(|p| i64::from(p.number) > i64::from(marker))
            .collect();
        let page: Vec<ObjectPart> = after
            .iter()
            .take(page_size)
            .map(|p| ObjectPart {
                part_number: i32::try_from(p.number).ok(),
                size: Some(super::saturating_i64(p.size)),
                ..Default::default()
            })
            .collect();
        let truncated = after.len() > page.len();
        out.object_parts = Some(GetObjectAttributesParts {
            is_truncated: Some(truncated),
            max_parts: Some(max),
            next_part_number_marker: page.last().and_then(|p| p.part_number),
            part_number_marker: Some(marker),
            parts: Some(page),
            total_parts_count: i32::try_from(parts.len()).ok(),
        });
    }
    Ok(S3Response::new(out))
}
