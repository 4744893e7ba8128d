//! S3 errors: the one place where store errors become S3 errors, and where
//! the front layer renders the XML error documents it answers itself.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use preflight_store::StoreError;
use s3s::{Body, S3Error, S3ErrorCode};

/// Builds an S3 error with AWS's usual message for the code.
pub fn s3_err(code: S3ErrorCode) -> S3Error {
    let msg = default_message(&code);
    S3Error::with_message(code, msg)
}

/// AWS's standard messages for the codes Preflight returns.
fn default_message(code: &S3ErrorCode) -> &'static str {
    use S3ErrorCode as C;
    match code {
        C::AccessDenied => "Access Denied",
        C::NoSuchBucket => "The specified bucket does not exist",
        C::NoSuchKey => "The specified key does not exist.",
        C::NoSuchUpload => {
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        }
        C::BucketNotEmpty => "The bucket you tried to delete is not empty",
        C::BucketAlreadyOwnedByYou => {
            "Your previous request to create the named bucket succeeded and you already own it."
        }
        C::InvalidBucketName => "The specified bucket is not valid.",
        C::MalformedXML => {
            "The XML you provided was not well-formed or did not validate against our published schema"
        }
        C::NoSuchCORSConfiguration => "The CORS configuration does not exist",
        C::KeyTooLongError => "Your key is too long",
        C::EntityTooLarge => "Your proposed upload exceeds the maximum allowed size",
        C::EntityTooSmall => {
            "Your proposed upload is smaller than the minimum allowed object size."
        }
        C::MetadataTooLarge => "Your metadata headers exceed the maximum allowed metadata size.",
        C::InvalidPart => {
            "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
        }
        C::InvalidPartOrder => {
            "The list of parts was not in ascending order. Parts must be ordered by part number."
        }
        C::PreconditionFailed => "At least one of the pre-conditions you specified did not hold",
        C::InvalidRange => "The requested range is not satisfiable",
        C::BadDigest => "The Content-MD5 you specified did not match what we received.",
        C::InvalidDigest => "The Content-MD5 you specified is not valid.",
        C::NotImplemented => "A header you provided implies functionality that is not implemented",
        C::InvalidArgument => "Invalid Argument",
        C::InternalError => "We encountered an internal error. Please try again.",
        _ => "",
    }
}

/// Maps a storage error at the S3 boundary. Internal failures are logged
/// here and reported as InternalError without details.
pub fn store_err(e: StoreError) -> S3Error {
    match e {
        StoreError::BucketExists => s3_err(S3ErrorCode::BucketAlreadyOwnedByYou),
        StoreError::NoSuchBucket => s3_err(S3ErrorCode::NoSuchBucket),
        StoreError::BucketNotEmpty => s3_err(S3ErrorCode::BucketNotEmpty),
        StoreError::NoSuchKey => s3_err(S3ErrorCode::NoSuchKey),
        StoreError::NoSuchUpload => s3_err(S3ErrorCode::NoSuchUpload),
        other => {
            tracing::error!(error = %other, "storage failure");
            s3_err(S3ErrorCode::InternalError)
        }
    }
}

/// The S3 error for a request body that failed while it was read: a
/// chunk signature (aws-chunked) that does not match, a body whose SHA-256
/// is not its `x-amz-content-sha256`, or a body that ended early. s3s keeps
/// its stream error types private, so they are told apart by their text
/// (`AwsChunkedStreamError: SignatureMismatch`, `UploadStreamError:
/// Sha256Mismatch`).
pub fn body_stream_error(e: s3s::StdError) -> S3Error {
    let text = e.to_string();
    let mut err = if text.contains("SignatureMismatch") {
        S3Error::with_message(
            S3ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        )
    } else if text.contains("Sha256Mismatch") {
        let mut err = S3Error::with_message(
            S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
        err.set_status_code(StatusCode::BAD_REQUEST);
        err
    } else {
        S3Error::with_message(
            S3ErrorCode::IncompleteBody,
            "The request body terminated unexpectedly",
        )
    };
    err.set_source(e);
    err
}

/// An XML error document as S3 writes it. `extra` are additional children
/// placed after `Message` (e.g. `Method`, `ResourceType`, `BucketName`).
pub fn error_xml(code: &str, message: &str, extra: &[(&str, &str)], request_id: &str) -> String {
    let mut s = String::with_capacity(256);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
    push_escaped(&mut s, code);
    s.push_str("</Code><Message>");
    push_escaped(&mut s, message);
    s.push_str("</Message>");
    for (name, value) in extra {
        s.push('<');
        s.push_str(name);
        s.push('>');
        push_escaped(&mut s, value);
        s.push_str("</");
        s.push_str(name);
        s.push('>');
    }
    push_ids(&mut s, request_id);
    s.push_str("</Error>");
    s
}

fn push_ids(s: &mut String, request_id: &str) {
    s.push_str("<RequestId>");
    s.push_str(request_id);
    s.push_str("</RequestId><HostId>");
    s.push_str(&host_id(request_id));
    s.push_str("</HostId>");
}

/// The extended request id (`x-amz-id-2`, `HostId`): opaque to clients.
pub fn host_id(request_id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("preflight/{request_id}"))
}

pub fn push_escaped(s: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            c => s.push(c),
        }
    }
}

/// An error response answered by the front layer itself.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    extra: &[(&str, &str)],
    request_id: &str,
) -> Response<Body> {
    let body = error_xml(code, message, extra, request_id);
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    res
}

/// Completes an XML error body produced by s3s, which leaves out what S3
/// puts after `Message`: the resource named by the error (`Key` for
/// NoSuchKey, `BucketName` for NoSuchBucket, from `bucket` and `key`), then
/// `RequestId` and `HostId`. Returns `None` when the body is not such a
/// document or is already complete.
pub fn complete_error_body(
    body: &Bytes,
    request_id: &str,
    bucket: Option<&str>,
    key: Option<&str>,
) -> Option<Bytes> {
    let text = std::str::from_utf8(body).ok()?;
    if text.contains("<RequestId>") {
        return None;
    }
    let at = text.rfind("</Error>")?;
    let mut s = String::with_capacity(text.len() + 256);
    s.push_str(&text[..at]);
    let resource = if text.contains("<Code>NoSuchKey</Code>") {
        key.map(|k| ("Key", k))
    } else if text.contains("<Code>NoSuchBucket</Code>") {
        bucket.map(|b| ("BucketName", b))
    } else {
        None
    };
    if let Some((name, value)) = resource
        && !text.contains(&format!("<{name}>"))
    {
        s.push('<');
        s.push_str(name);
        s.push('>');
        push_escaped(&mut s, value);
        s.push_str("</");
        s.push_str(name);
        s.push('>');
    }
    push_ids(&mut s, request_id);
    s.push_str(&text[at..]);
    Some(Bytes::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_is_completed_once() {
        let body =
            Bytes::from_static(b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code></Error>");
        let with = complete_error_body(&body, "ABC", Some("b"), Some("a&b")).unwrap();
        let text = std::str::from_utf8(&with).unwrap();
        assert!(
            text.contains(
                "<Code>NoSuchKey</Code><Key>a&amp;b</Key><RequestId>ABC</RequestId><HostId>"
            ),
            "{text}"
        );
        assert!(complete_error_body(&with, "ABC", None, None).is_none());
    }

    #[test]
    fn body_stream_errors() {
        let e = |s: &str| -> s3s::StdError { s.to_owned().into() };
        let sig = body_stream_error(e("AwsChunkedStreamError: SignatureMismatch"));
        assert_eq!(*sig.code(), S3ErrorCode::SignatureDoesNotMatch);
        let sha = body_stream_error(e("UploadStreamError: Sha256Mismatch"));
        assert_eq!(sha.code().as_str(), "XAmzContentSHA256Mismatch");
        assert_eq!(sha.status_code(), Some(StatusCode::BAD_REQUEST));
        let cut = body_stream_error(e("connection reset"));
        assert_eq!(*cut.code(), S3ErrorCode::IncompleteBody);
    }

    #[test]
    fn xml_is_escaped() {
        let xml = error_xml("X", "a<b & \"c\"", &[("Method", "PUT")], "R");
        assert!(xml.contains("<Message>a&lt;b &amp; &quot;c&quot;</Message><Method>PUT</Method>"));
    }
}
