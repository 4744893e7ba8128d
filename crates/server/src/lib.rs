//! The Preflight server: a hyper HTTP server with the CORS layer in front of
//! s3s, an access layer (ACLs), and the S3 implementation over the store.
//!
//! ```text
//! hyper (HTTP/1.1 + h2, TCP_NODELAY, graceful shutdown; optional TLS: tls.rs)
//!   + limits (connection caps, idle/keep-alive/body/send timeouts)
//!   └ front (request id, limits, CORS: answers OPTIONS, decorates responses)
//!       └ s3s S3Service
//!           • auth   → access keys (root + users)
//!           • access → bucket policy, public access block, ACLs
//!           • s3     → MetaStore + BlobStore
//! ```

mod access;
mod admin;
mod auth;
mod buckets;
mod cors_layer;
mod errors;
mod front;
mod host;
mod http_server;
pub mod keys;
mod limits;
mod metrics;
mod policy;
mod s3;
mod signed_headers;
pub mod sigv4;
pub mod tls;

pub use buckets::BucketCache;
pub use front::VaryMode;
pub use http_server::{Server, ServerConfig, ServerError};
pub use limits::{ConnLimits, default_max_connections, open_file_limit};

/// Root credentials of a server.
#[derive(Clone)]
pub struct RootCredentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("RootCredentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}
