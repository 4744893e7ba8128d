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

/// Where the root credentials come from.
#[derive(Debug, Clone)]
pub enum RootChoice {
    /// These: from flags or the environment, or the data dir's
    /// `credentials.json` (the embedded default).
    Given(RootCredentials),
    /// The ones kept in the shared metadata store, so every node has the
    /// same; `candidate` is stored by the first node that starts.
    Shared { candidate: RootCredentials },
}

/// Where the root credentials in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSource {
    Given,
    /// Read from the shared metadata store.
    SharedLoaded,
    /// Stored in the shared metadata store by this start.
    SharedStored,
}
