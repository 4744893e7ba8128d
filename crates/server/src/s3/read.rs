//! Reading objects: conditional requests, ranges, and streaming the bytes of
//! a single blob or of a multipart manifest.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use preflight_store::{BlobStore, ObjectLayout, ObjectRecord};
use s3s::dto::{ETag, ETagCondition, Range, StreamingBlob, Timestamp};
use s3s::{S3ErrorCode, S3Result};
use time::OffsetDateTime;

use crate::errors::{s3_err, store_err};

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
        Some(cond) if etag_matches(cond, &obj.etag) => return Err(not_modified()),
        Some(_) => {}
        None => {
            if let Some(since) = c.if_modified_since
                && modified <= seconds(OffsetDateTime::from(since.clone()))
            {
                return Err(not_modified());
            }
        }
    }
    Ok(())
}

fn not_modified() -> s3s::S3Error {
    let mut e = s3s::S3Error::new(S3ErrorCode::NotModified);
    e.set_status_code(http::StatusCode::NOT_MODIFIED);
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
