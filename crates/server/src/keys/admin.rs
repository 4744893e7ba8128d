//! Key management on the admin listener (`--admin-addr`), for
//! `preflight keys ... --admin-url`:
//!
//! - `GET /admin/keys`: the users (names, access keys, ARNs; no secrets)
//! - `POST /admin/keys/NAME`: a new user; the only answer that holds its secret
//! - `DELETE /admin/keys/NAME`: removes the user
//!
//! Every call needs `Authorization: Bearer <root secret key>`. The admin
//! listener is plain HTTP: keep it on loopback or a private network.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::json;

use super::{KeyError, KeyStore};

pub type AdminResponse = Response<Full<Bytes>>;

pub const PREFIX: &str = "/admin/keys";

fn json_response(status: StatusCode, body: serde_json::Value) -> AdminResponse {
    let mut text = body.to_string();
    text.push('\n');
    let mut res = Response::new(Full::new(Bytes::from(text)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn error(status: StatusCode, message: &str) -> AdminResponse {
    json_response(status, json!({ "error": message }))
}

/// Compares without an early exit, so timing does not reveal the secret.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(headers: &HeaderMap, root_secret: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| same_secret(token.trim().as_bytes(), root_secret.as_bytes()))
}

/// Answers a `/admin/keys` request; `None` for other paths.
pub async fn handle(
    keys: &Arc<KeyStore>,
    root_secret: &str,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<AdminResponse> {
    let rest = path.strip_prefix(PREFIX)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    if !authorized(headers, root_secret) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "send Authorization: Bearer <root secret key>",
        ));
    }
    let name = rest.trim_start_matches('/');
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    Some(match (method, name.is_empty()) {
        (&Method::GET, true) => json_response(StatusCode::OK, json!({ "users": keys.list() })),
        (&Method::POST, false) => match keys.add(&name).await {
            Ok(k) => {
                tracing::info!(user = %k.name, access_key = %k.access_key, "access key created");
                json_response(
                    StatusCode::CREATED,
                    json!({
                        "name": k.name,
                        "arn": k.arn(),
                        "access_key": k.access_key,
                        "secret_key": k.secret_key,
                        "created": k.created,
                    }),
                )
            }
            Err(e) => key_error(e),
        },
        (&Method::DELETE, false) => match keys.remove(&name).await {
            Ok(()) => {
                tracing::info!(user = %name, "access key removed");
                let mut res = Response::new(Full::new(Bytes::new()));
                *res.status_mut() = StatusCode::NO_CONTENT;
                res
            }
            Err(e) => key_error(e),
        },
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET /admin/keys, POST /admin/keys/NAME or DELETE /admin/keys/NAME",
        ),
    })
}

fn key_error(e: KeyError) -> AdminResponse {
    let status = match e {
        KeyError::InvalidName(_) => StatusCode::BAD_REQUEST,
        KeyError::Exists(_) => StatusCode::CONFLICT,
        KeyError::NoSuchUser(_) => StatusCode::NOT_FOUND,
        _ if e.is_unavailable() => {
            tracing::warn!(error = %e, "metadata store unreachable");
            StatusCode::SERVICE_UNAVAILABLE
        }
        KeyError::Store(_) | KeyError::Io { .. } | KeyError::Corrupt { .. } => {
            tracing::error!(error = %e, "access keys");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error(status, &e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {secret}")).unwrap(),
        );
        h
    }

    #[tokio::test]
    async fn routes_and_auth() {
        let keys = Arc::new(KeyStore::in_memory());
        let ok = bearer("root-secret");
        assert!(
            handle(&keys, "root-secret", &Method::GET, "/health", &ok)
                .await
                .is_none()
        );
        let res = handle(
            &keys,
            "root-secret",
            &Method::GET,
            "/admin/keys",
            &bearer("nope"),
        )
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let res = handle(
            &keys,
            "root-secret",
            &Method::POST,
            "/admin/keys/alice",
            &ok,
        )
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let res = handle(
            &keys,
            "root-secret",
            &Method::POST,
            "/admin/keys/alice",
            &ok,
        )
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let res = handle(&keys, "root-secret", &Method::GET, "/admin/keys", &ok)
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let res = handle(
            &keys,
            "root-secret",
            &Method::DELETE,
            "/admin/keys/alice",
            &ok,
        )
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let res = handle(
            &keys,
            "root-secret",
            &Method::DELETE,
            "/admin/keys/alice",
            &ok,
        )
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
}
