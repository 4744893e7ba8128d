//! Finding the bucket and key of a request, in path style and in
//! virtual-hosted style (`bucket.DOMAIN`).
//!
//! The CORS layer and s3s must agree on the bucket, so both use this one
//! parser: s3s through [`PreflightHost`], the CORS layer through
//! [`resolve_target`].

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

/// The S3 host configuration: the optional base domain for virtual-hosted
/// requests. Path style always works.
#[derive(Debug, Clone, Default)]
pub struct PreflightHost {
    domain: Option<String>,
}

impl PreflightHost {
    pub fn new(domain: Option<String>) -> Self {
        Self {
            domain: domain.map(|d| d.to_ascii_lowercase()),
        }
    }

    /// The bucket named by the Host header, if the request is virtual-hosted.
    pub fn bucket_of_host<'h>(&self, host: &'h str) -> Option<&'h str> {
        let domain = self.domain.as_deref()?;
        let name = strip_port(host);
        let bucket = name.strip_suffix(domain)?.strip_suffix('.')?;
        (!bucket.is_empty()).then_some(bucket)
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl S3Host for PreflightHost {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let domain = self.domain.as_deref().unwrap_or("");
        Ok(match self.bucket_of_host(host) {
            Some(bucket) => VirtualHost::new(domain).with_bucket(bucket),
            None => VirtualHost::new(domain),
        })
    }
}

/// What a request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Service,
    Bucket(String),
    Object(String, String),
}

impl Target {
    pub fn bucket(&self) -> Option<&str> {
        match self {
            Target::Service => None,
            Target::Bucket(b) | Target::Object(b, _) => Some(b),
        }
    }
}

/// Resolves the target of a request from its Host header and raw path.
pub fn resolve_target(host_cfg: &PreflightHost, host: Option<&str>, raw_path: &str) -> Target {
    let path = percent_encoding::percent_decode_str(raw_path).decode_utf8_lossy();
    let path = path.strip_prefix('/').unwrap_or(&path);
    if let Some(bucket) = host.and_then(|h| host_cfg.bucket_of_host(h)) {
        return if path.is_empty() {
            Target::Bucket(bucket.to_owned())
        } else {
            Target::Object(bucket.to_owned(), path.to_owned())
        };
    }
    match path.split_once('/') {
        None if path.is_empty() => Target::Service,
        None => Target::Bucket(path.to_owned()),
        Some((bucket, "")) => Target::Bucket(bucket.to_owned()),
        Some((bucket, key)) => Target::Object(bucket.to_owned(), key.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style() {
        let h = PreflightHost::new(None);
        assert_eq!(
            resolve_target(&h, Some("127.0.0.1:9000"), "/"),
            Target::Service
        );
        assert_eq!(resolve_target(&h, None, "/b"), Target::Bucket("b".into()));
        assert_eq!(resolve_target(&h, None, "/b/"), Target::Bucket("b".into()));
        assert_eq!(
            resolve_target(&h, None, "/b/a%20b/c"),
            Target::Object("b".into(), "a b/c".into())
        );
    }

    #[test]
    fn virtual_hosted_style() {
        let h = PreflightHost::new(Some("s3.local".into()));
        assert_eq!(
            resolve_target(&h, Some("photos.s3.local:9000"), "/cat.png"),
            Target::Object("photos".into(), "cat.png".into())
        );
        assert_eq!(
            resolve_target(&h, Some("photos.s3.local"), "/"),
            Target::Bucket("photos".into())
        );
        // The bare domain and other hosts are path style.
        assert_eq!(
            resolve_target(&h, Some("s3.local:9000"), "/b"),
            Target::Bucket("b".into())
        );
        assert_eq!(
            resolve_target(&h, Some("localhost:9000"), "/b"),
            Target::Bucket("b".into())
        );
    }
}
