//! Object HTTP metadata: from request inputs to the store, and back to
//! GET/HEAD outputs; and the request headers S3 checks before an operation
//! runs (storage class, grants, integrity headers).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http::HeaderMap;
use preflight_store::{ObjectHeaders, ObjectRecord};
use s3s::dto::{
    CopyObjectInput, CreateBucketInput, CreateMultipartUploadInput, Metadata, PutBucketAclInput,
    PutObjectAclInput, PutObjectInput, StorageClass, Timestamp, TimestampFormat,
};
use s3s::{S3Error, S3ErrorCode, S3Result};

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

/// The storage classes S3 accepts in `x-amz-storage-class`.
const STORAGE_CLASSES: [&str; 11] = [
    StorageClass::STANDARD,
    StorageClass::REDUCED_REDUNDANCY,
    StorageClass::STANDARD_IA,
    StorageClass::ONEZONE_IA,
    StorageClass::INTELLIGENT_TIERING,
    StorageClass::GLACIER,
    StorageClass::DEEP_ARCHIVE,
    StorageClass::GLACIER_IR,
    StorageClass::OUTPOSTS,
    StorageClass::SNOW,
    StorageClass::EXPRESS_ONEZONE,
];

/// Refuses a storage class S3 does not know. Preflight has one class of
/// storage: a known class is accepted and the object is kept, and reported,
/// as STANDARD.
pub fn check_storage_class(class: Option<&StorageClass>) -> S3Result<()> {
    match class {
        Some(c) if !STORAGE_CLASSES.contains(&c.as_str()) => Err(S3Error::with_message(
            S3ErrorCode::InvalidStorageClass,
            "The storage class you specified is not valid",
        )),
        _ => Ok(()),
    }
}

/// The `x-amz-grant-*` headers an operation input carries: header name, and
/// whether the request sent it.
pub trait GrantHeaders {
    fn grant_headers(&self) -> [(&'static str, bool); 5];
}

macro_rules! grant_headers {
    ($input:ty, write: $has_write:tt) => {
        impl GrantHeaders for $input {
            fn grant_headers(&self) -> [(&'static str, bool); 5] {
                [
                    ("x-amz-grant-full-control", self.grant_full_control.is_some()),
                    ("x-amz-grant-read", self.grant_read.is_some()),
                    ("x-amz-grant-read-acp", self.grant_read_acp.is_some()),
                    ("x-amz-grant-write", grant_headers!(@write self, $has_write)),
                    ("x-amz-grant-write-acp", self.grant_write_acp.is_some()),
                ]
            }
        }
    };
    (@write $self:ident, true) => {
        $self.grant_write.is_some()
    };
    (@write $self:ident, false) => {
        false
    };
}

grant_headers!(CreateBucketInput, write: true);
grant_headers!(PutBucketAclInput, write: true);
grant_headers!(PutObjectAclInput, write: true);
grant_headers!(PutObjectInput, write: false);
grant_headers!(CopyObjectInput, write: false);
grant_headers!(CreateMultipartUploadInput, write: false);

/// Refuses explicit grants: Preflight keeps one canned ACL per bucket and
/// object, so a grant it cannot express would otherwise be dropped silently.
pub fn refuse_grant_headers(input: &impl GrantHeaders) -> S3Result<()> {
    match input.grant_headers().into_iter().find(|(_, sent)| *sent) {
        Some((name, _)) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            format!(
                "The {name} header is not implemented: Preflight supports canned ACLs only (x-amz-acl)."
            ),
        )),
        None => Ok(()),
    }
}

/// What PutObject, CopyObject and CreateMultipartUpload say about the object
/// they create (three generated input types with the same field names).
pub trait NewObjectInput: GrantHeaders {
    fn storage_class(&self) -> Option<&StorageClass>;
    fn canned_acl(&self) -> Option<&str>;
    fn header_inputs(&self) -> HeaderInputs<'_>;
    /// The request asks for server-side encryption (SSE-S3, SSE-KMS or
    /// SSE-C headers).
    fn asks_encryption(&self) -> bool;
}

macro_rules! new_object_input {
    ($input:ty) => {
        impl NewObjectInput for $input {
            fn storage_class(&self) -> Option<&StorageClass> {
                self.storage_class.as_ref()
            }
            fn canned_acl(&self) -> Option<&str> {
                self.acl.as_ref().map(|a| a.as_str())
            }
            fn header_inputs(&self) -> HeaderInputs<'_> {
                HeaderInputs {
                    content_type: self.content_type.as_deref(),
                    cache_control: self.cache_control.as_deref(),
                    content_disposition: self.content_disposition.as_deref(),
                    content_encoding: self.content_encoding.as_deref(),
                    content_language: self.content_language.as_deref(),
                    expires: self.expires.as_ref(),
                    metadata: self.metadata.as_ref(),
                }
            }
            fn asks_encryption(&self) -> bool {
                self.server_side_encryption.is_some()
                    || self.sse_customer_algorithm.is_some()
                    || self.sse_customer_key.is_some()
                    || self.sse_customer_key_md5.is_some()
                    || self.ssekms_key_id.is_some()
                    || self.ssekms_encryption_context.is_some()
                    || self.bucket_key_enabled == Some(true)
            }
        }
    };
}

new_object_input!(PutObjectInput);
new_object_input!(CopyObjectInput);
new_object_input!(CreateMultipartUploadInput);

/// The checks S3 makes on the headers of a request that creates an object,
/// before it reads any body: the storage class and the grants.
pub fn check_new_object(input: &impl NewObjectInput) -> S3Result<()> {
    check_storage_class(input.storage_class())?;
    if input.asks_encryption() {
        return Err(encryption_not_implemented());
    }
    refuse_grant_headers(input)
}

/// Server-side encryption is not implemented, so a write that asks for it
/// is refused rather than stored as plaintext while its client believes
/// it encrypted.
pub fn encryption_not_implemented() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NotImplemented,
        "Preflight does not implement server-side encryption (SSE-S3, SSE-KMS, SSE-C): it stores objects as sent; remove the x-amz-server-side-encryption* headers",
    )
}

/// DeleteObjects needs an integrity header: `Content-MD5` or, as S3 now also
/// accepts, an `x-amz-checksum-*` value (in a header or announced as a
/// trailer). A `Content-MD5` that is not a base64 MD5 is refused here too.
pub fn require_integrity_header(headers: &HeaderMap) -> S3Result<()> {
    let md5 = headers.get("content-md5").map(|v| v.to_str().unwrap_or(""));
    if let Some(md5) = md5
        && B64
            .decode(md5.trim())
            .ok()
            .filter(|d| d.len() == 16)
            .is_none()
    {
        return Err(s3_err(S3ErrorCode::InvalidDigest));
    }
    let (_, values) = requested_checksums(headers);
    let trailer = headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|h| ChecksumAlgo::from_header(h).is_some()));
    if md5.is_none() && values.is_empty() && !trailer {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Missing required header for this request: Content-MD5",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn storage_classes() {
        for c in STORAGE_CLASSES {
            assert!(check_storage_class(Some(&StorageClass::from(c.to_owned()))).is_ok());
        }
        assert!(check_storage_class(None).is_ok());
        for bad in ["BOGUS", "standard", ""] {
            let e = check_storage_class(Some(&StorageClass::from(bad.to_owned()))).unwrap_err();
            assert_eq!(*e.code(), S3ErrorCode::InvalidStorageClass, "{bad}");
        }
    }

    #[test]
    fn grants_are_refused_by_name() {
        let input = PutObjectAclInput {
            grant_write: Some("uri=\"x\"".to_owned()),
            ..Default::default()
        };
        let e = refuse_grant_headers(&input).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::NotImplemented);
        assert!(e.message().unwrap().contains("x-amz-grant-write "));
        assert!(refuse_grant_headers(&PutObjectAclInput::default()).is_ok());
    }

    #[test]
    fn delete_objects_integrity_headers() {
        let missing = require_integrity_header(&headers(&[])).unwrap_err();
        assert_eq!(*missing.code(), S3ErrorCode::InvalidRequest);
        // Only naming an algorithm is not a checksum.
        let named = headers(&[("x-amz-sdk-checksum-algorithm", "CRC32")]);
        assert!(require_integrity_header(&named).is_err());
        for ok in [
            headers(&[("content-md5", "XrY7u+Ae7tCTyyK7j1rNww==")]),
            headers(&[("x-amz-checksum-crc32", "DUoRhQ==")]),
            headers(&[("x-amz-trailer", "x-amz-checksum-crc64nvme")]),
        ] {
            assert!(require_integrity_header(&ok).is_ok(), "{ok:?}");
        }
        let bad = require_integrity_header(&headers(&[("content-md5", "nope")])).unwrap_err();
        assert_eq!(*bad.code(), S3ErrorCode::InvalidDigest);
    }
}
