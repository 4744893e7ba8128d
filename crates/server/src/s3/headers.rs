//! Object HTTP metadata: from request inputs to the store, and back to
//! GET/HEAD outputs.

use http::HeaderMap;
use preflight_store::{ObjectHeaders, ObjectRecord};
use s3s::dto::{Metadata, Timestamp, TimestampFormat};
use s3s::{S3ErrorCode, S3Result};

use super::write::ChecksumAlgo;
use crate::errors::s3_err;

/// S3 limits user metadata (keys and values, UTF-8 bytes) to 2 KB.
const MAX_USER_METADATA: usize = 2 * 1024;

pub struct HeaderInputs<'a> {
    pub content_type: Option<&'a str>,
    pub cache_control: Option<&'a str>,
    pub content_disposition: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
    pub content_language: Option<&'a str>,
    pub expires: Option<&'a Timestamp>,
    pub metadata: Option<&'a Metadata>,
}

pub fn format_http_date(ts: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    ts.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

pub fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

/// Builds stored headers, enforcing the user-metadata size limit.
pub fn object_headers(inputs: HeaderInputs<'_>) -> S3Result<ObjectHeaders> {
    let mut user_metadata: Vec<(String, String)> = inputs
        .metadata
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    user_metadata.sort();
    let size: usize = user_metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_USER_METADATA {
        return Err(s3_err(S3ErrorCode::MetadataTooLarge));
    }
    // aws-chunked is a transfer detail of the upload, not the object's encoding.
    let content_encoding = inputs.content_encoding.and_then(|ce| {
        let kept: Vec<&str> = ce
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
            .collect();
        (!kept.is_empty()).then(|| kept.join(", "))
    });
    Ok(ObjectHeaders {
        content_type: inputs.content_type.map(str::to_owned),
        cache_control: inputs.cache_control.map(str::to_owned),
        content_disposition: inputs.content_disposition.map(str::to_owned),
        content_encoding,
        content_language: inputs.content_language.map(str::to_owned),
        expires: inputs.expires.and_then(format_http_date),
        user_metadata,
        checksums: Vec::new(),
    })
}

pub fn metadata_map(h: &ObjectHeaders) -> Option<Metadata> {
    (!h.user_metadata.is_empty()).then(|| h.user_metadata.iter().cloned().collect())
}

/// The checksum algorithms a request asks for (headers, the SDK algorithm
/// header, and the trailer announcement) and the values it sent in headers.
pub fn requested_checksums(
    headers: &HeaderMap,
) -> (Vec<ChecksumAlgo>, Vec<(ChecksumAlgo, String)>) {
    let mut algos = Vec::new();
    let mut values = Vec::new();
    for algo in ChecksumAlgo::ALL {
        if let Some(v) = headers.get(algo.header()).and_then(|v| v.to_str().ok()) {
            algos.push(algo);
            values.push((algo, v.to_owned()));
        }
    }
    let named = ["x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .filter_map(ChecksumAlgo::from_name);
    let trailer = headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter_map(ChecksumAlgo::from_header);
    for algo in named.chain(trailer) {
        if !algos.contains(&algo) {
            algos.push(algo);
        }
    }
    (algos, values)
}

/// Checksum values sent as trailers of an aws-chunked body.
pub fn trailer_checksums(trailers: Option<HeaderMap>) -> Vec<(ChecksumAlgo, String)> {
    let Some(trailers) = trailers else {
        return Vec::new();
    };
    ChecksumAlgo::ALL
        .into_iter()
        .filter_map(|a| {
            trailers
                .get(a.header())
                .and_then(|v| v.to_str().ok())
                .map(|v| (a, v.to_owned()))
        })
        .collect()
}

/// The stored value of one checksum of an object.
pub fn stored_checksum(obj: &ObjectRecord, algo: ChecksumAlgo) -> Option<String> {
    obj.headers
        .checksums
        .iter()
        .find(|(n, _)| n == algo.name())
        .map(|(_, v)| v.clone())
}
