#![warn(missing_docs)]
//! Amazon S3 bucket CORS as a pure library: the configuration model, its XML and JSON forms,
//! PutBucketCors validation, rule evaluation and the preflight (`OPTIONS`) algorithm.
//!
//! No I/O and no HTTP types: callers pass header values in and get status codes, header
//! lists and S3 error fields out. Section numbers (`spec §n`) refer to the behavioural
//! specification of S3 CORS the crate implements; `docs/cors.md` is the user-facing page.
//!
//! ```
//! use preflight_cors::{BucketState, CorsConfig, PreflightInput, preflight};
//!
//! let config = CorsConfig::from_xml(br#"<CORSConfiguration><CORSRule>
//!     <AllowedOrigin>https://app.example.com</AllowedOrigin>
//!     <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>
//!     <AllowedHeader>*</AllowedHeader>
//! </CORSRule></CORSConfiguration>"#).unwrap();
//! let out = preflight(&PreflightInput {
//!     origin: Some("https://app.example.com"),
//!     request_method: Some("PUT"),
//!     request_headers: Some("Content-Type"),
//!     bucket: BucketState::Config(&config),
//!     targets_object: true,
//! });
//! assert_eq!(out.status, 200);
//! assert_eq!(out.headers[0], ("Access-Control-Allow-Origin", "https://app.example.com".to_string()));
//! ```

mod error;
mod evaluate;
pub mod explain;
mod json;
pub mod lint;
mod matching;
mod model;
mod preflight;
mod preset;
mod xml;

pub use error::{ConfigError, ConfigErrorKind, MALFORMED_XML_MESSAGE};
pub use evaluate::{
    ALLOW_CREDENTIALS, ALLOW_HEADERS, ALLOW_METHODS, ALLOW_ORIGIN, CorsDecision, CorsMatch,
    CorsRequest, EXPOSE_HEADERS, MAX_AGE, Mismatch, NearMissKind, OriginNearMiss, RuleMismatch,
    RuleVerdict, VARY, VARY_VALUE,
};
pub use model::{
    CorsConfig, CorsRule, MAX_DOCUMENT_BYTES, MAX_ID_CHARS, MAX_RULES, S3_NAMESPACE,
    SUPPORTED_METHODS,
};
pub use preflight::{
    BucketState, MSG_NO_BUCKET, MSG_NO_METHOD, MSG_NO_ORIGIN, MSG_NOT_ALLOWED, MSG_NOT_ENABLED,
    PreflightError, PreflightInput, PreflightOutcome, preflight,
};
pub use preset::{PRESETS, PresetError, preset};
