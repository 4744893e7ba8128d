//! Bucket CORS through real clients: the configuration API with aws-sdk-s3
//! and raw HTTP, and the CORS layer on responses that the conformance cases
//! do not reach (signature errors, 304, 416, HEAD, virtual-hosted style,
//! restarts).

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use common::sign::sign_request;
use common::{TestServer, bucket_name, client_for, error_code, xml_field};

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
    let bucket = bucket_name("cors");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("obj")
        .body(ByteStream::from_static(b"0123456789"))
        .send()
        .await
        .unwrap();
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
    let err = s3
        .get_bucket_cors()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("NoSuchCORSConfiguration")
    );
}

#[tokio::test]
async fn put_needs_an_integrity_header_and_checks_it() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = bucket_name("integrity");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let xml = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
    let url = server.url(&format!("/{bucket}?cors"));
    let put = |extra: Vec<(String, String)>| {
        let (url, mut headers) = sign_request("PUT", &url, &extra, xml.as_bytes(), None);
        headers.extend(extra);
        let mut req = server.http().put(url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.body(xml)
    };
    let res = put(vec![]).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert_eq!(error_code(&body).as_deref(), Some("InvalidRequest"));
    assert_eq!(
        xml_field(&body, "Message").as_deref(),
        Some("Missing required header for this request: Content-MD5")
    );
    let res = put(vec![(
        "content-md5".into(),
        "1B2M2Y8AsgTpgAmY7PhCfg==".into(),
    )])
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        error_code(&res.text().await.unwrap()).as_deref(),
        Some("BadDigest")
    );
    let res = put(vec![("x-amz-checksum-crc32".into(), "AAAAAA==".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        error_code(&res.text().await.unwrap()).as_deref(),
        Some("BadDigest")
    );
    // Nothing was stored by the refused requests.
    let err = s3
        .get_bucket_cors()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("NoSuchCORSConfiguration")
    );
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
    let res = http
        .get(server.url(&format!("/{bucket}?cors")))
        .send()
        .await
        .unwrap();
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
        .http()
        .request(
            reqwest::Method::OPTIONS,
            server.url(&format!("/{bucket}/obj")),
        )
        .header("origin", ORIGIN)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        xml_field(&res.text().await.unwrap(), "Message").as_deref(),
        Some("CORSResponse: Bucket not found")
    );
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let err = s3
        .get_bucket_cors()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("NoSuchCORSConfiguration")
    );
}

#[tokio::test]
async fn configuration_survives_a_restart() {
    let mut server = TestServer::start();
    let bucket = cors_bucket(&server).await;
    server.restart();
    let res = server
        .http()
        .request(
            reqwest::Method::OPTIONS,
            server.url(&format!("/{bucket}/obj")),
        )
        .header("origin", ORIGIN)
        .header("access-control-request-method", "PUT")
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

    // Anonymous GET of a private object: 403 AccessDenied, with CORS headers.
    let res = http
        .get(&obj)
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_cors(&res);

    // A missing key, as the owner: 404 NoSuchKey, with CORS headers.
    let missing = server.url(&format!("/{bucket}/missing"));
    let (url, headers) = sign_request("GET", &missing, &[], b"", None);
    let mut req = http.get(url).header("origin", ORIGIN);
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_cors(&res);

    // HEAD 404 carries them too.
    let (url, headers) = sign_request("HEAD", &missing, &[], b"", None);
    let mut req = http.head(url).header("origin", ORIGIN);
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_cors(&res);

    // A bad signature: 403 SignatureDoesNotMatch, with CORS headers.
    let wrong = client_for(&server.endpoint, common::ACCESS_KEY, "not-the-secret", true);
    let presigned = wrong
        .get_object()
        .bucket(&bucket)
        .key("obj")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(
                60,
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    let res = http
        .get(presigned.uri())
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_cors(&res);
    assert_eq!(
        error_code(&res.text().await.unwrap()).as_deref(),
        Some("SignatureDoesNotMatch")
    );

    // 416 and 304 through a valid presigned URL.
    let s3 = server.client();
    let cfg = || {
        aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(60))
            .unwrap()
    };
    let presigned = s3
        .get_object()
        .bucket(&bucket)
        .key("obj")
        .presigned(cfg())
        .await
        .unwrap();
    let res = http
        .get(presigned.uri())
        .header("origin", ORIGIN)
        .header("range", "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 416);
    assert_cors(&res);
    let res = http
        .get(presigned.uri())
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_cors(&res);
    let etag = res
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let res = http
        .get(presigned.uri())
        .header("origin", ORIGIN)
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
    let http = server.http();
    let host = format!("{bucket}.s3.preflight.test:{}", server.port());
    let res = http
        .request(reqwest::Method::OPTIONS, server.url("/obj"))
        .header("host", &host)
        .header("origin", ORIGIN)
        .header("access-control-request-method", "PUT")
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
    let res = http
        .request(reqwest::Method::OPTIONS, server.url("/obj"))
        .header("host", &host)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "PUT")
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
    let res = http
        .get(server.url(&format!("/{bucket}/obj")))
        .send()
        .await
        .unwrap();
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
    let res = aws
        .http()
        .get(aws.url(&format!("/{bucket}/obj")))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("vary").is_none());
}
