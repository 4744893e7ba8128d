//! The metadata schema and its versioned migrations.
//!
//! Written in SQL that PostgreSQL also accepts, so a PostgreSQL store can
//! follow with the same shape. Differences to keep in mind there:
//! - keys must compare by bytes: SQLite's default BINARY collation is memcmp
//!   (UTF-8 byte order); PostgreSQL needs `COLLATE "C"` (or `bytea`);
//! - timestamps are BIGINT unix nanoseconds (UTC), sizes BIGINT bytes;
//! - `headers`, `layout` and `checksums` are JSON text (`jsonb` would do).

use sqlx::{Row, SqlitePool};

use crate::{StoreError, StoreResult};

/// Migrations in order; migration `i` brings the schema to version `i + 1`.
/// Append only: never edit a migration that has shipped.
pub(super) const MIGRATIONS: &[&[&str]] = &[
    &[
        "CREATE TABLE buckets (
        name TEXT NOT NULL PRIMARY KEY,
        region TEXT NOT NULL,
        owner TEXT NOT NULL,
        created BIGINT NOT NULL,
        acl TEXT NOT NULL,
        cors TEXT,
        policy TEXT,
        public_access_block TEXT
    )",
        "CREATE TABLE objects (
        bucket TEXT NOT NULL REFERENCES buckets (name),
        key TEXT NOT NULL,
        size BIGINT NOT NULL,
        etag TEXT NOT NULL,
        last_modified BIGINT NOT NULL,
        acl TEXT NOT NULL,
        headers TEXT NOT NULL,
        layout TEXT NOT NULL,
        PRIMARY KEY (bucket, key)
    )",
        "CREATE TABLE uploads (
        upload_id TEXT NOT NULL PRIMARY KEY,
        bucket TEXT NOT NULL REFERENCES buckets (name),
        key TEXT NOT NULL,
        initiated BIGINT NOT NULL,
        acl TEXT NOT NULL,
        headers TEXT NOT NULL
    )",
        "CREATE INDEX uploads_by_key ON uploads (bucket, key, initiated, upload_id)",
        "CREATE TABLE parts (
        upload_id TEXT NOT NULL REFERENCES uploads (upload_id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        blob TEXT NOT NULL,
        size BIGINT NOT NULL,
        etag TEXT NOT NULL,
        last_modified BIGINT NOT NULL,
        checksums TEXT NOT NULL,
        PRIMARY KEY (upload_id, number)
    )",
    ],
    &[
        // Issue 11: several stateless nodes share one metadata store.
        // Blobs to delete once `not_before` (unix ns) has passed; a reaper that
        // claims a row hides it from the others until `claimed_until`.
        "CREATE TABLE blob_releases (
        blob TEXT NOT NULL PRIMARY KEY,
        not_before BIGINT NOT NULL,
        claimed_until BIGINT
    )",
        "CREATE INDEX blob_releases_due ON blob_releases (not_before)",
        "CREATE TABLE user_keys (
        name TEXT NOT NULL PRIMARY KEY,
        access_key TEXT NOT NULL UNIQUE,
        secret_key TEXT NOT NULL,
        created BIGINT NOT NULL
    )",
        // Single rows: `id` is always 1.
        "CREATE TABLE root_credentials (
        id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
        access_key TEXT NOT NULL,
        secret_key TEXT NOT NULL
    )",
        "CREATE TABLE settings_generation (
        id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
        generation BIGINT NOT NULL
    )",
        "INSERT INTO settings_generation (id, generation) VALUES (1, 0)",
        // list_uploads_initiated_before (the incomplete-upload expiry).
        "CREATE INDEX uploads_by_initiated ON uploads (initiated, upload_id)",
    ],
];

/// The schema version this build writes.
#[allow(clippy::cast_possible_wrap)] // a handful of migrations (try_from is not const)
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`], one transaction per migration.
/// Refuses a database written by a newer build.
pub(super) async fn migrate(pool: &SqlitePool) -> StoreResult<()> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .execute(pool)
        .await?;
    loop {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let current: i64 = sqlx::query("SELECT MAX(version) AS v FROM schema_version")
            .fetch_one(&mut *tx)
            .await?
            .try_get::<Option<i64>, _>("v")?
            .unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "metadata schema version {current} is newer than this build \
                 supports ({SCHEMA_VERSION}); upgrade Preflight"
            )));
        }
        if current == SCHEMA_VERSION {
            return Ok(());
        }
        let Some(migration) = usize::try_from(current)
            .ok()
            .and_then(|i| MIGRATIONS.get(i))
        else {
            return Err(StoreError::Corrupt(format!(
                "invalid metadata schema version {current}"
            )));
        };
        for statement in *migration {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM schema_version")
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
            .bind(current + 1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = current + 1, "migrated metadata schema");
    }
}
