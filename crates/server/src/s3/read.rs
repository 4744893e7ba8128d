//! Reading objects: looking one up, conditional requests, ranges and part
//! numbers, and streaming the bytes of a single blob or of a multipart
//! manifest.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use preflight_store::{BlobStore, ObjectLayout, ObjectRecord};
use s3s::dto::{
    ETag, ETagCondition, GetObjectInput, HeadObjectInput, Range, StreamingBlob, Timestamp,
};
use s3s::{S3Error, S3ErrorCode, S3Result};
use time::OffsetDateTime;

use super::headers::stored_checksum;
use super::write::ChecksumAlgo;
use super::{PreflightS3, saturating_i32};
use crate::errors::{s3_err, store_err};

/// S3 numbers parts from 1 to 10000.
const MAX_PART_NUMBER: u32 = 10_000;
/// The most parts an upload can have: one per part number.
pub const MAX_PARTS: usize = 10_000;

/// A `partNumber` of UploadPart, UploadPartCopy, GetObject or HeadObject.
pub fn check_part_number(n: i32) -> S3Result<u32> {
    match u32::try_from(n) {
        Ok(number) if (1..=MAX_PART_NUMBER).contains(&number) => Ok(number),
        _ => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        )),
    }
}

pub struct Conditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

fn etag_matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => tag.value() == etag.trim_matches('"'),
    }
}

/// HTTP dates have one-second resolution.
fn seconds(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// Evaluates GET/HEAD preconditions in RFC 9110 order: 412 PreconditionFailed
/// or 304 NotModified.
pub fn check_conditions(obj: &ObjectRecord, c: &Conditions<'_>) -> S3Result<()> {
    let modified = seconds(obj.last_modified);
    match c.if_match {
        Some(cond) if !etag_matches(cond, &obj.etag) => {
            return Err(s3_err(S3ErrorCode::PreconditionFailed));
        }
        Some(_) => {}
        None => {
            if let Some(since) = c.if_unmodified_since
                && modified > seconds(OffsetDateTime::from(since.clone()))
            {
                return Err(s3_err(S3ErrorCode::PreconditionFailed));
            }
        }
    }
    match c.if_none_match {
        Some(cond) if etag_matches(cond, &obj.etag) => return Err(not_modified(obj)),
        Some(_) => {}
        None => {
            if let Some(since) = c.if_modified_since
                && modified <= seconds(OffsetDateTime::from(since.clone()))
            {
                return Err(not_modified(obj));
            }
        }
    }
    Ok(())
}

/// 304 Not Modified, with what a cache revalidating its copy needs (RFC
/// 9110 §15.4.5; S3 sends them): the ETag, Last-Modified, and the object's
/// Cache-Control and Expires.
fn not_modified(obj: &ObjectRecord) -> s3s::S3Error {
    let mut e = s3s::S3Error::new(S3ErrorCode::NotModified);
    e.set_status_code(http::StatusCode::NOT_MODIFIED);
    let mut headers = http::HeaderMap::new();
    let mut put = |name: http::header::HeaderName, value: &str| {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put(http::header::ETAG, &obj.etag);
    let mut date = Vec::new();
    if Timestamp::from(obj.last_modified)
        .format(s3s::dto::TimestampFormat::HttpDate, &mut date)
        .is_ok()
    {
        put(http::header::LAST_MODIFIED, &String::from_utf8_lossy(&date));
    }
    if let Some(v) = &obj.headers.cache_control {
        put(http::header::CACHE_CONTROL, v);
    }
    if let Some(v) = &obj.headers.expires {
        put(http::header::EXPIRES, v);
    }
    e.set_headers(headers);
    e
}

/// The byte range `[start, end)` to send, and whether it is partial.
pub fn resolve_range(range: Option<&Range>, size: u64) -> S3Result<(u64, u64, bool)> {
    match range {
        None => Ok((0, size, false)),
        Some(r) => match r.check(size) {
            Ok(r) => Ok((r.start, r.end, true)),
            Err(_) => Err(s3_err(S3ErrorCode::InvalidRange)),
        },
    }
}

/// The object, or NoSuchKey (NoSuchBucket for a missing bucket).
pub async fn load_object(s3: &PreflightS3, bucket: &str, key: &str) -> S3Result<ObjectRecord> {
    s3.bucket(bucket)?;
    s3.meta
        .get_object(bucket, key)
        .await
        .map_err(store_err)?
        .ok_or_else(|| s3_err(S3ErrorCode::NoSuchKey))
}

/// The byte range of a `partNumber` request.
fn part_range(obj: &ObjectRecord, part: i32) -> S3Result<(u64, u64)> {
    match &obj.layout {
        ObjectLayout::Single { .. } if part == 1 => Ok((0, obj.size)),
        ObjectLayout::Parts { parts } => {
            let mut offset = 0;
            for p in parts {
                if i64::from(p.number) == i64::from(part) {
                    return Ok((offset, offset + p.size));
                }
                offset += p.size;
            }
            Err(invalid_part_number())
        }
        _ => Err(invalid_part_number()),
    }
}

fn invalid_part_number() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("InvalidPartNumber".into()),
        "The requested partnumber is not satisfiable",
    );
    e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
    e
}

pub fn parts_count(obj: &ObjectRecord) -> Option<i32> {
    match &obj.layout {
        ObjectLayout::Parts { parts } => Some(saturating_i32(parts.len())),
        ObjectLayout::Single { .. } => None,
    }
}

/// What a GET or HEAD sends: the object, after its preconditions held, and
/// the byte range `[start, end)`.
pub struct ReadView {
    pub obj: ObjectRecord,
    pub start: u64,
    pub end: u64,
    pub partial: bool,
    /// The request sent `x-amz-checksum-mode: ENABLED`.
    pub checksum_mode: bool,
}

impl ReadView {
    /// A stored full-object checksum: only when the request asked for
    /// checksums (`x-amz-checksum-mode: ENABLED`, as S3 requires) and for a
    /// response with every byte.
    pub fn checksum(&self, algo: ChecksumAlgo) -> Option<String> {
        (self.checksum_mode && !self.partial)
            .then(|| stored_checksum(&self.obj, algo))
            .flatten()
    }

    pub fn status(&self) -> http::StatusCode {
        if self.partial {
            http::StatusCode::PARTIAL_CONTENT
        } else {
            http::StatusCode::OK
        }
    }
}

/// What a GetObject or HeadObject input asks for (two generated types
/// with the same field names).
pub trait ReadInput {
    fn bucket(&self) -> &str;
    fn key(&self) -> &str;
    fn conditions(&self) -> Conditions<'_>;
    fn part_number(&self) -> Option<i32>;
    fn range(&self) -> Option<&Range>;
    fn checksum_mode(&self) -> bool;
}

macro_rules! read_input {
    ($input:ty) => {
        impl ReadInput for $input {
            fn bucket(&self) -> &str {
                &self.bucket
            }
            fn key(&self) -> &str {
                &self.key
            }
            fn conditions(&self) -> Conditions<'_> {
                Conditions {
                    if_match: self.if_match.as_ref(),
                    if_none_match: self.if_none_match.as_ref(),
                    if_modified_since: self.if_modified_since.as_ref(),
                    if_unmodified_since: self.if_unmodified_since.as_ref(),
                }
            }
            fn part_number(&self) -> Option<i32> {
                self.part_number
            }
            fn range(&self) -> Option<&Range> {
                self.range.as_ref()
            }
            fn checksum_mode(&self) -> bool {
                self.checksum_mode
                    .as_ref()
                    .is_some_and(|m| m.as_str() == s3s::dto::ChecksumMode::ENABLED)
            }
        }
    };
}

read_input!(GetObjectInput);
read_input!(HeadObjectInput);

/// Looks up the object a GET or HEAD names, checks its preconditions and
/// resolves the bytes to send.
pub async fn read_view(s3: &PreflightS3, input: &impl ReadInput) -> S3Result<ReadView> {
    let part_number = input.part_number();
    if let Some(n) = part_number {
        check_part_number(n)?;
    }
    let obj = load_object(s3, input.bucket(), input.key()).await?;
    check_conditions(&obj, &input.conditions())?;
    let (start, end, partial) = match part_number {
        Some(n) => {
            let (s, e) = part_range(&obj, n)?;
            (s, e, parts_count(&obj).is_some())
        }
        None => resolve_range(input.range(), obj.size)?,
    };
    Ok(ReadView {
        obj,
        start,
        end,
        partial,
        checksum_mode: input.checksum_mode(),
    })
}

/// Streams bytes `[start, end)` of an object.
pub async fn object_stream(
    blobs: Arc<dyn BlobStore>,
    obj: &ObjectRecord,
    start: u64,
    end: u64,
) -> S3Result<StreamingBlob> {
    let len = end - start;
    let stream = match &obj.layout {
        ObjectLayout::Single { blob } => blobs.read(blob, start, len).await.map_err(store_err)?,
        ObjectLayout::Parts { parts } => {
            // The parts that overlap the range, each with its own sub-range.
            let mut segments = Vec::new();
            let mut offset = 0u64;
            for p in parts {
                let (p_start, p_end) = (offset, offset + p.size);
                offset = p_end;
                if p_end <= start || p_start >= end {
                    continue;
                }
                let from = start.max(p_start) - p_start;
                let to = end.min(p_end) - p_start;
                segments.push((p.blob.clone(), from, to - from));
            }
            futures::stream::iter(segments)
                .then(move |(blob, from, n)| {
                    let blobs = blobs.clone();
                    async move {
                        blobs
                            .read(&blob, from, n)
                            .await
                            .map_err(std::io::Error::other)
                    }
                })
                .try_flatten()
                .boxed()
        }
    };
    Ok(StreamingBlob::wrap(sync_wrapper::SyncStream::new(stream)))
}

/// The ETag value without quotes, for s3s's ETag type.
pub fn etag_of(quoted: &str) -> ETag {
    ETag::Strong(quoted.trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use preflight_store::{BlobId, ObjectHeaders};

    fn obj() -> ObjectRecord {
        ObjectRecord {
            bucket: "b".into(),
            key: "k".into(),
            size: 10,
            etag: "\"abc\"".into(),
            last_modified: OffsetDateTime::from_unix_timestamp(1_000_000).unwrap(),
            acl: "private".into(),
            headers: ObjectHeaders::default(),
            layout: ObjectLayout::Single {
                blob: BlobId::new(),
            },
        }
    }

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from(OffsetDateTime::from_unix_timestamp(secs).unwrap())
    }

    fn code(r: S3Result<()>) -> Option<S3ErrorCode> {
        r.err().map(|e| e.code().clone())
    }

    #[test]
    fn preconditions() {
        let o = obj();
        let tag = ETagCondition::ETag(ETag::Strong("abc".into()));
        let other = ETagCondition::ETag(ETag::Strong("zzz".into()));
        let none = Conditions {
            if_match: None,
            if_none_match: None,
            if_modified_since: None,
            if_unmodified_since: None,
        };
        assert_eq!(code(check_conditions(&o, &none)), None);
        let c = Conditions {
            if_match: Some(&other),
            ..none
        };
        assert_eq!(
            code(check_conditions(&o, &c)),
            Some(S3ErrorCode::PreconditionFailed)
        );
        // If-Match passing makes If-Unmodified-Since irrelevant.
        let old = ts(10);
        let c = Conditions {
            if_match: Some(&tag),
            if_unmodified_since: Some(&old),
            ..none
        };
        assert_eq!(code(check_conditions(&o, &c)), None);
        let c = Conditions {
            if_unmodified_since: Some(&old),
            ..none
        };
        assert_eq!(
            code(check_conditions(&o, &c)),
            Some(S3ErrorCode::PreconditionFailed)
        );
        let c = Conditions {
            if_none_match: Some(&tag),
            ..none
        };
        assert_eq!(
            code(check_conditions(&o, &c)),
            Some(S3ErrorCode::NotModified)
        );
        let later = ts(2_000_000);
        let c = Conditions {
            if_modified_since: Some(&later),
            ..none
        };
        assert_eq!(
            code(check_conditions(&o, &c)),
            Some(S3ErrorCode::NotModified)
        );
        // If-None-Match not matching overrides If-Modified-Since.
        let c = Conditions {
            if_none_match: Some(&other),
            if_modified_since: Some(&later),
            ..none
        };
        assert_eq!(code(check_conditions(&o, &c)), None);
    }

    #[test]
    fn part_numbers() {
        assert!(check_part_number(-1).is_err());
        assert!(check_part_number(0).is_err());
        assert_eq!(check_part_number(1).unwrap(), 1);
        assert_eq!(check_part_number(10_000).unwrap(), 10_000);
        assert!(check_part_number(10_001).is_err());
    }

    #[test]
    fn ranges() {
        assert_eq!(resolve_range(None, 10).unwrap(), (0, 10, false));
        let r = Range::parse("bytes=2-4").unwrap();
        assert_eq!(resolve_range(Some(&r), 10).unwrap(), (2, 5, true));
        let r = Range::parse("bytes=-3").unwrap();
        assert_eq!(resolve_range(Some(&r), 10).unwrap(), (7, 10, true));
        let r = Range::parse("bytes=5-").unwrap();
        assert_eq!(resolve_range(Some(&r), 10).unwrap(), (5, 10, true));
        let r = Range::parse("bytes=20-").unwrap();
        assert!(resolve_range(Some(&r), 10).is_err());
    }
}
