//! Storage errors. The server maps them to S3 errors at one boundary.
//!
//! Engine errors (sqlx, OpenDAL) never appear in this type: they are wrapped
//! as [`StoreError::Backend`], which names the backend and says whether the
//! failure means "the backend cannot be reached" (the server answers 503
//! and retries later) or anything else.

use thiserror::Error;

pub type StoreResult<T> = Result<T, StoreError>;

/// The error of an engine, boxed so that no engine type leaks out.
pub type BackendSource = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("bucket already exists")]
    BucketExists,
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket is not empty")]
    BucketNotEmpty,
    #[error("no such key")]
    NoSuchKey,
    #[error("no such upload")]
    NoSuchUpload,
    /// A completed upload's manifest names a part blob that is not one of
    /// the upload's parts any more (the part was uploaded again since the
    /// manifest was built).
    #[error("a part of the manifest is not the upload's current part")]
    InvalidPart,
    /// A conditional write's or delete's condition does not hold for the
    /// current object (nothing was changed).
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("no such blob: {0}")]
    NoSuchBlob(String),
    #[error("user {0} already exists")]
    UserExists(String),
    #[error("no such user {0}")]
    NoSuchUser(String),
    /// An engine failed. `unavailable`: it could not be reached at all
    /// (connection refused or lost, pool exhausted), so the outcome of a
    /// write that was under way is unknown.
    #[error("{backend}: {source}")]
    Backend {
        backend: &'static str,
        unavailable: bool,
        source: BackendSource,
    },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the backend could not be reached (answer 503, retry later).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Backend {
                unavailable: true,
                ..
            }
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let unavailable = matches!(
            e,
            sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed
        );
        StoreError::Backend {
            backend: "database",
            unavailable,
            source: Box::new(e),
        }
    }
}
