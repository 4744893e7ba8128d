//! The `x-amz-copy-source*` headers of CopyObject and UploadPartCopy: which
//! object to copy, which of its bytes, and on which conditions.

use preflight_store::ObjectRecord;
use s3s::dto::CopySource;
use s3s::{S3Error, S3ErrorCode, S3Result};

use super::PreflightS3;
use super::read::{Conditions, check_conditions, load_object};
use crate::errors::s3_err;

/// The source object of a copy.
pub async fn copy_source(s3: &PreflightS3, source: &CopySource) -> S3Result<ObjectRecord> {
    match source {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => {
            if version_id.as_deref().is_some_and(|v| v != "null") {
                return Err(S3Error::with_message(
                    S3ErrorCode::NoSuchVersion,
                    "The specified version does not exist.",
                ));
            }
            load_object(s3, bucket, key).await
        }
        _ => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Access points are not supported",
        )),
    }
}

/// Evaluates the `x-amz-copy-source-if-*` conditions: unlike a GET's, a
/// failed one is always 412.
pub fn check_source_conditions(src: &ObjectRecord, conditions: &Conditions<'_>) -> S3Result<()> {
    check_conditions(src, conditions).map_err(|e| {
        if *e.code() == S3ErrorCode::NotModified {
            s3_err(S3ErrorCode::PreconditionFailed)
        } else {
            e
        }
    })
}

/// Parses `x-amz-copy-source-range: bytes=first-last` against a size.
pub fn copy_range(range: Option<&str>, size: u64) -> S3Result<(u64, u64)> {
    let Some(range) = range else {
        return Ok((0, size));
    };
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
    };
    let spec = range.strip_prefix("bytes=").ok_or_else(invalid)?;
    let (a, b) = spec.split_once('-').ok_or_else(invalid)?;
    let first: u64 = a.parse().map_err(|_| invalid())?;
    let last: u64 = b.parse().map_err(|_| invalid())?;
    if first > last {
        return Err(invalid());
    }
    if last >= size {
        return Err(s3_err(S3ErrorCode::InvalidRange));
    }
    Ok((first, last + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_ranges() {
        assert_eq!(copy_range(None, 10).unwrap(), (0, 10));
        assert_eq!(copy_range(Some("bytes=2-5"), 10).unwrap(), (2, 6));
        assert!(copy_range(Some("bytes=5-2"), 10).is_err());
        assert!(copy_range(Some("bytes=5-10"), 10).is_err());
        assert!(copy_range(Some("2-5"), 10).is_err());
    }
}
