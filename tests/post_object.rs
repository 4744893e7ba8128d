//! Browser form uploads (POST Object) and presigned URLs: forms built by
//! `preflight presign post` and by boto3's `generate_presigned_post`,
//! uploaded as raw multipart requests, covering each condition type,
//! expiry (and no 15-minute x-amz-date skew), `${filename}`, size limits,
//! success_action_status/redirect, anonymous forms, and CORS headers on the
//! POST response.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod s3_util;

use std::process::Command;

use base64::Engine;
use common::fixtures::{new_bucket, preflight};
use common::{ACCESS_KEY, REGION, SECRET_KEY, TestServer, bucket_name};
use s3_util::expect_error;
use serde_json::{Value, json};

const BOUNDARY: &str = "----preflight-test-boundary-7MA4YWxkTrZu0gW";

/// A multipart/form-data body: the fields in order, then the file.
fn form_body(fields: &[(String, String)], filename: &str, content: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_form(
    server: &TestServer,
    url: &str,
    fields: &[(String, String)],
    filename: &str,
    content: &[u8],
    origin: Option<&str>,
) -> reqwest::Response {
    // Redirects are checked, not followed.
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let _ = server;
    let mut req = client
        .post(url)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form_body(fields, filename, content));
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().await.unwrap()
}

/// `preflight presign post` → (url, fields in order, with `extra` added).
fn cli_post(server: &TestServer, args: &[&str]) -> (String, Vec<(String, String)>) {
    let mut all = vec!["presign", "post"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--endpoint",
        &server.endpoint,
        "--access-key",
        ACCESS_KEY,
        "--secret-key",
        SECRET_KEY,
    ]);
    let out = preflight(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fields = v["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    (v["url"].as_str().unwrap().to_owned(), fields)
}

fn with(fields: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut f = fields.to_vec();
    for (k, v) in extra {
        f.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        f.push((k.to_string(), v.to_string()));
    }
    f
}

async fn message_of(res: reqwest::Response, status: u16, code: &str) -> String {
    let body = expect_error(res, status, code).await;
    common::xml_field(&body, "Message")
        .unwrap_or_default()
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn cli_form_with_prefix_filename_and_conditions() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "post-cli").await;
    let (url, fields) = cli_post(
        &server,
        &[
            &bucket,
            "uploads/",
            "--max-size",
            "1KiB",
            "--content-type-prefix",
            "image/",
            "--success-action-status",
            "201",
            "--expires",
            "1h",
        ],
    );
    assert_eq!(url, format!("{}/{bucket}", server.endpoint));
    let key = fields.iter().find(|(k, _)| k == "key").unwrap().1.clone();
    assert_eq!(key, "uploads/${filename}");

    // 201 with a PostResponse; ${filename} replaced; Content-Type stored.
    let png = with(&fields, &[("Content-Type", "image/png")]);
    let res = post_form(&server, &url, &png, "cat.png", b"\x89PNG fake", None).await;
    assert_eq!(res.status(), 201);
    assert!(res.headers().contains_key("etag"));
    let body = res.text().await.unwrap();
    assert!(body.contains("<Key>uploads/cat.png</Key>"), "{body}");
    assert!(
        body.contains(&format!("<Bucket>{bucket}</Bucket>")),
        "{body}"
    );
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("uploads/cat.png")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("image/png"));
    assert_eq!(
        &got.body.collect().await.unwrap().into_bytes()[..],
        b"\x89PNG fake"
    );

    // starts-with on Content-Type
    let html = with(&fields, &[("Content-Type", "text/html")]);
    let res = post_form(&server, &url, &html, "x.html", b"<p>", None).await;
    let msg = message_of(res, 403, "AccessDenied").await;
    assert_eq!(
        msg,
        r#"Invalid according to Policy: Policy Condition failed: ["starts-with", "$Content-Type", "image/"]"#
    );
    // starts-with on key
    let elsewhere = with(
        &fields,
        &[("key", "other/${filename}"), ("Content-Type", "image/png")],
    );
    let res = post_form(&server, &url, &elsewhere, "a.png", b"x", None).await;
    let msg = message_of(res, 403, "AccessDenied").await;
    assert!(
        msg.contains(r#"["starts-with", "$key", "uploads/"]"#),
        "{msg}"
    );
    // eq (object form) on success_action_status
    let status = with(
        &fields,
        &[
            ("success_action_status", "200"),
            ("Content-Type", "image/png"),
        ],
    );
    let res = post_form(&server, &url, &status, "a.png", b"x", None).await;
    let msg = message_of(res, 403, "AccessDenied").await;
    assert!(
        msg.contains(r#"["eq", "$success_action_status", "201"]"#),
        "{msg}"
    );
    // a field no condition covers
    let extra = with(
        &fields,
        &[("Content-Type", "image/png"), ("x-amz-meta-owner", "eve")],
    );
    let res = post_form(&server, &url, &extra, "a.png", b"x", None).await;
    let msg = message_of(res, 403, "AccessDenied").await;
    assert_eq!(
        msg,
        "Invalid according to Policy: Extra input fields: x-amz-meta-owner"
    );
    // content-length-range
    let res = post_form(&server, &url, &png, "big.png", &[7u8; 2000], None).await;
    expect_error(res, 400, "EntityTooLarge").await;
    assert!(
        s3.head_object()
            .bucket(&bucket)
            .key("uploads/big.png")
            .send()
            .await
            .is_err()
    );
    // a tampered policy
    let mut tampered = png.clone();
    for (k, v) in &mut tampered {
        if k == "x-amz-signature" {
            *v = "0".repeat(64);
        }
    }
    let res = post_form(&server, &url, &tampered, "a.png", b"x", None).await;
    expect_error(res, 403, "SignatureDoesNotMatch").await;
    // no file part
    let res = server
        .http()
        .post(&url)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--{BOUNDARY}--\r\n"))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "InvalidArgument").await;
}

/// Signs a form as a browser app's backend would, with a chosen x-amz-date.
fn signed_form(
    bucket: &str,
    conditions: Vec<Value>,
    fields: &[(&str, &str)],
    expiration: time::OffsetDateTime,
    signed_at: time::OffsetDateTime,
) -> Vec<(String, String)> {
    use preflight_server::sigv4;
    let (amz_date, day) = sigv4::amz_date(signed_at);
    let credential = format!("{ACCESS_KEY}/{day}/{REGION}/s3/aws4_request");
    let mut conds = vec![
        json!({ "bucket": bucket }),
        json!({ "x-amz-algorithm": "AWS4-HMAC-SHA256" }),
        json!({ "x-amz-credential": credential }),
        json!({ "x-amz-date": amz_date }),
    ];
    conds.extend(conditions);
    let expiration = expiration
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let policy = json!({ "expiration": expiration, "conditions": conds }).to_string();
    let b64 = base64::engine::general_purpose::STANDARD.encode(policy);
    let signature = sigv4::post_policy_signature(SECRET_KEY, &day, REGION, &b64).unwrap();
    let mut out: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    out.extend([
        ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
        ("x-amz-credential".to_owned(), credential),
        ("x-amz-date".to_owned(), amz_date),
        ("policy".to_owned(), b64),
        ("x-amz-signature".to_owned(), signature),
    ]);
    out
}

#[tokio::test]
async fn expiry_not_clock_skew_and_size_bounds() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "post-exp").await;
    let url = format!("{}/{bucket}", server.endpoint);
    let now = time::OffsetDateTime::now_utc();
    let hour = time::Duration::hours(1);

    // Signed three hours ago, still valid: accepted (no 15-minute skew).
    let form = signed_form(
        &bucket,
        vec![json!(["starts-with", "$key", ""])],
        &[("key", "old-but-valid.txt")],
        now + hour,
        now - hour * 3,
    );
    let res = post_form(&server, &url, &form, "f.txt", b"hello", None).await;
    assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());
    s3.head_object()
        .bucket(&bucket)
        .key("old-but-valid.txt")
        .send()
        .await
        .unwrap();

    // Expired policy.
    let form = signed_form(
        &bucket,
        vec![json!(["starts-with", "$key", ""])],
        &[("key", "late.txt")],
        now - time::Duration::seconds(1),
        now - hour,
    );
    let res = post_form(&server, &url, &form, "f.txt", b"hello", None).await;
    let msg = message_of(res, 403, "AccessDenied").await;
    assert_eq!(msg, "Invalid according to Policy: Policy expired.");

    // content-length-range lower bound, eq with the array form.
    let form = signed_form(
        &bucket,
        vec![
            json!(["eq", "$key", "sized.bin"]),
            json!(["content-length-range", 10, 100]),
        ],
        &[("key", "sized.bin")],
        now + hour,
        now,
    );
    let res = post_form(&server, &url, &form, "f", b"short", None).await;
    expect_error(res, 400, "EntityTooSmall").await;
    let res = post_form(&server, &url, &form, "f", &[1u8; 101], None).await;
    expect_error(res, 400, "EntityTooLarge").await;
    let res = post_form(&server, &url, &form, "f", &[1u8; 50], None).await;
    assert_eq!(res.status(), 204);

    // Metadata fields, success_action_redirect and status 200.
    let form = signed_form(
        &bucket,
        vec![
            json!({"key": "meta.txt"}),
            json!(["starts-with", "$x-amz-meta-", ""]),
            json!(["starts-with", "$x-amz-meta-owner", ""]),
            json!({"Cache-Control": "max-age=60"}),
            json!(["starts-with", "$Content-Disposition", "attachment"]),
            json!([
                "starts-with",
                "$success_action_redirect",
                "https://app.example/"
            ]),
        ],
        &[
            ("key", "meta.txt"),
            ("x-amz-meta-owner", "ada"),
            ("Cache-Control", "max-age=60"),
            ("Content-Disposition", "attachment; filename=m.txt"),
            ("success_action_redirect", "https://app.example/done"),
        ],
        now + hour,
        now,
    );
    let res = post_form(&server, &url, &form, "m.txt", b"meta", None).await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!(
            "https://app.example/done?bucket={bucket}&key=meta.txt&etag=%22"
        )),
        "{location}"
    );
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("meta.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(head.cache_control(), Some("max-age=60"));
    assert_eq!(
        head.content_disposition(),
        Some("attachment; filename=m.txt")
    );
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("owner"))
            .map(String::as_str),
        Some("ada")
    );

    let form = signed_form(
        &bucket,
        vec![
            json!({"key": "ok200"}),
            json!({"success_action_status": "200"}),
        ],
        &[("key", "ok200"), ("success_action_status", "200")],
        now + hour,
        now,
    );
    let res = post_form(&server, &url, &form, "f", b"x", None).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn anonymous_forms_follow_acls_and_cors_decorates_the_answer() {
    let server = TestServer::start();
    let s3 = server.client();
    let open = bucket_name("post-open");
    s3.create_bucket()
        .bucket(&open)
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicReadWrite)
        .send()
        .await
        .unwrap();
    let closed = new_bucket(&s3, "post-closed").await;
    let cors = aws_sdk_s3::types::CorsConfiguration::builder()
        .cors_rules(
            aws_sdk_s3::types::CorsRule::builder()
                .allowed_origins("https://app.example")
                .allowed_methods("POST")
                .expose_headers("ETag")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    for b in [&open, &closed] {
        s3.put_bucket_cors()
            .bucket(b)
            .cors_configuration(cors.clone())
            .send()
            .await
            .unwrap();
    }
    let anon = vec![("key".to_owned(), "anon.txt".to_owned())];
    let origin = Some("https://app.example");
    // An anonymous form of `anon.txt` from the CORS origin.
    let post_anon = |bucket: &str| {
        let url = format!("{}/{bucket}", server.endpoint);
        let (server, anon) = (&server, &anon);
        async move { post_form(server, &url, anon, "a", b"anon", origin).await }
    };
    let res = post_anon(&open).await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(res.headers()["access-control-expose-headers"], "ETag");
    let res = post_anon(&closed).await;
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    expect_error(res, 403, "AccessDenied").await;

    // A signed form of a key whose policy denies it is refused too.
    let deny = format!(
        r#"{{"Statement":[{{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::{open}/locked/*"}}]}}"#
    );
    s3.put_bucket_policy()
        .bucket(&open)
        .policy(deny)
        .send()
        .await
        .unwrap();
    let (url, fields) = cli_post(&server, &[&open, "locked/"]);
    let res = post_form(&server, &url, &fields, "x.txt", b"x", None).await;
    expect_error(res, 403, "AccessDenied").await;
    // The missing bucket is NoSuchBucket.
    let res = post_form(
        &server,
        &format!("{}/no-such-bucket-post", server.endpoint),
        &anon,
        "a",
        b"x",
        None,
    )
    .await;
    expect_error(res, 404, "NoSuchBucket").await;
}

#[tokio::test]
async fn boto3_generate_presigned_post() {
    let have_boto3 = Command::new("python3")
        .args(["-c", "import boto3"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_boto3 {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have python3 with boto3"
        );
        eprintln!("skipped: python3 with boto3 is not installed");
        return;
    }
    let server = TestServer::start();
    let s3 = server.client();
    // SigV4 forms, and what boto3 makes with its default settings for
    // presigned POSTs: a Signature Version 2 form (AWSAccessKeyId, policy,
    // signature), which S3 still accepts.
    for signature_version in ["s3v4", "s3"] {
        let bucket = new_bucket(&s3, "post-boto").await;
        let script = r#"
import json, sys, boto3
from botocore.config import Config
endpoint, bucket, ak, sk, version = sys.argv[1:6]
c = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ak,
                 aws_secret_access_key=sk,
                 config=Config(signature_version=version, s3={"addressing_style": "path"}))
post = c.generate_presigned_post(
    Bucket=bucket, Key="boto/${filename}",
    Fields={"acl": "private", "success_action_status": "201", "Content-Type": "text/plain"},
    Conditions=[{"acl": "private"}, {"success_action_status": "201"},
                ["starts-with", "$Content-Type", "text/"], ["content-length-range", 1, 64]],
    ExpiresIn=3600)
print(json.dumps(post))
"#;
        let out = Command::new("python3")
            .args([
                "-c",
                script,
                &server.endpoint,
                &bucket,
                ACCESS_KEY,
                SECRET_KEY,
                signature_version,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let url = v["url"].as_str().unwrap().trim_end_matches('/').to_owned();
        assert_eq!(url, format!("{}/{bucket}", server.endpoint));
        let fields: Vec<(String, String)> = v["fields"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let is_v2 = fields.iter().any(|(k, _)| k == "AWSAccessKeyId");
        assert_eq!(is_v2, signature_version == "s3", "{fields:?}");
        let res = post_form(&server, &url, &fields, "notes.txt", b"from boto3", None).await;
        assert_eq!(res.status(), 201, "{signature_version}");
        let body = res.text().await.unwrap();
        assert!(body.contains("<Key>boto/notes.txt</Key>"), "{body}");
        let got = s3
            .get_object()
            .bucket(&bucket)
            .key("boto/notes.txt")
            .send()
            .await
            .unwrap();
        assert_eq!(got.content_type(), Some("text/plain"));
        let res = post_form(&server, &url, &fields, "big.txt", &[b'x'; 65], None).await;
        expect_error(res, 400, "EntityTooLarge").await;
        let html = with(
            &fields,
            &[("Content-Type", "text/html"), ("acl", "public-read")],
        );
        let res = post_form(&server, &url, &html, "n.txt", b"x", None).await;
        let msg = message_of(res, 403, "AccessDenied").await;
        assert!(msg.contains(r#"["eq", "$acl", "private"]"#), "{msg}");
        // A signature that is not the policy's.
        let name = if is_v2 {
            "signature"
        } else {
            "x-amz-signature"
        };
        let forged: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| {
                let v = if k == name {
                    format!("x{}", &v[1..])
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        let res = post_form(&server, &url, &forged, "n.txt", b"x", None).await;
        expect_error(res, 403, "SignatureDoesNotMatch").await;
    }
}

#[tokio::test]
async fn presigned_get_and_put_urls_from_the_cli() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "presign-cli").await;
    let creds = [
        "--endpoint",
        &server.endpoint,
        "--access-key",
        ACCESS_KEY,
        "--secret-key",
        SECRET_KEY,
    ];
    let url_for = |method: &str, key: &str, expires: &str| {
        let mut args = vec!["presign", method, &bucket, key, "--expires", expires];
        args.extend_from_slice(&creds);
        let out = preflight(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let put = url_for("put", "dir/a file+.txt", "15m");
    assert!(put.contains("X-Amz-Expires=900"));
    let res = server
        .http()
        .put(&put)
        .body("presigned body")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let get = url_for("get", "dir/a file+.txt", "1h");
    let res = server.http().get(&get).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "presigned body");
    // A GET URL does not sign a PUT.
    let res = server.http().put(&get).body("x").send().await.unwrap();
    expect_error(res, 403, "SignatureDoesNotMatch").await;
    // More than seven days is refused by the CLI, as S3 would.
    let mut args = vec!["presign", "get", &bucket, "k", "--expires", "8d"];
    args.extend_from_slice(&creds);
    assert!(!preflight(&args).status.success());
    // Credentials from the data dir's credentials.json.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("credentials.json"),
        json!({"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}).to_string(),
    )
    .unwrap();
    let out = preflight(&[
        "presign",
        "get",
        &bucket,
        "dir/a file+.txt",
        "--endpoint",
        &server.endpoint,
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let url = String::from_utf8(out.stdout).unwrap();
    let res = server.http().get(url.trim()).send().await.unwrap();
    assert_eq!(res.status(), 200);
}
