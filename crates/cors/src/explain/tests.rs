use serde_json::Value;

use super::*;

fn config(xml: &str) -> CorsConfig {
    CorsConfig::from_xml_unchecked(xml.as_bytes()).unwrap()
}

const UPLOAD: &str = r#"<CORSConfiguration>
  <CORSRule><ID>uploads</ID>
    <AllowedOrigin>https://app.example.com/</AllowedOrigin>
    <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>
    <AllowedHeader>content-type</AllowedHeader>
  </CORSRule>
  <CORSRule>
    <AllowedOrigin>*</AllowedOrigin>
    <AllowedMethod>GET</AllowedMethod>
    <MaxAgeSeconds>86400</MaxAgeSeconds>
  </CORSRule>
</CORSConfiguration>"#;

fn codes(e: &Explanation) -> Vec<&'static str> {
    e.warnings.iter().map(|w| w.code).collect()
}

#[test]
fn trailing_slash_and_missing_header_are_named() {
    let c = config(UPLOAD);
    let e = c.explain(&ExplainRequest::new(
        RequestMode::Preflight,
        "https://app.example.com",
        "PUT",
        &["Content-Type", "x-amz-checksum-crc32"],
    ));
    assert!(!e.decision.allowed);
    assert_eq!(e.response.status, Some(403));
    // The engine's reason is the rule that got furthest (rule #2, on the method) …
    assert_eq!(
        e.response.preflight_reason_header.as_deref(),
        Some("method")
    );
    // … and the summary points at the origin typo in rule #1.
    assert!(
        e.decision
            .summary
            .contains("rule #1: its origin check nearly matched (trailing-slash)"),
        "{}",
        e.decision.summary
    );
    let r0 = &e.rules[0];
    assert_eq!(r0.outcome, RuleOutcome::NoMatch);
    assert!(!r0.origin.ok);
    assert_eq!(r0.origin_near_miss, Some("trailing-slash"));
    assert!(
        r0.origin.reason.contains("trailing slash"),
        "{}",
        r0.origin.reason
    );
    assert!(r0.method.ok);
    assert_eq!(r0.rejected_headers, ["x-amz-checksum-crc32"]);
    assert!(e.rules[1].origin.ok && !e.rules[1].method.ok);
    assert!(!e.browser.allowed);
    let text = e.to_string();
    for s in [
        "Rule #1 (ID \"uploads\"): no match",
        "differs only by a trailing slash",
        "x-amz-checksum-crc32 not allowed by any AllowedHeader (\"content-type\")",
        "HTTP 403 AccessForbidden",
        "<ResourceType>OBJECT</ResourceType>",
        "x-preflight-cors-reason: method",
        "Browser: blocked",
    ] {
        assert!(text.contains(s), "missing {s:?} in\n{text}");
    }
}

#[test]
fn allowed_preflight_shows_exact_headers_and_max_age_cap() {
    let c = config(UPLOAD);
    let e = c.explain(&ExplainRequest::new(
        RequestMode::Preflight,
        "https://x.dev",
        "GET",
        &[],
    ));
    assert!(e.decision.allowed);
    assert_eq!(e.decision.rule_index, Some(1));
    assert_eq!(e.response.status, Some(200));
    let names: Vec<_> = e.response.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Access-Control-Allow-Origin",
            "Access-Control-Allow-Methods",
            "Access-Control-Max-Age",
            "Vary"
        ]
    );
    assert!(codes(&e).contains(&"max-age-capped"));
    assert_eq!(e.rules[1].outcome, RuleOutcome::Wins);
    // With credentials the `*` answer is refused by the browser.
    let mut req = ExplainRequest::new(RequestMode::Preflight, "https://x.dev", "GET", &[]);
    req.credentials = true;
    let e = c.explain(&req);
    assert!(e.decision.allowed && !e.browser.allowed);
    assert!(codes(&e).contains(&"wildcard-origin-credentials"));
}

#[test]
fn origin_near_misses_by_scheme_port_case() {
    let c = config(
        "<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example.com</AllowedOrigin><AllowedOrigin>http://localhost:3000</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
    );
    for (origin, kind) in [
        ("http://app.example.com", "scheme"),
        ("https://App.example.com", "case"),
        ("http://localhost:5173", "port"),
        ("https://app.example.com:443", "default-port"),
    ] {
        let e = c.explain(&ExplainRequest::new(
            RequestMode::Preflight,
            origin,
            "GET",
            &[],
        ));
        assert_eq!(
            e.rules[0].origin_near_miss,
            Some(kind),
            "{origin}: {}",
            e.rules[0].origin.reason
        );
    }
}

#[test]
fn options_is_never_an_allowed_method() {
    let c = config(UPLOAD);
    let e = c.explain(&ExplainRequest::new(
        RequestMode::Preflight,
        "https://x.dev",
        "OPTIONS",
        &[],
    ));
    assert!(!e.decision.allowed);
    assert!(codes(&e).contains(&"options-method"));
    assert!(
        e.rules[1]
            .method
            .reason
            .contains("OPTIONS is never an allowed method")
    );
}

#[test]
fn actual_request_and_cache_warnings() {
    let c = config(UPLOAD);
    let e = c.explain(&ExplainRequest::new(
        RequestMode::Actual,
        "https://x.dev",
        "GET",
        &[],
    ));
    assert!(e.decision.allowed && e.browser.allowed);
    assert_eq!(e.response.status, None);
    assert!(codes(&e).contains(&"no-vary-without-origin"));
    let e = c.explain(&ExplainRequest::new(
        RequestMode::Actual,
        "https://x.dev",
        "DELETE",
        &[],
    ));
    assert!(!e.browser.allowed);
    assert!(codes(&e).contains(&"no-vary"));
    assert!(codes(&e).contains(&"preflight-needed"));
    assert!(
        e.to_string()
            .contains("(no Access-Control-* headers, no Vary)")
    );
}

#[test]
fn upload_without_exposed_etag_is_warned() {
    let c = config(
        "<CORSConfiguration><CORSRule><AllowedOrigin>https://a.dev</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>",
    );
    let e = c.explain(&ExplainRequest::new(
        RequestMode::Preflight,
        "https://a.dev",
        "PUT",
        &["content-type"],
    ));
    assert!(e.browser.allowed);
    assert_eq!(codes(&e), ["etag-not-exposed"]);
}

#[test]
fn json_form_has_the_same_content() {
    let c = config(UPLOAD);
    let e = c.explain(&ExplainRequest::new(
        RequestMode::Preflight,
        "https://app.example.com",
        "PUT",
        &[],
    ));
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["request"]["mode"], "preflight");
    assert_eq!(v["decision"]["allowed"], false);
    assert_eq!(v["decision"]["reason"], "method");
    assert_eq!(v["response"]["status"], 403);
    assert_eq!(v["response"]["error"]["code"], "AccessForbidden");
    assert_eq!(v["rules"][0]["outcome"], "no-match");
    assert_eq!(v["rules"][0]["origin_near_miss"], "trailing-slash");
}

#[test]
fn browser_mode_follows_the_fetch_rules() {
    let h = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ExplainRequest::browser_mode("GET", &h(&[])).0,
        RequestMode::Actual
    );
    assert_eq!(
        ExplainRequest::browser_mode("GET", &h(&["Range"])).0,
        RequestMode::Actual
    );
    assert_eq!(
        ExplainRequest::browser_mode("PUT", &h(&[])).0,
        RequestMode::Preflight
    );
    assert_eq!(
        ExplainRequest::browser_mode("POST", &h(&["content-type"])).0,
        RequestMode::Preflight
    );
}

// Every conformance case: the explanation's decision, status and headers agree with the case.

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/../../tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn header<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    headers
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

/// Returns how many cases were explained.
fn run_cases(name: &str) -> usize {
    let mut explained = 0;
    for case in load(name) {
        let id = case["id"].as_str().unwrap();
        let req = &case["request"];
        let method = req["method"].as_str().unwrap();
        let path = req["path"].as_str().unwrap();
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut segs = path.trim_start_matches('/').splitn(2, '/');
        let bucket_name = segs.next().unwrap_or("");
        if bucket_name.is_empty()
            || query
                .split('&')
                .any(|p| p == "cors" || p.starts_with("cors="))
        {
            continue; // service level, configuration API
        }
        let targets_object = segs.next().is_some_and(|k| !k.is_empty());
        let cfg = case["cors_config"]
            .as_str()
            .map(|x| CorsConfig::from_xml(x.as_bytes()).unwrap());
        let bucket = if case["setup"]["bucket_exists"] == Value::Bool(false) {
            BucketState::Missing
        } else if let Some(c) = &cfg {
            BucketState::Config(c)
        } else {
            BucketState::NoConfig
        };
        let h = &req["headers"];
        let preflight_mode = method == "OPTIONS";
        let ereq = ExplainRequest {
            mode: if preflight_mode {
                RequestMode::Preflight
            } else {
                RequestMode::Actual
            },
            origin: header(h, "Origin").map(str::to_owned),
            method: if preflight_mode {
                header(h, "Access-Control-Request-Method").map(str::to_owned)
            } else {
                Some(method.to_owned())
            },
            headers: Vec::new(),
            raw_request_headers: header(h, "Access-Control-Request-Headers").map(str::to_owned),
            raw_request_method: if preflight_mode {
                None
            } else {
                header(h, "Access-Control-Request-Method").map(str::to_owned)
            },
            credentials: false,
            targets_object,
        };
        let e = explain(bucket, &ereq);
        let expect = &case["expect"];
        let status = expect["status"].as_u64().unwrap();
        if preflight_mode {
            assert_eq!(e.response.status.map(u64::from), Some(status), "{id}");
            assert_eq!(e.decision.allowed, status == 200, "{id}");
            assert_eq!(e.browser.allowed, status == 200, "{id}");
            if let Some(code) = expect["error_code"].as_str() {
                assert_eq!(
                    e.response.error.as_ref().map(|x| x.code.as_str()),
                    Some(code),
                    "{id}"
                );
            }
            if let Some(m) = expect["error_message"].as_str() {
                assert_eq!(
                    e.response.error.as_ref().map(|x| x.message.as_str()),
                    Some(m),
                    "{id}"
                );
            }
            // The rule marked as the winner is the engine's match.
            let wins: Vec<_> = e
                .rules
                .iter()
                .filter(|r| r.outcome == RuleOutcome::Wins)
                .map(|r| r.index)
                .collect();
            assert_eq!(wins.first().copied(), e.decision.rule_index, "{id}");
            // A denied rule has a failed dimension, with a reason.
            for r in &e.rules {
                let all_ok = r.origin.ok && r.method.ok && r.headers.ok;
                assert_eq!(
                    all_ok,
                    r.outcome != RuleOutcome::NoMatch,
                    "{id} rule {}",
                    r.index
                );
            }
        }
        if let Some(map) = expect["headers"].as_object() {
            for (name, want) in map {
                let n = name.to_ascii_lowercase();
                if !(n.starts_with("access-control-") || n == "vary") {
                    continue;
                }
                let have = e
                    .response
                    .headers
                    .iter()
                    .find(|x| x.name.eq_ignore_ascii_case(name))
                    .map(|x| x.value.as_str());
                assert_eq!(have, want.as_str(), "{id}: {name}");
            }
        }
        // Both forms render without panicking.
        assert!(!e.to_string().is_empty());
        serde_json::to_string(&e).unwrap();
        explained += 1;
    }
    explained
}

#[test]
fn explains_every_conformance_case() {
    assert!(run_cases("cors-cases.json") >= 60);
}

#[test]
fn explains_every_preflight_choice_case() {
    assert!(run_cases("preflight-cases.json") >= 15);
}
