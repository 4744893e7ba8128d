//! Helpers shared by the S3 API tests: error inspection for aws-sdk-s3 and
//! raw HTTP responses.

// Test code: a panic is a failed test, and the casts make small test data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]
#![allow(dead_code)]

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::common::error_code;

/// The HTTP status and S3 error code of a failed SDK call.
pub fn sdk_err<E, T>(result: Result<T, SdkError<E, HttpResponse>>) -> (u16, String)
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    T: std::fmt::Debug,
{
    let err = result.expect_err("the request should have failed");
    let status = err
        .raw_response()
        .map(|r| r.status().as_u16())
        .unwrap_or_else(|| panic!("no HTTP response: {err:?}"));
    let raw = err.raw_response().expect("raw response");
    let request_id = raw.headers().get("x-amz-request-id").unwrap_or_default();
    assert!(!request_id.is_empty(), "no x-amz-request-id: {err:?}");
    // Every error with a body carries an S3 XML document (HEAD and 304 have none).
    if let Some(body) = raw.body().bytes().filter(|b| !b.is_empty()) {
        assert_xml_error(std::str::from_utf8(body).expect("UTF-8 error body"));
    }
    let code = err.code().unwrap_or_default().to_owned();
    (status, code)
}

/// Asserts a raw response is an S3 XML error with `status` and `code`, with a
/// non-empty `RequestId`; returns the body.
pub async fn expect_error(res: reqwest::Response, status: u16, code: &str) -> String {
    let got = res.status().as_u16();
    let body = res.text().await.expect("body");
    assert_eq!(got, status, "status; body: {body}");
    assert_eq!(
        error_code(&body).as_deref(),
        Some(code),
        "code; body: {body}"
    );
    assert_xml_error(&body);
    body
}

/// Asserts an error body is an S3 XML error document with a request id.
pub fn assert_xml_error(body: &str) {
    assert!(body.starts_with("<?xml"), "not XML: {body}");
    assert!(
        body.contains("<Error>") && body.contains("</Error>"),
        "not an error: {body}"
    );
    let id = crate::common::xml_field(body, "RequestId").unwrap_or_default();
    assert!(!id.is_empty(), "no RequestId: {body}");
}

/// All texts of `<name>` elements, in document order.
pub fn xml_fields(body: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(&open) {
        let from = start + open.len();
        let Some(len) = rest[from..].find(&close) else {
            break;
        };
        out.push(rest[from..from + len].to_owned());
        rest = &rest[from + len + close.len()..];
    }
    out
}

/// Deterministic, non-repeating-looking test bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8) ^ seed)
        .collect()
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}

pub fn md5_b64(data: &[u8]) -> String {
    use base64::Engine;
    use md5::{Digest, Md5};
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}
