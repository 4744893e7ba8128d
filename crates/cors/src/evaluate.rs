//! Rule evaluation (spec §5, §6): first matching rule wins; the result says why.

use std::fmt;

use crate::matching::{
    OriginMatch, glob_match, header_allowed, origin_match, request_header_names,
};
use crate::model::{CorsConfig, CorsRule};

/// `Access-Control-Allow-Origin`.
pub const ALLOW_ORIGIN: &str = "Access-Control-Allow-Origin";
/// `Access-Control-Allow-Methods`.
pub const ALLOW_METHODS: &str = "Access-Control-Allow-Methods";
/// `Access-Control-Allow-Headers`.
pub const ALLOW_HEADERS: &str = "Access-Control-Allow-Headers";
/// `Access-Control-Expose-Headers`.
pub const EXPOSE_HEADERS: &str = "Access-Control-Expose-Headers";
/// `Access-Control-Max-Age`.
pub const MAX_AGE: &str = "Access-Control-Max-Age";
/// `Access-Control-Allow-Credentials`.
pub const ALLOW_CREDENTIALS: &str = "Access-Control-Allow-Credentials";
/// `Vary`.
pub const VARY: &str = "Vary";

/// The fixed `Vary` value S3 sends whenever a rule matched (spec §6, §10.7).
pub const VARY_VALUE: &str =
    "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// The parts of a request CORS evaluation looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorsRequest<'a> {
    /// `Origin`, as sent.
    pub origin: &'a str,
    /// For a preflight: Access-Control-Request-Method. For an actual request: that header if
    /// present, else the real HTTP method (spec §5.2).
    pub method: &'a str,
    /// Raw Access-Control-Request-Headers value, if the header was present.
    pub request_headers: Option<&'a str>,
}

impl<'a> CorsRequest<'a> {
    /// An actual (non-OPTIONS) request: matches on `Access-Control-Request-Method` when the
    /// request carries one, else on the HTTP method (spec §5.2, §10.8).
    pub fn actual(
        origin: &'a str,
        http_method: &'a str,
        request_method: Option<&'a str>,
        request_headers: Option<&'a str>,
    ) -> Self {
        Self {
            origin,
            method: request_method.unwrap_or(http_method),
            request_headers,
        }
    }
}

/// Which dimension of a rule failed, in evaluation order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// No AllowedOrigin matches the Origin.
    Origin,
    /// The method is not among the AllowedMethods.
    Method,
    /// This requested header name (lower-cased) matches no AllowedHeader.
    Header(String),
}

impl Mismatch {
    /// `origin`, `method` or `header:NAME`.
    pub fn code(&self) -> String {
        match self {
            Mismatch::Origin => "origin".to_owned(),
            Mismatch::Method => "method".to_owned(),
            Mismatch::Header(h) => format!("header:{h}"),
        }
    }

    fn progress(&self) -> u8 {
        match self {
            Mismatch::Origin => 0,
            Mismatch::Method => 1,
            Mismatch::Header(_) => 2,
        }
    }
}

/// Why an Origin that failed a rule is probably a typo of one of its AllowedOrigins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NearMissKind {
    /// Differs only by a trailing `/` (browsers never send one).
    TrailingSlash,
    /// Differs only in letter case (matching is case-sensitive).
    Case,
    /// Differs only in `http` vs `https`.
    Scheme,
    /// Differs only by an explicit default port (`:80` / `:443`).
    DefaultPort,
}

/// An AllowedOrigin that almost matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginNearMiss {
    /// The AllowedOrigin value of the rule.
    pub allowed_origin: String,
    /// How the origin differs from it.
    pub kind: NearMissKind,
}

/// How one rule failed to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMismatch {
    /// Position of the rule in the configuration, from 0.
    pub rule_index: usize,
    /// The rule's `ID`, when it has one.
    pub rule_id: Option<String>,
    /// The first dimension that failed (origin → method → headers).
    pub failed: Mismatch,
    /// Each dimension on its own, whatever failed first.
    pub origin_ok: bool,
    /// The method is among the rule's AllowedMethods.
    pub method_ok: bool,
    /// Every requested name (lower-cased) that no AllowedHeader matches, in request order.
    pub rejected_headers: Vec<String>,
    /// When the origin failed: an AllowedOrigin it nearly matched.
    pub origin_near_miss: Option<OriginNearMiss>,
}

/// A match: which rule, and the response headers (spec §6, in S3's order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsMatch {
    /// Position of the matching rule in the configuration, from 0.
    pub rule_index: usize,
    /// The matching rule's `ID`, when it has one.
    pub rule_id: Option<String>,
    /// The CORS response headers, in S3's order.
    pub headers: Vec<(&'static str, String)>,
    /// The AllowedOrigin value that matched (`*`, a glob or an exact value).
    pub allowed_origin: String,
    /// True when Allow-Origin is `*` (no credentials).
    pub wildcard_origin: bool,
}

/// The outcome of evaluating a request against a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsDecision {
    /// A rule matched.
    Allowed(CorsMatch),
    /// One entry per rule, in configuration order.
    Denied {
        /// Why each rule failed.
        rules: Vec<RuleMismatch>,
    },
}

impl CorsDecision {
    /// The CORS headers to send; empty when denied.
    pub fn response_headers(&self) -> &[(&'static str, String)] {
        match self {
            CorsDecision::Allowed(m) => &m.headers,
            CorsDecision::Denied { .. } => &[],
        }
    }

    /// A rule matched.
    pub fn is_allowed(&self) -> bool {
        matches!(self, CorsDecision::Allowed(_))
    }

    /// For a denial: the rule that got furthest (origin < method < headers; the earliest
    /// rule on a tie) and the dimension it failed on.
    pub fn best_candidate(&self) -> Option<&RuleMismatch> {
        match self {
            CorsDecision::Allowed(_) => None,
            CorsDecision::Denied { rules } => {
                let mut best: Option<&RuleMismatch> = None;
                for m in rules {
                    if best.is_none_or(|b| m.failed.progress() > b.failed.progress()) {
                        best = Some(m);
                    }
                }
                best
            }
        }
    }

    /// `None` when allowed; else `origin`, `method` or `header:NAME` of the best candidate
    /// (see [`Self::best_candidate`]), or `no-rules` for a configuration without rules.
    pub fn reason_code(&self) -> Option<String> {
        match self {
            CorsDecision::Allowed(_) => None,
            CorsDecision::Denied { rules } if rules.is_empty() => Some("no-rules".to_owned()),
            CorsDecision::Denied { .. } => self.best_candidate().map(|m| m.failed.code()),
        }
    }
}

impl fmt::Display for CorsDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorsDecision::Allowed(m) => {
                write!(f, "allowed by rule #{}", m.rule_index + 1)?;
                if let Some(id) = &m.rule_id {
                    write!(f, " (ID {id:?})")?;
                }
                write!(f, " via AllowedOrigin {:?}", m.allowed_origin)
            }
            CorsDecision::Denied { rules } => {
                write!(f, "denied")?;
                if rules.is_empty() {
                    return write!(f, ": the configuration has no rules");
                }
                for m in rules {
                    write!(f, "; rule #{}", m.rule_index + 1)?;
                    if let Some(id) = &m.rule_id {
                        write!(f, " (ID {id:?})")?;
                    }
                    match &m.failed {
                        Mismatch::Origin => write!(f, ": origin not allowed")?,
                        Mismatch::Method => write!(f, ": method not allowed")?,
                        Mismatch::Header(h) => write!(f, ": request header {h:?} not allowed")?,
                    }
                    if let Some(n) = &m.origin_near_miss {
                        let why = match n.kind {
                            NearMissKind::TrailingSlash => "differs only by a trailing slash",
                            NearMissKind::Case => "differs only in letter case",
                            NearMissKind::Scheme => "differs only in scheme",
                            NearMissKind::DefaultPort => "differs only by a default port",
                        };
                        write!(f, " (AllowedOrigin {:?} {why})", n.allowed_origin)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// How one rule answers a request on its own, whatever the rules before it say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleVerdict {
    /// The rule matches the request.
    Match(CorsMatch),
    /// The rule does not match; the value says where it fails.
    Mismatch(RuleMismatch),
}

impl CorsConfig {
    /// Every rule's own verdict, in order (for `cors explain`, which shows all rules, not only
    /// the first match). The first `Match` is the rule [`Self::evaluate`] picks.
    pub fn evaluate_each(&self, req: &CorsRequest<'_>) -> Vec<RuleVerdict> {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, rule)| match try_rule(i, rule, req) {
                Some(m) => RuleVerdict::Match(m),
                None => RuleVerdict::Mismatch(rule_mismatch(i, rule, req)),
            })
            .collect()
    }

    /// Evaluates an actual or preflight request: the first rule matching on origin, method
    /// and every requested header wins (spec §4 step 5, §5).
    pub fn evaluate(&self, req: &CorsRequest<'_>) -> CorsDecision {
        // Fast path: no allocation until a rule matches.
        for (i, rule) in self.rules.iter().enumerate() {
            if let Some(m) = try_rule(i, rule, req) {
                return CorsDecision::Allowed(m);
            }
        }
        CorsDecision::Denied {
            rules: self
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| rule_mismatch(i, r, req))
                .collect(),
        }
    }
}

/// The rule's match, if origin, method and every requested header pass (spec §5).
fn try_rule(index: usize, rule: &CorsRule, req: &CorsRequest<'_>) -> Option<CorsMatch> {
    let kind = rule_origin_match(rule, req.origin)?;
    if !rule.allowed_methods.iter().any(|m| m == req.method) {
        return None;
    }
    let headers_ok = req
        .request_headers
        .is_none_or(|v| request_header_names(v).all(|n| header_allowed(&rule.allowed_headers, n)));
    headers_ok.then(|| build_match(index, rule, kind, req))
}

/// A rule's origin match. A specific (exact or glob) value wins over `*` in the same rule, so
/// listed origins keep credentials whatever the order (Preflight choice, spec §12).
pub(crate) fn rule_origin_match<'r>(
    rule: &'r CorsRule,
    origin: &str,
) -> Option<(OriginMatch, &'r str)> {
    let mut any = None;
    for allowed in &rule.allowed_origins {
        match origin_match(allowed, origin) {
            Some(OriginMatch::Specific) => return Some((OriginMatch::Specific, allowed)),
            Some(OriginMatch::Any) => any = any.or(Some((OriginMatch::Any, allowed.as_str()))),
            None => {}
        }
    }
    any
}

fn build_match(
    index: usize,
    rule: &CorsRule,
    (kind, allowed_origin): (OriginMatch, &str),
    req: &CorsRequest<'_>,
) -> CorsMatch {
    let wildcard = kind == OriginMatch::Any;
    let mut headers = Vec::with_capacity(7);
    headers.push((
        ALLOW_ORIGIN,
        if wildcard {
            "*".to_owned()
        } else {
            req.origin.to_owned()
        },
    ));
    headers.push((ALLOW_METHODS, rule.allowed_methods.join(", ")));
    if let Some(v) = req.request_headers {
        let mut echo = String::with_capacity(v.len());
        for name in request_header_names(v) {
            if !echo.is_empty() {
                echo.push_str(", ");
            }
            echo.extend(name.chars().map(|c| c.to_ascii_lowercase()));
        }
        if !echo.is_empty() {
            headers.push((ALLOW_HEADERS, echo));
        }
    }
    if !rule.expose_headers.is_empty() {
        headers.push((EXPOSE_HEADERS, rule.expose_headers.join(", ")));
    }
    if let Some(age) = rule.max_age_seconds {
        headers.push((MAX_AGE, age.to_string()));
    }
    if !wildcard {
        headers.push((ALLOW_CREDENTIALS, "true".to_owned()));
    }
    headers.push((VARY, VARY_VALUE.to_owned()));
    CorsMatch {
        rule_index: index,
        rule_id: rule.id.clone(),
        headers,
        allowed_origin: allowed_origin.to_owned(),
        wildcard_origin: wildcard,
    }
}

fn rule_mismatch(index: usize, rule: &CorsRule, req: &CorsRequest<'_>) -> RuleMismatch {
    let origin_ok = rule_origin_match(rule, req.origin).is_some();
    let method_ok = rule.allowed_methods.iter().any(|m| m == req.method);
    let rejected_headers: Vec<String> = req
        .request_headers
        .map(|v| {
            request_header_names(v)
                .filter(|n| !header_allowed(&rule.allowed_headers, n))
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let failed = if !origin_ok {
        Mismatch::Origin
    } else if !method_ok {
        Mismatch::Method
    } else if let Some(h) = rejected_headers.first() {
        Mismatch::Header(h.clone())
    } else {
        // Unreachable for a rule that failed `evaluate`; kept total for safety.
        Mismatch::Origin
    };
    let origin_near_miss = if origin_ok {
        None
    } else {
        rule.allowed_origins
            .iter()
            .find_map(|a| near_miss(a, req.origin))
    };
    RuleMismatch {
        rule_index: index,
        rule_id: rule.id.clone(),
        failed,
        origin_ok,
        method_ok,
        rejected_headers,
        origin_near_miss,
    }
}

/// Recognises the usual typos between an AllowedOrigin and the Origin a browser sent.
fn near_miss(allowed: &str, origin: &str) -> Option<OriginNearMiss> {
    let matches = |a: &str, o: &str| glob_match(a, o, false);
    let kind = if allowed
        .strip_suffix('/')
        .is_some_and(|a| matches(a, origin))
        || origin
            .strip_suffix('/')
            .is_some_and(|o| matches(allowed, o))
    {
        NearMissKind::TrailingSlash
    } else if glob_match(allowed, origin, true) {
        NearMissKind::Case
    } else if swap_scheme(allowed).is_some_and(|a| matches(&a, origin)) {
        NearMissKind::Scheme
    } else if strip_default_port(allowed).is_some_and(|a| matches(a, origin))
        || strip_default_port(origin).is_some_and(|o| matches(allowed, o))
    {
        NearMissKind::DefaultPort
    } else {
        return None;
    };
    Some(OriginNearMiss {
        allowed_origin: allowed.to_owned(),
        kind,
    })
}

fn swap_scheme(s: &str) -> Option<String> {
    if let Some(rest) = s.strip_prefix("https://") {
        Some(format!("http://{rest}"))
    } else {
        s.strip_prefix("http://")
            .map(|rest| format!("https://{rest}"))
    }
}

fn strip_default_port(s: &str) -> Option<&str> {
    if s.starts_with("http://") {
        s.strip_suffix(":80")
    } else if s.starts_with("https://") {
        s.strip_suffix(":443")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CorsRule;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        CorsRule {
            allowed_origins: v(origins),
            allowed_methods: v(methods),
            allowed_headers: v(headers),
            ..Default::default()
        }
    }

    fn req<'a>(origin: &'a str, method: &'a str, headers: Option<&'a str>) -> CorsRequest<'a> {
        CorsRequest {
            origin,
            method,
            request_headers: headers,
        }
    }

    fn header<'a>(d: &'a CorsDecision, name: &str) -> Option<&'a str> {
        d.response_headers()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn echo_origin_sends_credentials_and_headers_in_s3_order() {
        let mut r = rule(&["https://localhost:4200"], &["GET", "PUT"], &["*"]);
        r.expose_headers = vec!["ETag".into(), "x-amz-id-2".into()];
        r.max_age_seconds = Some(3000);
        let c = CorsConfig { rules: vec![r] };
        let d = c.evaluate(&req(
            "https://localhost:4200",
            "PUT",
            Some("X-Amz-Date, content-type"),
        ));
        let names: Vec<_> = d.response_headers().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                ALLOW_ORIGIN,
                ALLOW_METHODS,
                ALLOW_HEADERS,
                EXPOSE_HEADERS,
                MAX_AGE,
                ALLOW_CREDENTIALS,
                VARY
            ]
        );
        assert_eq!(header(&d, ALLOW_ORIGIN), Some("https://localhost:4200"));
        assert_eq!(header(&d, ALLOW_METHODS), Some("GET, PUT"));
        assert_eq!(header(&d, ALLOW_HEADERS), Some("x-amz-date, content-type"));
        assert_eq!(header(&d, EXPOSE_HEADERS), Some("ETag, x-amz-id-2"));
        assert_eq!(header(&d, MAX_AGE), Some("3000"));
        assert_eq!(header(&d, ALLOW_CREDENTIALS), Some("true"));
        assert_eq!(header(&d, VARY), Some(VARY_VALUE));
    }

    #[test]
    fn star_origin_gives_star_and_no_credentials() {
        let c = CorsConfig {
            rules: vec![rule(&["*"], &["GET"], &[])],
        };
        let d = c.evaluate(&req("localhost:4566", "GET", None));
        assert_eq!(header(&d, ALLOW_ORIGIN), Some("*"));
        assert_eq!(header(&d, ALLOW_CREDENTIALS), None);
        assert_eq!(header(&d, VARY), Some(VARY_VALUE));
        assert_eq!(header(&d, ALLOW_HEADERS), None);
        assert_eq!(header(&d, MAX_AGE), None);
        assert_eq!(header(&d, EXPOSE_HEADERS), None);
    }

    #[test]
    fn choice_specific_origin_beats_star_in_same_rule() {
        for origins in [&["*", "https://a.com"][..], &["https://a.com", "*"][..]] {
            let c = CorsConfig {
                rules: vec![rule(origins, &["GET"], &[])],
            };
            let d = c.evaluate(&req("https://a.com", "GET", None));
            assert_eq!(header(&d, ALLOW_ORIGIN), Some("https://a.com"));
            assert_eq!(header(&d, ALLOW_CREDENTIALS), Some("true"));
            let d = c.evaluate(&req("https://b.com", "GET", None));
            assert_eq!(header(&d, ALLOW_ORIGIN), Some("*"));
            assert_eq!(header(&d, ALLOW_CREDENTIALS), None);
        }
    }

    #[test]
    fn first_matching_rule_wins_and_fallthrough() {
        // Scality "puppies": rule 1 fails on headers, rule 2 matches.
        let c = CorsConfig {
            rules: vec![
                rule(&["*"], &["GET"], &["Content-Type", "amz-*", "Expires"]),
                rule(&["*"], &["GET"], &["*"]),
            ],
        };
        let d = c.evaluate(&req(
            "http://www.allowedwebsite.com",
            "GET",
            Some("puppies"),
        ));
        let CorsDecision::Allowed(m) = &d else {
            panic!("{d}")
        };
        assert_eq!(m.rule_index, 1);
        assert_eq!(header(&d, ALLOW_HEADERS), Some("puppies"));
        let d = c.evaluate(&req("x", "GET", Some("amz-meta-header-test, content-type")));
        assert!(!d.response_headers().is_empty());
        let CorsDecision::Allowed(m) = &d else {
            panic!()
        };
        assert_eq!(m.rule_index, 0);
    }

    #[test]
    fn every_requested_header_must_be_allowed() {
        let c = CorsConfig {
            rules: vec![rule(&["*"], &["GET"], &["content-type"])],
        };
        let d = c.evaluate(&req("o", "GET", Some("Origin, Accept, content-type")));
        assert!(!d.is_allowed());
        assert_eq!(d.reason_code().as_deref(), Some("header:origin"));
        let CorsDecision::Denied { rules } = &d else {
            panic!()
        };
        assert_eq!(rules[0].rejected_headers, ["origin", "accept"]);
    }

    #[test]
    fn rule_without_allowed_headers_matches_only_without_requested_names() {
        let c = CorsConfig {
            rules: vec![rule(&["*"], &["GET"], &[])],
        };
        assert!(c.evaluate(&req("o", "GET", None)).is_allowed());
        assert!(c.evaluate(&req("o", "GET", Some(" , "))).is_allowed());
        assert!(
            !c.evaluate(&req("o", "GET", Some("x-amz-date")))
                .is_allowed()
        );
    }

    #[test]
    fn empty_request_header_list_sends_no_allow_headers() {
        let c = CorsConfig {
            rules: vec![rule(&["*"], &["GET"], &["*"])],
        };
        let d = c.evaluate(&req("o", "GET", Some(",,")));
        assert_eq!(header(&d, ALLOW_HEADERS), None);
    }

    #[test]
    fn actual_request_uses_acrm_when_present() {
        let c = CorsConfig {
            rules: vec![rule(&["*"], &["GET"], &[])],
        };
        let r = CorsRequest::actual("o", "GET", Some("PUT"), None);
        assert_eq!(r.method, "PUT");
        assert!(!c.evaluate(&r).is_allowed());
        let r = CorsRequest::actual("o", "PUT", Some("GET"), None);
        assert!(c.evaluate(&r).is_allowed());
        assert!(
            c.evaluate(&CorsRequest::actual("o", "GET", None, None))
                .is_allowed()
        );
    }

    #[test]
    fn choice_actual_request_with_allowed_acrh_gets_allow_headers() {
        let c = CorsConfig {
            rules: vec![rule(&["http://example.com"], &["GET"], &["dummy-header"])],
        };
        let r = CorsRequest::actual("http://example.com", "GET", None, Some("Dummy-Header"));
        assert_eq!(header(&c.evaluate(&r), ALLOW_HEADERS), Some("dummy-header"));
    }

    #[test]
    fn choice_method_is_case_sensitive_and_unknown_methods_fail() {
        let c = CorsConfig {
            rules: vec![rule(&["*"], &["GET"], &[])],
        };
        assert_eq!(
            c.evaluate(&req("o", "get", None)).reason_code().as_deref(),
            Some("method")
        );
        assert_eq!(
            c.evaluate(&req("o", "PATCH", None))
                .reason_code()
                .as_deref(),
            Some("method")
        );
    }

    #[test]
    fn choice_max_age_zero_and_negative_are_emitted() {
        for (v, s) in [(0, "0"), (-5, "-5")] {
            let mut r = rule(&["*"], &["GET"], &[]);
            r.max_age_seconds = Some(v);
            let c = CorsConfig { rules: vec![r] };
            assert_eq!(
                header(&c.evaluate(&req("o", "GET", None)), MAX_AGE),
                Some(s)
            );
        }
    }

    #[test]
    fn choice_empty_and_null_origins_are_ordinary_values() {
        let c = CorsConfig {
            rules: vec![
                rule(&["https://a.com"], &["GET"], &[]),
                rule(&["*"], &["PUT"], &[]),
            ],
        };
        assert!(!c.evaluate(&req("", "GET", None)).is_allowed());
        assert!(!c.evaluate(&req("null", "GET", None)).is_allowed());
        let d = c.evaluate(&req("null", "PUT", None));
        assert_eq!(header(&d, ALLOW_ORIGIN), Some("*"));
        let c = CorsConfig {
            rules: vec![rule(&["null"], &["GET"], &[])],
        };
        let d = c.evaluate(&req("null", "GET", None));
        assert_eq!(header(&d, ALLOW_ORIGIN), Some("null"));
    }

    #[test]
    fn reason_is_the_best_candidate() {
        let c = CorsConfig {
            rules: vec![
                rule(&["https://other"], &["GET"], &[]),
                rule(&["https://a"], &["PUT"], &[]),
                rule(&["https://a"], &["GET"], &["x-a"]),
                rule(&["https://a"], &["GET"], &["x-b"]),
            ],
        };
        let d = c.evaluate(&req("https://a", "GET", Some("x-c")));
        assert_eq!(d.reason_code().as_deref(), Some("header:x-c"));
        assert_eq!(d.best_candidate().unwrap().rule_index, 2);
        let CorsDecision::Denied { rules } = &d else {
            panic!()
        };
        assert_eq!(rules.len(), 4);
        assert_eq!(rules[0].failed, Mismatch::Origin);
        assert!(rules[0].method_ok);
        assert_eq!(rules[1].failed, Mismatch::Method);
        let d = c.evaluate(&req("https://zzz", "GET", None));
        assert_eq!(d.reason_code().as_deref(), Some("origin"));
        assert_eq!(d.best_candidate().unwrap().rule_index, 0);
        assert_eq!(
            CorsConfig::default()
                .evaluate(&req("o", "GET", None))
                .reason_code()
                .as_deref(),
            Some("no-rules")
        );
    }

    #[test]
    fn near_misses_are_explained() {
        let cases = [
            (
                "https://a.com/",
                "https://a.com",
                NearMissKind::TrailingSlash,
            ),
            ("https://A.com", "https://a.com", NearMissKind::Case),
            ("https://a.com", "http://a.com", NearMissKind::Scheme),
            ("http://a.com:80", "http://a.com", NearMissKind::DefaultPort),
        ];
        for (allowed, origin, kind) in cases {
            let c = CorsConfig {
                rules: vec![rule(&[allowed], &["GET"], &[])],
            };
            let d = c.evaluate(&req(origin, "GET", None));
            let CorsDecision::Denied { rules } = &d else {
                panic!()
            };
            assert_eq!(
                rules[0].origin_near_miss.as_ref().map(|n| n.kind),
                Some(kind),
                "{allowed}"
            );
            assert!(d.to_string().contains("differs only"), "{d}");
        }
    }
}
