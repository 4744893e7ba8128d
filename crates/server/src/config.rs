//! Server settings that several layers read (the CORS layer and the front).

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
