//! What the browser does with S3's answer, and the cache and configuration warnings.

use super::{BrowserVerdict, ExplainRequest, Explanation, RequestMode, Warning};
use crate::evaluate::{ALLOW_ORIGIN, EXPOSE_HEADERS, MAX_AGE, VARY};
use crate::lint::{CHROMIUM_MAX_AGE_CAP, FIREFOX_MAX_AGE_CAP};

fn header_value<'a>(e: &'a Explanation, name: &str) -> Option<&'a str> {
    e.response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

pub(super) fn browser_verdict(e: &Explanation, req: &ExplainRequest) -> BrowserVerdict {
    let method = req.method.as_deref().unwrap_or("GET");
    let blocked = |reason: String| BrowserVerdict {
        allowed: false,
        reason,
    };
    let allow_origin = header_value(e, ALLOW_ORIGIN);
    match (req.mode, e.response.status) {
        (RequestMode::Preflight, Some(s)) if s != 200 => {
            return blocked(format!(
                "blocked: the preflight failed ({s}), so the browser never sends the {method} request"
            ));
        }
        (RequestMode::Actual, _) if allow_origin.is_none() => {
            return blocked(
                "blocked: the response has no Access-Control-Allow-Origin, so the page cannot read it (the request itself still reached S3 and ran)".to_owned(),
            );
        }
        _ => {}
    }
    if req.credentials && allow_origin == Some("*") {
        return blocked(
            "blocked: the request is made with credentials, and the browser refuses Access-Control-Allow-Origin: * for it (it needs the exact origin and Access-Control-Allow-Credentials: true)".to_owned(),
        );
    }
    BrowserVerdict {
        allowed: true,
        reason: match req.mode {
            RequestMode::Preflight => {
                format!("allowed: the browser caches this answer and sends the {method} request")
            }
            RequestMode::Actual => "allowed: the page can read the response".to_owned(),
        },
    }
}

pub(super) fn warnings(
    e: &Explanation,
    req: &ExplainRequest,
    match_method: Option<&str>,
) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut warn = |code, message: String| out.push(Warning { code, message });
    let method = req.method.as_deref().unwrap_or("GET");
    if match_method.is_some_and(|m| m.eq_ignore_ascii_case("OPTIONS")) {
        warn(
            "options-method",
            "OPTIONS is never an allowed method: the browser sends OPTIONS itself as the preflight, asking (in Access-Control-Request-Method) about the real method. Explain the real request instead, e.g. --method PUT --preflight".to_owned(),
        );
    }
    if req.credentials && header_value(e, ALLOW_ORIGIN) == Some("*") {
        warn(
            "wildcard-origin-credentials",
            "the matching rule allows origin \"*\": with credentials the browser needs the exact origin; list your origins explicitly in a rule before the \"*\" rule".to_owned(),
        );
    }
    if req.mode == RequestMode::Actual {
        let (mode, why) = ExplainRequest::browser_mode(method, &req.headers);
        if mode == RequestMode::Preflight {
            warn(
                "preflight-needed",
                format!("{why}; explain that one with --preflight"),
            );
        }
    }
    let no_vary = header_value(e, VARY).is_none();
    if no_vary && e.response.status.is_none_or(|s| s != 400) {
        warn(
            "no-vary",
            "the response has no Vary header: a CDN or the browser cache may store it and reuse it for a request from another origin (or reuse another origin's copy here). Put Origin in the CDN cache key, or run `preflight serve --cors-vary always`".to_owned(),
        );
    } else if req.mode == RequestMode::Actual && ["GET", "HEAD"].contains(&method) {
        warn(
            "no-vary-without-origin",
            "the same URL requested without Origin (an <img> tag, a link, curl) gets no CORS headers and no Vary; if a CDN or the browser cached that copy, this request can be served it and fail. Put Origin in the cache key".to_owned(),
        );
    }
    if req.mode == RequestMode::Preflight && e.response.status == Some(200) {
        match header_value(e, MAX_AGE).map(|v| v.parse::<i64>()) {
            None => warn(
                "max-age-default",
                "no Access-Control-Max-Age: browsers cache this preflight for 5 s only, so most requests pay for a preflight. Set MaxAgeSeconds (up to 7200)".to_owned(),
            ),
            Some(Ok(age)) if age <= 0 => warn(
                "max-age-disabled",
                format!("Access-Control-Max-Age {age}: the browser does not cache this preflight; every request sends a new one"),
            ),
            Some(Ok(age)) if age > CHROMIUM_MAX_AGE_CAP => warn(
                "max-age-capped",
                format!(
                    "Access-Control-Max-Age {age}: Chromium caches the preflight for {CHROMIUM_MAX_AGE_CAP} s at most, Firefox for {} s",
                    age.min(FIREFOX_MAX_AGE_CAP)
                ),
            ),
            _ => {}
        }
    }
    if e.decision.allowed && ["PUT", "POST"].contains(&method) {
        let exposed = header_value(e, EXPOSE_HEADERS).unwrap_or("");
        if !exposed
            .split(',')
            .any(|h| h.trim().eq_ignore_ascii_case("etag"))
        {
            warn(
                "etag-not-exposed",
                "ETag is not in Access-Control-Expose-Headers: the page cannot read the ETag of this upload (multipart uploads need it). Add <ExposeHeader>ETag</ExposeHeader>".to_owned(),
            );
        }
    }
    out
}
