//! Every `preflight cors preset` applied to a real bucket and its browser flow run as raw
//! HTTP with the preset's origin: the preflights of the flow's requests are 200 with the
//! headers the flow needs, and the actual requests carry Allow-Origin and the exposed headers.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::TestServer;
use common::fixtures::{completed, create_upload, new_bucket, put_object};
use common::sign::sign_request;

const ORIGIN: &str = "https://app.example.com";

/// The preset as the CLI prints it (XML).
fn preset_xml(name: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_preflight"))
        .args(["cors", "preset", name, "--origin", ORIGIN])
        .output()
        .expect("run preflight");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Creates a bucket and applies the preset with a signed PutBucketCors.
async fn bucket_with_preset(server: &TestServer, name: &str) -> String {
    let bucket = new_bucket(&server.client(), &name.replace('_', "-")).await;
    let res = server.put_cors_xml(&bucket, &preset_xml(name)).await;
    assert_eq!(res.status(), 200, "{name}: {}", res.text().await.unwrap());
    bucket
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Asserts a 200 preflight for `method` with `request_headers`, echoing the origin.
async fn assert_preflight(server: &TestServer, path: &str, method: &str, request_headers: &str) {
    let mut req = server.cors_preflight(path, ORIGIN, method);
    if !request_headers.is_empty() {
        req = req.header("Access-Control-Request-Headers", request_headers);
    }
    let res = req.send().await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "OPTIONS {path} for {method} [{request_headers}]: reason {}",
        header(&res, "x-preflight-cors-reason")
    );
    assert_eq!(header(&res, "access-control-allow-origin"), ORIGIN);
    assert!(header(&res, "access-control-allow-methods").contains(method));
    assert_eq!(
        header(&res, "access-control-allow-headers"),
        request_headers.to_ascii_lowercase().replace(',', ", ")
    );
    assert!(!header(&res, "access-control-max-age").is_empty());
}

/// A presigned URL (query signature) for a raw request.
fn presigned(server: &TestServer, method: &str, path: &str) -> String {
    sign_request(
        method,
        &server.url(path),
        &[],
        b"",
        Some(Duration::from_secs(600)),
    )
    .0
}

/// A raw request from `ORIGIN` through a presigned URL.
fn from_origin(server: &TestServer, method: &str, path: &str) -> reqwest::RequestBuilder {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    server
        .http()
        .request(method.clone(), presigned(server, method.as_str(), path))
        .header("Origin", ORIGIN)
}

fn exposes(res: &reqwest::Response, name: &str) -> bool {
    header(res, "access-control-expose-headers")
        .split(',')
        .any(|h| h.trim().eq_ignore_ascii_case(name))
}

#[tokio::test]
async fn spa_read() {
    let server = TestServer::start();
    let bucket = bucket_with_preset(&server, "spa-read").await;
    put_object(&server.client(), &bucket, "app/data.json", b"{}").await;
    let path = format!("/{bucket}/app/data.json");
    assert_preflight(&server, &path, "GET", "if-none-match").await;
    let res = from_origin(&server, "GET", &path).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), ORIGIN);
    assert!(exposes(&res, "ETag"));
    assert_eq!(res.text().await.unwrap(), "{}");
}

#[tokio::test]
async fn browser_put_presigned() {
    let server = TestServer::start();
    let bucket = bucket_with_preset(&server, "browser-put-presigned").await;
    let path = format!("/{bucket}/uploads/photo.png");
    assert_preflight(
        &server,
        &path,
        "PUT",
        "content-type,x-amz-checksum-crc32,x-amz-sdk-checksum-algorithm,x-amz-meta-owner",
    )
    .await;
    let res = from_origin(&server, "PUT", &path)
        .header("Content-Type", "image/png")
        .body(vec![7u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), ORIGIN);
    assert!(exposes(&res, "ETag"));
    assert!(!header(&res, "etag").is_empty());
}

#[tokio::test]
async fn browser_post_form() {
    let server = TestServer::start();
    let bucket = bucket_with_preset(&server, "browser-post-form").await;
    // The form POST goes to the bucket URL; only its preflight is CORS's business here.
    assert_preflight(&server, &format!("/{bucket}"), "POST", "content-type").await;
    assert_preflight(&server, &format!("/{bucket}"), "POST", "").await;
}

#[tokio::test]
async fn browser_multipart() {
    let server = TestServer::start();
    let bucket = bucket_with_preset(&server, "browser-multipart").await;
    let path = format!("/{bucket}/big.bin");
    let sdk_headers = "authorization,content-type,x-amz-date,x-amz-content-sha256,x-amz-user-agent,amz-sdk-invocation-id,amz-sdk-request";
    for method in ["POST", "PUT", "DELETE", "GET"] {
        assert_preflight(&server, &path, method, sdk_headers).await;
    }
    let s3 = server.client();
    let upload_id = create_upload(&s3, &bucket, "big.bin").await;
    let part_path = format!("{path}?partNumber=1&uploadId={upload_id}");
    let res = from_origin(&server, "PUT", &part_path)
        .body(vec![1u8; 5 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), ORIGIN);
    // The page must read each part's ETag to complete the upload.
    assert!(exposes(&res, "ETag"));
    let etag = header(&res, "etag");
    assert!(!etag.is_empty());
    s3.complete_multipart_upload()
        .bucket(&bucket)
        .key("big.bin")
        .upload_id(&upload_id)
        .multipart_upload(completed(&[(1, &etag)]))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn media_range_read() {
    let server = TestServer::start();
    let bucket = bucket_with_preset(&server, "media-range-read").await;
    let body: Vec<u8> = (0..=255u8).collect();
    put_object(&server.client(), &bucket, "clip.mp4", &body).await;
    let path = format!("/{bucket}/clip.mp4");
    assert_preflight(&server, &path, "GET", "range").await;
    let res = from_origin(&server, "GET", &path)
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(header(&res, "access-control-allow-origin"), ORIGIN);
    assert_eq!(header(&res, "content-range"), "bytes 10-19/256");
    assert!(exposes(&res, "Content-Range") && exposes(&res, "Accept-Ranges"));
    assert_eq!(
        res.bytes().await.unwrap().as_ref(),
        &(10..20u8).collect::<Vec<_>>()[..]
    );
}
