//! The preflight (`OPTIONS`) algorithm of spec §4 as a pure function.

use crate::evaluate::{CorsDecision, CorsRequest};
use crate::model::CorsConfig;

/// `Insufficient information. Origin request header needed.` (spec §4 step 1).
pub const MSG_NO_ORIGIN: &str = "Insufficient information. Origin request header needed.";
/// spec §4 step 2 (no trailing period).
pub const MSG_NO_BUCKET: &str = "CORSResponse: Bucket not found";
/// spec §4 step 3.
pub const MSG_NOT_ENABLED: &str = "CORSResponse: CORS is not enabled for this bucket.";
/// spec §4 step 4 (code/message from S3 clones; Preflight choice, spec §12).
pub const MSG_NO_METHOD: &str = "Invalid Access-Control-Request-Method: null";
/// spec §4 step 6, with AWS's misspelling "evalution" kept (spec §10.11).
pub const MSG_NOT_ALLOWED: &str = "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";

/// What the server knows about the bucket named in the URL.
#[derive(Debug, Clone, Copy)]
pub enum BucketState<'a> {
    /// No such bucket.
    Missing,
    /// The bucket exists and has no CORS configuration.
    NoConfig,
    /// The bucket's CORS configuration.
    Config(&'a CorsConfig),
}

/// The inputs of a preflight.
#[derive(Debug, Clone, Copy)]
pub struct PreflightInput<'a> {
    /// `Origin` (present, even if empty).
    pub origin: Option<&'a str>,
    /// `Access-Control-Request-Method`.
    pub request_method: Option<&'a str>,
    /// `Access-Control-Request-Headers`.
    pub request_headers: Option<&'a str>,
    /// The bucket the URL names.
    pub bucket: BucketState<'a>,
    /// The URL names a key (ResourceType OBJECT) rather than the bucket itself (BUCKET).
    pub targets_object: bool,
}

/// The S3 error of a failed preflight. Body element order: Code, Message, Method,
/// ResourceType, RequestId, HostId (spec §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightError {
    /// S3 error code.
    pub code: &'static str,
    /// S3 error message.
    pub message: String,
    /// `<Method>`, when S3 sends one.
    pub method: Option<String>,
    /// `<ResourceType>`: `BUCKET` or `OBJECT`, when S3 sends one.
    pub resource_type: Option<&'static str>,
}

/// The complete answer to a preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightOutcome {
    /// HTTP status: 200 on success, 400 or 403 on errors.
    pub status: u16,
    /// On success the §6 headers in S3's order; on errors none (the server adds
    /// Content-Type etc.).
    pub headers: Vec<(&'static str, String)>,
    /// The error document, when the preflight is refused.
    pub error: Option<PreflightError>,
    /// Present when the rules were evaluated.
    pub decision: Option<CorsDecision>,
    /// Short code for logs/metrics/`x-preflight-cors-reason`: `no-origin`, `no-bucket`,
    /// `no-config`, `no-method`, `origin`, `method`, `header:NAME`, `no-rules`; `None` on
    /// success.
    pub reason: Option<String>,
    /// AWS closes the connection after the "no Origin" 400 (spec §4 step 1).
    pub close_connection: bool,
}

impl PreflightOutcome {
    fn error(
        status: u16,
        code: &'static str,
        message: &'static str,
        method: Option<String>,
        resource_type: Option<&'static str>,
        reason: &str,
    ) -> Self {
        Self {
            status,
            headers: Vec::new(),
            error: Some(PreflightError {
                code,
                message: message.to_owned(),
                method,
                resource_type,
            }),
            decision: None,
            reason: Some(reason.to_owned()),
            close_connection: false,
        }
    }

    /// The preflight is allowed (200).
    pub fn is_success(&self) -> bool {
        self.status == 200
    }
}

/// Runs spec §4 in order: Origin, bucket, configuration, request method, rule scan.
pub fn preflight(input: &PreflightInput<'_>) -> PreflightOutcome {
    // Step 1: no Origin → 400 whatever the bucket state.
    let Some(origin) = input.origin else {
        let mut out =
            PreflightOutcome::error(400, "BadRequest", MSG_NO_ORIGIN, None, None, "no-origin");
        out.close_connection = true;
        return out;
    };
    // `<Method>` of the bucket-level errors: the requested method, else OPTIONS (spec §4 step 3;
    // step 2 by analogy).
    let method_or_options = || Some(input.request_method.unwrap_or("OPTIONS").to_owned());
    let config = match input.bucket {
        // Step 2.
        BucketState::Missing => {
            return PreflightOutcome::error(
                403,
                "AccessForbidden",
                MSG_NO_BUCKET,
                method_or_options(),
                Some("BUCKET"),
                "no-bucket",
            );
        }
        // Step 3: ResourceType BUCKET even on object URLs (spec §10.10).
        BucketState::NoConfig => {
            return PreflightOutcome::error(
                403,
                "AccessForbidden",
                MSG_NOT_ENABLED,
                method_or_options(),
                Some("BUCKET"),
                "no-config",
            );
        }
        BucketState::Config(c) => c,
    };
    // Step 4: checked before any rule, even when the Origin matches nothing.
    let Some(method) = input.request_method else {
        return PreflightOutcome::error(400, "BadRequest", MSG_NO_METHOD, None, None, "no-method");
    };
    // Step 5.
    let decision = config.evaluate(&CorsRequest {
        origin,
        method,
        request_headers: input.request_headers,
    });
    match &decision {
        // Step 7.
        CorsDecision::Allowed(m) => PreflightOutcome {
            status: 200,
            headers: m.headers.clone(),
            error: None,
            decision: Some(decision),
            reason: None,
            close_connection: false,
        },
        // Step 6.
        CorsDecision::Denied { .. } => {
            let reason = decision
                .reason_code()
                .unwrap_or_else(|| "origin".to_owned());
            let mut out = PreflightOutcome::error(
                403,
                "AccessForbidden",
                MSG_NOT_ALLOWED,
                Some(method.to_owned()),
                Some(if input.targets_object {
                    "OBJECT"
                } else {
                    "BUCKET"
                }),
                &reason,
            );
            out.decision = Some(decision);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::VARY_VALUE;
    use crate::model::CorsRule;

    fn config() -> CorsConfig {
        CorsConfig {
            rules: vec![CorsRule {
                allowed_origins: vec!["https://localhost:4200".into()],
                allowed_methods: vec!["GET".into(), "PUT".into()],
                allowed_headers: vec!["x-amz-*".into()],
                max_age_seconds: Some(3000),
                ..Default::default()
            }],
        }
    }

    fn input<'a>(
        origin: Option<&'a str>,
        method: Option<&'a str>,
        bucket: BucketState<'a>,
    ) -> PreflightInput<'a> {
        PreflightInput {
            origin,
            request_method: method,
            request_headers: None,
            bucket,
            targets_object: true,
        }
    }

    fn err(out: &PreflightOutcome) -> (u16, &str, &str, Option<&str>, Option<&str>) {
        let e = out.error.as_ref().unwrap();
        (
            out.status,
            e.code,
            e.message.as_str(),
            e.method.as_deref(),
            e.resource_type,
        )
    }

    #[test]
    fn step1_no_origin_is_400_for_every_bucket_state() {
        let c = config();
        for b in [
            BucketState::Missing,
            BucketState::NoConfig,
            BucketState::Config(&c),
        ] {
            let out = preflight(&input(None, Some("GET"), b));
            assert_eq!(err(&out), (400, "BadRequest", MSG_NO_ORIGIN, None, None));
            assert_eq!(out.reason.as_deref(), Some("no-origin"));
            assert!(out.close_connection);
            assert!(out.headers.is_empty());
        }
    }

    #[test]
    fn step2_missing_bucket() {
        let out = preflight(&input(Some("o"), None, BucketState::Missing));
        assert_eq!(
            err(&out),
            (
                403,
                "AccessForbidden",
                MSG_NO_BUCKET,
                Some("OPTIONS"),
                Some("BUCKET")
            )
        );
        assert_eq!(out.reason.as_deref(), Some("no-bucket"));
        let out = preflight(&input(Some("o"), Some("PUT"), BucketState::Missing));
        assert_eq!(err(&out).3, Some("PUT"));
    }

    #[test]
    fn step3_no_config_is_bucket_resource_even_on_object_urls() {
        let out = preflight(&input(Some("whatever"), Some("PUT"), BucketState::NoConfig));
        assert_eq!(
            err(&out),
            (
                403,
                "AccessForbidden",
                MSG_NOT_ENABLED,
                Some("PUT"),
                Some("BUCKET")
            )
        );
        assert_eq!(out.reason.as_deref(), Some("no-config"));
        let out = preflight(&input(Some("whatever"), None, BucketState::NoConfig));
        assert_eq!(err(&out).3, Some("OPTIONS"));
    }

    #[test]
    fn step4_missing_method_before_rule_matching() {
        let c = config();
        let out = preflight(&input(Some("bla"), None, BucketState::Config(&c)));
        assert_eq!(err(&out), (400, "BadRequest", MSG_NO_METHOD, None, None));
        assert_eq!(out.reason.as_deref(), Some("no-method"));
        assert!(out.decision.is_none());
    }

    #[test]
    fn step6_not_allowed_resource_type_follows_url() {
        let c = config();
        let mut i = input(
            Some("http://localhost:4200"),
            Some("PUT"),
            BucketState::Config(&c),
        );
        let out = preflight(&i);
        assert_eq!(
            err(&out),
            (
                403,
                "AccessForbidden",
                MSG_NOT_ALLOWED,
                Some("PUT"),
                Some("OBJECT")
            )
        );
        assert_eq!(out.reason.as_deref(), Some("origin"));
        assert!(out.headers.is_empty());
        assert!(!out.decision.as_ref().unwrap().is_allowed());
        i.targets_object = false;
        assert_eq!(err(&preflight(&i)).4, Some("BUCKET"));
        assert!(MSG_NOT_ALLOWED.contains("evalution"));
    }

    #[test]
    fn step6_reasons() {
        let c = config();
        let mut i = input(
            Some("https://localhost:4200"),
            Some("DELETE"),
            BucketState::Config(&c),
        );
        assert_eq!(preflight(&i).reason.as_deref(), Some("method"));
        i.request_method = Some("GET");
        i.request_headers = Some("x-amz-date, Content-Type");
        assert_eq!(preflight(&i).reason.as_deref(), Some("header:content-type"));
    }

    #[test]
    fn step7_success() {
        let c = config();
        let mut i = input(
            Some("https://localhost:4200"),
            Some("PUT"),
            BucketState::Config(&c),
        );
        i.request_headers = Some("X-Amz-Date");
        let out = preflight(&i);
        assert_eq!(out.status, 200);
        assert!(out.error.is_none() && out.reason.is_none());
        assert_eq!(
            out.headers,
            vec![
                (
                    "Access-Control-Allow-Origin",
                    "https://localhost:4200".to_owned()
                ),
                ("Access-Control-Allow-Methods", "GET, PUT".to_owned()),
                ("Access-Control-Allow-Headers", "x-amz-date".to_owned()),
                ("Access-Control-Max-Age", "3000".to_owned()),
                ("Access-Control-Allow-Credentials", "true".to_owned()),
                ("Vary", VARY_VALUE.to_owned()),
            ]
        );
    }

    #[test]
    fn choice_unknown_request_method_is_403_not_allowed() {
        let c = config();
        let out = preflight(&input(
            Some("https://localhost:4200"),
            Some("PATCH"),
            BucketState::Config(&c),
        ));
        assert_eq!(err(&out).0, 403);
        assert_eq!(err(&out).3, Some("PATCH"));
        assert_eq!(out.reason.as_deref(), Some("method"));
        // Lower-case is a different method (case-sensitive).
        let out = preflight(&input(
            Some("https://localhost:4200"),
            Some("get"),
            BucketState::Config(&c),
        ));
        assert_eq!(out.status, 403);
    }

    #[test]
    fn choice_empty_origin_and_empty_method_are_present_values() {
        let c = config();
        let out = preflight(&input(Some(""), Some("GET"), BucketState::Config(&c)));
        assert_eq!((out.status, out.reason.as_deref()), (403, Some("origin")));
        let out = preflight(&input(
            Some("https://localhost:4200"),
            Some(""),
            BucketState::Config(&c),
        ));
        assert_eq!((out.status, out.reason.as_deref()), (403, Some("method")));
        assert_eq!(err(&out).3, Some(""));
    }
}
