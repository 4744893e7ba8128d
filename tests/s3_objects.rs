//! Object operations against the real server: PutObject headers and
//! integrity checks, GetObject ranges, conditions and overrides, HeadObject,
//! DeleteObject(s), CopyObject.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod s3_util;

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ChecksumMode, MetadataDirective};
use base64::Engine;
use common::TestServer;
use common::fixtures::{
    delete_keys, get_bytes, keys, new_bucket, presign_for, presigned_get, put_object,
};
use s3_util::{expect_error, md5_b64, md5_hex, pattern, sdk_err};

/// HeadObject that must succeed.
async fn head_ok(
    s3: &Client,
    bucket: &str,
    key: &str,
) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    s3.head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap()
}

/// CRC32 (IEEE), as the `x-amz-checksum-crc32` header carries it.
fn crc32_b64(data: &[u8]) -> String {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    base64::engine::general_purpose::STANDARD.encode((!crc).to_be_bytes())
}

/// The headers `doc.json` is stored with, as GetObject and HeadObject both
/// return them (their outputs share the accessors, not a trait).
macro_rules! assert_doc_json_headers {
    ($out:expr) => {{
        let out = &$out;
        assert_eq!(out.content_type(), Some("application/json"));
        assert_eq!(out.cache_control(), Some("max-age=60"));
        assert_eq!(
            out.content_disposition(),
            Some("attachment; filename=\"doc.json\"")
        );
        assert_eq!(out.content_encoding(), Some("identity"));
        assert_eq!(out.expires_string(), Some("Tue, 01 Jan 2030 00:00:00 GMT"));
        assert_eq!(
            out.metadata().unwrap().get("color").map(String::as_str),
            Some("blue")
        );
        assert_eq!(out.content_length(), Some(7));
    }};
}

#[tokio::test]
async fn put_object_headers_and_metadata_round_trip() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "hdrs").await;
    let expires = DateTime::from_secs(1_893_456_000); // 2030-01-01T00:00:00Z
    s3.put_object()
        .bucket(&bucket)
        .key("doc.json")
        .body(ByteStream::from_static(b"{\"a\":1}"))
        .content_type("application/json")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"doc.json\"")
        .content_encoding("identity")
        .expires(expires)
        .metadata("color", "blue")
        .metadata("Owner-Name", "Ada")
        .send()
        .await
        .unwrap();

    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("doc.json")
        .send()
        .await
        .unwrap();
    assert_doc_json_headers!(got);
    let meta = got.metadata().unwrap();
    assert_eq!(meta.get("owner-name").map(String::as_str), Some("Ada"));
    assert_eq!(meta.len(), 2);
    assert_eq!(
        got.e_tag(),
        Some(format!("\"{}\"", md5_hex(b"{\"a\":1}")).as_str())
    );

    let head = head_ok(&s3, &bucket, "doc.json").await;
    assert_doc_json_headers!(head);
    assert_eq!(head.e_tag(), got.e_tag());

    // Raw HEAD: the headers themselves, and no body.
    let url = s3
        .head_object()
        .bucket(&bucket)
        .key("doc.json")
        .presigned(presign_for(300))
        .await
        .unwrap();
    let res = server.http().head(url.uri()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers();
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["x-amz-meta-color"], "blue");
    assert_eq!(h["x-amz-meta-owner-name"], "Ada");
    assert_eq!(h["content-length"], "7");
    assert!(!h["x-amz-request-id"].is_empty());
}

#[tokio::test]
async fn head_and_get_of_missing_key() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "missing").await;
    assert_eq!(
        sdk_err(s3.get_object().bucket(&bucket).key("nope").send().await),
        (404, "NoSuchKey".into())
    );
    let (status, _) = sdk_err(s3.head_object().bucket(&bucket).key("nope").send().await);
    assert_eq!(status, 404);
    assert_eq!(
        sdk_err(
            s3.get_object()
                .bucket("no-such-bucket-x")
                .key("k")
                .send()
                .await
        ),
        (404, "NoSuchBucket".into())
    );
}

#[tokio::test]
async fn content_md5_is_verified() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "md5").await;
    let body = b"checked body";
    s3.put_object()
        .bucket(&bucket)
        .key("ok")
        .content_md5(md5_b64(body))
        .body(ByteStream::from_static(body))
        .send()
        .await
        .unwrap();
    let wrong = s3
        .put_object()
        .bucket(&bucket)
        .key("bad")
        .content_md5(md5_b64(b"other body"))
        .body(ByteStream::from_static(body))
        .send()
        .await;
    assert_eq!(sdk_err(wrong), (400, "BadDigest".into()));
    let not_md5 = s3
        .put_object()
        .bucket(&bucket)
        .key("bad")
        .content_md5("bm90IGFuIG1kNQ==")
        .body(ByteStream::from_static(body))
        .send()
        .await;
    assert_eq!(sdk_err(not_md5), (400, "InvalidDigest".into()));
    // Nothing was stored under the rejected key.
    let (status, _) = sdk_err(s3.head_object().bucket(&bucket).key("bad").send().await);
    assert_eq!(status, 404);
}

#[tokio::test]
async fn flexible_checksums_are_verified() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "cksum").await;
    let body = pattern(100_000, 3);
    // The SDK default for an in-memory body: a CRC32 header.
    let out = s3
        .put_object()
        .bucket(&bucket)
        .key("in-memory")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.checksum_crc32(), Some(crc32_b64(&body).as_str()));
    // ...and for a streaming body: aws-chunked with a CRC32 trailer.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("body.bin");
    std::fs::write(&path, &body).unwrap();
    let out = s3
        .put_object()
        .bucket(&bucket)
        .key("trailer")
        .body(ByteStream::from_path(&path).await.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.checksum_crc32(), Some(crc32_b64(&body).as_str()));
    assert_eq!(
        out.e_tag(),
        Some(format!("\"{}\"", md5_hex(&body)).as_str())
    );
    // A real Content-Encoding survives next to aws-chunked.
    s3.put_object()
        .bucket(&bucket)
        .key("gzip")
        .content_encoding("gzip")
        .body(ByteStream::from_path(&path).await.unwrap())
        .send()
        .await
        .unwrap();
    let head = head_ok(&s3, &bucket, "gzip").await;
    assert_eq!(head.content_encoding(), Some("gzip"));
    assert_eq!(head.content_length(), Some(100_000));
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("trailer")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_crc32(), Some(crc32_b64(&body).as_str()));
    assert_eq!(head.content_length(), Some(100_000));
    // aws-chunked is not the object's Content-Encoding.
    assert_eq!(head.content_encoding(), None);
    assert_eq!(get_bytes(&s3, &bucket, "trailer").await, body);

    // A correct value in a header.
    s3.put_object()
        .bucket(&bucket)
        .key("header")
        .checksum_crc32(crc32_b64(b"hello world"))
        .body(ByteStream::from_static(b"hello world"))
        .send()
        .await
        .unwrap();
    // A wrong one.
    let wrong = s3
        .put_object()
        .bucket(&bucket)
        .key("wrong")
        .checksum_crc32("AAAAAA==")
        .body(ByteStream::from_static(b"hello world"))
        .send()
        .await;
    assert_eq!(sdk_err(wrong), (400, "BadDigest".into()));
    let (status, _) = sdk_err(s3.head_object().bucket(&bucket).key("wrong").send().await);
    assert_eq!(status, 404);

    // A wrong header on a raw presigned PUT: refused unsigned (S3 wants
    // every x-amz-* header signed), BadDigest once signed.
    let url = s3
        .put_object()
        .bucket(&bucket)
        .key("raw")
        .presigned(presign_for(300))
        .await
        .unwrap();
    let res = server
        .http()
        .put(url.uri())
        .header("x-amz-checksum-crc32", "AAAAAA==")
        .body("hello world")
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let crc = [("x-amz-checksum-crc32".to_owned(), "AAAAAA==".to_owned())];
    let (url, headers) = common::sign::sign_request(
        "PUT",
        &server.url(&format!("/{bucket}/raw")),
        &crc,
        b"",
        Some(Duration::from_secs(300)),
    );
    let mut req = server.http().put(url).body("hello world");
    for (k, v) in headers.iter().chain(&crc) {
        req = req.header(k, v);
    }
    expect_error(req.send().await.unwrap(), 400, "BadDigest").await;
}

#[tokio::test]
async fn get_object_ranges() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "range").await;
    put_object(&s3, &bucket, "digits", b"0123456789").await;
    let url = presigned_get(&s3, &bucket, "digits").await;
    let http = server.http();
    for (range, body, content_range) in [
        ("bytes=2-4", "234", "bytes 2-4/10"),
        ("bytes=-5", "56789", "bytes 5-9/10"),
        ("bytes=5-", "56789", "bytes 5-9/10"),
        ("bytes=8-100", "89", "bytes 8-9/10"),
        ("bytes=0-0", "0", "bytes 0-0/10"),
    ] {
        let res = http.get(&url).header("range", range).send().await.unwrap();
        assert_eq!(res.status(), 206, "{range}");
        assert_eq!(res.headers()["content-range"], content_range, "{range}");
        assert_eq!(
            res.headers()["content-length"],
            body.len().to_string().as_str(),
            "{range}"
        );
        assert_eq!(res.text().await.unwrap(), body, "{range}");
    }
    let res = http
        .get(&url)
        .header("range", "bytes=10-")
        .send()
        .await
        .unwrap();
    expect_error(res, 416, "InvalidRange").await;

    // The SDK sees the same.
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("digits")
        .range("bytes=-3")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_range(), Some("bytes 7-9/10"));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"789"
    );
    let bad = s3
        .get_object()
        .bucket(&bucket)
        .key("digits")
        .range("bytes=20-30")
        .send()
        .await;
    assert_eq!(sdk_err(bad), (416, "InvalidRange".into()));
}

#[tokio::test]
async fn conditional_get_and_head() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "cond").await;
    let etag = s3
        .put_object()
        .bucket(&bucket)
        .key("k")
        .cache_control("max-age=60")
        .body(ByteStream::from_static(b"conditional"))
        .send()
        .await
        .unwrap()
        .e_tag
        .unwrap();
    let head = head_ok(&s3, &bucket, "k").await;
    let modified = head.last_modified().unwrap().secs();
    let before = DateTime::from_secs(modified - 3600);
    let after = DateTime::from_secs(modified + 3600);
    let get = || s3.get_object().bucket(&bucket).key("k");

    // Passing conditions.
    get().if_match(&etag).send().await.unwrap();
    get().if_match("*").send().await.unwrap();
    get().if_none_match("\"0000\"").send().await.unwrap();
    get().if_modified_since(before).send().await.unwrap();
    get().if_unmodified_since(after).send().await.unwrap();

    // Failing ones.
    assert_eq!(
        sdk_err(get().if_match("\"0000\"").send().await),
        (412, "PreconditionFailed".into())
    );
    assert_eq!(
        sdk_err(get().if_unmodified_since(before).send().await),
        (412, "PreconditionFailed".into())
    );
    assert_eq!(sdk_err(get().if_none_match(&etag).send().await).0, 304);
    assert_eq!(sdk_err(get().if_modified_since(after).send().await).0, 304);
    let head = || s3.head_object().bucket(&bucket).key("k");
    assert_eq!(sdk_err(head().if_match("\"0000\"").send().await).0, 412);
    assert_eq!(sdk_err(head().if_none_match(&etag).send().await).0, 304);

    // Raw: 304 has no body and keeps the ETag; 412 is an XML error.
    let url = presigned_get(&s3, &bucket, "k").await;
    let res = server
        .http()
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    // What a cache revalidating its copy needs, as S3 sends it.
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("etag").as_deref(), Some(etag.as_str()));
    assert!(header("last-modified").is_some_and(|v| v.ends_with(" GMT")));
    assert_eq!(header("cache-control").as_deref(), Some("max-age=60"));
    assert!(res.bytes().await.unwrap().is_empty());
    let res = server
        .http()
        .get(&url)
        .header("if-match", "\"0000\"")
        .send()
        .await
        .unwrap();
    expect_error(res, 412, "PreconditionFailed").await;
}

#[tokio::test]
async fn response_header_overrides() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "override").await;
    s3.put_object()
        .bucket(&bucket)
        .key("file.bin")
        .content_type("application/octet-stream")
        .body(ByteStream::from_static(b"data"))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("file.bin")
        .response_content_type("text/plain")
        .response_content_disposition("attachment; filename=\"x.txt\"")
        .response_cache_control("no-store")
        .response_content_language("de")
        .response_content_encoding("identity")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(
        got.content_disposition(),
        Some("attachment; filename=\"x.txt\"")
    );
    assert_eq!(got.cache_control(), Some("no-store"));
    assert_eq!(got.content_language(), Some("de"));
    assert_eq!(got.content_encoding(), Some("identity"));

    // Through a presigned URL, the overrides are part of the signed query.
    let url = s3
        .get_object()
        .bucket(&bucket)
        .key("file.bin")
        .response_content_type("image/png")
        .presigned(presign_for(300))
        .await
        .unwrap();
    let res = server.http().get(url.uri()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    // The stored type is unchanged.
    let head = head_ok(&s3, &bucket, "file.bin").await;
    assert_eq!(head.content_type(), Some("application/octet-stream"));
}

#[tokio::test]
async fn delete_object_and_delete_objects() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "delete").await;
    put_object(&s3, &bucket, "one", b"1").await;
    let out = s3.delete_object().bucket(&bucket).key("one").send().await;
    assert!(out.is_ok());
    // Deleting a missing key still answers 204.
    let url = s3
        .delete_object()
        .bucket(&bucket)
        .key("one")
        .presigned(presign_for(300))
        .await
        .unwrap();
    let res = server.http().delete(url.uri()).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        sdk_err(
            s3.delete_object()
                .bucket("no-such-bucket-y")
                .key("k")
                .send()
                .await
        ),
        (404, "NoSuchBucket".into())
    );

    for k in ["a", "b", "c", "d"] {
        put_object(&s3, &bucket, k, k.as_bytes()).await;
    }
    // Verbose: every key, including the missing one, is reported deleted.
    let out = delete_keys(&s3, &bucket, &["a", "b", "missing"], None).await;
    let mut deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    assert_eq!(deleted, ["a", "b", "missing"]);
    assert!(out.errors().is_empty());
    // Quiet: nothing reported on success.
    let out = delete_keys(&s3, &bucket, &["c"], Some(true)).await;
    assert!(out.deleted().is_empty());
    assert!(out.errors().is_empty());
    let list = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(keys(list.contents()), ["d"]);
}

#[tokio::test]
async fn copy_object_metadata_directives() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "copy").await;
    let other = new_bucket(&s3, "copy-dst").await;
    s3.put_object()
        .bucket(&bucket)
        .key("src")
        .content_type("text/plain")
        .metadata("origin", "source")
        .body(ByteStream::from_static(b"copy me"))
        .send()
        .await
        .unwrap();

    // COPY (the default): bytes and metadata come along.
    let out = s3
        .copy_object()
        .bucket(&other)
        .key("dst")
        .copy_source(format!("{bucket}/src"))
        .send()
        .await
        .unwrap();
    let etag = format!("\"{}\"", md5_hex(b"copy me"));
    assert_eq!(
        out.copy_object_result().unwrap().e_tag(),
        Some(etag.as_str())
    );
    let got = s3
        .get_object()
        .bucket(&other)
        .key("dst")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(
        got.metadata().unwrap().get("origin").map(String::as_str),
        Some("source")
    );
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"copy me"
    );

    // REPLACE: the request's headers replace the source's.
    s3.copy_object()
        .bucket(&bucket)
        .key("replaced")
        .copy_source(format!("{bucket}/src"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/x-new")
        .metadata("fresh", "yes")
        .send()
        .await
        .unwrap();
    let head = head_ok(&s3, &bucket, "replaced").await;
    assert_eq!(head.content_type(), Some("application/x-new"));
    let meta = head.metadata().unwrap();
    assert_eq!(meta.get("fresh").map(String::as_str), Some("yes"));
    assert!(!meta.contains_key("origin"));

    // Onto itself: only with REPLACE.
    let onto_itself = || {
        s3.copy_object()
            .bucket(&bucket)
            .key("src")
            .copy_source(format!("{bucket}/src"))
    };
    let same = onto_itself().send().await;
    assert_eq!(sdk_err(same), (400, "InvalidRequest".into()));
    onto_itself()
        .metadata_directive(MetadataDirective::Replace)
        .metadata("origin", "rewritten")
        .send()
        .await
        .unwrap();
    let head = head_ok(&s3, &bucket, "src").await;
    assert_eq!(
        head.metadata().unwrap().get("origin").map(String::as_str),
        Some("rewritten")
    );
    assert_eq!(head.content_length(), Some(7));

    // A missing source.
    let missing = s3
        .copy_object()
        .bucket(&bucket)
        .key("x")
        .copy_source(format!("{bucket}/nope"))
        .send()
        .await;
    assert_eq!(sdk_err(missing), (404, "NoSuchKey".into()));
}

/// HEAD and GET send the stored `x-amz-checksum-*` only when asked with
/// `x-amz-checksum-mode: ENABLED`, as S3 does.
#[tokio::test]
async fn checksums_come_back_only_in_checksum_mode() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "ck-mode").await;
    s3.put_object()
        .bucket(&bucket)
        .key("k")
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap();
    for method in ["HEAD", "GET"] {
        let plain = server
            .signed(method, &format!("/{bucket}/k"), &[], b"")
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), 200);
        assert!(
            plain.headers().get("x-amz-checksum-sha256").is_none(),
            "{method} without checksum mode: {:?}",
            plain.headers()
        );
        let asked = server
            .signed(
                method,
                &format!("/{bucket}/k"),
                &[("x-amz-checksum-mode", "ENABLED")],
                b"",
            )
            .send()
            .await
            .unwrap();
        assert!(
            asked.headers().get("x-amz-checksum-sha256").is_some(),
            "{method}"
        );
    }
}

/// An empty `Content-MD5:` is not "no Content-MD5": S3 answers 400
/// InvalidDigest and stores nothing.
#[tokio::test]
async fn empty_content_md5_is_invalid_digest() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "empty-md5").await;
    let res = server
        .signed(
            "PUT",
            &format!("/{bucket}/k"),
            &[("content-md5", "")],
            b"body",
        )
        .body("body")
        .send()
        .await
        .unwrap();
    let body = expect_error(res, 400, "InvalidDigest").await;
    assert!(body.contains("<Code>InvalidDigest</Code>"));
    let (status, _) = sdk_err(s3.head_object().bucket(&bucket).key("k").send().await);
    assert_eq!(status, 404);
}

/// Server-side encryption is not implemented: a write that asks for it
/// (SSE-S3, SSE-KMS, SSE-C) is refused with 501 and stores nothing, never
/// kept as plaintext while the client believes it encrypted.
#[tokio::test]
async fn server_side_encryption_is_refused_not_ignored() {
    use aws_sdk_s3::types::ServerSideEncryption;
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "no-sse").await;
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let key_md5 = base64::engine::general_purpose::STANDARD
        .encode(<md5::Md5 as md5::Digest>::digest([7u8; 32]));
    let put = || {
        s3.put_object()
            .bucket(&bucket)
            .key("k")
            .body(ByteStream::from_static(b"secret"))
    };
    let attempts = [
        put()
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await,
        put()
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .send()
            .await,
        put()
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&key)
            .sse_customer_key_md5(&key_md5)
            .send()
            .await,
    ];
    for res in attempts {
        assert_eq!(sdk_err(res), (501, "NotImplemented".into()));
    }
    let (status, _) = sdk_err(s3.head_object().bucket(&bucket).key("k").send().await);
    assert_eq!(status, 404, "nothing was stored");
    let res = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await;
    assert_eq!(sdk_err(res), (501, "NotImplemented".into()));
    put_object(&s3, &bucket, "plain", b"plain").await;
    let res = s3
        .copy_object()
        .bucket(&bucket)
        .key("copy")
        .copy_source(format!("{bucket}/plain"))
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await;
    assert_eq!(sdk_err(res), (501, "NotImplemented".into()));
}
