//! Choosing the engines: `--meta` and `--blobs` locations, parsed and opened.
//!
//! - metadata: `sqlite` (the embedded default, `meta.sqlite` in the data
//!   dir), `sqlite:///path/to/file`, or `postgres://USER@HOST/DB`
//!   (`postgresql://` too);
//! - blobs: `fs:///path` (a directory, e.g. a shared mount; the default is
//!   the data dir), `s3://BUCKET/PREFIX?endpoint=URL&region=R`,
//!   `gcs://BUCKET/PREFIX`, `azblob://CONTAINER/PREFIX?endpoint=URL`.
//!
//! Opening checks that the engine answers and accepts our credentials, so a
//! bad location stops `preflight serve` at start with one line naming it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::{BlobStore, FsBlobStore, MetaStore, OpenDalBlobStore, SqliteMetaStore, StoreResult};

/// Where metadata lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl MetaLocation {
    /// Parses a `--meta` value; `sqlite` alone means `meta.sqlite` in `data_dir`.
    pub fn parse(value: &str, data_dir: &Path) -> Result<MetaLocation, String> {
        if value == "sqlite" {
            return Ok(MetaLocation::Sqlite(data_dir.join("meta.sqlite")));
        }
        if let Some(path) = value.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(format!("{value:?}: sqlite:// needs a file path"));
            }
            return Ok(MetaLocation::Sqlite(PathBuf::from(path)));
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            url::Url::parse(value).map_err(|e| format!("{}: {e}", redact(value)))?;
            return Ok(MetaLocation::Postgres(value.to_owned()));
        }
        Err(format!(
            "{}: expected sqlite, sqlite:///FILE or postgres://USER@HOST/DB",
            redact(value)
        ))
    }

    /// The location as it may be logged (no password).
    pub fn display(&self) -> String {
        match self {
            MetaLocation::Sqlite(path) => format!("sqlite://{}", path.display()),
            MetaLocation::Postgres(url) => redact(url),
        }
    }
}

/// How the metadata store is run.
#[derive(Debug, Clone)]
pub struct MetaOptions {
    /// Connections in the pool (PostgreSQL).
    pub pool_size: u32,
    /// How long the blobs of a replaced or deleted object stay readable.
    pub release_grace: Duration,
}

impl Default for MetaOptions {
    fn default() -> Self {
        MetaOptions {
            pool_size: 16,
            release_grace: Duration::from_secs(60),
        }
    }
}

/// Opens (and migrates) the metadata store at `location`.
pub async fn open_meta_store(
    location: &MetaLocation,
    options: &MetaOptions,
) -> StoreResult<Arc<dyn MetaStore>> {
    match location {
        MetaLocation::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let store = SqliteMetaStore::open(path)
                .await?
                .with_release_grace(options.release_grace);
            Ok(Arc::new(store))
        }
        #[cfg(feature = "postgres")]
        MetaLocation::Postgres(url) => Ok(Arc::new(
            crate::PostgresMetaStore::connect(url, options).await?,
        )),
        #[cfg(not(feature = "postgres"))]
        MetaLocation::Postgres(url) => Err(crate::StoreError::Corrupt(format!(
            "{}: this build of Preflight has no PostgreSQL support",
            redact(url)
        ))),
    }
}

/// Where blobs live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobLocation {
    /// A local (or mounted) directory.
    Fs(PathBuf),
    /// An OpenDAL service (`s3`, `gcs`, `azblob`) and its URL.
    OpenDal { scheme: String, url: url::Url },
}

/// The OpenDAL services this build enables.
pub const OPENDAL_SCHEMES: &[&str] = &["s3", "gcs", "azblob"];

impl BlobLocation {
    /// Parses a `--blobs` value.
    pub fn parse(value: &str) -> Result<BlobLocation, String> {
        let url = url::Url::parse(value).map_err(|e| {
            format!(
                "{value:?}: {e} (expected fs:///DIR, s3://BUCKET/PREFIX, gcs://… or azblob://…)"
            )
        })?;
        match url.scheme() {
            "fs" => {
                if url.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(format!(
                        "{value:?}: fs:// takes an absolute path, e.g. fs:///srv/preflight"
                    ));
                }
                let path = url
                    .to_file_path()
                    .map_err(|()| format!("{value:?}: not a usable directory path"))?;
                Ok(BlobLocation::Fs(path))
            }
            scheme if OPENDAL_SCHEMES.contains(&scheme) => {
                // Bucket, prefix and query parameters (endpoint, region...)
                // are checked here, so a typo stops `preflight serve` before
                // anything is opened.
                crate::blob_opendal::check_location(&url)?;
                Ok(BlobLocation::OpenDal {
                    scheme: scheme.to_owned(),
                    url,
                })
            }
            other => Err(format!(
                "{value:?}: unknown blob store {other}:// (this build has fs, {})",
                OPENDAL_SCHEMES.join(", ")
            )),
        }
    }

    /// The location as it may be logged.
    pub fn display(&self) -> String {
        match self {
            BlobLocation::Fs(path) => format!("fs://{}", path.display()),
            BlobLocation::OpenDal { url, .. } => url.to_string(),
        }
    }
}

/// Opens the blob store at `location` and checks that it answers.
pub async fn open_blob_store(location: &BlobLocation) -> StoreResult<Arc<dyn BlobStore>> {
    let store: Arc<dyn BlobStore> = match location {
        BlobLocation::Fs(dir) => Arc::new(FsBlobStore::open(dir).await?),
        BlobLocation::OpenDal { .. } => Arc::new(OpenDalBlobStore::from_location(location)?),
    };
    store.check().await?;
    Ok(store)
}

/// A URL with its password replaced by `***`.
pub(crate) fn redact(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_locations() {
        let dir = Path::new("/data");
        assert_eq!(
            MetaLocation::parse("sqlite", dir).unwrap(),
            MetaLocation::Sqlite(dir.join("meta.sqlite"))
        );
        assert_eq!(
            MetaLocation::parse("sqlite:///tmp/m.db", dir).unwrap(),
            MetaLocation::Sqlite("/tmp/m.db".into())
        );
        assert!(matches!(
            MetaLocation::parse("postgres://u@h/db", dir).unwrap(),
            MetaLocation::Postgres(_)
        ));
        let err = MetaLocation::parse("mysql://u:secret@h/db", dir).unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(
            MetaLocation::Postgres("postgres://u:pw@h/db".into()).display(),
            "postgres://u:***@h/db"
        );
    }

    #[test]
    fn blob_locations() {
        assert_eq!(
            BlobLocation::parse("fs:///srv/blobs").unwrap(),
            BlobLocation::Fs("/srv/blobs".into())
        );
        assert!(BlobLocation::parse("fs://host/srv").is_err());
        assert!(matches!(
            BlobLocation::parse("s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1")
                .unwrap(),
            BlobLocation::OpenDal { ref scheme, .. } if scheme == "s3"
        ));
        assert!(BlobLocation::parse("s3:///nobucket").is_err());
        assert!(
            BlobLocation::parse("ftp://x/y")
                .unwrap_err()
                .contains("unknown blob store")
        );
        assert!(BlobLocation::parse("/just/a/path").is_err());
    }
}
