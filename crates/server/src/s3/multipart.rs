//! Multipart uploads. Each part is its own blob; completing an upload writes
//! a manifest of the parts (no data is copied), and the ETag is the MD5 of
//! the parts' MD5s followed by `-N`.

use std::time::Duration;

use md5::{Digest, Md5};
use preflight_store::{ObjectLayout, ObjectRecord, PartRecord, PartRef, UploadRecord};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use time::OffsetDateTime;

use super::acl::canned_object_acl;
use super::copy_source::{copy_range, copy_source};
use super::headers::{NewObjectInput, check_new_object, object_headers};
use super::read::{MAX_PARTS, check_part_number, etag_of, object_stream};
use super::write::{ChecksumAlgo, Received, write_blob};
use super::{MAX_PUT_SIZE, PreflightS3, commit_point, page_size, saturating_i32, saturating_i64};
use crate::errors::{s3_err, store_err};

/// Every part but the last must be at least 5 MiB.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

async fn load_upload(
    s3: &PreflightS3,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> S3Result<UploadRecord> {
    s3.bucket(bucket)?;
    match s3
        .meta
        .get_upload(bucket, upload_id)
        .await
        .map_err(store_err)?
    {
        Some(u) if u.key == key => Ok(u),
        _ => Err(s3_err(S3ErrorCode::NoSuchUpload)),
    }
}

pub async fn create_multipart_upload(
    s3: &PreflightS3,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let input = req.input;
    s3.bucket(&input.bucket)?;
    check_new_object(&input)?;
    let acl = canned_object_acl(input.canned_acl())?;
    let headers = object_headers(input.header_inputs())?;
    let upload = UploadRecord {
        upload_id: uuid::Uuid::new_v4().simple().to_string(),
        bucket: input.bucket.clone(),
        key: input.key.clone(),
        initiated: OffsetDateTime::now_utc(),
        acl: acl.to_owned(),
        headers,
    };
    s3.meta.create_upload(&upload).await.map_err(store_err)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(upload.upload_id),
        checksum_algorithm: input.checksum_algorithm,
        ..Default::default()
    }))
}

/// One commit point, run to completion even if the client hangs up: makes
/// the received part durable, records it and releases the part it replaced.
async fn commit_part(
    s3: &PreflightS3,
    upload_id: &str,
    number: u32,
    received: Received,
) -> S3Result<PartRecord> {
    let s3 = s3.clone();
    let upload_id = upload_id.to_owned();
    commit_point(async move {
        let written = received.finish().await?;
        let part = PartRecord {
            number,
            etag: written.etag(),
            blob: written.blob,
            size: written.size,
            last_modified: OffsetDateTime::now_utc(),
            checksums: written.checksums,
        };
        s3.commit_new_blobs(s3.meta.put_part(&upload_id, &part), || {
            vec![part.blob.clone()]
        })
        .await?;
        Ok(part)
    })
    .await
}

/// A part's stored checksum, as UploadPart answers it.
fn part_checksum(part: &PartRecord, algo: ChecksumAlgo) -> Option<String> {
    part.checksums
        .iter()
        .find(|(n, _)| n == algo.name())
        .map(|(_, v)| v.clone())
}

pub async fn upload_part(
    s3: &PreflightS3,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let trailers = req.trailing_headers.clone();
    let input = req.input;
    let number = check_part_number(input.part_number)?;
    if input.sse_customer_algorithm.is_some() || input.sse_customer_key.is_some() {
        return Err(super::headers::encryption_not_implemented());
    }
    load_upload(s3, &input.bucket, &input.key, &input.upload_id).await?;
    let received = s3
        .receive_body(
            &req.headers,
            trailers,
            input.body,
            input.content_length,
            input.content_md5.as_deref(),
        )
        .await?;
    let part = commit_part(s3, &input.upload_id, number, received).await?;
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(etag_of(&part.etag)),
        checksum_crc32: part_checksum(&part, ChecksumAlgo::Crc32),
        checksum_crc32c: part_checksum(&part, ChecksumAlgo::Crc32c),
        checksum_crc64nvme: part_checksum(&part, ChecksumAlgo::Crc64Nvme),
        checksum_sha1: part_checksum(&part, ChecksumAlgo::Sha1),
        checksum_sha256: part_checksum(&part, ChecksumAlgo::Sha256),
        ..Default::default()
    }))
}

pub async fn upload_part_copy(
    s3: &PreflightS3,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let input = req.input;
    let number = check_part_number(input.part_number)?;
    load_upload(s3, &input.bucket, &input.key, &input.upload_id).await?;
    let src = copy_source(s3, &input.copy_source).await?;
    let (start, end) = copy_range(input.copy_source_range.as_deref(), src.size)?;
    let body = object_stream(s3.blobs.clone(), &src, start, end).await?;
    let received = write_blob(
        s3.blobs.as_ref(),
        Some(body),
        &[],
        MAX_PUT_SIZE,
        Some(end - start),
    )
    .await?;
    let part = commit_part(s3, &input.upload_id, number, received).await?;
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(etag_of(&part.etag)),
            last_modified: Some(Timestamp::from(part.last_modified)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

pub async fn complete_multipart_upload(
    s3: &PreflightS3,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let input = req.input;
    let upload = match load_upload(s3, &input.bucket, &input.key, &input.upload_id).await {
        Ok(upload) => upload,
        Err(e) if *e.code() == S3ErrorCode::NoSuchUpload => {
            return match completed_before(s3, &input).await {
                Some(etag) => Ok(S3Response::new(CompleteMultipartUploadOutput {
                    bucket: Some(input.bucket.clone()),
                    key: Some(input.key.clone()),
                    e_tag: Some(etag_of(&etag)),
                    location: Some(format!("/{}/{}", input.bucket, input.key)),
                    ..Default::default()
                })),
                None => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    let requested = input
        .multipart_upload
        .and_then(|m| m.parts)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema",
            )
        })?;
    let stored = s3
        .meta
        .list_parts(&input.upload_id, 0, MAX_PARTS)
        .await
        .map_err(store_err)?;

    // The order is a property of the whole list: check it before looking at
    // any part, so that a misordered list is InvalidPartOrder, not an error
    // about whichever part happens to come first (MinIO checks it first too).
    let numbers = requested
        .iter()
        .map(|p| {
            let n = p
                .part_number
                .ok_or_else(|| s3_err(S3ErrorCode::InvalidPart))?;
            u32::try_from(n).map_err(|_| s3_err(S3ErrorCode::InvalidPart))
        })
        .collect::<S3Result<Vec<u32>>>()?;
    if numbers.windows(2).any(|w| w[0] >= w[1]) {
        return Err(s3_err(S3ErrorCode::InvalidPartOrder));
    }

    let mut manifest = Vec::with_capacity(requested.len());
    let mut md5s = Md5::new();
    for (i, (p, &number)) in requested.iter().zip(&numbers).enumerate() {
        let part = stored
            .iter()
            .find(|s| s.number == number)
            .ok_or_else(|| s3_err(S3ErrorCode::InvalidPart))?;
        let sent = p.e_tag.as_ref().map(|e| e.value().trim_matches('"'));
        if sent != Some(part.etag.trim_matches('"')) {
            return Err(s3_err(S3ErrorCode::InvalidPart));
        }
        if i + 1 < requested.len() && part.size < MIN_PART_SIZE {
            let mut e = s3_err(S3ErrorCode::EntityTooSmall);
            e.set_message("Your proposed upload is smaller than the minimum allowed size");
            return Err(e);
        }
        let digest = hex::decode(part.etag.trim_matches('"'))
            .map_err(|_| s3_err(S3ErrorCode::InternalError))?;
        md5s.update(&digest);
        manifest.push(PartRef {
            number,
            blob: part.blob.clone(),
            size: part.size,
            etag: part.etag.clone(),
        });
    }
    let etag = format!("\"{}-{}\"", hex::encode(md5s.finalize()), manifest.len());
    let record = ObjectRecord {
        bucket: input.bucket.clone(),
        key: input.key.clone(),
        size: manifest.iter().map(|p| p.size).sum(),
        etag,
        last_modified: OffsetDateTime::now_utc(),
        acl: upload.acl,
        headers: upload.headers,
        layout: ObjectLayout::Parts { parts: manifest },
    };
    // The commit and the release of what it replaced or left unused go
    // together, even if the client hangs up.
    let condition =
        super::object::write_condition(input.if_match.as_ref(), input.if_none_match.as_ref());
    let owned = s3.clone();
    let upload_id = input.upload_id.clone();
    let record = commit_point(async move {
        // The store releases the replaced object's blobs and the unused
        // parts in the same transaction.
        owned
            .meta
            .complete_upload_if(&upload_id, &record, &condition)
            .await
            .map_err(store_err)?;
        Ok(record)
    })
    .await?;
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        e_tag: Some(etag_of(&record.etag)),
        location: Some(format!("/{}/{}", input.bucket, input.key)),
        ..Default::default()
    }))
}

/// A CompleteMultipartUpload sent again after it succeeded (a client
/// retrying a request whose answer it lost): S3 answers it with the same
/// result. The upload is gone; the object it made is still the key's
/// current one when its ETag is the one this parts list makes. Returns
/// that ETag.
async fn completed_before(
    s3: &PreflightS3,
    input: &CompleteMultipartUploadInput,
) -> Option<String> {
    let parts = input.multipart_upload.as_ref()?.parts.as_ref()?;
    let mut md5s = Md5::new();
    for part in parts {
        let etag = part.e_tag.as_ref()?.value().trim_matches('"');
        md5s.update(hex::decode(etag).ok()?);
    }
    let etag = format!("\"{}-{}\"", hex::encode(md5s.finalize()), parts.len());
    let current = s3.meta.get_object(&input.bucket, &input.key).await.ok()??;
    (matches!(current.layout, ObjectLayout::Parts { .. }) && current.etag == etag).then_some(etag)
}

pub async fn abort_multipart_upload(
    s3: &PreflightS3,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let input = req.input;
    load_upload(s3, &input.bucket, &input.key, &input.upload_id).await?;
    abort_upload(s3, &input.upload_id).await?;
    Ok(S3Response::with_status(
        AbortMultipartUploadOutput::default(),
        http::StatusCode::NO_CONTENT,
    ))
}

/// One commit point: removes the upload and releases its parts.
pub(super) async fn abort_upload(s3: &PreflightS3, upload_id: &str) -> S3Result<()> {
    let owned = s3.clone();
    let upload_id = upload_id.to_owned();
    commit_point(async move {
        // The store releases the parts in the same transaction, due now.
        owned
            .meta
            .abort_upload(&upload_id)
            .await
            .map_err(store_err)?;
        owned.reap_due_now().await;
        Ok(())
    })
    .await
}

/// Uploads aborted in one pass of the expiry worker at most, so that a pass
/// stays short (each abort is one transaction) whatever the backlog.
const EXPIRY_BATCH: usize = 256;

/// Aborts up to [`EXPIRY_BATCH`] uploads initiated more than `age` ago and
/// releases their parts. Returns how many were aborted.
pub(super) async fn abort_uploads_older_than(s3: &PreflightS3, age: Duration) -> S3Result<usize> {
    let cutoff = OffsetDateTime::now_utc() - age;
    let old = s3
        .meta
        .list_uploads_initiated_before(cutoff, EXPIRY_BATCH)
        .await
        .map_err(store_err)?;
    let mut aborted = 0;
    for upload in old {
        match abort_upload(s3, &upload.upload_id).await {
            Ok(()) => {
                aborted += 1;
                tracing::info!(
                    bucket = %upload.bucket,
                    key = %upload.key,
                    upload_id = %upload.upload_id,
                    "aborted an incomplete multipart upload"
                );
            }
            // Completed or aborted meanwhile.
            Err(e) if *e.code() == S3ErrorCode::NoSuchUpload => {}
            Err(e) => {
                tracing::warn!(upload_id = %upload.upload_id, error = %e, "could not abort an expired upload")
            }
        }
    }
    Ok(aborted)
}

/// The expiry worker: a pass every `age / 4` (between a quarter second and
/// a minute); right after a full batch, the next pass comes after a second.
pub(super) async fn expire_uploads_forever(s3: PreflightS3, age: Duration) {
    let period = (age / 4).clamp(Duration::from_millis(250), Duration::from_secs(60));
    loop {
        let pause = match abort_uploads_older_than(&s3, age).await {
            Ok(n) if n >= EXPIRY_BATCH => Duration::from_secs(1).min(period),
            Ok(_) => period,
            Err(e) => {
                tracing::warn!(error = %e, "incomplete upload expiry pass failed");
                period
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// Every upload is initiated by the owner of everything: the root key.
fn initiator(s3: &PreflightS3) -> Initiator {
    Initiator {
        display_name: s3.owner.display_name.clone(),
        id: s3.owner.id.clone(),
    }
}

pub async fn list_parts(
    s3: &PreflightS3,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let input = req.input;
    load_upload(s3, &input.bucket, &input.key, &input.upload_id).await?;
    let max_parts = page_size(input.max_parts, 1000);
    let marker = input
        .part_number_marker
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(0);
    let mut parts = s3
        .meta
        .list_parts(&input.upload_id, marker, max_parts + 1)
        .await
        .map_err(store_err)?;
    let truncated = parts.len() > max_parts;
    parts.truncate(max_parts);
    let next_marker = truncated
        .then(|| parts.last().map(|p| saturating_i32(p.number)))
        .flatten();
    let parts = parts
        .into_iter()
        .map(|p| Part {
            e_tag: Some(etag_of(&p.etag)),
            last_modified: Some(Timestamp::from(p.last_modified)),
            part_number: Some(saturating_i32(p.number)),
            size: Some(saturating_i64(p.size)),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        max_parts: Some(saturating_i32(max_parts)),
        part_number_marker: input.part_number_marker,
        next_part_number_marker: next_marker,
        is_truncated: Some(truncated),
        parts: Some(parts),
        owner: Some(s3.owner.clone()),
        initiator: Some(initiator(s3)),
        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
        ..Default::default()
    }))
}

pub async fn list_multipart_uploads(
    s3: &PreflightS3,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let input = req.input;
    s3.bucket(&input.bucket)?;
    let max_uploads = page_size(input.max_uploads, 1000);
    let prefix = input.prefix.clone().unwrap_or_default();
    let after = input
        .key_marker
        .as_deref()
        .map(|k| (k, input.upload_id_marker.as_deref().unwrap_or("")));
    let mut uploads = s3
        .meta
        .list_uploads(&input.bucket, &prefix, after, max_uploads + 1)
        .await
        .map_err(store_err)?;
    let truncated = uploads.len() > max_uploads;
    uploads.truncate(max_uploads);
    let (next_key, next_id) = match (truncated, uploads.last()) {
        (true, Some(u)) => (Some(u.key.clone()), Some(u.upload_id.clone())),
        _ => (None, None),
    };
    let list = uploads
        .into_iter()
        .map(|u| MultipartUpload {
            key: Some(u.key),
            upload_id: Some(u.upload_id),
            initiated: Some(Timestamp::from(u.initiated)),
            owner: Some(s3.owner.clone()),
            initiator: Some(initiator(s3)),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: Some(prefix),
        key_marker: input.key_marker,
        upload_id_marker: input.upload_id_marker,
        next_key_marker: next_key,
        next_upload_id_marker: next_id,
        max_uploads: Some(saturating_i32(max_uploads)),
        is_truncated: Some(truncated),
        uploads: Some(list),
        delimiter: input.delimiter,
        encoding_type: input.encoding_type,
        ..Default::default()
    }))
}
