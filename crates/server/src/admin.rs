//! The admin listener, separate from the S3 port so that bucket names such
//! as `metrics` or `health` stay usable there: `/health` for load balancers, `/metrics` for Prometheus
//! (more endpoints plug in here: metrics, key management).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;

/// What the admin endpoints can reach.
pub struct AdminContext {
    /// Users' access keys (`/admin/keys`).
    pub keys: std::sync::Arc<crate::keys::KeyStore>,
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
    ) {
        return Ok(res);
    }
    let res = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/health") => {
            text(StatusCode::OK, "application/json", "{\"status\":\"ok\"}\n")
        }
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
