//! Streaming a request body into a new blob while hashing it: MD5 for the
//! ETag and any `x-amz-checksum-*` the client asked for. Bytes are never
//! buffered whole; the blob becomes durable before any metadata points at it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures::StreamExt;
use md5::{Digest, Md5};
use preflight_store::{BlobId, BlobStore, BlobWriter};
use s3s::dto::StreamingBlob;
use s3s::{S3Error, S3ErrorCode, S3Result};

use crate::errors::{s3_err, store_err};

/// A checksum algorithm of the `x-amz-checksum-*` family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgo {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgo {
    pub const ALL: [ChecksumAlgo; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    /// The name S3 uses (`CRC32`, `CRC64NVME`...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// The header carrying the value, lower case.
    pub fn header(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    pub fn from_header(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(name.trim()))
    }
}

enum Hasher {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64(crc64fast_nvme::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn new(algo: ChecksumAlgo) -> Self {
        match algo {
            ChecksumAlgo::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgo::Crc32c => Hasher::Crc32c(0),
            ChecksumAlgo::Crc64Nvme => Hasher::Crc64(crc64fast_nvme::Digest::new()),
            ChecksumAlgo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            ChecksumAlgo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc32(h) => h.update(data),
            Hasher::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            Hasher::Crc64(h) => h.write(data),
            Hasher::Sha1(h) => sha1::Digest::update(h, data),
            Hasher::Sha256(h) => sha2::Digest::update(h, data),
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Crc32(h) => B64.encode(h.finalize().to_be_bytes()),
            Hasher::Crc32c(c) => B64.encode(c.to_be_bytes()),
            Hasher::Crc64(h) => B64.encode(h.sum64().to_be_bytes()),
            Hasher::Sha1(h) => B64.encode(sha1::Digest::finalize(h)),
            Hasher::Sha256(h) => B64.encode(sha2::Digest::finalize(h)),
        }
    }
}

/// A body received into an unfinished blob: counted and hashed, not yet
/// durable. Dropping it discards the bytes (nothing references them), so a
/// refused or abandoned body leaves nothing behind.
pub struct Received {
    writer: Box<dyn BlobWriter>,
    pub size: u64,
    pub md5: [u8; 16],
    /// Computed checksums: (algorithm name, base64 value).
    pub checksums: Vec<(String, String)>,
}

impl Received {
    pub fn checksum(&self, algo: ChecksumAlgo) -> Option<&str> {
        find_checksum(&self.checksums, algo)
    }

    /// Makes the blob durable. Call it inside the commit point
    /// ([`super::commit_point`]) that references the blob, so that a durable
    /// blob is always either committed or released.
    pub async fn finish(self) -> S3Result<Written> {
        let (blob, _) = self.writer.finish().await.map_err(store_err)?;
        Ok(Written {
            blob,
            size: self.size,
            md5: self.md5,
            checksums: self.checksums,
        })
    }
}

/// A body written to a new durable blob.
#[derive(Debug)]
pub struct Written {
    pub blob: BlobId,
    pub size: u64,
    pub md5: [u8; 16],
    /// Computed checksums: (algorithm name, base64 value).
    pub checksums: Vec<(String, String)>,
}

impl Written {
    /// The ETag of a single-part object, with quotes.
    pub fn etag(&self) -> String {
        etag_of_md5(&self.md5)
    }
}

/// The ETag of a single-part object with this MD5, with quotes.
pub fn etag_of_md5(md5: &[u8; 16]) -> String {
    format!("\"{}\"", hex::encode(md5))
}

fn find_checksum(checksums: &[(String, String)], algo: ChecksumAlgo) -> Option<&str> {
    checksums
        .iter()
        .find(|(name, _)| name == algo.name())
        .map(|(_, v)| v.as_str())
}

/// Streams `body` into a new unfinished blob, computing MD5 and the `algos`
/// checksums. Fails with EntityTooLarge past `max_size`, IncompleteBody when
/// the stream ends before `expected_len`, RequestTimeout when the client
/// stalls.
pub async fn write_blob(
    blobs: &dyn BlobStore,
    body: Option<StreamingBlob>,
    algos: &[ChecksumAlgo],
    max_size: u64,
    expected_len: Option<u64>,
) -> S3Result<Received> {
    let mut writer = blobs.create().await.map_err(store_err)?;
    let mut md5 = Md5::new();
    let mut hashers: Vec<(ChecksumAlgo, Hasher)> =
        algos.iter().map(|&a| (a, Hasher::new(a))).collect();
    let mut size: u64 = 0;
    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                if crate::limits::is_body_timeout(&*e) {
                    let mut err = S3Error::with_message(
                        S3ErrorCode::RequestTimeout,
                        crate::limits::REQUEST_TIMEOUT_MESSAGE,
                    );
                    err.set_source(e);
                    err
                } else {
                    crate::errors::body_stream_error(e)
                }
            })?;
            size += chunk.len() as u64;
            if size > max_size {
                return Err(s3_err(S3ErrorCode::EntityTooLarge));
            }
            md5.update(&chunk);
            for (_, h) in &mut hashers {
                h.update(&chunk);
            }
            writer.write(&chunk).await.map_err(store_err)?;
        }
    }
    if let Some(expected) = expected_len
        && expected != size
    {
        let mut err = s3_err(S3ErrorCode::IncompleteBody);
        err.set_message(
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        );
        return Err(err);
    }
    Ok(Received {
        writer,
        size,
        md5: md5.finalize().into(),
        checksums: hashers
            .into_iter()
            .map(|(a, h)| (a.name().to_owned(), h.finish()))
            .collect(),
    })
}

/// Checks `Content-MD5` (base64) against the computed MD5.
pub fn verify_content_md5(content_md5: Option<&str>, md5: &[u8; 16]) -> S3Result<()> {
    let Some(sent) = content_md5 else {
        return Ok(());
    };
    if parse_content_md5(sent)? == *md5 {
        Ok(())
    } else {
        Err(s3_err(S3ErrorCode::BadDigest))
    }
}

/// A `Content-MD5` value: 16 bytes in base64, else InvalidDigest (an empty
/// value included).
pub fn parse_content_md5(sent: &str) -> S3Result<[u8; 16]> {
    B64.decode(sent.trim())
        .ok()
        .and_then(|d| <[u8; 16]>::try_from(d).ok())
        .ok_or_else(|| s3_err(S3ErrorCode::InvalidDigest))
}

/// Checks client-sent checksum values against the computed ones.
pub fn verify_checksums(expected: &[(ChecksumAlgo, String)], written: &Received) -> S3Result<()> {
    for (algo, value) in expected {
        if written.checksum(*algo) != Some(value.trim()) {
            return Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!(
                    "The {} you specified did not match the calculated checksum.",
                    algo.name()
                ),
            ));
        }
    }
    Ok(())
}

/// The base64 checksum of an in-memory body.
pub fn checksum_of(algo: ChecksumAlgo, data: &[u8]) -> String {
    let mut h = Hasher::new(algo);
    h.update(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checksum(algo: ChecksumAlgo, data: &[u8]) -> String {
        checksum_of(algo, data)
    }

    #[test]
    fn known_checksums() {
        // Values as the AWS SDKs compute them for "hello world".
        assert_eq!(checksum(ChecksumAlgo::Crc32, b"hello world"), "DUoRhQ==");
        assert_eq!(checksum(ChecksumAlgo::Crc32c, b"hello world"), "yZRlqg==");
        assert_eq!(
            checksum(ChecksumAlgo::Sha1, b"hello world"),
            "Kq5sNclPz7QV2+lfQIuc6R7oRu0="
        );
        assert_eq!(
            checksum(ChecksumAlgo::Sha256, b"hello world"),
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
    }

    #[test]
    fn content_md5() {
        let md5: [u8; 16] = Md5::digest(b"abc").into();
        assert!(verify_content_md5(Some(&B64.encode(md5)), &md5).is_ok());
        let wrong = verify_content_md5(Some(&B64.encode([0u8; 16])), &md5).unwrap_err();
        assert_eq!(*wrong.code(), S3ErrorCode::BadDigest);
        let bad = verify_content_md5(Some("not base64"), &md5).unwrap_err();
        assert_eq!(*bad.code(), S3ErrorCode::InvalidDigest);
        let empty = verify_content_md5(Some(""), &md5).unwrap_err();
        assert_eq!(*empty.code(), S3ErrorCode::InvalidDigest);
    }
}
