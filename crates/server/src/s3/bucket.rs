//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
//! GetBucketLocation; S3's bucket naming rules.

use preflight_store::{BucketRecord, BucketSetting, StoreError};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use time::OffsetDateTime;

use super::PreflightS3;
use super::acl::canned_bucket_acl;
use super::headers::refuse_grant_headers;
use super::list::{decode_token, encode_token};
use crate::errors::{s3_err, store_err};

/// Prefixes and suffixes S3 reserves for access points, Object Lambda,
/// Multi-Region Access Points, directory buckets and table buckets.
const RESERVED_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
const RESERVED_SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

/// S3's naming rules for general purpose buckets. s3s checks only part of
/// them on every request; a new bucket must follow all of them, so that any
/// name Preflight accepts, S3 would accept too.
pub fn is_valid_bucket_name(name: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(|&b| alnum(b) || b == b'.' || b == b'-')
        && bytes.first().copied().is_some_and(alnum)
        && bytes.last().copied().is_some_and(alnum)
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && !looks_like_ip_address(name)
        && !RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
        && !RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Four dot-separated groups of digits, as S3 tests for (`192.168.5.4`).
fn looks_like_ip_address(name: &str) -> bool {
    let groups: Vec<&str> = name.split('.').collect();
    groups.len() == 4
        && groups
            .iter()
            .all(|g| (1..=3).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_digit()))
}

/// ListBuckets' largest (and, without `max-buckets`, unbounded) page.
const MAX_BUCKETS: i32 = 10_000;

pub async fn list_buckets(
    s3: &PreflightS3,
    req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let input = req.input;
    let page = match input.max_buckets {
        None => None,
        Some(n) if (1..=MAX_BUCKETS).contains(&n) => usize::try_from(n).ok(),
        Some(_) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Argument max-buckets must be an integer between 1 and 10000.",
            ));
        }
    };
    // The token is the last name of the page before, opaque to clients
    // (the same encoding as ListObjectsV2's).
    let after = input
        .continuation_token
        .as_deref()
        .map(decode_token)
        .transpose()?;
    let mut records = s3.meta.list_buckets().await.map_err(store_err)?;
    records.sort_by(|a, b| a.name.cmp(&b.name));
    let mut matching = records.into_iter().filter(|b| {
        input
            .prefix
            .as_deref()
            .is_none_or(|p| b.name.starts_with(p))
            && input.bucket_region.as_deref().is_none_or(|r| b.region == r)
            && after.as_deref().is_none_or(|a| b.name.as_str() > a)
    });
    let listed: Vec<_> = matching.by_ref().take(page.unwrap_or(usize::MAX)).collect();
    let more = matching.next().is_some();
    let continuation_token =
        more.then(|| encode_token(listed.last().map(|b| b.name.as_str()).unwrap_or_default()));
    let buckets = listed
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
        continuation_token,
        prefix: input.prefix,
    }))
}

/// The region where S3 keeps its legacy CreateBucket answer.
const LEGACY_REGION: &str = "us-east-1";

pub async fn create_bucket(
    s3: &PreflightS3,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let input = req.input;
    if !is_valid_bucket_name(&input.bucket) {
        return Err(s3_err(S3ErrorCode::InvalidBucketName));
    }
    refuse_grant_headers(&input)?;
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
    match s3.buckets.create(record).await {
        Ok(()) => {}
        // Every bucket belongs to the one account of this server. In
        // us-east-1, S3 answers the owner's re-creation 200 and resets the
        // bucket's ACL, "for legacy compatibility"; elsewhere it is
        // BucketAlreadyOwnedByYou.
        Err(StoreError::BucketExists) if s3.region == LEGACY_REGION => {
            s3.buckets
                .set(&input.bucket, BucketSetting::Acl, Some(acl.to_owned()))
                .await
                .map_err(store_err)?;
        }
        Err(StoreError::BucketExists) => {
            return Err(s3_err(S3ErrorCode::BucketAlreadyOwnedByYou));
        }
        Err(e) => return Err(store_err(e)),
    }
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
    // Uploads in progress are aborted with the bucket, as in S3: the store
    // releases their parts in the same transaction. The CORS configuration,
    // ACL and policy go with the bucket's row, and its cache entry with it.
    let parts = s3.buckets.delete(name).await.map_err(store_err)?;
    if !parts.is_empty() {
        let owned = s3.clone();
        // Run to completion even if the client hangs up.
        let _ = tokio::spawn(async move { owned.reap_due_now().await }).await;
    }
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

#[cfg(test)]
mod tests {
    use super::is_valid_bucket_name;

    #[test]
    fn bucket_names() {
        for ok in [
            "abc",
            "my.example.bucket",
            "tag-1234-0",
            "a-b-c",
            "1.2.3",
            "1.2.3.4a",
            "a".repeat(63).as_str(),
        ] {
            assert!(is_valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "a".repeat(64).as_str(),
            "Abc",
            "a_bc",
            "-abc",
            "abc-",
            ".abc",
            "abc.",
            "a..bc",
            "abc.-def",
            "abc-.def",
            "sthree-x",
            "sthree-configurator",
            "amzn-s3-demo-bucket",
            "xn--abc",
            "abc-s3alias",
            "abc--ol-s3",
            "abc.mrap",
            "abc--x-s3",
            "abc--table-s3",
            "192.168.1.1",
            "1.2.3.4",
        ] {
            assert!(!is_valid_bucket_name(bad), "{bad}");
        }
    }
}
