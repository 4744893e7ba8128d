//! What a request's signature must cover, checked in front of s3s (and of
//! every route behind it: operations, the CORS API route). These are the
//! rules that need no secret; s3s still verifies the signature itself.
//!
//! - Every `x-amz-*` header is signed (SigV4 header auth: in
//!   `SignedHeaders`, `x-amz-date`, `x-amz-content-sha256` and
//!   `x-amz-security-token` included; presigned: in `X-Amz-SignedHeaders`
//!   or sent as the same query parameter), and so is `host`. s3s only
//!   hashes the headers a request lists, so anything else would ride
//!   along unsigned (an `x-amz-copy-source` turning a presigned PUT into a
//!   copy).
//! - One auth mechanism per request.
//! - The credential scope names this server's region and `s3`.
//! - SigV2 presigned URLs live at most seven days, as SigV4 ones.
//! - `x-amz-content-sha256` is a hash or one of the known payload modes.
//!
//! SigV2 needs no coverage rule: its string to sign holds every
//! `x-amz-*` header (s3s `sig_v2::create_string_to_sign`), so an added one
//! fails the signature.

use std::borrow::Cow;

use http::{HeaderMap, Response, StatusCode, header};
use s3s::Body;

use crate::errors::ErrorDoc;

/// The longest validity of a presigned URL: seven days.
pub const MAX_PRESIGNED_EXPIRES: i64 = 7 * 24 * 3600;

/// A request refused before its signature is verified, with S3's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Children of `<Error>` after `Message`.
    pub extra: Vec<(&'static str, String)>,
}

impl Refusal {
    pub fn response(&self, request_id: &str) -> Response<Body> {
        let mut doc = ErrorDoc::new(self.status, self.code, self.message.as_str());
        for (name, value) in &self.extra {
            doc = doc.field(*name, value.as_str());
        }
        doc.request_id(request_id).into_response()
    }

    fn headers_not_signed(mut names: Vec<String>) -> Self {
        names.sort();
        names.dedup();
        Refusal {
            status: StatusCode::FORBIDDEN,
            code: "AccessDenied",
            message: "There were headers present in the request which were not signed".to_owned(),
            extra: vec![("HeadersNotSigned", names.join(", "))],
        }
    }
}

/// The auth mechanisms a request carries.
struct Mechanisms<'a> {
    authorization: Option<&'a str>,
    /// SigV4 query parameters (`X-Amz-Algorithm` or `X-Amz-Signature`).
    v4_query: bool,
    /// SigV2 query parameters (`Signature`).
    v2_query: bool,
}

/// Checks the signature rules that need no secret. `now` is Unix time.
pub fn check(
    query: Option<&str>,
    headers: &HeaderMap,
    region: &str,
    now: i64,
) -> Result<(), Refusal> {
    let query = parse_query(query.unwrap_or(""));
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    };
    let auth = Mechanisms {
        authorization: headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("")),
        v4_query: get("X-Amz-Algorithm").is_some() || get("X-Amz-Signature").is_some(),
        v2_query: get("Signature").is_some(),
    };
    let count = [auth.authorization.is_some(), auth.v4_query, auth.v2_query]
        .iter()
        .filter(|&&b| b)
        .count();
    if count > 1 {
        return Err(one_mechanism(auth.authorization));
    }
    if auth.v2_query {
        return v2_expiry(get("Expires"), now);
    }
    if auth.v4_query {
        check_content_sha256(headers)?;
        let credential = get("X-Amz-Credential").unwrap_or("");
        check_scope(credential, region, Entrance::Query)?;
        let signed = signed_list(get("X-Amz-SignedHeaders").unwrap_or(""));
        return check_coverage(headers, &signed, |name, value| {
            // The body hash is checked against the body by s3s: it can only
            // make a presigned request stricter.
            name == "x-amz-content-sha256"
                || query
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case(name) && v == value)
        });
    }
    let Some(authorization) = auth.authorization else {
        return Ok(());
    };
    let Some(params) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") else {
        // SigV2 (`AWS AK:sig`) covers all x-amz-* headers; anything else
        // is for s3s to refuse.
        return Ok(());
    };
    check_content_sha256(headers)?;
    let field = |name: &str| {
        params
            .split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
    };
    let (Some(credential), Some(signed)) = (field("Credential"), field("SignedHeaders")) else {
        return Ok(()); // malformed: s3s answers
    };
    check_scope(credential, region, Entrance::Header)?;
    check_coverage(headers, &signed_list(signed), |_, _| false)
}

fn one_mechanism(authorization: Option<&str>) -> Refusal {
    let mut extra = vec![("ArgumentName", "Authorization".to_owned())];
    if let Some(v) = authorization {
        extra.push(("ArgumentValue", v.to_owned()));
    }
    Refusal {
        status: StatusCode::BAD_REQUEST,
        code: "InvalidArgument",
        message: "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified".to_owned(),
        extra,
    }
}

/// SigV2 `Expires` is a Unix time; past `now` is s3s's "Request has
/// expired". S3 caps SigV4 URLs at seven days; Preflight caps SigV2 URLs
/// the same (a URL valid for ten years is a leaked credential), with the
/// SigV4 answer.
fn v2_expiry(expires: Option<&str>, now: i64) -> Result<(), Refusal> {
    let Some(Ok(expires)) = expires.map(str::parse::<i64>) else {
        return Ok(()); // s3s refuses a missing or malformed Expires
    };
    if expires.saturating_sub(now) > MAX_PRESIGNED_EXPIRES {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            code: "AuthorizationQueryParametersError",
            message: "Expires must be less than a week (in seconds) from now; that is, 604800"
                .to_owned(),
            extra: vec![],
        });
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Entrance {
    Header,
    Query,
}

/// The credential scope `AK/date/region/service/aws4_request` must name
/// this server. S3 answers a header signature with
/// `AuthorizationHeaderMalformed` and a presigned URL with
/// `AuthorizationQueryParametersError` ("Error parsing the X-Amz-Credential
/// parameter; ..."), both with the `Region` expected; Preflight does the
/// same.
fn check_scope(credential: &str, region: &str, entrance: Entrance) -> Result<(), Refusal> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [_, _, got_region, service, _] = parts[..] else {
        return Ok(()); // malformed: s3s answers
    };
    let problem = if got_region != region {
        format!("the region '{got_region}' is wrong; expecting '{region}'")
    } else if service != "s3" {
        format!("incorrect service '{service}'. This endpoint belongs to 's3'.")
    } else {
        return Ok(());
    };
    let (code, message) = match entrance {
        Entrance::Header => (
            "AuthorizationHeaderMalformed",
            format!("The authorization header is malformed; {problem}"),
        ),
        Entrance::Query => (
            "AuthorizationQueryParametersError",
            format!("Error parsing the X-Amz-Credential parameter; {problem}"),
        ),
    };
    Err(Refusal {
        status: StatusCode::BAD_REQUEST,
        code,
        message,
        extra: vec![("Region", region.to_owned())],
    })
}

/// Every `x-amz-*` header, and `host`, must be in `signed`, unless
/// `exempt(name, value)`.
fn check_coverage(
    headers: &HeaderMap,
    signed: &[String],
    exempt: impl Fn(&str, &str) -> bool,
) -> Result<(), Refusal> {
    let is_signed = |name: &str| signed.iter().any(|s| s == name);
    let mut missing: Vec<String> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-amz-"))
        .filter(|(name, _)| !is_signed(name.as_str()))
        .filter(|(name, value)| !exempt(name.as_str(), value.to_str().unwrap_or("")))
        .map(|(name, _)| name.as_str().to_owned())
        .collect();
    if !is_signed("host") {
        missing.push("host".to_owned());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Refusal::headers_not_signed(missing))
    }
}

fn signed_list(list: &str) -> Vec<String> {
    list.split(';')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The payload modes of `x-amz-content-sha256` besides a hex SHA-256.
const PAYLOAD_MODES: [&str; 6] = [
    "UNSIGNED-PAYLOAD",
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER",
];

/// S3 refuses any other `x-amz-content-sha256` with InvalidArgument (s3s
/// answers SignatureDoesNotMatch).
fn check_content_sha256(headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(value) = headers.get("x-amz-content-sha256") else {
        return Ok(());
    };
    let value = value.to_str().unwrap_or("");
    let is_hash = value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hash || PAYLOAD_MODES.contains(&value) {
        return Ok(());
    }
    Err(Refusal {
        status: StatusCode::BAD_REQUEST,
        code: "InvalidArgument",
        message: format!(
            "x-amz-content-sha256 must be {} or a valid sha256 value.",
            PAYLOAD_MODES.join(", ")
        ),
        extra: vec![
            ("ArgumentName", "x-amz-content-sha256".to_owned()),
            ("ArgumentValue", value.to_owned()),
        ],
    })
}

/// Query parameters, percent-decoded (`+` stays `+`, as s3s reads them
/// for signing).
fn parse_query(query: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn headers(list: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn auth(signed: &str, region: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AK/20260101/{region}/s3/aws4_request, SignedHeaders={signed}, Signature=00"
        )
    }

    #[test]
    fn header_auth_covers_every_x_amz_header_and_host() {
        let a = auth("host;x-amz-content-sha256;x-amz-date", "us-east-1");
        let base = [
            ("authorization", a.as_str()),
            ("x-amz-date", "20260101T000000Z"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ];
        assert_eq!(check(None, &headers(&base), "us-east-1", NOW), Ok(()));
        let mut more = base.to_vec();
        more.extend([("x-amz-meta-b", "1"), ("x-amz-acl", "public-read")]);
        let err = check(None, &headers(&more), "us-east-1", NOW).unwrap_err();
        assert_eq!(err.code, "AccessDenied");
        assert_eq!(
            err.extra,
            vec![("HeadersNotSigned", "x-amz-acl, x-amz-meta-b".to_owned())]
        );
        let a = auth("x-amz-content-sha256;x-amz-date", "us-east-1");
        let err = check(None, &headers(&[("authorization", &a)]), "us-east-1", NOW).unwrap_err();
        assert_eq!(err.extra[0].1, "host");
    }

    #[test]
    fn presigned_urls_may_carry_headers_as_query_parameters() {
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-SignedHeaders=host&x-amz-acl=private&X-Amz-Signature=00";
        let h = headers(&[
            ("x-amz-acl", "private"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ]);
        assert_eq!(check(Some(q), &h, "us-east-1", NOW), Ok(()));
        let h = headers(&[("x-amz-acl", "public-read")]);
        assert_eq!(
            check(Some(q), &h, "us-east-1", NOW).unwrap_err().code,
            "AccessDenied"
        );
        let err = check(Some(q), &HeaderMap::new(), "eu-west-1", NOW).unwrap_err();
        assert_eq!(err.code, "AuthorizationQueryParametersError");
        assert_eq!(err.extra, vec![("Region", "eu-west-1".to_owned())]);
    }

    #[test]
    fn one_mechanism_scope_and_v2_expiry() {
        let q = "X-Amz-Signature=00&X-Amz-Algorithm=AWS4-HMAC-SHA256";
        let h = headers(&[("authorization", "AWS AK:sig")]);
        assert_eq!(
            check(Some(q), &h, "us-east-1", NOW).unwrap_err().code,
            "InvalidArgument"
        );
        let a = auth("host", "eu-west-1");
        let err = check(None, &headers(&[("authorization", &a)]), "us-east-1", NOW).unwrap_err();
        assert_eq!(err.code, "AuthorizationHeaderMalformed");
        assert_eq!(
            err.message,
            "The authorization header is malformed; the region 'eu-west-1' is wrong; expecting 'us-east-1'"
        );
        let week = format!("AWSAccessKeyId=AK&Signature=x&Expires={}", NOW + 604_800);
        assert_eq!(check(Some(&week), &HeaderMap::new(), "r", NOW), Ok(()));
        let more = format!("AWSAccessKeyId=AK&Signature=x&Expires={}", NOW + 604_801);
        assert!(check(Some(&more), &HeaderMap::new(), "r", NOW).is_err());
    }

    #[test]
    fn content_sha256_values() {
        let a = auth("host;x-amz-content-sha256", "r");
        for (value, ok) in [
            ("UNSIGNED-PAYLOAD", true),
            ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", true),
            (&*"ab".repeat(32), true),
            ("zz", false),
        ] {
            let h = headers(&[("authorization", &a), ("x-amz-content-sha256", value)]);
            assert_eq!(check(None, &h, "r", NOW).is_ok(), ok, "{value}");
        }
    }
}
