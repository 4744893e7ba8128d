//! The SigV4 pieces s3s does not cover: the POST policy signature of
//! browser form uploads, on top of the `aws-sigv4` crate's signing key and
//! HMAC. (s3s verifies header and query signatures; `preflight presign`
//! signs URLs with `aws-sigv4` directly.)

use std::time::SystemTime;

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use time::OffsetDateTime;
use time::macros::format_description;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Midnight UTC of a credential-scope date (`YYYYMMDD`).
fn scope_day(date: &str) -> Option<SystemTime> {
    let fmt = format_description!("[year][month][day]");
    let day = time::Date::parse(date, &fmt).ok()?;
    Some(day.midnight().assume_utc().into())
}

/// The signature of a POST policy: the hex HMAC of the base64 policy text
/// under the signing key of the credential's date (`YYYYMMDD`) and region.
/// `None` when the date is not a date.
pub fn post_policy_signature(
    secret: &str,
    date: &str,
    region: &str,
    policy_b64: &str,
) -> Option<String> {
    let key = generate_signing_key(secret, scope_day(date)?, region, "s3");
    Some(calculate_signature(key, policy_b64.as_bytes()))
}

/// A Signature Version 2 signature: the base64 HMAC-SHA1 of
/// `string_to_sign` (for a form upload, the base64 policy) under the
/// secret key.
pub fn v2_signature(secret: &str, string_to_sign: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha1::Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Constant-time comparison of two signatures.
pub fn same_signature(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `20260101T120000Z` and `20260101`.
pub fn amz_date(t: OffsetDateTime) -> (String, String) {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    let full = t.format(&fmt).unwrap_or_default();
    let day = full.get(..8).unwrap_or_default().to_owned();
    (full, day)
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters stay, and
/// `/` too when `keep_slash`.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_policy_signature() {
        // Expected value computed independently (Python's hmac module, the
        // SigV4 key chain AWS4+secret → date → region → s3 → aws4_request).
        let policy = "eyJleHBpcmF0aW9uIjoiMjAxNS0xMi0zMFQxMjowMDowMC4wMDBaIiwiY29uZGl0aW9ucyI6W3siYnVja2V0IjoiZXhhbXBsZSJ9XX0=";
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        assert_eq!(
            super::post_policy_signature(secret, "20151229", "us-east-1", policy).as_deref(),
            Some("0f004c7a46d881ef5a32f876a2f26e58c783668645045465b0d5c3a95183a594")
        );
        assert_eq!(
            super::post_policy_signature(secret, "2015-12-29", "us-east-1", policy),
            None
        );
    }

    #[test]
    fn encoding() {
        assert_eq!(uri_encode("a b/c+d~", true), "a%20b/c%2Bd~");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }
}
