//! S3 errors: the one place where store errors become S3 errors, and the
//! one renderer of XML error documents ([`ErrorDoc`]): the front's own
//! refusals, the CORS layer's, form uploads', and s3s's (read back and
//! completed by `front::s3s_compat`).

use std::borrow::Cow;

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
        C::ServiceUnavailable => "Service is unable to handle request.",
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
        StoreError::InvalidPart => s3_err(S3ErrorCode::InvalidPart),
        StoreError::PreconditionFailed => s3_err(S3ErrorCode::PreconditionFailed),
        other if other.is_unavailable() => {
            tracing::warn!(error = %other, "storage unreachable; answering 503");
            service_unavailable()
        }
        other => {
            tracing::error!(error = %other, "storage failure");
            s3_err(S3ErrorCode::InternalError)
        }
    }
}

/// 503 ServiceUnavailable: the metadata store (or the blob store) cannot be
/// reached; clients retry, and the node recovers by itself when it is back.
pub fn service_unavailable() -> S3Error {
    let mut e = s3_err(S3ErrorCode::ServiceUnavailable);
    e.set_status_code(StatusCode::SERVICE_UNAVAILABLE);
    e
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

/// An S3 XML error document: every error body Preflight sends is one of
/// these, rendered by [`ErrorDoc::to_xml`] in S3's element order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDoc {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Operation-specific children, in order, between `Message` and
    /// `Resource` (`Key`, `BucketName`, `Method`, `ResourceType`,
    /// `HeadersNotSigned`, `Region`, `ArgumentName`, ...).
    pub fields: Vec<(Cow<'static, str>, String)>,
    pub resource: Option<String>,
    pub request_id: String,
}

impl ErrorDoc {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorDoc {
            status,
            code: code.into(),
            message: message.into(),
            fields: Vec::new(),
            resource: None,
            request_id: String::new(),
        }
    }

    /// The document of an S3 error, with the status s3s would send (500
    /// when neither the error nor its code names one).
    pub fn from_s3_error(e: &S3Error) -> Self {
        let message = e.message().unwrap_or_else(|| default_message(e.code()));
        let status = e.status_code().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ErrorDoc::new(status, e.code().as_str(), message)
    }

    /// Appends an operation-specific child.
    #[must_use]
    pub fn field(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.fields.push((name.into(), value.into()));
        self
    }

    #[must_use]
    pub fn request_id(mut self, request_id: &str) -> Self {
        request_id.clone_into(&mut self.request_id);
        self
    }

    /// Whether a child of that name is present.
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, _)| n == name)
    }

    /// The XML document, as S3 writes it: `Code`, `Message`, the
    /// operation-specific fields, `Resource`, `RequestId`, `HostId`.
    pub fn to_xml(&self) -> String {
        let mut s = String::with_capacity(256);
        s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
        push_element(&mut s, "Code", &self.code);
        push_element(&mut s, "Message", &self.message);
        for (name, value) in &self.fields {
            push_element(&mut s, name, value);
        }
        if let Some(resource) = &self.resource {
            push_element(&mut s, "Resource", resource);
        }
        push_element(&mut s, "RequestId", &self.request_id);
        push_element(&mut s, "HostId", &host_id(&self.request_id));
        s.push_str("</Error>");
        s
    }

    /// The response carrying the document.
    pub fn into_response(self) -> Response<Body> {
        let body = self.to_xml();
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = self.status;
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        res
    }

    /// Reads an XML error document (as s3s renders it) back: `Code`,
    /// `Message`, `Resource` and the other children in order; `RequestId`
    /// and `HostId` are left out, as they are the front's to set. `None`
    /// when the text is not an `<Error>` document of plain children.
    pub fn from_xml(status: StatusCode, xml: &str) -> Option<Self> {
        let at = xml.find("<Error>")?;
        let mut rest = &xml[at + "<Error>".len()..];
        let mut doc = ErrorDoc::new(status, "", "");
        let mut has_code = false;
        loop {
            rest = rest.trim_start();
            if rest.starts_with("</Error>") {
                break;
            }
            let open = rest.strip_prefix('<')?;
            let close = open.find('>')?;
            let (name, after) = (&open[..close], &open[close + 1..]);
            if name.starts_with('/') || name.contains(['<', ' ', '/']) {
                return None;
            }
            let end_tag = format!("</{name}>");
            let end = after.find(&end_tag)?;
            let value = unescape(&after[..end])?;
            rest = &after[end + end_tag.len()..];
            match name {
                "Code" => {
                    doc.code = value;
                    has_code = true;
                }
                "Message" => doc.message = value,
                "Resource" => doc.resource = Some(value),
                "RequestId" | "HostId" => {}
                _ => doc.fields.push((Cow::Owned(name.to_owned()), value)),
            }
        }
        has_code.then_some(doc)
    }
}

fn push_element(s: &mut String, name: &str, value: &str) {
    s.push('<');
    s.push_str(name);
    s.push('>');
    push_escaped(s, value);
    s.push_str("</");
    s.push_str(name);
    s.push('>');
}

/// The extended request id (`x-amz-id-2`, `HostId`): opaque to clients.
pub fn host_id(request_id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("preflight/{request_id}"))
}

/// Escapes XML text content as S3 does: `&`, `<` and `>` become
/// references, and `"` (S3 writes `<ETag>&quot;...&quot;</ETag>`); an
/// apostrophe stays literal (S3 writes `the region 'eu-west-1' is wrong`;
/// only attribute values, which Preflight does not write, could need it).
pub fn push_escaped(s: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            c => s.push(c),
        }
    }
}

/// Resolves the five predefined entities and numeric references; `None`
/// on anything else (markup inside text).
fn unescape(v: &str) -> Option<String> {
    if v.contains('<') {
        return None;
    }
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let semi = after.find(';')?;
        let c = match &after[..semi] {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            r => {
                let n = match r.strip_prefix("#x") {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => r.strip_prefix('#')?.parse().ok()?,
                };
                char::from_u32(n)?
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3s_error_bodies_are_read_back() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code>\
                   <Message>The provided &apos;a&apos; &amp; b</Message><Key>k</Key></Error>";
        let doc = ErrorDoc::from_xml(StatusCode::NOT_FOUND, xml).unwrap();
        assert_eq!(doc.code, "NoSuchKey");
        assert_eq!(doc.message, "The provided 'a' & b");
        assert_eq!(doc.fields, vec![(Cow::Borrowed("Key"), "k".to_owned())]);
        assert!(ErrorDoc::from_xml(StatusCode::OK, "<ListBucketResult/>").is_none());
        assert!(
            ErrorDoc::from_xml(StatusCode::OK, "<Error><Message>m</Message></Error>").is_none()
        );
        // A rendered document reads back the same (ids aside).
        let doc = doc.request_id("ABC");
        let again = ErrorDoc::from_xml(StatusCode::NOT_FOUND, &doc.to_xml()).unwrap();
        assert_eq!(again.request_id("ABC"), doc);
    }

    #[test]
    fn elements_in_s3_order() {
        let mut doc = ErrorDoc::new(StatusCode::FORBIDDEN, "AccessForbidden", "m")
            .field("Method", "PUT")
            .field("ResourceType", "OBJECT")
            .request_id("R");
        doc.resource = Some("/b/k".to_owned());
        assert_eq!(
            doc.to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessForbidden</Code>\
                 <Message>m</Message><Method>PUT</Method><ResourceType>OBJECT</ResourceType>\
                 <Resource>/b/k</Resource><RequestId>R</RequestId><HostId>{}</HostId></Error>",
                host_id("R")
            )
        );
    }

    #[test]
    fn unreachable_store_is_503() {
        let e = store_err(StoreError::Backend {
            backend: "database",
            unavailable: true,
            source: "connection refused".into(),
        });
        assert_eq!(*e.code(), S3ErrorCode::ServiceUnavailable);
        assert_eq!(e.status_code(), Some(StatusCode::SERVICE_UNAVAILABLE));
        let e = store_err(StoreError::Backend {
            backend: "database",
            unavailable: false,
            source: "syntax error".into(),
        });
        assert_eq!(*e.code(), S3ErrorCode::InternalError);
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
        let xml = ErrorDoc::new(StatusCode::BAD_REQUEST, "X", "a<b & \"c\"")
            .field("Method", "PUT")
            .to_xml();
        assert!(xml.contains("<Message>a&lt;b &amp; &quot;c&quot;</Message><Method>PUT</Method>"));
    }

    #[test]
    fn apostrophes_stay_literal() {
        let xml = ErrorDoc::new(
            StatusCode::BAD_REQUEST,
            "AuthorizationHeaderMalformed",
            "the region 'eu-west-1' is wrong; expecting 'us-east-1'",
        )
        .to_xml();
        assert!(
            xml.contains(
                "<Message>the region 'eu-west-1' is wrong; expecting 'us-east-1'</Message>"
            ),
            "{xml}"
        );
    }
}
