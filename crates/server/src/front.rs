//! The front of the request path: request ids, the signature rules s3s
//! leaves out, the CORS layer, and the error-body fixes, around s3s.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use s3s::Body;
use s3s::service::S3Service;

use crate::buckets::BucketCache;
use crate::chunk_end;
use crate::config::VaryMode;
use crate::cors_layer;
use crate::errors;
use crate::host::{PreflightHost, Target, resolve_target};
use crate::metrics;
use crate::request::{Operation, RequestContext};
use crate::s3::post_object::PostObjectHandler;
use crate::signed_headers;

/// The largest DeleteObjects body read (1000 keys of 1024 bytes fit).
const DELETE_OBJECTS_MAX_BODY: usize = 2 * 1024 * 1024;

/// The longest validity of a presigned URL: seven days.
const MAX_PRESIGNED_EXPIRES: u64 = 7 * 24 * 3600;

pub struct Front {
    pub s3: S3Service,
    /// Browser form uploads (POST Object), answered before s3s.
    pub post: Arc<PostObjectHandler>,
    pub buckets: Arc<BucketCache>,
    pub host: PreflightHost,
    pub vary: VaryMode,
    /// The region credential scopes must name.
    pub region: String,
}

impl Front {
    pub async fn handle<B>(&self, mut req: Request<B>) -> Response<Body>
    where
        B: Into<Body>,
    {
        let started = Instant::now();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        let target = resolve_target(&self.host, host, req.uri().path());
        let received = content_length(req.headers());
        // The one place a request's operation is derived; the layers below
        // read it from the extensions.
        let ctx = RequestContext::new(
            new_request_id(),
            target,
            req.method(),
            req.uri().query(),
            req.headers(),
            req.extensions(),
        );
        req.extensions_mut().insert(ctx.clone());
        let (request_id, target) = (&ctx.id, &ctx.target);

        let mut res = if ctx.operation == Operation::Preflight {
            cors_layer::preflight(&self.buckets, self.vary, req.headers(), target, request_id)
        } else {
            let cors =
                cors_layer::evaluate_actual(&self.buckets, req.headers(), req.method(), target);
            let form = ctx.operation == Operation::PostObject;
            let refused = match presigned_expiry_error(req.uri().query()) {
                Some(message) => Some(errors::error_response(
                    StatusCode::BAD_REQUEST,
                    "AuthorizationQueryParametersError",
                    message,
                    &[],
                    request_id,
                )),
                // A form upload is signed by its policy; S3 ignores its
                // request headers, and the form handler reads none.
                None if form => None,
                None => signed_headers::check(
                    req.uri().query(),
                    req.headers(),
                    &self.region,
                    unix_now(),
                )
                .err()
                .map(|refusal| refusal.response(request_id)),
            };
            let mut res = match refused {
                Some(res) => res,
                None => match target {
                    Target::Bucket(bucket) if form => {
                        self.post.handle(req.map(Into::into), bucket, &ctx).await
                    }
                    _ => self.call_s3(req, request_id, target).await,
                },
            };
            cors.apply(self.vary, res.headers_mut());
            res
        };
        let headers = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(request_id) {
            headers.insert("x-amz-request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&errors::host_id(request_id)) {
            headers.insert("x-amz-id-2", v);
        }
        metrics::record_request(
            ctx.operation,
            res.status().as_u16(),
            started.elapsed(),
            received,
            content_length(res.headers()),
        );
        res
    }

    async fn call_s3<B>(&self, req: Request<B>, request_id: &str, target: &Target) -> Response<Body>
    where
        B: Into<Body>,
    {
        let mut req = req.map(Into::into);
        merge_content_encoding(req.headers_mut());
        let (parts, body) = req.into_parts();
        let body = chunk_end::require_final_chunk(&parts.headers, body);
        let body = if is_delete_objects(&parts, target) {
            match checked_delete_objects_body(&parts.headers, body).await {
                Ok(body) => body,
                Err(e) => return error_of(&e, request_id),
            }
        } else {
            body
        };
        let req = Request::from_parts(parts, body);
        let mut res = match self.s3.call(req).await {
            Ok(res) => res,
            Err(e) => {
                tracing::error!(error = ?e, "s3 service failed");
                return errors::error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                    &[],
                    request_id,
                );
            }
        };
        if res.status() == StatusCode::NOT_MODIFIED {
            // 304 carries no body (s3s renders one for the error value).
            *res.body_mut() = Body::empty();
            res.headers_mut().remove(header::CONTENT_TYPE);
            res.headers_mut().remove(header::CONTENT_LENGTH);
        } else if res.status().is_client_error() || res.status().is_server_error() {
            fix_error_body(&mut res, request_id, target);
        }
        res
    }
}

/// `POST /bucket?delete`: DeleteObjects.
fn is_delete_objects(parts: &http::request::Parts, target: &Target) -> bool {
    parts.method == Method::POST
        && matches!(target, Target::Bucket(_))
        && parts.uri.query().is_some_and(|q| {
            q.split('&')
                .any(|kv| kv.split('=').next() == Some("delete"))
        })
}

/// DeleteObjects must carry `Content-MD5` or an `x-amz-checksum-*` value that
/// matches its body. s3s parses the XML before the operation runs, so the
/// bytes are checked here and handed on. A streamed (aws-chunked) body
/// carries its checksum in a trailer, which s3s verifies as it decodes.
async fn checked_delete_objects_body(
    headers: &http::HeaderMap,
    mut body: Body,
) -> Result<Body, s3s::S3Error> {
    let streamed = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("STREAMING-"));
    if streamed {
        return Ok(body);
    }
    let bytes = body
        .store_all_limited(DELETE_OBJECTS_MAX_BODY)
        .await
        .map_err(|_| errors::s3_err(s3s::S3ErrorCode::MalformedXML))?;
    crate::s3::integrity::verify_integrity(headers, &bytes)?;
    Ok(Body::from(bytes))
}

/// An S3 error answered by the front itself.
fn error_of(e: &s3s::S3Error, request_id: &str) -> Response<Body> {
    let status = e
        .status_code()
        .or_else(|| e.code().status_code())
        .unwrap_or(StatusCode::BAD_REQUEST);
    errors::error_response(
        status,
        e.code().as_str(),
        e.message().unwrap_or_default(),
        &[],
        request_id,
    )
}

fn content_length(headers: &http::HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The AWS SDKs send `Content-Encoding: gzip` and `Content-Encoding:
/// aws-chunked` as two header lines; s3s refuses a repeated header. Joins
/// them into one list as RFC 9110 §5.3 allows, with a bare `,` so that the
/// SigV4 canonical value (repeated values joined by `,`) stays the same.
fn merge_content_encoding(headers: &mut http::HeaderMap) {
    let values: Vec<&[u8]> = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    if values.len() < 2 {
        return;
    }
    let joined = values.join(&b","[..]);
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::CONTENT_ENCODING, v);
    }
}

/// s3s writes error documents without `RequestId`/`HostId`: add them.
fn fix_error_body(res: &mut Response<Body>, request_id: &str, target: &Target) {
    let Some(body) = res.body().bytes() else {
        return;
    };
    let key = match target {
        Target::Object(_, key) => Some(key.as_str()),
        _ => None,
    };
    let Some(fixed) = errors::complete_error_body(&body, request_id, target.bucket(), key) else {
        return;
    };
    set_body(res, fixed);
}

fn set_body(res: &mut Response<Body>, body: Bytes) {
    if let Ok(v) = HeaderValue::from_str(&body.len().to_string()) {
        res.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    if !res.headers().contains_key(header::CONTENT_TYPE) {
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
    }
    *res.body_mut() = Body::from(body);
}

/// s3s 0.14.1 accepts any `X-Amz-Expires`; S3 refuses more than seven days.
fn presigned_expiry_error(query: Option<&str>) -> Option<&'static str> {
    let query = query?;
    let value = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("X-Amz-Expires="))?;
    match value.parse::<u64>() {
        Ok(secs) if secs <= MAX_PRESIGNED_EXPIRES => None,
        Ok(_) => Some("X-Amz-Expires must be less than a week (in seconds) that is; 604800"),
        Err(_) => Some("X-Amz-Expires should be a number"),
    }
}

#[allow(clippy::cast_possible_wrap)] // TODO(lints): d.as_secs() as i64
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A request id in the shape S3 uses: 16 upper-case hex digits. Unique per
/// process run: a random start (so restarts do not repeat ids) plus a
/// counter, without a system call per request.
fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: OnceLock<AtomicU64> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let seed = uuid::Uuid::new_v4().as_u64_pair().0;
        AtomicU64::new(seed)
    });
    format!("{:016X}", next.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_expiry_limit() {
        assert_eq!(presigned_expiry_error(None), None);
        assert_eq!(presigned_expiry_error(Some("X-Amz-Expires=604800")), None);
        assert!(presigned_expiry_error(Some("a=b&X-Amz-Expires=604801")).is_some());
        assert!(presigned_expiry_error(Some("X-Amz-Expires=-1")).is_some());
    }

    #[test]
    fn repeated_content_encodings_are_joined() {
        let mut h = http::HeaderMap::new();
        h.append(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        merge_content_encoding(&mut h);
        assert_eq!(h[header::CONTENT_ENCODING], "gzip");
        h.append(
            header::CONTENT_ENCODING,
            HeaderValue::from_static("aws-chunked"),
        );
        merge_content_encoding(&mut h);
        assert_eq!(h.get_all(header::CONTENT_ENCODING).iter().count(), 1);
        assert_eq!(h[header::CONTENT_ENCODING], "gzip,aws-chunked");
    }

    #[test]
    fn request_ids_look_like_s3() {
        let id = new_request_id();
        assert_eq!(id.len(), 16);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
        );
        assert_ne!(new_request_id(), new_request_id());
    }
}
