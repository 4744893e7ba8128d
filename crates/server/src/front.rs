//! The front of the request path: request ids, the signature rules s3s
//! leaves out, the CORS layer, and the s3s workarounds (`s3s_compat`),
//! around s3s.

mod s3s_compat;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use http::{HeaderValue, Request, Response, header};
use s3s::Body;
use s3s::service::S3Service;

use crate::buckets::BucketDirectory;
use crate::config::VaryMode;
use crate::cors_layer;
use crate::errors;
use crate::host::{PreflightHost, Target, resolve_target};
use crate::metrics;
use crate::request::{Operation, RequestContext};
use crate::s3::post_object::PostObjectHandler;
use crate::signed_headers;

pub struct Front {
    pub s3: S3Service,
    /// Browser form uploads (POST Object), answered before s3s.
    pub post: Arc<PostObjectHandler>,
    pub buckets: Arc<BucketDirectory>,
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

        // Every layer below reads bucket settings from the cache; a bucket
        // it lacks may be one another node created a moment ago.
        let lookup = match target.bucket() {
            Some(bucket) => self.buckets.find(bucket).await.map(drop),
            None => Ok(()),
        };
        let mut res = if let Err(e) = lookup {
            error_of(&errors::store_err(e), request_id)
        } else if ctx.operation == Operation::Preflight {
            cors_layer::preflight(&self.buckets, self.vary, req.headers(), target, request_id)
        } else {
            let cors =
                cors_layer::evaluate_actual(&self.buckets, req.headers(), req.method(), target);
            let form = ctx.operation == Operation::PostObject;
            let refused = match s3s_compat::refuse(req.uri().query(), request_id) {
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
                .map(|refusal| refusal.response(request_id)),
            };
            let mut res = match refused {
                Some(res) => res,
                None => match target {
                    Target::Bucket(bucket) if form => {
                        self.post.handle(req.map(Into::into), bucket, &ctx).await
                    }
                    _ => self.call_s3(req, ctx.operation, request_id, target).await,
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
        log_answer(&ctx, res.status());
        metrics::record_request(
            ctx.operation,
            res.status().as_u16(),
            started.elapsed(),
            received,
            content_length(res.headers()),
        );
        res
    }

    async fn call_s3<B>(
        &self,
        req: Request<B>,
        operation: Operation,
        request_id: &str,
        target: &Target,
    ) -> Response<Body>
    where
        B: Into<Body>,
    {
        let req = match s3s_compat::prepare(req.map(Into::into), operation, target).await {
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
        s3s_compat::fix_response(&mut res, request_id, target, operation);
        res
    }
}

/// One line per error answer, at the level it deserves: a client's
/// mistake (4xx) is the client's to fix and is logged at debug; a server
/// fault (5xx) at error, but for 503 (the store unreachable, which is
/// logged once where it is noticed) at warn.
fn log_answer(ctx: &RequestContext, status: http::StatusCode) {
    let (op, status_code) = (ctx.operation.as_str(), status.as_u16());
    if status == http::StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(request_id = %ctx.id, op, status = status_code, "answered 503");
    } else if status.is_server_error() {
        tracing::error!(request_id = %ctx.id, op, status = status_code, "server fault answered");
    } else if status.is_client_error() {
        tracing::debug!(request_id = %ctx.id, op, status = status_code, "request refused");
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

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
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
