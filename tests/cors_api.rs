//! Bucket CORS through real clients: the configuration API with aws-sdk-s3
//! and raw HTTP, and the CORS layer on responses that the conformance cases
//! do not reach (signature errors, 304, 416, HEAD, virtual-hosted style,
//! restarts).

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use common::fixtures::{new_bucket, presign_for, put_object};
use common::{TestServer, client_for, error_code, xml_field};

const ORIGIN: &str = "https://app.example";
const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

fn rule() -> CorsRule {
    CorsRule::builder()
        .allowed_origins(ORIGIN)
        .allowed_methods("GET")
        .allowed_methods("HEAD")
        .allowed_methods("PUT")
        .allowed_headers("*")
        .expose_headers("ETag")
        .max_age_seconds(600)
        .build()
        .unwrap()
}

/// A bucket with one object and a CORS rule for `ORIGIN`.
async fn cors_bucket(server: &TestServer) -> String {
    let s3 = server.client();
    let bucket = new_bucket(&s3, "cors").await;
    put_object(&s3, &bucket, "obj", b"0123456789").await;
    // The SDK sends its default checksum header, not Content-MD5.
    s3.put_bucket_cors()
        .bucket(&bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(rule())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    bucket
}

fn assert_cors(res: &reqwest::Response) {
    let h = res.headers();
    assert_eq!(
        h.get("access-control-allow-origin").unwrap(),
        ORIGIN,
        "{h:?}"
    );
    assert_eq!(h.get("access-control-allow-credentials").unwrap(), "true");
    assert_eq!(
        h.get("access-control-allow-methods").unwrap(),
        "GET, HEAD, PUT"
    );
    assert_eq!(h.get("access-control-expose-headers").unwrap(), "ETag");
    assert_eq!(h.get("vary").unwrap(), VARY);
}

/// GetBucketCors answers NoSuchCORSConfiguration.
async fn assert_no_cors(s3: &aws_sdk_s3::Client, bucket: &str) {
    let err = s3
        .get_bucket_cors()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("NoSuchCORSConfiguration")
    );
}

#[tokio::test]
async fn sdk_round_trip_and_delete() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = cors_bucket(&server).await;
    let got = s3.get_bucket_cors().bucket(&bucket).send().await.unwrap();
    assert_eq!(got.cors_rules(), &[rule()]);
    s3.delete_bucket_cors()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_no_cors(&s3, &bucket).await;
}

#[tokio::test]
async fn put_needs_an_integrity_header_and_checks_it() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "integrity").await;
    let xml = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
    let path = format!("/{bucket}?cors");
    let put = |extra: &[(&str, &str)]| server.signed("PUT", &path, extra, xml.as_bytes()).body(xml);
    let res = put(&[]).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert_eq!(error_code(&body).as_deref(), Some("InvalidRequest"));
    assert_eq!(
        xml_field(&body, "Message").as_deref(),
        Some("Missing required header for this request: Content-MD5")
    );
    for header in [
        ("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
        ("x-amz-checksum-crc32", "AAAAAA=="),
    ] {
        let res = put(&[header]).send().await.unwrap();
        assert_eq!(res.status(), 400, "{header:?}");
        assert_eq!(
            error_code(&res.text().await.unwrap()).as_deref(),
            Some("BadDigest"),
            "{header:?}"
        );
    }
    // Nothing was stored by the refused requests.
    assert_no_cors(&s3, &bucket).await;
}

#[tokio::test]
async fn only_the_owner_may_use_the_api() {
    let server = TestServer::start();
    let bucket = cors_bucket(&server).await;
    let http = server.http();
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let res = http
            .request(method.clone(), server.url(&format!("/{bucket}?cors")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{method}");
        assert_eq!(
            error_code(&res.text().await.unwrap()).as_deref(),
            Some("AccessDenied")
        );
    }
    // A public-read bucket does not open its CORS configuration either.
    let s3 = server.client();
    s3.put_bucket_acl()
        .bucket(&bucket)
        .acl("public-read-write".into())
        .send()
        .await
        .unwrap();
    let res = server.anon_get(&format!("/{bucket}?cors")).await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn delete_bucket_removes_the_configuration() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = cors_bucket(&server).await;
    s3.delete_object()
        .bucket(&bucket)
        .key("obj")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket(&bucket).send().await.unwrap();
    // A preflight now finds no bucket at all.
    let res = server
        .cors_preflight(&format!("/{bucket}/obj"), ORIGIN, "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        xml_field(&res.text().await.unwrap(), "Message").as_deref(),
        Some("CORSResponse: Bucket not found")
    );
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    assert_no_cors(&s3, &bucket).await;
}

#[tokio::test]
async fn configuration_survives_a_restart() {
    let mut server = TestServer::start();
    let bucket = cors_bucket(&server).await;
    server.restart();
    let res = server
        .cors_preflight(&format!("/{bucket}/obj"), ORIGIN, "PUT")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_cors(&res);
}

#[tokio::test]
async fn cors_headers_on_error_responses() {
    let server = TestServer::start();
    let bucket = cors_bucket(&server).await;
    let http = server.http();
    let obj = server.url(&format!("/{bucket}/obj"));
    let from_origin = |url: &str| http.get(url).header("origin", ORIGIN);

    // Anonymous GET of a private object: 403 AccessDenied, with CORS headers.
    let res = from_origin(&obj).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_cors(&res);

    // A missing key, as the owner: 404 NoSuchKey, with CORS headers; a
    // HEAD 404 carries them too.
    let missing = format!("/{bucket}/missing");
    for method in ["GET", "HEAD"] {
        let res = server
            .signed(method, &missing, &[], b"")
            .header("origin", ORIGIN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method}");
        assert_cors(&res);
    }

    // A bad signature: 403 SignatureDoesNotMatch, with CORS headers.
    let wrong = client_for(&server.endpoint, common::ACCESS_KEY, "not-the-secret", true);
    let presigned = wrong
        .get_object()
        .bucket(&bucket)
        .key("obj")
        .presigned(presign_for(60))
        .await
        .unwrap();
    let res = from_origin(presigned.uri()).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_cors(&res);
    assert_eq!(
        error_code(&res.text().await.unwrap()).as_deref(),
        Some("SignatureDoesNotMatch")
    );

    // 416 and 304 through a valid presigned URL.
    let s3 = server.client();
    let presigned = s3
        .get_object()
        .bucket(&bucket)
        .key("obj")
        .presigned(presign_for(60))
        .await
        .unwrap();
    let res = from_origin(presigned.uri())
        .header("range", "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 416);
    assert_cors(&res);
    let res = from_origin(presigned.uri()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_cors(&res);
    let etag = res
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let res = from_origin(presigned.uri())
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    assert_cors(&res);
    assert!(res.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn preflight_ignores_credentials_and_works_virtual_hosted() {
    let server = TestServer::start_with(&["--domain", "s3.preflight.test"]);
    let bucket = cors_bucket(&server).await;
    let host = format!("{bucket}.s3.preflight.test:{}", server.port());
    let res = server
        .cors_preflight("/obj", ORIGIN, "PUT")
        .header("host", &host)
        .header("access-control-request-headers", "Content-Type, X-Amz-Meta-Foo")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=bogus/20200101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_cors(&res);
    assert_eq!(
        res.headers().get("access-control-allow-headers").unwrap(),
        "content-type, x-amz-meta-foo"
    );
    assert_eq!(res.headers().get("access-control-max-age").unwrap(), "600");
    assert_eq!(res.headers().get("content-length").unwrap(), "0");
    // A denied preflight says why, in S3's body plus one header.
    let res = server
        .cors_preflight("/obj", "https://evil.example", "PUT")
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers().get("x-preflight-cors-reason").unwrap(),
        "origin"
    );
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let body = res.text().await.unwrap();
    assert_eq!(xml_field(&body, "ResourceType").as_deref(), Some("OBJECT"));
    assert_eq!(xml_field(&body, "Method").as_deref(), Some("PUT"));
}

#[tokio::test]
async fn cors_vary_always_marks_every_response() {
    let server = TestServer::start_with(&["--cors-vary", "always"]);
    let bucket = cors_bucket(&server).await;
    let http = server.http();
    // No Origin at all: S3 would send no Vary; the CDN-safe mode does.
    let res = server.anon_get(&format!("/{bucket}/obj")).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers().get("vary").unwrap(), VARY);
    assert!(res.headers().get("access-control-allow-origin").is_none());
    // A matching request is unchanged.
    let res = http
        .get(server.url(&format!("/{bucket}/obj")))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_cors(&res);
    assert_eq!(res.headers().get_all("vary").iter().count(), 1);

    // The default mode is exactly S3: no Vary without a match.
    let aws = TestServer::start();
    let bucket = cors_bucket(&aws).await;
    let res = aws.anon_get(&format!("/{bucket}/obj")).await;
    assert!(res.headers().get("vary").is_none());
}
