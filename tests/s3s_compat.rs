//! The s3s 0.14.1 workarounds in `front/s3s_compat.rs` that no other test
//! guards: each test here fails when its workaround is removed.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sign::V4;
use common::{TestServer, bucket_name, error_code, xml_field};

/// A SigV4-signed request (header auth), sent as signed.
async fn send(server: &TestServer, v4: &V4, body: &[u8]) -> reqwest::Response {
    let signed = v4.sign();
    let method = reqwest::Method::from_bytes(v4.method.as_bytes()).unwrap();
    let mut req = server.http().request(method, &signed.url);
    for (k, v) in &signed.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    req.body(body.to_vec()).send().await.unwrap()
}

/// The status, request id headers and body of a response.
async fn parts(res: reqwest::Response) -> (u16, String, String, String) {
    let status = res.status().as_u16();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (id, id2) = (header("x-amz-request-id"), header("x-amz-id-2"));
    (status, id, id2, res.text().await.unwrap())
}

/// `fix_error_body`: s3s writes `Code` and `Message` only; S3 adds the
/// resource, `RequestId` (the `x-amz-request-id` header) and `HostId`
/// (`x-amz-id-2`), in that order.
#[tokio::test]
async fn s3s_errors_carry_ids_and_resource() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = bucket_name("compat-ids");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();

    let v4 = V4::new("GET", &server.endpoint, &format!("/{bucket}/nope"), b"");
    let (status, id, id2, body) = parts(send(&server, &v4, b"").await).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(error_code(&body).as_deref(), Some("NoSuchKey"), "{body}");
    assert!(
        body.contains(&format!(
            "</Message><Key>nope</Key><RequestId>{id}</RequestId><HostId>{id2}</HostId></Error>"
        )),
        "{body}"
    );

    let v4 = V4::new("GET", &server.endpoint, "/compat-no-such-bucket/k", b"");
    let (status, id, id2, body) = parts(send(&server, &v4, b"").await).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(error_code(&body).as_deref(), Some("NoSuchBucket"), "{body}");
    assert!(
        body.contains(&format!(
            "<BucketName>compat-no-such-bucket</BucketName><RequestId>{id}</RequestId><HostId>{id2}</HostId>"
        )),
        "{body}"
    );
}

/// `fix_error_body`: s3s escapes apostrophes (`&apos;`); S3 writes them
/// as they are.
#[tokio::test]
async fn s3s_error_messages_keep_apostrophes() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = bucket_name("compat-apos");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();

    // Signed for one body, sent with another of the same length.
    let v4 = V4::new("PUT", &server.endpoint, &format!("/{bucket}/k"), b"hello");
    let (status, _, _, body) = parts(send(&server, &v4, b"jello").await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error_code(&body).as_deref(),
        Some("XAmzContentSHA256Mismatch"),
        "{body}"
    );
    assert_eq!(
        xml_field(&body, "Message").as_deref(),
        Some("The provided 'x-amz-content-sha256' header does not match what was computed."),
        "{body}"
    );
}

/// `merge_content_encoding`: two `Content-Encoding` lines are one list
/// (RFC 9110 §5.3); s3s refuses a repeated header.
#[tokio::test]
async fn repeated_content_encodings_are_one_list() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = bucket_name("compat-ce");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();

    let v4 = V4::new("PUT", &server.endpoint, &format!("/{bucket}/k"), b"hello")
        .header("content-encoding", "gzip")
        .header("content-encoding", "identity");
    let (status, _, _, body) = parts(send(&server, &v4, b"hello").await).await;
    assert_eq!(status, 200, "{body}");
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    // Stored as a list, aws-chunked aside (s3/headers.rs).
    assert_eq!(head.content_encoding(), Some("gzip, identity"));
}
