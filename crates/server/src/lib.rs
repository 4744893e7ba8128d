//! The Preflight server: a hyper HTTP server with the CORS layer in front of
//! s3s, an access layer (ACLs), and the S3 implementation over the store.
//!
//! ```text
//! hyper (HTTP/1.1 + h2, TCP_NODELAY, graceful shutdown; optional TLS: tls.rs)
//!   + limits (connection caps, idle/keep-alive/body/send timeouts)
//!   └ front (request id, limits, CORS: answers OPTIONS, decorates responses)
//!     derives the RequestContext (request.rs: id, target, peer, Operation)
//!       ├ form uploads (s3/post_object.rs)
//!       └ s3s S3Service
//!           • auth   → access keys (root + users)
//!           • access → bucket policy, public access block, ACLs
//!           • route  → the CORS configuration API (s3/cors_api.rs)
//!           • s3     → MetaStore + BlobStore
//! ```
//!
//! Form uploads, the CORS configuration API and s3s operations are all
//! decided by the one `AccessLayer::authorize`.

mod access;
mod admin;
mod auth;
mod buckets;
mod config;
mod cors_layer;
mod errors;
mod follow;
mod front;
mod host;
mod http_server;
pub mod keys;
mod limits;
mod metrics;
mod policy;
mod request;
mod s3;
mod signed_headers;
pub mod sigv4;
pub mod tls;

pub use buckets::BucketDirectory;
pub use config::{RootChoice, RootCredentials, RootSource, VaryMode};
pub use http_server::{Server, ServerConfig, ServerError, open_meta};
pub use limits::{ConnLimits, default_max_connections, open_file_limit};
pub use preflight_store::{BlobLocation, GcOptions, MetaLocation, MetaOptions};
