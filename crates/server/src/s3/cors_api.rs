//! PutBucketCors, GetBucketCors and DeleteBucketCors.
//!
//! They run as an s3s custom route so that the CORS engine sees the raw XML:
//! its validation carries S3's exact codes and messages (spec §2), which a
//! generic XML deserializer cannot reproduce.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use preflight_cors::CorsConfig;
use preflight_store::BucketSetting;
use s3s::route::S3Route;
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::integrity::verify_integrity;
use crate::access::{AccessLayer, AccessQuery};
use crate::buckets::BucketDirectory;
use crate::errors::{ErrorDoc, s3_err, store_err};
use crate::host::Target;
use crate::request::{Operation, RequestContext};

/// The CORS document may be at most 64 KB; read a little more so that the
/// engine can report the size error itself.
const MAX_CORS_BODY: usize = 64 * 1024 + 1;

pub struct CorsRoute {
    buckets: Arc<BucketDirectory>,
    access: AccessLayer,
}

impl CorsRoute {
    pub fn new(buckets: Arc<BucketDirectory>, access: AccessLayer) -> Self {
        Self { buckets, access }
    }
}

/// The context the front put in the extensions (every request has one).
fn context_of(extensions: &http::Extensions) -> Option<&RequestContext> {
    extensions.get::<RequestContext>()
}

/// The bucket of a CORS API request: routed here by the operation the front
/// derived, one of the three, which address a bucket.
fn bucket_of(extensions: &http::Extensions) -> Option<&str> {
    let ctx = context_of(extensions).filter(|c| c.operation.is_cors_api())?;
    match &ctx.target {
        Target::Bucket(b) => Some(b),
        _ => None,
    }
}

#[async_trait::async_trait]
impl S3Route for CorsRoute {
    /// Routed by the operation the front derived (`?cors` on a bucket).
    fn is_match(&self, _: &Method, _: &Uri, _: &HeaderMap, ext: &mut http::Extensions) -> bool {
        bucket_of(ext).is_some()
    }

    /// Decided as every operation is: the bucket policy may grant
    /// `s3:PutBucketCORS` (Put and Delete) and `s3:GetBucketCORS`; no ACL does.
    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        let (Some(ctx), Some(bucket)) = (context_of(&req.extensions), bucket_of(&req.extensions))
        else {
            return Err(s3_err(S3ErrorCode::InternalError));
        };
        let access_key = req.credentials.as_ref().map(|c| c.access_key.as_str());
        self.access
            .authorize(
                ctx,
                &AccessQuery {
                    operation: ctx.operation,
                    access_key,
                    bucket,
                    key: None,
                    headers: &req.headers,
                    query: req.uri.query(),
                    auth_type: None,
                    acl_to_set: None,
                },
            )
            .await
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let bucket = bucket_of(&req.extensions)
            .ok_or_else(|| s3_err(S3ErrorCode::NoSuchBucket))?
            .to_owned();
        let entry = self
            .buckets
            .get(&bucket)
            .ok_or_else(|| s3_err(S3ErrorCode::NoSuchBucket))?;
        let operation = context_of(&req.extensions).map(|c| c.operation);
        match operation {
            Some(Operation::PutBucketCors) => self.put_bucket_cors(&bucket, req).await,
            Some(Operation::GetBucketCors) => Ok(get_bucket_cors(&bucket, entry.cors.as_deref())),
            _ => self.delete_bucket_cors(&bucket).await,
        }
    }
}

impl CorsRoute {
    async fn put_bucket_cors(
        &self,
        bucket: &str,
        mut req: S3Request<Body>,
    ) -> S3Result<S3Response<Body>> {
        let body = req
            .input
            .store_all_limited(MAX_CORS_BODY)
            .await
            .map_err(|_| s3_err(S3ErrorCode::MalformedXML))?;
        verify_integrity(&req.headers, &body)?;
        let config = CorsConfig::from_xml(&body).map_err(|e| {
            let code =
                S3ErrorCode::from_bytes(e.code().as_bytes()).unwrap_or(S3ErrorCode::InvalidRequest);
            S3Error::with_message(code, e.message())
        })?;
        let xml = config.to_xml();
        self.buckets
            .set(bucket, BucketSetting::Cors, Some(xml))
            .await
            .map_err(store_err)?;
        tracing::info!(
            bucket,
            rules = config.rules.len(),
            "bucket CORS configuration set"
        );
        log_lint_findings(bucket, &config);
        Ok(S3Response::new(Body::empty()))
    }

    async fn delete_bucket_cors(&self, bucket: &str) -> S3Result<S3Response<Body>> {
        self.buckets
            .set(bucket, BucketSetting::Cors, None)
            .await
            .map_err(store_err)?;
        Ok(S3Response::with_status(
            Body::empty(),
            StatusCode::NO_CONTENT,
        ))
    }
}

/// S3 accepts many configurations that cannot work (an origin with a trailing slash, uploads
/// without ETag exposed, …): say so in the log, once, when the configuration is set.
/// Target `preflight::cors`; `rule` is 1-based, as `preflight cors lint` prints it.
fn log_lint_findings(bucket: &str, config: &CorsConfig) {
    for f in preflight_cors::lint::lint(config) {
        // The finding's text is the event's `message` field.
        tracing::warn!(
            target: "preflight::cors",
            bucket,
            rule = f.rule_index.map(|i| i + 1),
            code = f.code,
            severity = %f.severity,
            fix = %f.fix,
            "{}",
            f.message
        );
    }
}

fn get_bucket_cors(bucket: &str, config: Option<&CorsConfig>) -> S3Response<Body> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    match config {
        Some(cfg) => S3Response {
            output: Body::from(cfg.to_xml()),
            status: Some(StatusCode::OK),
            headers,
            extensions: http::Extensions::new(),
        },
        None => {
            // The front layer sets RequestId and HostId.
            let xml = ErrorDoc::new(
                StatusCode::NOT_FOUND,
                "NoSuchCORSConfiguration",
                "The CORS configuration does not exist",
            )
            .field("BucketName", bucket)
            .to_xml();
            S3Response {
                output: Body::from(Bytes::from(xml)),
                status: Some(StatusCode::NOT_FOUND),
                headers,
                extensions: http::Extensions::new(),
            }
        }
    }
}
