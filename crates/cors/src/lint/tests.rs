//! One test per finding code, plus clean configurations.

use super::*;

fn rule(origins: &[&str], methods: &[&str], headers: &[&str], expose: &[&str]) -> CorsRule {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
    CorsRule {
        allowed_origins: v(origins),
        allowed_methods: v(methods),
        allowed_headers: v(headers),
        expose_headers: v(expose),
        max_age_seconds: Some(3000),
        ..Default::default()
    }
}

fn get(origins: &[&str]) -> CorsRule {
    rule(origins, &["GET"], &[], &[])
}

/// A complete upload rule that lints clean.
fn upload(origins: &[&str]) -> CorsRule {
    rule(
        origins,
        &["PUT", "POST"],
        &[
            "content-type",
            "x-amz-checksum-*",
            "x-amz-sdk-checksum-algorithm",
            "amz-sdk-*",
        ],
        &["ETag"],
    )
}

fn codes(rules: Vec<CorsRule>) -> Vec<(&'static str, Option<usize>)> {
    lint(&CorsConfig { rules })
        .iter()
        .map(|f| (f.code, f.rule_index))
        .collect()
}

fn only(rules: Vec<CorsRule>, code: &str) -> Finding {
    let found = lint(&CorsConfig { rules });
    let mine: Vec<_> = found.iter().filter(|f| f.code == code).collect();
    assert_eq!(mine.len(), 1, "{code}: {found:#?}");
    let f = mine[0].clone();
    let expected = LINT_CODES.iter().find(|(c, _)| *c == code).unwrap().1;
    assert_eq!(f.severity, expected, "{code}");
    assert!(!f.fix.is_empty() && !f.message.is_empty());
    f
}

#[test]
fn clean_configurations_have_no_findings() {
    assert_eq!(codes(vec![get(&["https://app.example.com"])]), []);
    assert_eq!(
        codes(vec![
            upload(&["https://app.example.com", "https://*.preview.example.com"]),
            get(&["*"]),
        ]),
        []
    );
    assert_eq!(
        codes(vec![get(&["*.example.com", "http://localhost:5173"])]),
        []
    );
}

#[test]
fn s3_rejects() {
    let f = only(
        vec![rule(&["*"], &["GET"], &[], &["x-amz-meta-*"])],
        "s3-rejects",
    );
    assert_eq!(f.rule_index, None);
    assert!(
        f.message
            .contains("400 InvalidRequest: ExposeHeader \"x-amz-meta-*\" contains wildcard"),
        "{}",
        f.message
    );
    let f = only(vec![], "s3-rejects");
    assert!(f.message.contains("MalformedXML"));
}

#[test]
fn origin_trailing_slash() {
    let f = only(
        vec![get(&["https://app.example.com/"])],
        "origin-trailing-slash",
    );
    assert_eq!(f.rule_index, Some(0));
    assert!(f.fix.contains("\"https://app.example.com\""), "{}", f.fix);
}

#[test]
fn origin_path() {
    let f = only(
        vec![get(&["https://app.example.com/index.html"])],
        "origin-path",
    );
    assert!(f.fix.contains("\"https://app.example.com\""));
}

#[test]
fn origin_no_scheme() {
    let f = only(vec![get(&["app.example.com"])], "origin-no-scheme");
    assert!(f.fix.contains("https://app.example.com"));
}

#[test]
fn origin_uppercase() {
    let f = only(vec![get(&["https://App.Example.com"])], "origin-uppercase");
    assert!(f.fix.contains("\"https://app.example.com\""));
}

#[test]
fn origin_default_port() {
    let f = only(
        vec![get(&["https://app.example.com:443"])],
        "origin-default-port",
    );
    assert!(f.fix.contains("\"https://app.example.com\""));
    assert_eq!(codes(vec![get(&["http://localhost:8080"])]), []);
}

#[test]
fn origin_empty() {
    only(vec![get(&["", "https://a.example"])], "origin-empty");
}

#[test]
fn method_options() {
    let f = only(
        vec![rule(&["https://a.example"], &["GET", "OPTIONS"], &[], &[])],
        "method-options",
    );
    assert!(f.message.contains("never an allowed method"));
    assert!(
        codes(vec![rule(&["https://a.example"], &["OPTIONS"], &[], &[])])
            .contains(&("s3-rejects", None))
    );
}

#[test]
fn method_patch() {
    only(
        vec![rule(&["https://a.example"], &["PATCH"], &[], &[])],
        "method-patch",
    );
}

#[test]
fn method_unsupported() {
    let f = only(
        vec![rule(&["https://a.example"], &["get"], &[], &[])],
        "method-unsupported",
    );
    assert!(f.fix.contains("\"GET\""));
    only(
        vec![rule(&["https://a.example"], &["MYMETHOD"], &[], &[])],
        "method-unsupported",
    );
}

#[test]
fn expose_header_wildcard() {
    only(
        vec![rule(
            &["https://a.example"],
            &["GET"],
            &[],
            &["x-amz-meta-*"],
        )],
        "expose-header-wildcard",
    );
}

#[test]
fn wildcard_origin_credentials() {
    let f = only(
        vec![get(&["*", "https://a.example"])],
        "wildcard-origin-credentials",
    );
    assert_eq!(f.severity, Severity::Warning);
    // With credentials known to be intended, a `*` rule is an error.
    let c = CorsConfig {
        rules: vec![get(&["*"])],
    };
    let found = lint_with(&c, &LintOptions { credentials: true });
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].code, found[0].severity),
        ("wildcard-origin-credentials", Severity::Error)
    );
    assert!(lint(&c).is_empty());
}

#[test]
fn duplicate_rule() {
    let mut b = get(&["https://a.example"]);
    b.id = Some("copy".into());
    let f = only(vec![get(&["https://a.example"]), b], "duplicate-rule");
    assert_eq!(f.rule_index, Some(1));
    assert!(f.message.contains("rule #1"));
}

#[test]
fn rule_shadowed() {
    // `*` covers an exact origin; equal methods; `*` headers cover named ones.
    let a = rule(&["*"], &["GET", "HEAD"], &["*"], &[]);
    let b = rule(&["https://a.example"], &["GET"], &["range"], &["ETag"]);
    let f = only(vec![a, b], "rule-shadowed");
    assert_eq!(f.rule_index, Some(1));
    // A glob covers an exact value.
    let a = get(&["https://*.example.com"]);
    let b = get(&["https://app.example.com"]);
    assert_eq!(only(vec![a, b], "rule-shadowed").rule_index, Some(1));
}

#[test]
fn shadowing_is_conservative() {
    // Later rule allows a method the earlier one does not: not shadowed.
    assert_eq!(
        codes(vec![
            get(&["*"]),
            rule(&["https://a.example"], &["GET", "HEAD"], &[], &[])
        ]),
        []
    );
    // Earlier rule allows fewer headers: not shadowed.
    assert_eq!(
        codes(vec![
            get(&["*"]),
            rule(&["https://a.example"], &["GET"], &["range"], &[])
        ]),
        []
    );
    // Earlier rule is more specific: not shadowed.
    assert_eq!(codes(vec![get(&["https://a.example"]), get(&["*"])]), []);
    // Glob against glob is not decided.
    assert_eq!(
        codes(vec![
            get(&["https://*.example.com"]),
            get(&["https://*.a.example.com"])
        ]),
        []
    );
}

#[test]
fn etag_not_exposed() {
    let mut r = upload(&["https://a.example"]);
    r.expose_headers.clear();
    only(vec![r], "etag-not-exposed");
}

#[test]
fn upload_content_type_missing() {
    let mut r = upload(&["https://a.example"]);
    r.allowed_headers.retain(|h| h != "content-type");
    only(vec![r], "upload-content-type-missing");
}

#[test]
fn upload_sdk_headers_missing() {
    let r = rule(
        &["https://a.example"],
        &["PUT"],
        &["content-type"],
        &["ETag"],
    );
    let f = only(vec![r], "upload-sdk-headers-missing");
    assert!(
        f.message.contains("x-amz-checksum-*") && f.message.contains("amz-sdk-*"),
        "{}",
        f.message
    );
    // `*` allows them all; a form POST rule does not need them.
    assert_eq!(
        codes(vec![rule(
            &["https://a.example"],
            &["PUT"],
            &["*"],
            &["ETag"]
        )]),
        []
    );
    assert_eq!(
        codes(vec![rule(
            &["https://a.example"],
            &["POST"],
            &["content-type"],
            &["ETag"]
        )]),
        []
    );
}

#[test]
fn authorization_missing() {
    let mut r = upload(&["https://a.example"]);
    r.allowed_headers
        .extend(["x-amz-date".into(), "x-amz-content-sha256".into()]);
    only(vec![r.clone()], "authorization-missing");
    r.allowed_headers.push("Authorization".into());
    assert_eq!(codes(vec![r]), []);
}

#[test]
fn max_age_over_browser_cap() {
    let mut r = get(&["https://a.example"]);
    r.max_age_seconds = Some(86400);
    let f = only(vec![r], "max-age-over-browser-cap");
    assert!(f.message.contains("7200"));
}

#[test]
fn every_code_is_tested_and_listed_once() {
    let mut seen: Vec<&str> = LINT_CODES.iter().map(|(c, _)| *c).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), LINT_CODES.len());
    let src = include_str!("tests.rs");
    for (code, _) in LINT_CODES {
        assert!(
            src.contains(&format!("fn {}(", code.replace('-', "_"))),
            "no test for {code}"
        );
    }
}

#[test]
fn lint_does_not_panic_on_odd_rules() {
    let odd = CorsRule::default();
    let _ = lint(&CorsConfig {
        rules: vec![odd.clone(), odd, get(&["**", "://", "*://"])],
    });
}
