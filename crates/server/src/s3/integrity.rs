//! The integrity headers S3 requires on small XML bodies (PutBucketCors,
//! DeleteObjects): `Content-MD5` or an `x-amz-checksum-*` value, and the one
//! given must match the body.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http::HeaderMap;
use md5::Digest as _;
use s3s::{S3Error, S3ErrorCode, S3Result};

use super::write::{ChecksumAlgo, checksum_of};
use crate::errors::s3_err;

/// Checks the body against its `Content-MD5` and `x-amz-checksum-*` headers;
/// InvalidRequest when there is neither (spec §1 for PutBucketCors; S3 asks
/// the same of DeleteObjects).
pub fn verify_integrity(headers: &HeaderMap, body: &[u8]) -> S3Result<()> {
    let mut present = false;
    if let Some(md5) = headers.get("content-md5").and_then(|v| v.to_str().ok()) {
        present = true;
        let computed: [u8; 16] = md5::Md5::digest(body).into();
        match B64.decode(md5.trim()) {
            Ok(d) if d.len() == 16 && d == computed => {}
            Ok(d) if d.len() == 16 => return Err(s3_err(S3ErrorCode::BadDigest)),
            _ => return Err(s3_err(S3ErrorCode::InvalidDigest)),
        }
    }
    for algo in ChecksumAlgo::ALL {
        if let Some(v) = headers.get(algo.header()).and_then(|v| v.to_str().ok()) {
            present = true;
            if checksum_of(algo, body) != v.trim() {
                return Err(S3Error::with_message(
                    S3ErrorCode::BadDigest,
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        algo.name()
                    ),
                ));
            }
        }
    }
    if present {
        Ok(())
    } else {
        Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Missing required header for this request: Content-MD5",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_header_required() {
        let body = b"<CORSConfiguration/>";
        let err = verify_integrity(&HeaderMap::new(), body).unwrap_err();
        assert_eq!(*err.code(), S3ErrorCode::InvalidRequest);
        let mut h = HeaderMap::new();
        let md5 = B64.encode(md5::Md5::digest(body));
        h.insert("content-md5", md5.parse().unwrap());
        assert!(verify_integrity(&h, body).is_ok());
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-checksum-crc32",
            checksum_of(ChecksumAlgo::Crc32, body).parse().unwrap(),
        );
        assert!(verify_integrity(&h, body).is_ok());
        h.insert("x-amz-checksum-crc32", "AAAAAA==".parse().unwrap());
        assert_eq!(
            *verify_integrity(&h, body).unwrap_err().code(),
            S3ErrorCode::BadDigest
        );
    }
}
