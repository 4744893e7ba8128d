//! Workarounds for what s3s 0.14.1 does differently from S3, in one place.
//! The front calls them through one function per stage: [`refuse`] before
//! the signature checks, [`prepare`] on the request handed to s3s, and
//! [`fix_response`] on what s3s answers. Drop a workaround when the s3s
//! version it names no longer needs it; the test listed for it tells.
//!
//! The tests that fail when a workaround is removed (besides the unit
//! tests below):
//! - `presigned_expiry_error`: tests/s3_api.rs `presigned_urls`
//!   (`X-Amz-Expires=604801` is AuthorizationQueryParametersError).
//! - `merge_content_encoding`: tests/s3s_compat.rs
//!   `repeated_content_encodings_are_one_list`; tests/s3_objects.rs
//!   `flexible_checksums_are_verified` (the SDK sends `gzip` and
//!   `aws-chunked` as two header lines).
//! - `clear_not_modified_body`: tests/s3_objects.rs
//!   `conditional_get_and_head` (a raw 304 has no body), tests/cors_api.rs
//!   `cors_headers_on_error_responses`.
//! - `fix_error_body`: tests/s3s_compat.rs
//!   `s3s_errors_carry_ids_and_resource` and
//!   `s3s_error_messages_keep_apostrophes`; `sdk_err` and `expect_error`
//!   in tests/s3_util assert a `RequestId` on every error.
//! - `require_final_chunk`: tests/signatures.rs
//!   `unsigned_headers_and_scopes_over_every_entrance`, rows "chunked
//!   without its final chunk" and "chunked unsigned without its final
//!   chunk" (IncompleteBody, nothing stored).
//! - `sigv2_bucket_path`: tests/signatures.rs
//!   `sigv2_bucket_requests_sign_the_bucket_with_its_slash`.
//! - `unquote_attributes_etag`: tests/s3_probes.rs
//!   `get_object_attributes_of_single_and_multipart_objects`.
//! - `checked_delete_objects_body`: tests/s3_errors.rs
//!   `delete_objects_digest_must_match` and
//!   `delete_objects_needs_an_integrity_header`.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body as HttpBody, Frame};
use s3s::{Body, S3Error};

use crate::errors::{self, ErrorDoc};
use crate::host::Target;
use crate::request::Operation;

/// The longest validity of a presigned URL: seven days.
const MAX_PRESIGNED_EXPIRES: u64 = 7 * 24 * 3600;

/// The largest DeleteObjects body read (1000 keys of 1024 bytes fit).
const DELETE_OBJECTS_MAX_BODY: usize = 2 * 1024 * 1024;

/// Stage 1, before the signature rules: what s3s would accept but S3
/// refuses from the URL alone.
pub(super) fn refuse(query: Option<&str>, request_id: &str) -> Option<Response<Body>> {
    let message = presigned_expiry_error(query)?;
    let doc = ErrorDoc::new(
        StatusCode::BAD_REQUEST,
        "AuthorizationQueryParametersError",
        message,
    );
    Some(doc.request_id(request_id).into_response())
}

/// Stage 2, the request handed to s3s: headers s3s would refuse, bodies
/// it would not check.
pub(super) async fn prepare(
    req: Request<Body>,
    operation: Operation,
    target: &Target,
) -> Result<Request<Body>, S3Error> {
    let (mut parts, body) = req.into_parts();
    if matches!(target, Target::Bucket(_)) {
        sigv2_bucket_path(&mut parts);
    }
    merge_content_encoding(&mut parts.headers);
    let body = require_final_chunk(&parts.headers, body);
    let body = if operation == Operation::DeleteObjects {
        checked_delete_objects_body(&parts.headers, body).await?
    } else {
        body
    };
    Ok(Request::from_parts(parts, body))
}

/// Stage 3, what s3s answered: the body of a 304, the error documents.
pub(super) fn fix_response(
    res: &mut Response<Body>,
    request_id: &str,
    target: &Target,
    operation: Operation,
) {
    if res.status() == StatusCode::NOT_MODIFIED {
        clear_not_modified_body(res);
    } else if res.status().is_client_error() || res.status().is_server_error() {
        fix_error_body(res, request_id, target);
    } else if operation == Operation::GetObjectAttributes {
        unquote_attributes_etag(res);
    }
}

/// GetObjectAttributes is the one answer where S3 sends the ETag without
/// its quotes; s3s 0.14.1 quotes every ETag it renders.
fn unquote_attributes_etag(res: &mut Response<Body>) {
    let Some(body) = res.body().bytes() else {
        return;
    };
    let Ok(xml) = std::str::from_utf8(&body) else {
        return;
    };
    let Some(start) = xml.find("<ETag>") else {
        return;
    };
    let value_start = start + "<ETag>".len();
    let Some(len) = xml[value_start..].find("</ETag>") else {
        return;
    };
    let value = &xml[value_start..value_start + len];
    let bare = value
        .strip_prefix("&quot;")
        .and_then(|v| v.strip_suffix("&quot;"))
        .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')));
    let Some(bare) = bare else {
        return;
    };
    let fixed = format!("{}{bare}{}", &xml[..value_start], &xml[value_start + len..]);
    if let Ok(v) = HeaderValue::from_str(&fixed.len().to_string()) {
        res.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    *res.body_mut() = Body::from(Bytes::from(fixed));
}

/// SigV2's CanonicalizedResource of a bucket is `/bucket/` (AWS: "for a
/// request that addresses a bucket ... append the trailing slash"), and
/// the clients sign it so for a path-style `/bucket`; s3s 0.14.1 signs
/// the path as it came. A SigV2 request (header or presigned) for
/// `/bucket` is handed to s3s as `/bucket/`, which it routes the same.
fn sigv2_bucket_path(parts: &mut http::request::Parts) {
    let path = parts.uri.path();
    let one_segment = path.len() > 1 && !path[1..].contains('/');
    if !one_segment || !is_sigv2(parts) {
        return;
    }
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{path}/?{q}"),
        None => format!("{path}/"),
    };
    let mut uri = parts.uri.clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        uri.path_and_query = Some(pq);
        if let Ok(rewritten) = http::Uri::from_parts(uri) {
            parts.uri = rewritten;
        }
    }
}

/// Signed with SigV2: an `Authorization: AWS ...` header, or a presigned
/// URL with `AWSAccessKeyId` and `Signature`.
fn is_sigv2(parts: &http::request::Parts) -> bool {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS "));
    let query = parts.uri.query().is_some_and(|q| {
        let has = |name: &str| q.split('&').any(|kv| kv.split('=').next() == Some(name));
        has("AWSAccessKeyId") && has("Signature")
    });
    header || query
}

/// s3s 0.14.1 accepts any `X-Amz-Expires`; S3 refuses more than seven days.
fn presigned_expiry_error(query: Option<&str>) -> Option<&'static str> {
    let query = query?;
    let value = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("X-Amz-Expires="))?;
    match value.parse::<i64>() {
        Ok(secs) if secs < 0 => Some("X-Amz-Expires must be non-negative"),
        Ok(secs) if secs.unsigned_abs() <= MAX_PRESIGNED_EXPIRES => None,
        Ok(_) => Some("X-Amz-Expires must be less than a week (in seconds) that is; 604800"),
        Err(_) => Some("X-Amz-Expires should be a number"),
    }
}

/// The AWS SDKs send `Content-Encoding: gzip` and `Content-Encoding:
/// aws-chunked` as two header lines; s3s 0.14.1 refuses a repeated header.
/// Joins them into one list as RFC 9110 §5.3 allows, with a bare `,` so
/// that the SigV4 canonical value (repeated values joined by `,`) stays the
/// same.
fn merge_content_encoding(headers: &mut HeaderMap) {
    let values: Vec<&[u8]> = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    if values.len() < 2 {
        return;
    }
    let joined = values.join(&b","[..]);
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::CONTENT_ENCODING, v);
    }
}

/// A failed read condition (If-None-Match, If-Modified-Since) can only
/// leave an operation as an `S3Error` (NotModified, status 304), which
/// s3s 0.14.1 renders as an XML body like any error; a 304 has none (RFC
/// 9110 §15.4.5), so the body and its headers go.
fn clear_not_modified_body(res: &mut Response<Body>) {
    *res.body_mut() = Body::empty();
    res.headers_mut().remove(header::CONTENT_TYPE);
    res.headers_mut().remove(header::CONTENT_LENGTH);
}

/// s3s 0.14.1 renders an `S3Error` inside its service (no hook to render
/// it ourselves) as `Code` and `Message` only, escaping apostrophes, and
/// without `RequestId`/`HostId` or the resource S3 names (`Key` for
/// NoSuchKey, `BucketName` for NoSuchBucket). Its body is read back into
/// an [`ErrorDoc`] once, completed and rendered as every other error.
fn fix_error_body(res: &mut Response<Body>, request_id: &str, target: &Target) {
    let Some(body) = res.body().bytes() else {
        return;
    };
    let Some(mut doc) = std::str::from_utf8(&body)
        .ok()
        .and_then(|xml| ErrorDoc::from_xml(res.status(), xml))
    else {
        return;
    };
    let resource = match (doc.code.as_str(), target) {
        ("NoSuchKey", Target::Object(_, key)) => Some(("Key", key.as_str())),
        ("NoSuchBucket", _) => target.bucket().map(|b| ("BucketName", b)),
        // A bucket without the configuration asked for.
        (
            "ServerSideEncryptionConfigurationNotFoundError"
            | "NoSuchWebsiteConfiguration"
            | "ReplicationConfigurationNotFoundError"
            | "ObjectLockConfigurationNotFoundError"
            | "OwnershipControlsNotFoundError"
            | "NoSuchTagSet"
            | "NoSuchLifecycleConfiguration"
            | "NoSuchCORSConfiguration"
            | "NoSuchBucketPolicy",
            _,
        ) => target.bucket().map(|b| ("BucketName", b)),
        _ => None,
    };
    if let Some((name, value)) = resource
        && !doc.has_field(name)
    {
        doc = doc.field(name, value);
    }
    let xml = Bytes::from(doc.request_id(request_id).to_xml());
    if let Ok(v) = HeaderValue::from_str(&xml.len().to_string()) {
        res.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    if !res.headers().contains_key(header::CONTENT_TYPE) {
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
    }
    *res.body_mut() = Body::from(xml);
}

/// DeleteObjects must carry `Content-MD5` or an `x-amz-checksum-*` value
/// that matches its body. s3s 0.14.1 parses the XML before the operation
/// runs and hands it only the parsed keys, so the bytes are checked here
/// and handed on. A streamed (aws-chunked) body carries its checksum in a
/// trailer, which s3s verifies as it decodes.
async fn checked_delete_objects_body(headers: &HeaderMap, mut body: Body) -> Result<Body, S3Error> {
    if is_streaming(headers) {
        return Ok(body);
    }
    let bytes = body
        .store_all_limited(DELETE_OBJECTS_MAX_BODY)
        .await
        .map_err(|_| errors::s3_err(s3s::S3ErrorCode::MalformedXML))?;
    crate::s3::integrity::verify_integrity(headers, &bytes)?;
    Ok(Body::from(bytes))
}

/// An aws-chunked body (`x-amz-content-sha256: STREAMING-*`).
fn is_streaming(headers: &HeaderMap) -> bool {
    headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("STREAMING-"))
}

/// The longest chunk header line followed; past it the framing is left to
/// s3s, which refuses it.
const MAX_HEADER_LINE: usize = 4096;

#[derive(Debug, thiserror::Error)]
#[error("the aws-chunked body ended before its final zero-length chunk")]
struct MissingFinalChunk;

/// s3s 0.14.1's aws-chunked decoder treats the end of the stream between
/// chunks as a normal end, so a body cut after any whole chunk would be
/// stored as if complete. This wraps the body of an `aws-chunked` request
/// (`x-amz-content-sha256: STREAMING-*`), follows the chunk framing of the
/// raw bytes and turns an end before the zero-length final chunk into an
/// error, which the body path answers as `IncompleteBody` (nothing is
/// stored). Chunk signatures and trailers stay s3s's to verify. Other
/// bodies are returned as they are.
fn require_final_chunk(headers: &HeaderMap, body: Body) -> Body {
    if !is_streaming(headers) {
        return body;
    }
    Body::http_body(FinalChunkBody {
        inner: body,
        framing: Framing::default(),
    })
}

struct FinalChunkBody {
    inner: Body,
    framing: Framing,
}

impl HttpBody for FinalChunkBody {
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.framing.feed(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) if !this.framing.is_done() => {
                // Report once; the stream ends after the error.
                this.framing = Framing::Done;
                Poll::Ready(Some(Err(Box::new(MissingFinalChunk))))
            }
            other => other,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Where the framing of `size[;ext]\r\n data \r\n ... 0[;ext]\r\n` is.
#[derive(Debug)]
enum Framing {
    /// Reading a chunk header line (the bytes so far).
    Header(Vec<u8>),
    /// Skipping this many bytes of chunk data and its CRLF.
    Data(u64),
    /// The final chunk was seen (trailers may follow), or the framing is
    /// not one this follows.
    Done,
}

impl Default for Framing {
    fn default() -> Self {
        Framing::Header(Vec::new())
    }
}

impl Framing {
    fn is_done(&self) -> bool {
        matches!(self, Framing::Done)
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match self {
                Framing::Done => return,
                Framing::Data(left) => {
                    // At most data.len(), so it fits a usize.
                    let n = usize::try_from(*left).map_or(data.len(), |l| l.min(data.len()));
                    *left -= n as u64;
                    data = &data[n..];
                    if *left == 0 {
                        *self = Framing::default();
                    }
                }
                Framing::Header(line) => match data.iter().position(|&b| b == b'\n') {
                    None => {
                        line.extend_from_slice(data);
                        if line.len() > MAX_HEADER_LINE {
                            *self = Framing::Done;
                        }
                        return;
                    }
                    Some(at) => {
                        line.extend_from_slice(&data[..at]);
                        data = &data[at + 1..];
                        *self = match chunk_size(line) {
                            Some(0) | None => Framing::Done,
                            Some(size) => Framing::Data(size + 2),
                        };
                    }
                },
            }
        }
    }
}

/// The size of a chunk header line `hex[;extensions]\r`.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let hex = line.split(|&b| b == b';').next()?;
    let hex = std::str::from_utf8(hex).ok()?.trim();
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_expiry_limit() {
        assert_eq!(presigned_expiry_error(None), None);
        assert_eq!(presigned_expiry_error(Some("X-Amz-Expires=604800")), None);
        assert!(presigned_expiry_error(Some("a=b&X-Amz-Expires=604801")).is_some());
        assert!(presigned_expiry_error(Some("X-Amz-Expires=-1")).is_some());
    }

    #[test]
    fn repeated_content_encodings_are_joined() {
        let mut h = HeaderMap::new();
        h.append(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        merge_content_encoding(&mut h);
        assert_eq!(h[header::CONTENT_ENCODING], "gzip");
        h.append(
            header::CONTENT_ENCODING,
            HeaderValue::from_static("aws-chunked"),
        );
        merge_content_encoding(&mut h);
        assert_eq!(h.get_all(header::CONTENT_ENCODING).iter().count(), 1);
        assert_eq!(h[header::CONTENT_ENCODING], "gzip,aws-chunked");
    }

    fn s3s_error(status: StatusCode, xml: &'static str) -> Response<Body> {
        let mut res = Response::new(Body::from(Bytes::from_static(xml.as_bytes())));
        *res.status_mut() = status;
        res
    }

    fn body_text(res: &Response<Body>) -> String {
        String::from_utf8(res.body().bytes().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn s3s_error_bodies_are_completed() {
        let mut res = s3s_error(
            StatusCode::NOT_FOUND,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code>\
             <Message>The specified key does not exist.</Message></Error>",
        );
        let target = Target::Object("b".into(), "a&b".into());
        fix_response(&mut res, "ABC", &target, Operation::GetObject);
        let text = body_text(&res);
        assert_eq!(
            text,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>\
                 <Message>The specified key does not exist.</Message><Key>a&amp;b</Key>\
                 <RequestId>ABC</RequestId><HostId>{}</HostId></Error>",
                errors::host_id("ABC")
            )
        );
        assert_eq!(
            res.headers()[header::CONTENT_LENGTH],
            text.len().to_string()
        );
        // Done twice, the document stays the same.
        fix_response(&mut res, "ABC", &target, Operation::GetObject);
        assert_eq!(body_text(&res), text);
    }

    #[test]
    fn not_modified_has_no_body() {
        let mut res = s3s_error(
            StatusCode::NOT_MODIFIED,
            "<Error><Code>NotModified</Code></Error>",
        );
        res.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("39"));
        fix_response(&mut res, "ABC", &Target::Service, Operation::ListBuckets);
        assert_eq!(res.body().bytes().as_deref(), Some(&b""[..]));
        assert!(!res.headers().contains_key(header::CONTENT_LENGTH));
    }

    fn done_after(parts: &[&[u8]]) -> bool {
        let mut f = Framing::default();
        for p in parts {
            f.feed(p);
        }
        f.is_done()
    }

    #[test]
    fn follows_chunks_to_the_final_one() {
        let sig = "a".repeat(64);
        let one = format!("5;chunk-signature={sig}\r\nhello\r\n");
        let last = format!("0;chunk-signature={sig}\r\n\r\n");
        assert!(!done_after(&[one.as_bytes()]));
        assert!(done_after(&[one.as_bytes(), last.as_bytes()]));
        // Split anywhere.
        let all = format!("{one}{last}");
        for at in 0..all.len() {
            let (a, b) = all.as_bytes().split_at(at);
            assert!(done_after(&[a, b]), "split at {at}");
            assert!(!done_after(&[&all.as_bytes()[..at]]) || at >= one.len() + 3);
        }
        assert!(done_after(&[
            b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"
        ]));
        assert!(!done_after(&[b"5\r\nhello\r\n"]));
        assert!(!done_after(&[b""]));
    }
}
