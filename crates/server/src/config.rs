//! Server settings that several layers read: the root credentials (the
//! server, auth and the S3 implementation) and the `Vary` mode (the CORS
//! layer and the front).

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
