//! Table-driven conformance run of `tests/data/cors-cases.json` (spec §13) and
//! `tests/data/preflight-cases.json` (Preflight's §12 choices) against the engine.
//!
//! What the engine decides is checked: the status and S3 error of every preflight, the CORS
//! headers of every actual request, PutBucketCors validation, and GetBucketCors contents.
//! Statuses of actual requests (ACLs, object existence) and non-CORS headers
//! (Content-Type, Content-Length, Connection) belong to the server and are skipped.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use preflight_cors::{BucketState, CorsConfig, CorsRequest, PreflightInput, preflight};
use serde_json::Value;

#[derive(Default, Debug)]
struct Tally {
    preflight: usize,
    actual: usize,
    put: usize,
    get: usize,
    skipped: Vec<String>,
    header_checks: usize,
}

fn load(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn header<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    headers
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

fn is_cors_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("access-control-") || n == "vary"
}

/// Compares the expected CORS headers (`null` = absent) with what the engine produced.
fn check_headers(id: &str, expect: &Value, got: &[(&'static str, String)], tally: &mut Tally) {
    let Some(map) = expect.get("headers").and_then(Value::as_object) else {
        return;
    };
    for (name, want) in map {
        if !is_cors_header(name) {
            continue;
        }
        let have = got
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        assert_eq!(have, want.as_str(), "{id}: header {name}");
        tally.header_checks += 1;
    }
}

fn run(cases: &[Value], tally: &mut Tally) {
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let req = &case["request"];
        let expect = &case["expect"];
        let method = req["method"].as_str().unwrap();
        let full_path = req["path"].as_str().unwrap();
        let (path, query) = full_path.split_once('?').unwrap_or((full_path, ""));
        let headers = &req["headers"];
        let setup = &case["setup"];

        let mut segments = path.trim_start_matches('/').splitn(2, '/');
        let bucket_name = segments.next().unwrap_or("");
        let targets_object = segments.next().is_some_and(|k| !k.is_empty());
        if bucket_name.is_empty() {
            tally.skipped.push(format!("{id} (service level)"));
            continue;
        }
        let config = case["cors_config"].as_str().map(|x| {
            CorsConfig::from_xml(x.as_bytes()).unwrap_or_else(|e| panic!("{id}: cors_config: {e}"))
        });
        let bucket = if setup["bucket_exists"] == Value::Bool(false) {
            BucketState::Missing
        } else if let Some(c) = &config {
            BucketState::Config(c)
        } else {
            BucketState::NoConfig
        };
        let status = expect["status"].as_u64().unwrap();
        let is_cors_api = query
            .split('&')
            .any(|p| p == "cors" || p.starts_with("cors="));

        if is_cors_api {
            match (method, req.get("body").and_then(Value::as_str)) {
                ("PUT", Some(body)) => {
                    let r = CorsConfig::from_xml(body.as_bytes());
                    if status == 200 {
                        assert!(r.is_ok(), "{id}: {r:?}");
                    } else {
                        let e = r.expect_err(id);
                        assert_eq!(u64::from(e.status()), status, "{id}");
                        assert_eq!(Some(e.code()), expect["error_code"].as_str(), "{id}");
                        if let Some(m) = expect["error_message"].as_str() {
                            assert_eq!(e.message(), m, "{id}");
                        }
                        if let Some(m) = expect["error_message_contains"].as_str() {
                            assert!(e.message().contains(m), "{id}: {}", e.message());
                        }
                    }
                    tally.put += 1;
                }
                ("GET", _) if expect.get("cors_rules").is_some() => {
                    let c = config.as_ref().expect(id);
                    let json: Value = serde_json::from_str(&c.to_json()).unwrap();
                    assert_eq!(json["CORSRules"], expect["cors_rules"], "{id}");
                    // And through the XML the server would return.
                    assert_eq!(
                        &CorsConfig::from_xml(c.to_xml().as_bytes()).unwrap(),
                        c,
                        "{id}"
                    );
                    tally.get += 1;
                }
                _ => tally
                    .skipped
                    .push(format!("{id} (config API, server-level)")),
            }
            continue;
        }

        let origin = header(headers, "Origin");
        let acrm = header(headers, "Access-Control-Request-Method");
        let acrh = header(headers, "Access-Control-Request-Headers");

        if method == "OPTIONS" {
            let out = preflight(&PreflightInput {
                origin,
                request_method: acrm,
                request_headers: acrh,
                bucket,
                targets_object,
            });
            assert_eq!(u64::from(out.status), status, "{id}: {out:?}");
            if let Some(code) = expect["error_code"].as_str() {
                let e = out.error.as_ref().expect(id);
                assert_eq!(e.code, code, "{id}");
            }
            if let Some(m) = expect["error_message"].as_str() {
                assert_eq!(out.error.as_ref().expect(id).message, m, "{id}");
            }
            if let Some(fields) = expect.get("error_fields").and_then(Value::as_object) {
                let e = out.error.as_ref().expect(id);
                for (k, v) in fields {
                    let have = match k.as_str() {
                        "Method" => e.method.as_deref(),
                        "ResourceType" => e.resource_type,
                        other => panic!("{id}: unknown error field {other}"),
                    };
                    assert_eq!(have, v.as_str(), "{id}: {k}");
                }
            }
            assert_eq!(out.error.is_some(), status != 200, "{id}");
            assert!(status == 200 || out.headers.is_empty(), "{id}");
            check_headers(id, expect, &out.headers, tally);
            tally.preflight += 1;
        } else {
            // Actual request: CORS applies only with an Origin and a configured bucket (spec §7).
            let got = match (origin, &bucket) {
                (Some(o), BucketState::Config(c)) => c
                    .evaluate(&CorsRequest::actual(o, method, acrm, acrh))
                    .response_headers()
                    .to_vec(),
                _ => Vec::new(),
            };
            check_headers(id, expect, &got, tally);
            tally.actual += 1;
        }
    }
}

#[test]
fn conformance_cases() {
    let cases = load("cors-cases.json");
    assert!(cases.len() >= 76, "only {} cases", cases.len());
    let mut tally = Tally::default();
    run(&cases, &mut tally);
    let checked = tally.preflight + tally.actual + tally.put + tally.get;
    println!(
        "cors-cases.json: {} cases, checked {checked} (preflight {}, actual {}, PutBucketCors {}, GetBucketCors {}), {} CORS header assertions; skipped {}: {:?}",
        cases.len(),
        tally.preflight,
        tally.actual,
        tally.put,
        tally.get,
        tally.header_checks,
        tally.skipped.len(),
        tally.skipped
    );
    assert!(checked >= 68, "checked only {checked}");
    assert!(tally.preflight >= 35 && tally.actual >= 20 && tally.put >= 6);
    assert!(
        tally.header_checks >= 200,
        "only {} header checks",
        tally.header_checks
    );
}

#[test]
fn preflight_choice_cases() {
    let cases = load("preflight-cases.json");
    for c in &cases {
        assert_eq!(c["confidence"], "preflight-choice", "{}", c["id"]);
    }
    let mut tally = Tally::default();
    run(&cases, &mut tally);
    let checked = tally.preflight + tally.actual + tally.put + tally.get;
    println!(
        "preflight-cases.json: {} cases, checked {checked}, skipped {:?}",
        cases.len(),
        tally.skipped
    );
    assert_eq!(checked, cases.len());
    assert!(checked >= 15);
}
