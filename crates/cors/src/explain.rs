//! `cors explain`: why a request is allowed or refused, rule by rule and dimension by
//! dimension, in plain words, with the exact response S3 sends and what the browser then does.
//!
//! Built on the engine's own values: [`preflight`] and [`CorsConfig::evaluate`] decide, and
//! [`CorsConfig::evaluate_each`] gives every rule's verdict. Nothing here re-decides a match.

use serde::Serialize;

use crate::evaluate::{
    CorsDecision, CorsRequest, NearMissKind, RuleMismatch, RuleVerdict, rule_origin_match,
};
use crate::matching::{OriginMatch, glob_match, request_header_names};
use crate::model::{CorsConfig, CorsRule, SUPPORTED_METHODS};
use crate::preflight::{BucketState, PreflightInput, preflight};

mod advice;
mod render;

use advice::{browser_verdict, warnings};

/// Preflight (`OPTIONS`) or the actual request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestMode {
    /// An `OPTIONS` request with `Access-Control-Request-Method`.
    Preflight,
    /// The request itself (GET, PUT...), answered by the operation.
    Actual,
}

/// The request to explain, as a browser would send it.
#[derive(Debug, Clone)]
pub struct ExplainRequest {
    /// Preflight or actual request.
    pub mode: RequestMode,
    /// `Origin`; `None` when the header is absent.
    pub origin: Option<String>,
    /// Preflight: `Access-Control-Request-Method` (`None` = absent). Actual: the HTTP method.
    pub method: Option<String>,
    /// The request header names the page sets. A preflight sends them in
    /// `Access-Control-Request-Headers`; an actual request sends them as they are.
    pub headers: Vec<String>,
    /// A raw `Access-Control-Request-Headers` value, used as sent instead of `headers`
    /// (conformance cases; also allowed on actual requests, spec §5.2).
    pub raw_request_headers: Option<String>,
    /// An `Access-Control-Request-Method` header on an actual request (spec §5.2).
    pub raw_request_method: Option<String>,
    /// The request is made with credentials (cookies, `credentials: 'include'`).
    pub credentials: bool,
    /// The URL names a key rather than the bucket.
    pub targets_object: bool,
}

impl ExplainRequest {
    /// A request with an origin, a method and the header names the page sets.
    pub fn new(mode: RequestMode, origin: &str, method: &str, headers: &[&str]) -> Self {
        Self {
            mode,
            origin: Some(origin.to_owned()),
            method: Some(method.to_owned()),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            raw_request_headers: None,
            raw_request_method: None,
            credentials: false,
            targets_object: true,
        }
    }

    /// What a browser does for `fetch(url, {method, headers})`: a preflight first unless the
    /// request is "simple" (GET/HEAD/POST and only CORS-safelisted headers). The reason says
    /// why. `content-type` counts as not safelisted: only form and text/plain values are.
    pub fn browser_mode(method: &str, headers: &[String]) -> (RequestMode, String) {
        const SAFELISTED: [&str; 4] = ["accept", "accept-language", "content-language", "range"];
        if !["GET", "HEAD", "POST"].contains(&method) {
            return (
                RequestMode::Preflight,
                format!("{method} is not a simple method, so the browser sends a preflight first"),
            );
        }
        let unsafe_names: Vec<&str> = headers
            .iter()
            .map(String::as_str)
            .filter(|h| !SAFELISTED.iter().any(|s| s.eq_ignore_ascii_case(h)))
            .collect();
        if unsafe_names.is_empty() {
            (
                RequestMode::Actual,
                "a simple request: the browser sends it without a preflight".to_owned(),
            )
        } else {
            (
                RequestMode::Preflight,
                format!(
                    "the header(s) {} are not CORS-safelisted, so the browser sends a preflight first",
                    unsafe_names.join(", ")
                ),
            )
        }
    }

    /// The `Access-Control-Request-Headers` value on the wire, if any.
    fn acrh(&self) -> Option<String> {
        if self.raw_request_headers.is_some() {
            return self.raw_request_headers.clone();
        }
        (self.mode == RequestMode::Preflight && !self.headers.is_empty())
            .then(|| self.headers.join(", "))
    }
}

/// The whole explanation; `Display` renders it for people, `Serialize` for machines.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The request as the engine read it.
    pub request: RequestSummary,
    /// `configured`, `no-config` or `no-bucket`.
    pub bucket: &'static str,
    /// Every rule, in order; empty when no rules were evaluated.
    pub rules: Vec<RuleExplanation>,
    /// Allowed or denied, and why.
    pub decision: DecisionSummary,
    /// What S3 sends back.
    pub response: ResponseSummary,
    /// What the browser then does.
    pub browser: BrowserVerdict,
    /// Pitfalls worth knowing even when the request is allowed (caching, credentials).
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, Serialize)]
/// The request part of an [`Explanation`].
pub struct RequestSummary {
    /// Preflight or actual request.
    pub mode: RequestMode,
    /// `Origin`, as sent.
    pub origin: Option<String>,
    /// The method: `Access-Control-Request-Method` of a preflight, the HTTP method otherwise.
    pub method: Option<String>,
    /// `Access-Control-Request-Headers` as sent.
    pub request_headers: Option<String>,
    /// The request is made with credentials.
    pub credentials: bool,
}

/// `wins`: this rule answers. `also-matches`: it would match, but an earlier rule answers.
/// `no-match`: at least one dimension fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleOutcome {
    /// This rule answers the request.
    Wins,
    /// This rule would match, but an earlier rule answers.
    AlsoMatches,
    /// At least one dimension (origin, method, headers) fails.
    NoMatch,
}

#[derive(Debug, Clone, Serialize)]
/// One dimension of a rule, checked.
pub struct Check {
    /// The dimension matches.
    pub ok: bool,
    /// Why it matches or does not, for people.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
/// How one rule fares against the request.
pub struct RuleExplanation {
    /// Position of the rule in the configuration, from 0.
    pub index: usize,
    /// The rule's `ID`, when it has one.
    pub id: Option<String>,
    /// Whether this rule answers, would match, or fails.
    pub outcome: RuleOutcome,
    /// The `Origin` against the rule's AllowedOrigins.
    pub origin: Check,
    /// The method against the rule's AllowedMethods.
    pub method: Check,
    /// The requested headers against the rule's AllowedHeaders.
    pub headers: Check,
    /// Requested names (lower-cased) no AllowedHeader matches.
    pub rejected_headers: Vec<String>,
    /// `trailing-slash`, `case`, `scheme`, `default-port` or `port`, when the origin nearly
    /// matched an AllowedOrigin.
    pub origin_near_miss: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
/// The decision part of an [`Explanation`].
pub struct DecisionSummary {
    /// A rule matched.
    pub allowed: bool,
    /// Position of the rule that answers, from 0.
    pub rule_index: Option<usize>,
    /// `ID` of the rule that answers.
    pub rule_id: Option<String>,
    /// The engine's reason code (`origin`, `method`, `header:NAME`, `no-config`, …).
    pub reason: Option<String>,
    /// One sentence for people.
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
/// One response header.
pub struct HeaderLine {
    /// Header name, in S3's capitalization.
    pub name: String,
    /// Header value.
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
/// The S3 error document a refused preflight gets.
pub struct ErrorSummary {
    /// S3 error code (`AccessForbidden`, `BadRequest`).
    pub code: String,
    /// S3 error message.
    pub message: String,
    /// `<Method>` of the error document.
    pub method: Option<String>,
    /// `<ResourceType>` of the error document.
    pub resource_type: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
/// The response part of an [`Explanation`].
pub struct ResponseSummary {
    /// The status S3 sends; `None` for an actual request (the operation decides it).
    pub status: Option<u16>,
    /// The error document, when S3 refuses.
    pub error: Option<ErrorSummary>,
    /// The CORS headers, in S3's order.
    pub headers: Vec<HeaderLine>,
    /// Preflight's own `x-preflight-cors-reason` header on a refused preflight.
    pub preflight_reason_header: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
/// What the browser does with the response.
pub struct BrowserVerdict {
    /// The page's script gets the response.
    pub allowed: bool,
    /// Why, in the words of a browser console.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
/// A pitfall found while explaining.
pub struct Warning {
    /// Stable code of the warning (`no-vary`, `max-age-capped`, `etag-not-exposed`...).
    pub code: &'static str,
    /// The warning, for people.
    pub message: String,
}

impl CorsConfig {
    /// Explains `req` against this configuration.
    pub fn explain(&self, req: &ExplainRequest) -> Explanation {
        explain(BucketState::Config(self), req)
    }
}

/// Explains a request against a bucket in any state.
pub fn explain(bucket: BucketState<'_>, req: &ExplainRequest) -> Explanation {
    let acrh = req.acrh();
    let bucket_word = match bucket {
        BucketState::Missing => "no-bucket",
        BucketState::NoConfig => "no-config",
        BucketState::Config(_) => "configured",
    };
    let (response, decision_value, reason) = match req.mode {
        RequestMode::Preflight => respond_preflight(bucket, req, acrh.as_deref()),
        RequestMode::Actual => respond_actual(bucket, req, acrh.as_deref()),
    };
    // The method the rules are matched on (spec §5.2).
    let match_method = match req.mode {
        RequestMode::Preflight => req.method.clone(),
        RequestMode::Actual => req
            .raw_request_method
            .clone()
            .or_else(|| Some(req.method.clone().unwrap_or_else(|| "GET".into()))),
    };
    let rules = match (bucket, &req.origin, &match_method, &decision_value) {
        (BucketState::Config(c), Some(origin), Some(method), Some(_)) => {
            let creq = CorsRequest {
                origin,
                method,
                request_headers: acrh.as_deref(),
            };
            explain_rules(c, &creq)
        }
        _ => Vec::new(),
    };
    let decision = summarize_decision(decision_value.as_ref(), reason, &rules);
    let mut explanation = Explanation {
        request: RequestSummary {
            mode: req.mode,
            origin: req.origin.clone(),
            method: req.method.clone(),
            request_headers: acrh,
            credentials: req.credentials,
        },
        bucket: bucket_word,
        rules,
        decision,
        response,
        browser: BrowserVerdict {
            allowed: false,
            reason: String::new(),
        },
        warnings: Vec::new(),
    };
    explanation.browser = browser_verdict(&explanation, req);
    explanation.warnings = warnings(&explanation, req, match_method.as_deref());
    explanation
}

fn respond_preflight(
    bucket: BucketState<'_>,
    req: &ExplainRequest,
    acrh: Option<&str>,
) -> (ResponseSummary, Option<CorsDecision>, Option<String>) {
    let out = preflight(&PreflightInput {
        origin: req.origin.as_deref(),
        request_method: req.method.as_deref(),
        request_headers: acrh,
        bucket,
        targets_object: req.targets_object,
    });
    let response = ResponseSummary {
        status: Some(out.status),
        error: out.error.as_ref().map(|e| ErrorSummary {
            code: e.code.to_owned(),
            message: e.message.clone(),
            method: e.method.clone(),
            resource_type: e.resource_type.map(str::to_owned),
        }),
        headers: header_lines(&out.headers),
        preflight_reason_header: out.error.as_ref().and(out.reason.clone()),
    };
    (response, out.decision, out.reason)
}

fn respond_actual(
    bucket: BucketState<'_>,
    req: &ExplainRequest,
    acrh: Option<&str>,
) -> (ResponseSummary, Option<CorsDecision>, Option<String>) {
    let method = req.method.as_deref().unwrap_or("GET");
    let (decision, reason) = match (req.origin.as_deref(), bucket) {
        (None, _) => (None, Some("no-origin".to_owned())),
        (Some(_), BucketState::Missing) => (None, Some("no-bucket".to_owned())),
        (Some(_), BucketState::NoConfig) => (None, Some("no-config".to_owned())),
        (Some(origin), BucketState::Config(c)) => {
            let d = c.evaluate(&CorsRequest::actual(
                origin,
                method,
                req.raw_request_method.as_deref(),
                acrh,
            ));
            let r = d.reason_code();
            (Some(d), r)
        }
    };
    let headers = decision
        .as_ref()
        .map(|d| header_lines(d.response_headers()))
        .unwrap_or_default();
    let response = ResponseSummary {
        status: None,
        error: None,
        headers,
        preflight_reason_header: None,
    };
    (response, decision, reason)
}

fn header_lines(headers: &[(&'static str, String)]) -> Vec<HeaderLine> {
    headers
        .iter()
        .map(|(n, v)| HeaderLine {
            name: (*n).to_owned(),
            value: v.clone(),
        })
        .collect()
}

fn explain_rules(config: &CorsConfig, req: &CorsRequest<'_>) -> Vec<RuleExplanation> {
    let mut winner_seen = false;
    config
        .evaluate_each(req)
        .into_iter()
        .zip(&config.rules)
        .map(|(verdict, rule)| {
            let (index, id, outcome, mismatch) = match verdict {
                RuleVerdict::Match(m) => {
                    let outcome = if winner_seen {
                        RuleOutcome::AlsoMatches
                    } else {
                        RuleOutcome::Wins
                    };
                    winner_seen = true;
                    (m.rule_index, m.rule_id, outcome, None)
                }
                RuleVerdict::Mismatch(m) => (
                    m.rule_index,
                    m.rule_id.clone(),
                    RuleOutcome::NoMatch,
                    Some(m),
                ),
            };
            let (origin, origin_near_miss) = origin_check(rule, req.origin, mismatch.as_ref());
            let (headers, rejected_headers) = headers_check(rule, req.request_headers);
            RuleExplanation {
                index,
                id,
                outcome,
                origin,
                method: method_check(rule, req.method),
                headers,
                rejected_headers,
                origin_near_miss,
            }
        })
        .collect()
}

fn quoted_list(values: &[String]) -> String {
    if values.is_empty() {
        return "(none)".to_owned();
    }
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn origin_check(
    rule: &CorsRule,
    origin: &str,
    mismatch: Option<&RuleMismatch>,
) -> (Check, Option<&'static str>) {
    if let Some((kind, allowed)) = rule_origin_match(rule, origin) {
        let reason = match kind {
            OriginMatch::Any => "AllowedOrigin \"*\" allows any origin (the answer is Access-Control-Allow-Origin: *, without credentials)".to_owned(),
            OriginMatch::Specific if allowed == origin => format!("{origin:?} is listed"),
            OriginMatch::Specific => format!("{origin:?} matches the pattern {allowed:?}"),
        };
        return (Check { ok: true, reason }, None);
    }
    let mut reason = format!(
        "{origin:?} matches no AllowedOrigin ({})",
        quoted_list(&rule.allowed_origins)
    );
    let near = mismatch.and_then(|m| m.origin_near_miss.as_ref());
    let kind = if let Some(n) = near {
        let (code, words) = match n.kind {
            NearMissKind::TrailingSlash => (
                "trailing-slash",
                "differs only by a trailing slash: browsers never send one",
            ),
            NearMissKind::Case => (
                "case",
                "differs only in letter case: browsers send origins in lower case and matching is case-sensitive",
            ),
            NearMissKind::Scheme => ("scheme", "differs only in the scheme (http vs https)"),
            NearMissKind::DefaultPort => (
                "default-port",
                "differs only by an explicit default port (:80/:443), which browsers leave out",
            ),
        };
        reason.push_str(&format!("; AllowedOrigin {:?} {words}", n.allowed_origin));
        Some(code)
    } else if let Some((allowed, a, o)) = rule
        .allowed_origins
        .iter()
        .find_map(|a| port_near_miss(a, origin).map(|(pa, po)| (a, pa, po)))
    {
        reason.push_str(&format!(
            "; AllowedOrigin {allowed:?} differs only in the port ({a} vs {o})"
        ));
        Some("port")
    } else {
        None
    };
    (Check { ok: false, reason }, kind)
}

/// `scheme://host:port` pairs that differ only in a non-default port.
fn port_near_miss(allowed: &str, origin: &str) -> Option<(String, String)> {
    fn split(s: &str) -> Option<(&str, &str, String)> {
        let (scheme, rest) = s.split_once("://")?;
        if rest.contains(['/', '*']) {
            return None;
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => {
                (h, p.to_owned())
            }
            _ => (
                rest,
                if scheme == "https" { "443" } else { "80" }.to_owned(),
            ),
        };
        Some((scheme, host, port))
    }
    let (sa, ha, pa) = split(allowed)?;
    let (so, ho, po) = split(origin)?;
    (sa == so && ha == ho && pa != po).then_some((pa, po))
}

fn method_check(rule: &CorsRule, method: &str) -> Check {
    let listed = rule.allowed_methods.join(", ");
    if rule.allowed_methods.iter().any(|m| m == method) {
        return Check {
            ok: true,
            reason: format!("{method} is among the AllowedMethods ({listed})"),
        };
    }
    let mut reason = format!("{method} is not among the AllowedMethods ({listed})");
    if method.eq_ignore_ascii_case("OPTIONS") {
        reason.push_str("; OPTIONS is never an allowed method: the preflight itself is the OPTIONS request, and it asks about the method that follows");
    } else if rule
        .allowed_methods
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
    {
        reason.push_str("; methods are case-sensitive");
    } else if !SUPPORTED_METHODS.contains(&method) {
        reason.push_str("; S3 CORS can allow only GET, PUT, HEAD, POST and DELETE");
    }
    Check { ok: false, reason }
}

fn headers_check(rule: &CorsRule, acrh: Option<&str>) -> (Check, Vec<String>) {
    let Some(value) = acrh else {
        return (
            Check {
                ok: true,
                reason: "no Access-Control-Request-Headers, nothing to check".to_owned(),
            },
            Vec::new(),
        );
    };
    let mut allowed_by = Vec::new();
    let mut rejected = Vec::new();
    for name in request_header_names(value) {
        match rule
            .allowed_headers
            .iter()
            .find(|a| glob_match(a, name, true))
        {
            Some(a) if a.eq_ignore_ascii_case(name) => allowed_by.push(name.to_ascii_lowercase()),
            Some(a) => allowed_by.push(format!("{} (by {a:?})", name.to_ascii_lowercase())),
            None => rejected.push(name.to_ascii_lowercase()),
        }
    }
    if rejected.is_empty() {
        let reason = if allowed_by.is_empty() {
            "no header names requested".to_owned()
        } else {
            format!("allowed: {}", allowed_by.join(", "))
        };
        return (Check { ok: true, reason }, rejected);
    }
    let reason = if rule.allowed_headers.is_empty() {
        format!(
            "{} not allowed: the rule has no AllowedHeader, so it matches only requests that ask for no headers",
            rejected.join(", ")
        )
    } else {
        format!(
            "{} not allowed by any AllowedHeader ({})",
            rejected.join(", "),
            quoted_list(&rule.allowed_headers)
        )
    };
    (Check { ok: false, reason }, rejected)
}

fn summarize_decision(
    decision: Option<&CorsDecision>,
    reason: Option<String>,
    rules: &[RuleExplanation],
) -> DecisionSummary {
    let (allowed, rule_index, rule_id) = match decision {
        Some(CorsDecision::Allowed(m)) => (true, Some(m.rule_index), m.rule_id.clone()),
        _ => (false, None, None),
    };
    let summary = match (decision, reason.as_deref()) {
        (Some(CorsDecision::Allowed(m)), _) => format!("allowed by rule #{}", m.rule_index + 1),
        (Some(d @ CorsDecision::Denied { .. }), _) => match d.best_candidate() {
            Some(best) => {
                let dim = match rules.get(best.rule_index) {
                    Some(r) if !r.origin.ok => "the origin".to_owned(),
                    Some(r) if !r.method.ok => "the method".to_owned(),
                    Some(r) => format!("the header(s) {}", r.rejected_headers.join(", ")),
                    None => best.failed.code(),
                };
                let mut s = format!(
                    "denied: no rule matches; the closest is rule #{}, which fails on {dim}",
                    best.rule_index + 1
                );
                // A typo of the origin is the likelier mistake than the closest rule's.
                if let Some(r) = rules
                    .iter()
                    .find(|r| r.origin_near_miss.is_some() && r.index != best.rule_index)
                {
                    s.push_str(&format!(
                        "; but look at rule #{}: its origin check nearly matched ({})",
                        r.index + 1,
                        r.origin_near_miss.unwrap_or_default()
                    ));
                }
                s
            }
            None => "denied: the configuration has no rules".to_owned(),
        },
        (None, Some("no-origin")) => "not a CORS request: there is no Origin header".to_owned(),
        (None, Some("no-bucket")) => "denied: the bucket does not exist".to_owned(),
        (None, Some("no-config")) => "denied: the bucket has no CORS configuration".to_owned(),
        (None, Some("no-method")) => {
            "denied: the preflight has no Access-Control-Request-Method".to_owned()
        }
        (None, r) => format!("denied ({})", r.unwrap_or("unknown")),
    };
    DecisionSummary {
        allowed,
        rule_index,
        rule_id,
        reason,
        summary,
    }
}

#[cfg(test)]
mod tests;
