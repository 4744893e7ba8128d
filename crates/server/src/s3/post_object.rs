//! POST Object: browser form uploads (`multipart/form-data` to the bucket
//! URL), handled by the front layer before s3s so that
//! - the file part is streamed to a blob, never held whole in memory (s3s
//!   0.14.1 buffers it), bounded by `content-length-range` and the server's
//!   `--post-max-size`;
//! - validity is the policy's `expiration`, not a 15-minute skew on
//!   `x-amz-date` (a form signed hours ago with a valid expiration works);
//! - errors carry S3's codes and messages.
//!
//! Order of checks: fields before the file (bounded), signature, policy
//! (expiration, conditions, extra fields), access (policy/ACL for
//! s3:PutObject), then the file is streamed and the object committed as
//! PutObject does.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use s3s::dto::{Metadata, StreamingBlob};
use s3s::{Body, S3Error, S3ErrorCode};
use time::OffsetDateTime;

use super::PreflightS3;
use super::acl::canned_object_acl;
use super::headers::{HeaderInputs, object_headers, parse_http_date};
use super::object::{NewObject, commit_object};
use super::post_policy::PostPolicy;
use super::write::write_blob;
use crate::access::{AccessLayer, AccessQuery};
use crate::auth::KeyAuth;
use crate::errors::{ErrorDoc, push_escaped};
use crate::request::{Operation, RequestContext};
use crate::sigv4;

/// S3 refuses forms whose fields before the file exceed 20 KB.
const MAX_PRE_FILE_BYTES: usize = 20 * 1024;

/// A refused form: the error document S3 answers (boxed, it travels in
/// every `Result` of the upload).
#[derive(Debug)]
pub struct PostError(Box<ErrorDoc>);

fn err(status: StatusCode, code: &str, message: impl Into<String>) -> PostError {
    PostError(Box::new(ErrorDoc::new(status, code, message)))
}

impl From<S3Error> for PostError {
    fn from(e: S3Error) -> Self {
        PostError(Box::new(ErrorDoc::from_s3_error(&e)))
    }
}

impl From<super::post_policy::PostPolicyError> for PostError {
    fn from(e: super::post_policy::PostPolicyError) -> Self {
        let status = if e.code == "AccessDenied" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        err(status, e.code, e.message)
    }
}

/// Form fields collected before the file part.
#[derive(Debug, Default)]
struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct PostObjectHandler {
    s3: PreflightS3,
    access: AccessLayer,
    auth: KeyAuth,
    /// Largest file a form may upload (`--post-max-size`).
    max_size: u64,
}

impl PostObjectHandler {
    pub fn new(s3: PreflightS3, access: AccessLayer, auth: KeyAuth, max_size: u64) -> Self {
        Self {
            s3,
            access,
            auth,
            max_size,
        }
    }

    /// Answers a form upload to `bucket`, the bucket of `ctx`.
    pub async fn handle(
        self: &Arc<Self>,
        req: http::Request<Body>,
        bucket: &str,
        ctx: &RequestContext,
    ) -> http::Response<Body> {
        let (parts, body) = req.into_parts();
        match self.upload(&parts.headers, body, bucket, ctx).await {
            Ok(res) => res,
            Err(e) => {
                let doc = (*e.0).request_id(&ctx.id);
                tracing::debug!(bucket, code = %doc.code, message = %doc.message, "form upload refused");
                doc.into_response()
            }
        }
    }

    async fn upload(
        &self,
        headers: &HeaderMap,
        body: Body,
        bucket: &str,
        ctx: &RequestContext,
    ) -> Result<http::Response<Body>, PostError> {
        let malformed = || {
            err(
                StatusCode::BAD_REQUEST,
                "MalformedPOSTRequest",
                "The body of your POST request is not well-formed multipart/form-data.",
            )
        };
        self.s3.bucket(bucket)?;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let boundary = multer::parse_boundary(content_type).map_err(|_| malformed())?;
        let mut multipart = multer::Multipart::new(body, boundary);

        // Fields before the file, within S3's 20 KB.
        let mut form = Form::default();
        let mut pre_file = 0usize;
        let file = loop {
            let Some(mut field) = multipart.next_field().await.map_err(|_| malformed())? else {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    "POST requires exactly one file upload per request.",
                ));
            };
            let name = field.name().unwrap_or_default().to_owned();
            if name.eq_ignore_ascii_case("file") {
                break field;
            }
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|_| malformed())? {
                pre_file += chunk.len();
                if pre_file + name.len() > MAX_PRE_FILE_BYTES {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        "MaxPostPreDataLengthExceededError",
                        "Your POST request fields preceeding the upload file was too large.",
                    ));
                }
                value.extend_from_slice(&chunk);
            }
            pre_file += name.len();
            let value = String::from_utf8(value).map_err(|_| malformed())?;
            form.fields.push((name, value));
        };
        let filename = file.file_name().unwrap_or_default().to_owned();

        let (access_key, policy) = self.verify(&form)?;
        if let Some(policy) = &policy {
            if policy.is_expired(OffsetDateTime::now_utc()) {
                return Err(err(
                    StatusCode::FORBIDDEN,
                    "AccessDenied",
                    "Invalid according to Policy: Policy expired.",
                ));
            }
            policy.check_fields(&form.fields, bucket)?;
        }

        let raw_key = form.get("key").ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
            )
        })?;
        let key = raw_key.replace("${filename}", &filename);
        if key.is_empty() {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "User key must have a length greater than 0.",
            ));
        }
        if key.len() > 1024 {
            return Err(S3Error::with_message(
                S3ErrorCode::KeyTooLongError,
                "Your key is too long",
            )
            .into());
        }
        let acl = canned_object_acl(form.get("acl"))?;
        self.access
            .authorize(
                ctx,
                &AccessQuery {
                    operation: Operation::PostObject,
                    access_key: access_key.as_deref(),
                    bucket,
                    key: Some(&key),
                    headers,
                    query: None,
                    auth_type: Some("POST"),
                    acl_to_set: form.get("acl"),
                },
            )
            .await?;
        if form.fields.iter().any(|(n, _)| {
            n.to_ascii_lowercase()
                .starts_with("x-amz-server-side-encryption")
        }) {
            return Err(super::headers::encryption_not_implemented().into());
        }

        let meta: Metadata = form
            .fields
            .iter()
            .filter_map(|(n, v)| {
                let lower = n.to_ascii_lowercase();
                lower
                    .strip_prefix("x-amz-meta-")
                    .map(|m| (m.to_owned(), v.clone()))
            })
            .collect();
        let expires = form.get("Expires").and_then(parse_http_date);
        let object_hdrs = object_headers(HeaderInputs {
            content_type: form.get("Content-Type"),
            cache_control: form.get("Cache-Control"),
            content_disposition: form.get("Content-Disposition"),
            content_encoding: form.get("Content-Encoding"),
            content_language: form.get("Content-Language"),
            expires: expires.as_ref(),
            metadata: (!meta.is_empty()).then_some(&meta),
        })?;

        // The file: streamed into a blob, bounded by the policy and server.
        let range = policy.as_ref().and_then(PostPolicy::length_range);
        let limit = range.map_or(self.max_size, |(_, max)| max.min(self.max_size));
        let stream = futures::stream::unfold(file, |mut f| async move {
            match f.chunk().await {
                Ok(Some(bytes)) => Some((Ok::<Bytes, multer::Error>(bytes), f)),
                Ok(None) => None,
                Err(e) => Some((Err(e), f)),
            }
        })
        .boxed();
        let blob = StreamingBlob::wrap(sync_wrapper::SyncStream::new(stream));
        let received = write_blob(self.s3.blobs.as_ref(), Some(blob), &[], limit, None)
            .await
            .map_err(|e| {
                if *e.code() == S3ErrorCode::EntityTooLarge {
                    err(
                        StatusCode::BAD_REQUEST,
                        "EntityTooLarge",
                        "Your proposed upload exceeds the maximum allowed size",
                    )
                } else {
                    e.into()
                }
            })?;
        if let Some((min, _)) = range
            && received.size < min
        {
            // Dropping the unfinished blob discards it.
            return Err(err(
                StatusCode::BAD_REQUEST,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
            ));
        }
        let new = NewObject {
            bucket: bucket.to_owned(),
            key: key.clone(),
            acl: acl.to_owned(),
            headers: object_hdrs,
            condition: preflight_store::WriteCondition::NONE,
        };
        let record = commit_object(&self.s3, new, received).await?;
        tracing::info!(bucket, key = %key, size = record.size, "form upload stored");
        Ok(success_response(&form, headers, bucket, &key, &record.etag))
    }

    /// Checks the SigV4 POST signature. Returns the signer's access key
    /// (`None`: an anonymous form, allowed only where ACL or policy grants
    /// anonymous writes) and the policy.
    fn verify(&self, form: &Form) -> Result<(Option<String>, Option<PostPolicy>), PostError> {
        let bad = |m: &str| err(StatusCode::BAD_REQUEST, "InvalidArgument", m);
        if form.get("AWSAccessKeyId").is_some() || form.get("signature").is_some() {
            return self.verify_v2(form);
        }
        let policy_b64 = form.get("policy");
        let signature = form.get("x-amz-signature");
        let (policy_b64, signature) = match (policy_b64, signature) {
            (None, None) => return Ok((None, None)),
            (Some(p), Some(s)) => (p, s),
            (None, Some(_)) => {
                return Err(bad(
                    "Bucket POST must contain a field named 'policy'.  If it is specified, please check the order of the fields.",
                ));
            }
            (Some(_), None) => {
                return Err(bad(
                    "Bucket POST must contain a field named 'x-amz-signature'.  If it is specified, please check the order of the fields.",
                ));
            }
        };
        match form.get("x-amz-algorithm") {
            Some(sigv4::ALGORITHM) => {}
            Some(other) => return Err(bad(&format!("Invalid algorithm: {other}"))),
            None => {
                return Err(bad(
                    "Bucket POST must contain a field named 'x-amz-algorithm'.  If it is specified, please check the order of the fields.",
                ));
            }
        }
        if form.get("x-amz-date").is_none() {
            return Err(bad(
                "Bucket POST must contain a field named 'x-amz-date'.  If it is specified, please check the order of the fields.",
            ));
        }
        let credential = form.get("x-amz-credential").ok_or_else(|| {
            bad("Bucket POST must contain a field named 'x-amz-credential'.  If it is specified, please check the order of the fields.")
        })?;
        let parts: Vec<&str> = credential.split('/').collect();
        let [access_key, date, region, service, terminal] = parts[..] else {
            return Err(bad(&format!("Invalid credential: {credential}")));
        };
        if service != "s3" || terminal != "aws4_request" || date.len() != 8 {
            return Err(bad(&format!("Invalid credential: {credential}")));
        }
        if region != self.s3.region {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "AuthorizationQueryParametersError",
                format!(
                    "Error parsing the X-Amz-Credential parameter; the region '{region}' is wrong; expecting '{}'",
                    self.s3.region
                ),
            ));
        }
        self.signed_policy(access_key, policy_b64, signature, |secret| {
            sigv4::post_policy_signature(secret, date, region, policy_b64)
                .ok_or_else(|| bad(&format!("Invalid credential: {credential}")))
        })
    }

    /// Checks a Signature Version 2 form (`AWSAccessKeyId`, `policy`,
    /// `signature`: the base64 HMAC-SHA1 of the policy), what boto3's
    /// `generate_presigned_post` makes by default; the policy is then
    /// enforced exactly as for SigV4.
    fn verify_v2(&self, form: &Form) -> Result<(Option<String>, Option<PostPolicy>), PostError> {
        let missing = |field: &str| {
            err(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                format!(
                    "Bucket POST must contain a field named '{field}'.  If it is specified, please check the order of the fields."
                ),
            )
        };
        let access_key = form
            .get("AWSAccessKeyId")
            .ok_or_else(|| missing("AWSAccessKeyId"))?;
        let policy_b64 = form.get("policy").ok_or_else(|| missing("policy"))?;
        let signature = form.get("signature").ok_or_else(|| missing("Signature"))?;
        self.signed_policy(access_key, policy_b64, signature, |secret| {
            Ok(sigv4::v2_signature(secret, policy_b64))
        })
    }

    /// The common end of both signature versions: the key must exist, the
    /// form's `signature` must be the one `expected` computes from its
    /// secret, and then the policy is read.
    fn signed_policy(
        &self,
        access_key: &str,
        policy_b64: &str,
        signature: &str,
        expected: impl FnOnce(&str) -> Result<String, PostError>,
    ) -> Result<(Option<String>, Option<PostPolicy>), PostError> {
        let secret = self.auth.secret_of(access_key).ok_or_else(|| {
            err(
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        })?;
        if !sigv4::same_signature(&expected(&secret)?, signature.trim()) {
            return Err(err(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            ));
        }
        let policy = PostPolicy::from_base64(policy_b64)?;
        Ok((Some(access_key.to_owned()), Some(policy)))
    }
}

/// `success_action_redirect` (303), else `success_action_status` 200, 201
/// (a PostResponse document) or 204 (the default).
fn success_response(
    form: &Form,
    headers: &HeaderMap,
    bucket: &str,
    key: &str,
    etag: &str,
) -> http::Response<Body> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let location = format!("http://{host}/{bucket}/{}", sigv4::uri_encode(key, true));
    let redirect = form
        .get("success_action_redirect")
        .or_else(|| form.get("redirect"))
        .filter(|r| r.starts_with("http://") || r.starts_with("https://"));
    let mut res = http::Response::new(Body::empty());
    if let Some(url) = redirect {
        let sep = if url.contains('?') { '&' } else { '?' };
        let target = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            sigv4::uri_encode(bucket, false),
            sigv4::uri_encode(key, false),
            sigv4::uri_encode(etag, false)
        );
        *res.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(v) = HeaderValue::from_str(&target) {
            res.headers_mut().insert(header::LOCATION, v);
        }
    } else {
        match form.get("success_action_status") {
            Some("200") => *res.status_mut() = StatusCode::OK,
            Some("201") => {
                *res.status_mut() = StatusCode::CREATED;
                let mut xml = String::from(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>",
                );
                push_escaped(&mut xml, &location);
                xml.push_str("</Location><Bucket>");
                push_escaped(&mut xml, bucket);
                xml.push_str("</Bucket><Key>");
                push_escaped(&mut xml, key);
                xml.push_str("</Key><ETag>");
                push_escaped(&mut xml, etag);
                xml.push_str("</ETag></PostResponse>");
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/xml"),
                );
                *res.body_mut() = Body::from(xml);
            }
            _ => *res.status_mut() = StatusCode::NO_CONTENT,
        }
        if let Ok(v) = HeaderValue::from_str(&location) {
            res.headers_mut().insert(header::LOCATION, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}
