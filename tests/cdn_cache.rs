//! S3's cache problem, reproduced with a real cache, and the CDN-safe mode
//! that fixes it: nginx with `proxy_cache` in front of Preflight on loopback.
//!
//! S3 sends `Vary` only when a CORS rule matched (spec §9). A shared cache
//! that stored a response to a request without `Origin` serves it again to a
//! cross-origin request, which then lacks `Access-Control-Allow-Origin`.
//! With `--cors-vary always` every response of a bucket with CORS carries
//! `Vary: Origin, ...`, and the cache keeps the variants apart.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule, ObjectCannedAcl};
use common::nginx::{Nginx, nginx_available};
use common::{TestServer, bucket_name};

const ORIGIN: &str = "https://app.example";

/// A public object in a bucket with a CORS rule for `ORIGIN`.
async fn public_object(server: &TestServer) -> String {
    let s3 = server.client();
    let bucket = bucket_name("cdn");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("logo.svg")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"<svg/>"))
        .send()
        .await
        .unwrap();
    let rule = CorsRule::builder()
        .allowed_origins(ORIGIN)
        .allowed_methods("GET")
        .build()
        .unwrap();
    s3.put_bucket_cors()
        .bucket(&bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    format!("/{bucket}/logo.svg")
}

/// A same-origin GET fills the cache, then a cross-origin GET follows.
/// Returns (cache status, Access-Control-Allow-Origin) of the second one.
async fn cached_then_cross_origin(vary_mode: &str) -> (String, Option<String>) {
    let server = TestServer::start_with(&["--cors-vary", vary_mode]);
    let path = public_object(&server).await;
    let nginx = Nginx::caching_proxy(server.port());
    let http = server.http();
    let url = format!("http://127.0.0.1:{}{path}", nginx.port);

    let first = http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-cache-status"], "MISS");
    assert!(first.headers().get("access-control-allow-origin").is_none());

    let second = http
        .get(&url)
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 200);
    let status = second.headers()["x-cache-status"]
        .to_str()
        .unwrap()
        .to_owned();
    let allow = second
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(second.text().await.unwrap(), "<svg/>");
    (status, allow)
}

#[tokio::test]
async fn aws_mode_reproduces_the_cache_problem() {
    if !nginx_available() {
        return;
    }
    let (status, allow) = cached_then_cross_origin("aws").await;
    // The cache served the Origin-less response: the browser would refuse it.
    assert_eq!(status, "HIT");
    assert_eq!(allow, None);
}

#[tokio::test]
async fn always_mode_keeps_cors_through_the_cache() {
    if !nginx_available() {
        return;
    }
    let (status, allow) = cached_then_cross_origin("always").await;
    assert_eq!(status, "MISS");
    assert_eq!(allow.as_deref(), Some(ORIGIN));
}
