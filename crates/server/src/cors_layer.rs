//! The CORS layer: answers every `OPTIONS` itself (spec §4) and computes the
//! CORS headers of actual requests (spec §5–§7), from the in-memory bucket
//! cache. It runs before s3s, so a preflight is never authenticated: a
//! presigned query string or an Authorization header on it is ignored (§8).

use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use preflight_cors::{BucketState, CorsDecision, CorsRequest, PreflightInput, VARY_VALUE};
use s3s::Body;

use crate::buckets::BucketDirectory;
use crate::config::VaryMode;
use crate::errors::ErrorDoc;
use crate::host::Target;
use crate::metrics;

/// The header that tells a developer why a preflight was refused.
pub const REASON_HEADER: &str = "x-preflight-cors-reason";

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Answers a preflight request.
pub fn preflight(
    buckets: &BucketDirectory,
    vary: VaryMode,
    headers: &HeaderMap,
    target: &Target,
    request_id: &str,
) -> Response<Body> {
    let entry = target.bucket().and_then(|b| buckets.get(b));
    let bucket = match &entry {
        None => BucketState::Missing,
        Some(e) => match &e.cors {
            None => BucketState::NoConfig,
            Some(cfg) => BucketState::Config(cfg),
        },
    };
    let input = PreflightInput {
        origin: header_str(headers, &header::ORIGIN),
        request_method: header_str(headers, &header::ACCESS_CONTROL_REQUEST_METHOD),
        request_headers: header_str(headers, &header::ACCESS_CONTROL_REQUEST_HEADERS),
        bucket,
        targets_object: matches!(target, Target::Object(..)),
    };
    let outcome = preflight_cors::preflight(&input);
    metrics::record_cors(outcome.error.is_none(), outcome.reason.as_deref());
    log_decision(
        target,
        true,
        &input.origin,
        input.request_method,
        input.request_headers,
        outcome.decision.as_ref(),
        outcome.reason.as_deref(),
    );

    let status = StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::FORBIDDEN);
    let mut res = match &outcome.error {
        Some(err) => {
            let mut doc = ErrorDoc::new(status, err.code, err.message.as_str());
            if let Some(m) = err.method.as_deref() {
                doc = doc.field("Method", m);
            }
            if let Some(rt) = err.resource_type {
                doc = doc.field("ResourceType", rt);
            }
            doc.request_id(request_id).into_response()
        }
        None => {
            let mut res = Response::new(Body::empty());
            *res.status_mut() = status;
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            res
        }
    };
    append_headers(res.headers_mut(), &outcome.headers);
    if let Some(reason) = outcome.reason.as_deref()
        && outcome.error.is_some()
        && let Ok(v) = HeaderValue::from_str(reason)
    {
        res.headers_mut().insert(REASON_HEADER, v);
    }
    if vary == VaryMode::Always && matches!(input.bucket, BucketState::Config(_)) {
        res.headers_mut()
            .insert(header::VARY, HeaderValue::from_static(VARY_VALUE));
    }
    if outcome.status == 400 && input.origin.is_none() {
        // S3 closes the connection after this one (spec §4 step 1).
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// What the CORS layer decided for an actual request, applied to the
/// response once s3s produced it.
#[derive(Debug, Default)]
pub struct ActualCors {
    headers: Vec<(&'static str, String)>,
    /// The bucket has a CORS configuration (for `--cors-vary always`).
    configured: bool,
}

/// Evaluates an actual (non-OPTIONS) request (spec §7).
pub fn evaluate_actual(
    buckets: &BucketDirectory,
    headers: &HeaderMap,
    method: &Method,
    target: &Target,
) -> ActualCors {
    let entry = target.bucket().and_then(|b| buckets.get(b));
    let cfg = entry.as_ref().and_then(|e| e.cors.clone());
    let configured = cfg.is_some();
    let Some(origin) = header_str(headers, &header::ORIGIN) else {
        return ActualCors {
            headers: Vec::new(),
            configured,
        };
    };
    let Some(cfg) = cfg else {
        // A cross-origin request to a bucket without CORS: S3 adds nothing.
        if target.bucket().is_some() {
            let reason = if entry.is_none() {
                "no-bucket"
            } else {
                "no-config"
            };
            metrics::record_cors(false, Some(reason));
        }
        return ActualCors::default();
    };
    // spec §5.2: the requested method, when sent, stands in for the real one.
    let method =
        header_str(headers, &header::ACCESS_CONTROL_REQUEST_METHOD).unwrap_or(method.as_str());
    let request_headers = header_str(headers, &header::ACCESS_CONTROL_REQUEST_HEADERS);
    let decision = cfg.evaluate(&CorsRequest {
        origin,
        method,
        request_headers,
    });
    let reason = decision.reason_code();
    metrics::record_cors(decision.is_allowed(), reason.as_deref());
    log_decision(
        target,
        false,
        &Some(origin),
        Some(method),
        request_headers,
        Some(&decision),
        reason.as_deref(),
    );
    ActualCors {
        headers: decision.response_headers().to_vec(),
        configured: true,
    }
}

impl ActualCors {
    /// Adds the CORS headers to a response: success or error alike (§7).
    pub fn apply(self, vary: VaryMode, headers: &mut HeaderMap) {
        append_headers(headers, &self.headers);
        if vary == VaryMode::Always && self.configured && self.headers.is_empty() {
            headers.insert(header::VARY, HeaderValue::from_static(VARY_VALUE));
        }
    }
}

fn append_headers(map: &mut HeaderMap, headers: &[(&'static str, String)]) {
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            let name = HeaderName::from_static(lower_static(name));
            if name == header::VARY {
                map.remove(header::VARY);
            }
            map.append(name, v);
        }
    }
}

/// `HeaderName::from_static` needs lower case; the engine spells names as S3
/// does. The set is fixed, so map them to static lower-case names.
fn lower_static(name: &'static str) -> &'static str {
    match name {
        "Access-Control-Allow-Origin" => "access-control-allow-origin",
        "Access-Control-Allow-Credentials" => "access-control-allow-credentials",
        "Access-Control-Allow-Methods" => "access-control-allow-methods",
        "Access-Control-Allow-Headers" => "access-control-allow-headers",
        "Access-Control-Expose-Headers" => "access-control-expose-headers",
        "Access-Control-Max-Age" => "access-control-max-age",
        "Vary" => "vary",
        other => {
            debug_assert!(other.bytes().all(|b| !b.is_ascii_uppercase()), "{other}");
            other
        }
    }
}

fn log_decision(
    target: &Target,
    preflight: bool,
    origin: &Option<&str>,
    method: Option<&str>,
    request_headers: Option<&str>,
    decision: Option<&CorsDecision>,
    reason: Option<&str>,
) {
    let (bucket, key) = match target {
        Target::Service => ("", ""),
        Target::Bucket(b) => (b.as_str(), ""),
        Target::Object(b, k) => (b.as_str(), k.as_str()),
    };
    let (rule_index, rule_id) = match decision {
        Some(CorsDecision::Allowed(m)) => (Some(m.rule_index), m.rule_id.as_deref()),
        _ => (None, None),
    };
    tracing::debug!(
        target: "preflight::cors",
        bucket,
        key,
        origin = origin.unwrap_or(""),
        method = method.unwrap_or(""),
        request_headers = request_headers.unwrap_or(""),
        preflight,
        allowed = decision.is_some_and(CorsDecision::is_allowed),
        rule_index,
        rule_id,
        reason,
        "cors decision"
    );
}
