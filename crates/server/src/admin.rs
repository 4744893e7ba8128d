//! The admin listener, separate from the S3 port so that bucket names such
//! as `metrics` or `health` stay usable there: `/health` for load balancers, `/metrics` for Prometheus
//! (more endpoints plug in here: metrics, key management).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;

/// How long `/health` waits for the store's answer.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What the admin endpoints can reach.
pub struct AdminContext {
    /// Users' access keys (`/admin/keys`).
    pub keys: std::sync::Arc<crate::keys::KeyStore>,
    /// Pinged by `/health`.
    pub meta: std::sync::Arc<dyn preflight_store::MetaStore>,
    /// Authenticates key management (`Authorization: Bearer ...`).
    pub root_secret: String,
}

pub type AdminResponse = Response<Full<Bytes>>;

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> AdminResponse {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    res
}

/// Routes one admin request.
pub async fn handle<B>(
    ctx: Arc<AdminContext>,
    req: Request<B>,
) -> Result<AdminResponse, Infallible> {
    if let Some(res) = crate::keys::admin::handle(
        &ctx.keys,
        &ctx.root_secret,
        req.method(),
        req.uri().path(),
        req.headers(),
    )
    .await
    {
        return Ok(res);
    }
    let res = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/health") => health(ctx.meta.as_ref()).await,
        (&Method::GET, "/metrics") => match crate::metrics::render() {
            Some(body) => text(StatusCode::OK, "text/plain; version=0.0.4", body),
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "metrics recorder unavailable\n",
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    };
    Ok(res)
}

/// `/health`: 200 `{"status":"ok"}` when the metadata store answers a
/// ping, else 503 with the reason (a load balancer takes the node out).
async fn health(meta: &dyn preflight_store::MetaStore) -> AdminResponse {
    let failure = match tokio::time::timeout(PING_TIMEOUT, meta.ping()).await {
        Ok(Ok(())) => return text(StatusCode::OK, "application/json", "{\"status\":\"ok\"}\n"),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {PING_TIMEOUT:?}"),
    };
    let mut body = serde_json::json!({ "status": "unavailable", "metadata": failure }).to_string();
    body.push('\n');
    text(StatusCode::SERVICE_UNAVAILABLE, "application/json", body)
}
