//! `cors lint`: mistakes in a CORS configuration that S3 accepts silently (or rejects), each
//! with a severity, a stable code and a fix. Works on unvalidated configurations
//! ([`CorsConfig::from_xml_unchecked`]), so that it can explain a document S3 would refuse.

use std::fmt;

use serde::Serialize;

use crate::matching::glob_match;
use crate::model::{CorsConfig, CorsRule, SUPPORTED_METHODS};

/// How bad a finding is. `cors lint` exits 2 on an error, 1 on a warning with `--strict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is wrong.
    Info,
    /// Likely a mistake, or behaviour browsers differ on.
    Warning,
    /// S3 refuses the configuration, or no browser request can ever match.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How serious the finding is.
    pub severity: Severity,
    /// Stable kebab-case id (see [`LINT_CODES`]).
    pub code: &'static str,
    /// 0-based index of the rule, `None` for the whole document.
    pub rule_index: Option<usize>,
    /// What is wrong, for people.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.severity, self.code)?;
        if let Some(i) = self.rule_index {
            write!(f, " rule #{}", i + 1)?;
        }
        write!(f, ": {}\n  fix: {}", self.message, self.fix)
    }
}

/// What the configuration is for, when the caller knows more than the document says.
#[derive(Debug, Clone, Copy, Default)]
pub struct LintOptions {
    /// Requests are made with credentials (cookies, `credentials: 'include'`).
    pub credentials: bool,
}

/// Every code [`lint`] can report, with its severity.
pub const LINT_CODES: &[(&str, Severity)] = &[
    ("s3-rejects", Severity::Error),
    ("origin-trailing-slash", Severity::Error),
    ("origin-path", Severity::Error),
    ("origin-no-scheme", Severity::Error),
    ("origin-uppercase", Severity::Error),
    ("origin-default-port", Severity::Error),
    ("origin-empty", Severity::Warning),
    ("method-options", Severity::Error),
    ("method-patch", Severity::Error),
    ("method-unsupported", Severity::Error),
    ("expose-header-wildcard", Severity::Error),
    ("wildcard-origin-credentials", Severity::Warning),
    ("duplicate-rule", Severity::Warning),
    ("rule-shadowed", Severity::Warning),
    ("etag-not-exposed", Severity::Warning),
    ("upload-content-type-missing", Severity::Warning),
    ("upload-sdk-headers-missing", Severity::Warning),
    ("authorization-missing", Severity::Warning),
    ("max-age-over-browser-cap", Severity::Info),
];

/// Chromium caps `Access-Control-Max-Age` at 2 hours.
pub const CHROMIUM_MAX_AGE_CAP: i64 = 7200;
/// Firefox caps it at 24 hours.
pub const FIREFOX_MAX_AGE_CAP: i64 = 86400;

/// Headers the AWS SDKs (JS v3 and others, 2025) add to uploads, with a pattern that allows
/// each.
const SDK_UPLOAD_HEADERS: &[(&str, &str)] = &[
    ("x-amz-checksum-crc32", "x-amz-checksum-*"),
    (
        "x-amz-sdk-checksum-algorithm",
        "x-amz-sdk-checksum-algorithm",
    ),
    ("amz-sdk-invocation-id", "amz-sdk-*"),
    ("amz-sdk-request", "amz-sdk-*"),
];

/// Headers only a request signed in the `Authorization` header carries.
const HEADER_SIGNING_HEADERS: &[&str] =
    &["x-amz-date", "x-amz-content-sha256", "x-amz-security-token"];

/// Lints with default options.
pub fn lint(config: &CorsConfig) -> Vec<Finding> {
    lint_with(config, &LintOptions::default())
}

/// All findings, document-level first, then by rule.
pub fn lint_with(config: &CorsConfig, options: &LintOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Err(e) = config.validate() {
        out.push(Finding {
            severity: Severity::Error,
            code: "s3-rejects",
            rule_index: None,
            message: format!(
                "S3 rejects this document: PutBucketCors answers 400 {}: {}",
                e.code(),
                e.message()
            ),
            fix: match e.detail() {
                Some(d) => format!("fix the document ({d}); the findings below name each problem"),
                None => "fix the value named in the message; the findings below name each problem"
                    .to_owned(),
            },
        });
    }
    for (i, rule) in config.rules.iter().enumerate() {
        let mut push = |severity, code, message: String, fix: String| {
            out.push(Finding {
                severity,
                code,
                rule_index: Some(i),
                message,
                fix,
            })
        };
        lint_origins(rule, options, &mut push);
        lint_methods(rule, &mut push);
        lint_expose(rule, &mut push);
        lint_headers(rule, &mut push);
        lint_max_age(rule, &mut push);
        lint_order(config, i, &mut push);
    }
    out
}

type Push<'a> = dyn FnMut(Severity, &'static str, String, String) + 'a;

fn lint_origins(rule: &CorsRule, options: &LintOptions, push: &mut Push<'_>) {
    for o in &rule.allowed_origins {
        if o == "*" {
            continue;
        }
        if o.is_empty() {
            push(
                Severity::Warning,
                "origin-empty",
                "AllowedOrigin is empty: it matches only an empty Origin header, which browsers never send".into(),
                "remove the empty AllowedOrigin".into(),
            );
            continue;
        }
        let Some((scheme, rest)) = o.split_once("://") else {
            // `*.example.com` still matches `https://a.example.com` (the `*` spans the scheme).
            if !o.starts_with('*') {
                push(
                    Severity::Error,
                    "origin-no-scheme",
                    format!(
                        "AllowedOrigin {o:?} has no scheme: a browser's Origin is always scheme://host[:port], so it never matches"
                    ),
                    format!("write \"https://{o}\" (or \"http://{o}\" for a plain-HTTP site)"),
                );
            }
            continue;
        };
        let (host_port, path) = match rest.find('/') {
            Some(p) => (&rest[..p], &rest[p..]),
            None => (rest, ""),
        };
        if path == "/" {
            push(
                Severity::Error,
                "origin-trailing-slash",
                format!(
                    "AllowedOrigin {o:?} ends with \"/\": browsers send the origin without one, so it never matches"
                ),
                format!("write \"{scheme}://{host_port}\""),
            );
        } else if !path.is_empty() {
            push(
                Severity::Error,
                "origin-path",
                format!(
                    "AllowedOrigin {o:?} has a path: an origin is only scheme://host[:port], so it never matches"
                ),
                format!("write \"{scheme}://{host_port}\""),
            );
        }
        if scheme
            .bytes()
            .chain(host_port.bytes())
            .any(|b| b.is_ascii_uppercase())
        {
            push(
                Severity::Error,
                "origin-uppercase",
                format!(
                    "AllowedOrigin {o:?} has upper-case letters: browsers send the origin in lower case and matching is case-sensitive"
                ),
                format!(
                    "write \"{}://{}{path}\"",
                    scheme.to_ascii_lowercase(),
                    host_port.to_ascii_lowercase()
                ),
            );
        }
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "http" => host_port.strip_suffix(":80"),
            "https" => host_port.strip_suffix(":443"),
            _ => None,
        };
        if let Some(host) = default_port {
            push(
                Severity::Error,
                "origin-default-port",
                format!(
                    "AllowedOrigin {o:?} names the default port: browsers leave it out of the Origin, so it never matches"
                ),
                format!("write \"{scheme}://{host}{path}\""),
            );
        }
    }
    let has_star = rule.allowed_origins.iter().any(|o| o == "*");
    if has_star && options.credentials {
        push(
            Severity::Error,
            "wildcard-origin-credentials",
            "AllowedOrigin \"*\" answers Access-Control-Allow-Origin: * without Allow-Credentials, and browsers refuse such a response to a request with credentials".into(),
            "list the exact origins of your site instead of \"*\" (S3 then echoes the origin and sends Access-Control-Allow-Credentials: true)".into(),
        );
    } else if has_star && rule.allowed_origins.len() > 1 {
        push(
            Severity::Warning,
            "wildcard-origin-credentials",
            "the rule lists \"*\" next to specific origins, as if the listed origins should get credentials; S3 does not document which answer such a rule gives (Preflight echoes listed origins)".into(),
            "move the specific origins to their own rule before the \"*\" rule".into(),
        );
    }
}

fn lint_methods(rule: &CorsRule, push: &mut Push<'_>) {
    for m in &rule.allowed_methods {
        if SUPPORTED_METHODS.contains(&m.as_str()) {
            continue;
        }
        let upper = m.to_ascii_uppercase();
        let (code, message, fix) = match upper.as_str() {
            "OPTIONS" => (
                "method-options",
                format!("AllowedMethod {m:?}: OPTIONS is never an allowed method; the preflight is OPTIONS and asks about the method that follows, and S3 rejects the document"),
                "remove it: list the methods of the requests that follow the preflight (GET, PUT, HEAD, POST, DELETE)".to_owned(),
            ),
            "PATCH" => (
                "method-patch",
                format!("AllowedMethod {m:?}: S3 has no PATCH operation and rejects the document"),
                "remove it (S3 accepts only GET, PUT, HEAD, POST, DELETE)".to_owned(),
            ),
            _ if SUPPORTED_METHODS.contains(&upper.as_str()) => (
                "method-unsupported",
                format!("AllowedMethod {m:?} must be upper case; S3 rejects the document"),
                format!("write {upper:?}"),
            ),
            _ => (
                "method-unsupported",
                format!("AllowedMethod {m:?} is not one of GET, PUT, HEAD, POST, DELETE; S3 rejects the document"),
                "remove it".to_owned(),
            ),
        };
        push(Severity::Error, code, message, fix);
    }
}

fn lint_expose(rule: &CorsRule, push: &mut Push<'_>) {
    for h in rule.expose_headers.iter().filter(|h| h.contains('*')) {
        push(
            Severity::Error,
            "expose-header-wildcard",
            format!(
                "ExposeHeader {h:?} has a wildcard; S3 rejects it (\"We currently do not support wildcard for ExposeHeader.\")"
            ),
            "list each response header by name, e.g. ETag, x-amz-version-id".into(),
        );
    }
    let uploads = allows(rule, "PUT") || allows(rule, "POST");
    let etag = rule
        .expose_headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("etag"));
    if uploads && !etag {
        push(
            Severity::Warning,
            "etag-not-exposed",
            "the rule allows PUT/POST but does not expose ETag: JavaScript cannot read the ETag of an upload (multipart uploads need each part's ETag)".into(),
            "add <ExposeHeader>ETag</ExposeHeader>".into(),
        );
    }
}

fn lint_headers(rule: &CorsRule, push: &mut Push<'_>) {
    let allowed = |name: &str| {
        rule.allowed_headers
            .iter()
            .any(|a| glob_match(a, name, true))
    };
    if (allows(rule, "PUT") || allows(rule, "POST")) && !allowed("content-type") {
        push(
            Severity::Warning,
            "upload-content-type-missing",
            "the rule allows uploads (PUT/POST) but not the content-type request header, which an upload with a body of a non-form type sends".into(),
            "add <AllowedHeader>content-type</AllowedHeader>".into(),
        );
    }
    // SDK uploads (PutObject, UploadPart) are PUTs; a browser form POST carries its checksum
    // as a form field instead.
    if allows(rule, "PUT") {
        let mut missing: Vec<&str> = Vec::new();
        for (name, pattern) in SDK_UPLOAD_HEADERS {
            if !allowed(name) && !missing.contains(pattern) {
                missing.push(pattern);
            }
        }
        if !missing.is_empty() {
            push(
                Severity::Warning,
                "upload-sdk-headers-missing",
                format!(
                    "the rule allows PUT but not headers current AWS SDKs add to uploads: {}",
                    missing.join(", ")
                ),
                format!(
                    "add {}",
                    missing
                        .iter()
                        .map(|p| format!("<AllowedHeader>{p}</AllowedHeader>"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            );
        }
    }
    let signed_in_header = rule.allowed_headers.iter().any(|a| {
        HEADER_SIGNING_HEADERS
            .iter()
            .any(|h| a.eq_ignore_ascii_case(h))
    });
    if signed_in_header && !allowed("authorization") {
        push(
            Severity::Warning,
            "authorization-missing",
            "the rule allows x-amz-date/x-amz-content-sha256, so requests are signed in the header, but not the Authorization header that carries the signature".into(),
            "add <AllowedHeader>authorization</AllowedHeader>".into(),
        );
    }
}

fn lint_max_age(rule: &CorsRule, push: &mut Push<'_>) {
    if let Some(age) = rule.max_age_seconds.filter(|&a| a > CHROMIUM_MAX_AGE_CAP) {
        push(
            Severity::Info,
            "max-age-over-browser-cap",
            format!(
                "MaxAgeSeconds {age} is above what browsers use: Chromium caps preflight caching at {CHROMIUM_MAX_AGE_CAP} s, Firefox at {FIREFOX_MAX_AGE_CAP} s"
            ),
            format!("use at most {CHROMIUM_MAX_AGE_CAP}"),
        );
    }
}

/// Duplicates and shadowing by an earlier rule (the first matching rule wins, spec §4 step 5).
fn lint_order(config: &CorsConfig, i: usize, push: &mut Push<'_>) {
    let rule = &config.rules[i];
    if let Some(j) = (0..i).find(|&j| same_rule(&config.rules[j], rule)) {
        push(
            Severity::Warning,
            "duplicate-rule",
            format!("the rule repeats rule #{} and is never used", j + 1),
            "delete it".into(),
        );
    } else if let Some(j) = (0..i).find(|&j| covers(&config.rules[j], rule)) {
        push(
            Severity::Warning,
            "rule-shadowed",
            format!(
                "rule #{} matches every request this rule matches, so this rule never wins (the first matching rule answers)",
                j + 1
            ),
            format!("move it before rule #{} or delete it", j + 1),
        );
    }
}

fn allows(rule: &CorsRule, method: &str) -> bool {
    rule.allowed_methods.iter().any(|m| m == method)
}

/// The same rule up to ID and the order/case of its lists.
fn same_rule(a: &CorsRule, b: &CorsRule) -> bool {
    let set = |v: &[String], fold: bool| {
        let mut v: Vec<String> = v
            .iter()
            .map(|s| {
                if fold {
                    s.to_ascii_lowercase()
                } else {
                    s.clone()
                }
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    set(&a.allowed_origins, false) == set(&b.allowed_origins, false)
        && set(&a.allowed_methods, false) == set(&b.allowed_methods, false)
        && set(&a.allowed_headers, true) == set(&b.allowed_headers, true)
        && set(&a.expose_headers, true) == set(&b.expose_headers, true)
        && a.max_age_seconds == b.max_age_seconds
}

/// `a` matches every request `b` matches. Conservative: only certain cases are recognised
/// (`*`, equal values, a one-star glob covering a value without `*`).
fn covers(a: &CorsRule, b: &CorsRule) -> bool {
    let pattern_covers = |p: &str, v: &str, fold: bool| {
        p == "*"
            || (if fold {
                p.eq_ignore_ascii_case(v)
            } else {
                p == v
            })
            || (!v.contains('*')
                && p.bytes().filter(|&c| c == b'*').count() == 1
                && glob_match(p, v, fold))
    };
    !b.allowed_origins.is_empty()
        && !b.allowed_methods.is_empty()
        && b.allowed_origins.iter().all(|o| {
            a.allowed_origins
                .iter()
                .any(|p| pattern_covers(p, o, false))
        })
        && b.allowed_methods.iter().all(|m| allows(a, m))
        && b.allowed_headers
            .iter()
            .all(|h| a.allowed_headers.iter().any(|p| pattern_covers(p, h, true)))
}

#[cfg(test)]
mod tests;
