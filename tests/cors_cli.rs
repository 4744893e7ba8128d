//! `preflight cors explain|lint|preset` as a user runs them: the real binary, its output and
//! its exit status; configurations from files, stdin and a live bucket.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::fixtures::new_bucket;
use common::{ACCESS_KEY, SECRET_KEY, TestServer};
use serde_json::Value;

/// The README's mistake: an origin with a trailing slash, PUT without ETag exposed.
const MISTAKE: &str = r#"{"CORSRules": [{
  "AllowedOrigins": ["https://app.example.com/"],
  "AllowedMethods": ["GET", "PUT"],
  "AllowedHeaders": ["content-type"],
  "MaxAgeSeconds": 86400
}]}"#;

const CLEAN: &str = "<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>";

/// Warnings only: PUT without ETag exposed.
const WARNS: &str = "<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example.com</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader></CORSRule></CORSConfiguration>";

fn preflight(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_preflight"))
        .args(args)
        .env_remove("PREFLIGHT_ACCESS_KEY")
        .env_remove("PREFLIGHT_SECRET_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run preflight");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// `preflight cors explain` of the configuration at `path`, for a request
/// from `origin` with `method`, and `extra` arguments.
fn explain(path: &str, origin: &str, method: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "cors", "explain", "--config", path, "--origin", origin, "--method", method,
    ];
    args.extend_from_slice(extra);
    preflight(&args, None)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn explain_names_the_trailing_slash_and_the_missing_header() {
    let cfg = file(MISTAKE);
    let path = cfg.path().to_str().unwrap();
    let out = explain(
        path,
        "https://app.example.com",
        "PUT",
        &[
            "--header",
            "content-type",
            "--header",
            "x-amz-checksum-crc32",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    for s in [
        "Request: preflight OPTIONS from https://app.example.com, Access-Control-Request-Method: PUT",
        "Access-Control-Request-Headers: content-type, x-amz-checksum-crc32",
        "Rule #1: no match",
        "differs only by a trailing slash",
        "method   ok",
        "x-amz-checksum-crc32 not allowed by any AllowedHeader",
        "HTTP 403 AccessForbidden",
        "<Method>PUT</Method>",
        "x-preflight-cors-reason: origin",
        "Browser: blocked",
        "[no-vary]",
    ] {
        assert!(text.contains(s), "missing {s:?} in\n{text}");
    }
}

#[test]
fn explain_json_and_an_allowed_request() {
    let cfg = file(CLEAN);
    let path = cfg.path().to_str().unwrap();
    let out = explain(
        path,
        "https://app.example.com",
        "GET",
        &["--preflight", "--json"],
    );
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"]["allowed"], true);
    assert_eq!(v["decision"]["rule_index"], 0);
    assert_eq!(v["response"]["status"], 200);
    assert_eq!(
        v["response"]["headers"][0]["name"],
        "Access-Control-Allow-Origin"
    );
    assert_eq!(
        v["response"]["headers"][0]["value"],
        "https://app.example.com"
    );
    assert_eq!(v["rules"][0]["outcome"], "wins");
    // Without --preflight/--actual a GET is simple: the actual request is explained.
    let out = explain(path, "https://app.example.com", "GET", &["--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["request"]["mode"], "actual");
    assert_eq!(v["response"]["status"], Value::Null);
    let codes: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"no-vary-without-origin"), "{codes:?}");
}

#[test]
fn explain_credentials_with_star_and_options_method() {
    let cfg = file(
        "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
    );
    let path = cfg.path().to_str().unwrap();
    let out = explain(path, "https://a.dev", "GET", &["--actual", "--credentials"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("Access-Control-Allow-Origin: *"), "{text}");
    assert!(text.contains("[wildcard-origin-credentials]"), "{text}");
    let out = explain(path, "https://a.dev", "OPTIONS", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("OPTIONS is never an allowed method"));
}

#[test]
fn lint_exit_status_0_1_2() {
    let clean = file(CLEAN);
    let warns = file(WARNS);
    let errors = file(MISTAKE);
    let run = |f: &tempfile::NamedTempFile, extra: &[&str]| {
        let mut args = vec!["cors", "lint", "--config", f.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        preflight(&args, None)
    };
    let out = run(&clean, &["--strict"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("No findings"));
    assert_eq!(run(&warns, &[]).status.code(), Some(0));
    let out = run(&warns, &["--strict"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("warning [etag-not-exposed] rule #1"));
    let out = run(&errors, &[]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(
        text.contains("error [origin-trailing-slash] rule #1"),
        "{text}"
    );
    assert!(
        text.contains("fix: write \"https://app.example.com\""),
        "{text}"
    );
    // --json
    let out = run(&errors, &["--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["errors"], 1);
    assert_eq!(v["findings"][0]["code"], "origin-trailing-slash");
    assert_eq!(v["findings"][0]["severity"], "error");
    assert_eq!(v["findings"][0]["rule_index"], 0);
    // A `*` rule is an error when credentials are intended.
    let star = file(
        "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
    );
    assert_eq!(run(&star, &[]).status.code(), Some(0));
    assert_eq!(run(&star, &["--credentials"]).status.code(), Some(2));
}

#[test]
fn lint_reads_documents_s3_rejects_and_stdin() {
    let bad = "<CORSConfiguration><CORSRule><AllowedOrigin>https://a.dev</AllowedOrigin><AllowedMethod>OPTIONS</AllowedMethod><AllowedMethod>PATCH</AllowedMethod><ExposeHeader>x-amz-meta-*</ExposeHeader></CORSRule></CORSConfiguration>";
    let out = preflight(&["cors", "lint", "--config", "-"], Some(bad));
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    for code in [
        "[s3-rejects]",
        "[method-options]",
        "[method-patch]",
        "[expose-header-wildcard]",
    ] {
        assert!(text.contains(code), "missing {code} in\n{text}");
    }
    assert!(text.contains("Unsupported method is OPTIONS"), "{text}");
    // Not a configuration at all: exit 2 with a message.
    let out = preflight(&["cors", "lint", "--config", "-"], Some("hello"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither XML"));
}

#[test]
fn preset_prints_xml_and_json() {
    let out = preflight(
        &[
            "cors",
            "preset",
            "browser-put-presigned",
            "--origin",
            "https://app.example.com",
            "--origin",
            "http://localhost:5173",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let c = preflight_cors::CorsConfig::from_xml(&out.stdout).unwrap();
    assert_eq!(
        c.rules[0].allowed_origins,
        ["https://app.example.com", "http://localhost:5173"]
    );
    assert!(preflight_cors::lint::lint(&c).is_empty());
    let out = preflight(
        &[
            "cors",
            "preset",
            "media-range-read",
            "--origin",
            "https://a.dev",
            "--json",
        ],
        None,
    );
    let c = preflight_cors::CorsConfig::from_json(&stdout(&out)).unwrap();
    assert!(
        c.rules[0]
            .expose_headers
            .contains(&"Content-Range".to_owned())
    );
    let out = preflight(
        &["cors", "preset", "nope", "--origin", "https://a.dev"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("spa-read"));
    let out = preflight(
        &["cors", "preset", "spa-read", "--origin", "https://a.dev/"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn live_bucket_fetch_and_put_logs_lint_findings() {
    let server = TestServer::start();
    let bucket = new_bucket(&server.client(), "cli").await;
    let live = |sub: &'static str, bucket: String, extra: &'static [&'static str]| {
        let endpoint = server.endpoint.clone();
        tokio::task::spawn_blocking(move || {
            let mut args = vec![
                "cors",
                sub,
                "--endpoint",
                &endpoint,
                "--bucket",
                &bucket,
                "--access-key",
                ACCESS_KEY,
                "--secret-key",
                SECRET_KEY,
            ];
            args.extend_from_slice(extra);
            preflight(&args, None)
        })
    };
    let explain_args: &[&str] = &["--origin", "https://app.example.com", "--method", "PUT"];
    // No configuration yet: the preflight is S3's "CORS is not enabled".
    let out = live("explain", bucket.clone(), explain_args).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains("CORSResponse: CORS is not enabled for this bucket."),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        live("lint", bucket.clone(), &[])
            .await
            .unwrap()
            .status
            .code(),
        Some(2)
    );

    let xml = "<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example.com/</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedHeader>content-type</AllowedHeader></CORSRule></CORSConfiguration>";
    assert_eq!(server.put_cors_xml(&bucket, xml).await.status(), 200);
    let out = live("explain", bucket.clone(), explain_args).await.unwrap();
    assert!(
        stdout(&out).contains("differs only by a trailing slash"),
        "{}",
        stdout(&out)
    );
    let out = live("lint", bucket.clone(), &["--json"]).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["code"], "origin-trailing-slash");

    // PutBucketCors logged the same findings at warn level, with structured fields.
    let log = strip_ansi(&server.log());
    let line = log
        .lines()
        .find(|l| l.contains("preflight::cors") && l.contains("code=\"origin-trailing-slash\""))
        .unwrap_or_else(|| panic!("no lint finding in the log:\n{log}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains(&format!("bucket=\"{bucket}\""))
            || line.contains(&format!("bucket={bucket}")),
        "{line}"
    );
    assert!(line.contains("rule=1"), "{line}");
    assert!(line.contains("ends with \"/\""), "{line}");
    assert!(log.contains("etag-not-exposed"));

    // Wrong credentials: a clear error, exit 2.
    let endpoint = server.endpoint.clone();
    let out = tokio::task::spawn_blocking(move || {
        preflight(
            &[
                "cors",
                "lint",
                "--endpoint",
                &endpoint,
                "--bucket",
                &bucket,
                "--access-key",
                "nobody",
                "--secret-key",
                "x",
            ],
            None,
        )
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The log is written with colours.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
