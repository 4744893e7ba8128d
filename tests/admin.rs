//! The admin listener: `/health` and Prometheus `/metrics`, on a port of
//! their own so that buckets named `metrics` or `health` keep working.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::TestServer;

fn admin_url(server: &TestServer) -> String {
    format!(
        "http://{}",
        server.admin_addr.as_deref().expect("admin listener")
    )
}

#[tokio::test]
async fn health_and_metrics() {
    let server = TestServer::start_with(&["--admin-addr", "127.0.0.1:0"]);
    let admin = admin_url(&server);
    let http = server.http();

    let res = http.get(format!("{admin}/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "{\"status\":\"ok\"}\n");

    // Buckets named like admin endpoints are ordinary buckets on the S3 port.
    let s3 = server.client();
    for bucket in ["metrics", "health"] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
        s3.put_object()
            .bucket(bucket)
            .key("k")
            .body(ByteStream::from_static(b"12345"))
            .send()
            .await
            .unwrap();
    }
    let listed = s3.list_objects_v2().bucket("metrics").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(1));
    s3.put_bucket_cors()
        .bucket("metrics")
        .cors_configuration(
            aws_sdk_s3::types::CorsConfiguration::builder()
                .cors_rules(
                    aws_sdk_s3::types::CorsRule::builder()
                        .allowed_origins("https://app.example")
                        .allowed_methods("GET")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // One allowed and one denied preflight.
    for (origin, status) in [("https://app.example", 200), ("https://other.example", 403)] {
        let res = http
            .request(reqwest::Method::OPTIONS, server.url("/metrics/k"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status);
    }
    // An anonymous GET is denied by the ACL.
    let res = http.get(server.url("/metrics/k")).send().await.unwrap();
    assert_eq!(res.status(), 403);

    let res = http.get(format!("{admin}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let has = |needle: &str| {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    };
    has("preflight_requests_total{operation=\"PutObject\",status=\"200\"} 2");
    has("preflight_requests_total{operation=\"CreateBucket\",status=\"200\"} 2");
    has("preflight_requests_total{operation=\"GetObject\",status=\"403\"} 1");
    has("preflight_requests_total{operation=\"Preflight\",status=\"403\"} 1");
    has("preflight_cors_decisions_total{result=\"allowed\",reason=\"none\"} 1");
    has("preflight_cors_decisions_total{result=\"denied\",reason=\"origin\"} 1");
    has("preflight_request_duration_seconds_bucket{operation=\"PutObject\",le=\"");
    // Two 5-byte objects (aws-chunked framing adds more) and the CORS XML.
    let received: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("preflight_received_bytes_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("received bytes counter");
    assert!(received > 10, "{received}");
    let sent: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("preflight_sent_bytes_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("sent bytes counter");
    assert!(sent > 0);
}
