//! The front of the request path: request ids, the signature rules s3s
//! leaves out, the CORS layer, and the s3s workarounds (`s3s_compat`),
//! around s3s.

mod s3s_compat;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use http::{HeaderValue, Method, Request, Response, header};
use s3s::Body;
use s3s::service::S3Service;

use crate::buckets::BucketCache;
use crate::cors_layer;
use crate::errors;
use crate::host::{PreflightHost, Target, resolve_target};
use crate::metrics;
use crate::s3::post_object::{PostObjectHandler, is_form_upload};
use crate::signed_headers;

/// The S3 operation of a request, filled in by the access layer (which
/// s3s tells the operation) for the metrics.
#[derive(Debug, Clone, Default)]
pub struct OperationSlot(pub Arc<OnceLock<String>>);

/// How `Vary` is sent on responses from buckets that have a CORS config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VaryMode {
    /// Exactly as S3: `Vary` only when a rule matched.
    #[default]
    Aws,
    /// `Vary: Origin, Access-Control-Request-Headers, Access-Control-Request-Method`
    /// on every response from a bucket with a CORS config (CDN-safe).
    Always,
}

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
        let request_id = new_request_id();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        let target = resolve_target(&self.host, host, req.uri().path());
        let received = content_length(req.headers());
        let operation = OperationSlot::default();

        let mut res = if req.method() == Method::OPTIONS {
            let _ = operation.0.set("Preflight".to_owned());
            cors_layer::preflight(
                &self.buckets,
                self.vary,
                req.headers(),
                &target,
                &request_id,
            )
        } else {
            req.extensions_mut().insert(operation.clone());
            let fallback = fallback_operation(req.method(), req.uri().query(), &target);
            let cors =
                cors_layer::evaluate_actual(&self.buckets, req.headers(), req.method(), &target);
            let form =
                matches!(target, Target::Bucket(_)) && is_form_upload(req.method(), req.headers());
            let refused = match s3s_compat::refuse(req.uri().query(), &request_id) {
                Some(res) => Some(res),
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
                .map(|refusal| refusal.response(&request_id)),
            };
            let mut res = match refused {
                Some(res) => res,
                None => match &target {
                    Target::Bucket(bucket) if form => {
                        let _ = operation.0.set("PostObject".to_owned());
                        let peer = req
                            .extensions()
                            .get::<crate::access::PeerAddr>()
                            .map(|p| p.0);
                        self.post
                            .handle(req.map(Into::into), bucket, peer, &request_id)
                            .await
                    }
                    _ => self.call_s3(req, &request_id, &target).await,
                },
            };
            let _ = operation.0.set(fallback);
            cors.apply(self.vary, res.headers_mut());
            res
        };
        let headers = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert("x-amz-request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&errors::host_id(&request_id)) {
            headers.insert("x-amz-id-2", v);
        }
        metrics::record_request(
            operation.0.get().map_or("Unknown", String::as_str),
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
        let req = match s3s_compat::prepare(req.map(Into::into), target).await {
            Ok(req) => req,
            Err(e) => return error_of(&e, request_id),
        };
        let mut res = match self.s3.call(req).await {
            Ok(res) => res,
            Err(e) => {
                tracing::error!(error = ?e, "s3 service failed");
                let internal = errors::s3_err(s3s::S3ErrorCode::InternalError);
                return error_of(&internal, request_id);
            }
        };
        s3s_compat::fix_response(&mut res, request_id, target);
        res
    }
}

/// An S3 error answered by the front itself.
fn error_of(e: &s3s::S3Error, request_id: &str) -> Response<Body> {
    errors::ErrorDoc::from_s3_error(e)
        .request_id(request_id)
        .into_response()
}

fn content_length(headers: &http::HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A metrics label for requests the access layer never saw (custom routes,
/// signature failures): method and what the path addresses.
fn fallback_operation(method: &Method, query: Option<&str>, target: &Target) -> String {
    let sub = query
        .and_then(|q| q.split('&').next())
        .map(|kv| kv.split('=').next().unwrap_or(""));
    match (target, sub) {
        (Target::Bucket(_), Some("cors")) => match *method {
            Method::PUT => "PutBucketCors".to_owned(),
            Method::GET => "GetBucketCors".to_owned(),
            Method::DELETE => "DeleteBucketCors".to_owned(),
            _ => format!("{method}:bucket"),
        },
        (Target::Service, _) => format!("{method}:service"),
        (Target::Bucket(_), _) => format!("{method}:bucket"),
        (Target::Object(..), _) => format!("{method}:object"),
    }
}

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
