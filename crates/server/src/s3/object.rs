//! Object operations: PutObject, GetObject, HeadObject, DeleteObject,
//! DeleteObjects, CopyObject.

use preflight_store::{EtagMatch, ObjectHeaders, ObjectLayout, ObjectRecord, WriteCondition};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use time::OffsetDateTime;

use super::acl::canned_object_acl;
use super::copy_source::{check_source_conditions, copy_source};
use super::headers::{
    NewObjectInput, check_new_object, metadata_map, object_headers, parse_http_date,
    require_integrity_header, stored_checksum,
};
use super::read::{Conditions, etag_of, object_stream, parts_count, read_view};
use super::write::{ChecksumAlgo, Received, write_blob};
use super::{MAX_PUT_SIZE, PreflightS3, commit_point, saturating_i64};
use crate::errors::{s3_err, store_err};

/// A new single-blob object before its body is durable.
pub struct NewObject {
    pub bucket: String,
    pub key: String,
    pub acl: String,
    /// The checksums are filled in from the body.
    pub headers: ObjectHeaders,
    /// What the object it replaces must be (`If-Match`, `If-None-Match`).
    pub condition: WriteCondition,
}

fn etag_match(condition: &ETagCondition) -> EtagMatch {
    match condition {
        ETagCondition::Any => EtagMatch::Any,
        ETagCondition::ETag(etag) => EtagMatch::Etag(etag.value().to_owned()),
    }
}

/// The condition of a write's `If-Match` and `If-None-Match`.
pub(super) fn write_condition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> WriteCondition {
    WriteCondition {
        if_match: if_match.map(etag_match),
        if_none_match: if_none_match.map(etag_match),
        ..WriteCondition::NONE
    }
}

/// The condition of a request whose input type has no fields for the
/// headers (CopyObject's destination).
fn header_condition(headers: &http::HeaderMap) -> WriteCondition {
    let value = |name: http::header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(EtagMatch::parse)
    };
    WriteCondition {
        if_match: value(http::header::IF_MATCH),
        if_none_match: value(http::header::IF_NONE_MATCH),
        ..WriteCondition::NONE
    }
}

/// Refuses a conditional write at once when its condition already fails,
/// before the body is read; the store decides again at the commit.
async fn precheck(
    s3: &PreflightS3,
    bucket: &str,
    key: &str,
    condition: &WriteCondition,
) -> S3Result<()> {
    if condition.is_none() {
        return Ok(());
    }
    let current = s3.meta.get_object(bucket, key).await.map_err(store_err)?;
    condition.check_write(current.as_ref()).map_err(store_err)
}

/// One commit point, run to completion even if the client hangs up: makes
/// the received body durable, points the object at it and releases the
/// blobs of the version it replaced.
pub async fn commit_object(
    s3: &PreflightS3,
    new: NewObject,
    received: Received,
) -> S3Result<ObjectRecord> {
    let s3 = s3.clone();
    commit_point(async move {
        let written = received.finish().await?;
        let mut headers = new.headers;
        headers.checksums = written.checksums.clone();
        let record = ObjectRecord {
            bucket: new.bucket,
            key: new.key,
            size: written.size,
            etag: written.etag(),
            last_modified: OffsetDateTime::now_utc(),
            acl: new.acl,
            headers,
            layout: ObjectLayout::Single { blob: written.blob },
        };
        s3.commit_new_blobs(s3.meta.put_object_if(&record, &new.condition), || {
            record.layout.blobs()
        })
        .await?;
        Ok(record)
    })
    .await
}

pub async fn put_object(
    s3: &PreflightS3,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let trailers = req.trailing_headers.clone();
    let input = req.input;
    s3.bucket(&input.bucket)?;
    check_new_object(&input)?;
    let acl = canned_object_acl(input.canned_acl())?;
    let headers = object_headers(input.header_inputs())?;
    let condition = write_condition(input.if_match.as_ref(), input.if_none_match.as_ref());
    precheck(s3, &input.bucket, &input.key, &condition).await?;
    let received = s3
        .receive_body(
            &req.headers,
            trailers,
            input.body,
            input.content_length,
            input.content_md5.as_deref(),
        )
        .await?;
    let new = NewObject {
        bucket: input.bucket,
        key: input.key,
        acl: acl.to_owned(),
        headers,
        condition,
    };
    let record = commit_object(s3, new, received).await?;
    let sum = |algo| stored_checksum(&record, algo);
    Ok(S3Response::new(PutObjectOutput {
        e_tag: Some(etag_of(&record.etag)),
        checksum_crc32: sum(ChecksumAlgo::Crc32),
        checksum_crc32c: sum(ChecksumAlgo::Crc32c),
        checksum_crc64nvme: sum(ChecksumAlgo::Crc64Nvme),
        checksum_sha1: sum(ChecksumAlgo::Sha1),
        checksum_sha256: sum(ChecksumAlgo::Sha256),
        ..Default::default()
    }))
}

/// The fields GetObjectOutput and HeadObjectOutput share (two generated
/// types with the same names), from a view and the `response-*` overrides
/// of the input.
macro_rules! object_output {
    ($output:ident, $view:expr, $input:expr, { $($extra:tt)* }) => {{
        let view = $view;
        let input = $input;
        let h = &view.obj.headers;
        $output {
            accept_ranges: Some("bytes".to_owned()),
            content_length: Some(saturating_i64(view.end - view.start)),
            content_range: view.partial.then(|| {
                format!("bytes {}-{}/{}", view.start, view.end.saturating_sub(1), view.obj.size)
            }),
            content_type: input.response_content_type.or_else(|| h.content_type.clone()),
            cache_control: input.response_cache_control.or_else(|| h.cache_control.clone()),
            content_disposition: input
                .response_content_disposition
                .or_else(|| h.content_disposition.clone()),
            content_encoding: input
                .response_content_encoding
                .or_else(|| h.content_encoding.clone()),
            content_language: input
                .response_content_language
                .or_else(|| h.content_language.clone()),
            expires: input
                .response_expires
                .or_else(|| h.expires.as_deref().and_then(parse_http_date)),
            e_tag: Some(etag_of(&view.obj.etag)),
            last_modified: Some(Timestamp::from(view.obj.last_modified)),
            metadata: metadata_map(h),
            parts_count: parts_count(&view.obj),
            checksum_crc32: view.checksum(ChecksumAlgo::Crc32),
            checksum_crc32c: view.checksum(ChecksumAlgo::Crc32c),
            checksum_crc64nvme: view.checksum(ChecksumAlgo::Crc64Nvme),
            checksum_sha1: view.checksum(ChecksumAlgo::Sha1),
            checksum_sha256: view.checksum(ChecksumAlgo::Sha256),
            $($extra)*
            ..Default::default()
        }
    }};
}

pub async fn get_object(
    s3: &PreflightS3,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let input = req.input;
    let view = read_view(s3, &input).await?;
    let body = object_stream(s3.blobs.clone(), &view.obj, view.start, view.end).await?;
    let status = view.status();
    let output = object_output!(GetObjectOutput, &view, input, { body: Some(body), });
    Ok(S3Response::with_status(output, status))
}

pub async fn head_object(
    s3: &PreflightS3,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let input = req.input;
    let view = read_view(s3, &input).await?;
    let status = view.status();
    let output = object_output!(HeadObjectOutput, &view, input, {});
    Ok(S3Response::with_status(output, status))
}

pub async fn delete_object(
    s3: &PreflightS3,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let input = req.input;
    s3.bucket(&input.bucket)?;
    let condition = WriteCondition {
        if_match: input.if_match.as_ref().map(etag_match),
        if_match_last_modified: input.if_match_last_modified_time.clone().map(Into::into),
        if_match_size: input.if_match_size.and_then(|s| u64::try_from(s).ok()),
        ..WriteCondition::NONE
    };
    let owned = s3.clone();
    commit_point(async move {
        // The store releases the removed object's blobs in the same
        // transaction.
        owned
            .meta
            .delete_object_if(&input.bucket, &input.key, &condition)
            .await
            .map_err(store_err)?;
        Ok(())
    })
    .await?;
    // Deleting a missing key succeeds, as in S3.
    Ok(S3Response::with_status(
        DeleteObjectOutput::default(),
        http::StatusCode::NO_CONTENT,
    ))
}

/// S3 accepts at most 1000 keys in one DeleteObjects.
const MAX_DELETE_KEYS: usize = 1000;

pub async fn delete_objects(
    s3: &PreflightS3,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    require_integrity_header(&req.headers)?;
    let input = req.input;
    s3.bucket(&input.bucket)?;
    if input.delete.objects.len() > MAX_DELETE_KEYS || input.delete.objects.is_empty() {
        return Err(s3_err(S3ErrorCode::MalformedXML));
    }
    let quiet = input.delete.quiet.unwrap_or(false);
    // Each deletion and the release of its blobs go together; the whole
    // batch runs to completion even if the client hangs up.
    let owned = s3.clone();
    let (deleted, errors) = commit_point(async move {
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        let mut any_deleted = false;
        let mut objects = input.delete.objects.into_iter();
        while let Some(id) = objects.next() {
            let condition = WriteCondition {
                if_match: id.e_tag.as_ref().map(|e| EtagMatch::parse(e.value())),
                if_match_last_modified: id.last_modified_time.clone().map(Into::into),
                if_match_size: id.size.and_then(|s| u64::try_from(s).ok()),
                ..WriteCondition::NONE
            };
            match owned
                .meta
                .delete_object_if(&input.bucket, &id.key, &condition)
                .await
            {
                Ok(_) => {
                    any_deleted = true;
                    if !quiet {
                        deleted.push(DeletedObject {
                            key: Some(id.key),
                            ..Default::default()
                        });
                    }
                }
                // The store is unreachable: nothing more can be deleted.
                // Before the first deletion the whole request is 503, which
                // clients retry; after it, this key and the rest are
                // reported as not deleted, with the same code.
                Err(e) if e.is_unavailable() => {
                    if !any_deleted {
                        return Err(store_err(e));
                    }
                    tracing::warn!(error = %e, "storage unreachable during DeleteObjects");
                    let message = "Service is unable to handle request.";
                    for id in std::iter::once(id).chain(objects.by_ref()) {
                        errors.push(Error {
                            code: Some("ServiceUnavailable".to_owned()),
                            key: Some(id.key),
                            message: Some(message.to_owned()),
                            version_id: None,
                        });
                    }
                }
                Err(preflight_store::StoreError::PreconditionFailed) => {
                    errors.push(Error {
                        code: Some("PreconditionFailed".to_owned()),
                        key: Some(id.key),
                        message: Some(
                            "At least one of the pre-conditions you specified did not hold"
                                .to_owned(),
                        ),
                        version_id: None,
                    });
                }
                Err(e) => {
                    tracing::error!(key = %id.key, error = %e, "delete failed");
                    errors.push(Error {
                        code: Some("InternalError".to_owned()),
                        key: Some(id.key),
                        message: Some(
                            "We encountered an internal error. Please try again.".to_owned(),
                        ),
                        version_id: None,
                    });
                }
            }
        }
        Ok((deleted, errors))
    })
    .await?;
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        ..Default::default()
    }))
}

pub async fn copy_object(
    s3: &PreflightS3,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let input = req.input;
    s3.bucket(&input.bucket)?;
    check_new_object(&input)?;
    let condition = header_condition(&req.headers);
    precheck(s3, &input.bucket, &input.key, &condition).await?;
    let src = copy_source(s3, &input.copy_source).await?;
    check_source_conditions(
        &src,
        &Conditions {
            if_match: input.copy_source_if_match.as_ref(),
            if_none_match: input.copy_source_if_none_match.as_ref(),
            if_modified_since: input.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
        },
    )?;
    let replace = input
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    if !replace && src.bucket == input.bucket && src.key == input.key {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let headers = if replace {
        object_headers(input.header_inputs())?
    } else {
        src.headers.clone()
    };
    let acl = canned_object_acl(input.canned_acl())?;
    let algos: Vec<ChecksumAlgo> = src
        .headers
        .checksums
        .iter()
        .filter_map(|(n, _)| ChecksumAlgo::from_name(n))
        .collect();
    // Blobs are never shared between objects, so deleting one object can
    // always delete its blobs: the copy gets its own bytes.
    let body = object_stream(s3.blobs.clone(), &src, 0, src.size).await?;
    let received = write_blob(
        s3.blobs.as_ref(),
        Some(body),
        &algos,
        MAX_PUT_SIZE,
        Some(src.size),
    )
    .await?;
    // A copy of a multipart object keeps the multipart ETag only in S3's
    // single-part copy path; a plain copy gets the MD5 of its bytes.
    let new = NewObject {
        bucket: input.bucket,
        key: input.key,
        acl: acl.to_owned(),
        headers,
        condition,
    };
    let record = commit_object(s3, new, received).await?;
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(etag_of(&record.etag)),
            last_modified: Some(Timestamp::from(record.last_modified)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}
