//! The PostgreSQL metadata schema and its versioned migrations.
//!
//! The same shape as the SQLite schema, in PostgreSQL's own SQL:
//! - object and upload keys are `BYTEA`: they compare and sort by bytes,
//!   exactly as SQLite's BINARY collation sorts UTF-8 text, and may hold any
//!   character a Rust `String` can (PostgreSQL `TEXT` refuses U+0000);
//! - names and ids (buckets, users, uploads, blobs) are `TEXT COLLATE "C"`,
//!   byte order too, whatever the database's default collation;
//! - timestamps are BIGINT unix nanoseconds (UTC), sizes BIGINT bytes;
//! - `headers`, `layout` and `checksums` are JSON text (`jsonb` would refuse
//!   the `\u0000` escape that serde_json writes for a NUL in a header).
//!
//! Several nodes may start at once on a fresh database: every migration
//! transaction first takes [`MIGRATION_LOCK`], so exactly one node applies
//! each migration and the others then see it done.

use sqlx::{Connection, PgConnection, Row};

use super::PgResultExt;
use crate::{StoreError, StoreResult};

/// The advisory lock key that serializes migrations (`pg_advisory_xact_lock`;
/// "Preflight" in ASCII, for whoever reads `pg_locks`).
const MIGRATION_LOCK: i64 = 0x0050_7265_666C_6967;

/// Migrations in order; migration `i` brings the schema to version `i + 1`.
/// Append only: never edit a migration that has shipped.
const MIGRATIONS: &[&[&str]] = &[&[
    r#"CREATE TABLE buckets (
        name TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        region TEXT NOT NULL,
        owner TEXT NOT NULL,
        created BIGINT NOT NULL,
        acl TEXT NOT NULL,
        cors TEXT,
        policy TEXT,
        public_access_block TEXT
    )"#,
    r#"CREATE TABLE objects (
        bucket TEXT COLLATE "C" NOT NULL REFERENCES buckets (name),
        key BYTEA NOT NULL,
        size BIGINT NOT NULL,
        etag TEXT NOT NULL,
        last_modified BIGINT NOT NULL,
        acl TEXT NOT NULL,
        headers TEXT NOT NULL,
        layout TEXT NOT NULL,
        PRIMARY KEY (bucket, key)
    )"#,
    r#"CREATE TABLE uploads (
        upload_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        bucket TEXT COLLATE "C" NOT NULL REFERENCES buckets (name),
        key BYTEA NOT NULL,
        initiated BIGINT NOT NULL,
        acl TEXT NOT NULL,
        headers TEXT NOT NULL
    )"#,
    "CREATE INDEX uploads_by_key ON uploads (bucket, key, initiated, upload_id)",
    "CREATE INDEX uploads_by_age ON uploads (initiated, upload_id)",
    r#"CREATE TABLE parts (
        upload_id TEXT COLLATE "C" NOT NULL REFERENCES uploads (upload_id) ON DELETE CASCADE,
        number BIGINT NOT NULL,
        blob TEXT COLLATE "C" NOT NULL,
        size BIGINT NOT NULL,
        etag TEXT NOT NULL,
        last_modified BIGINT NOT NULL,
        checksums TEXT NOT NULL,
        PRIMARY KEY (upload_id, number)
    )"#,
    // "Delete blob X not before T"; `claimed_until` hides a row claimed by
    // a sweeper until its lease ends (0: never claimed).
    r#"CREATE TABLE blob_releases (
        blob TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        not_before BIGINT NOT NULL,
        claimed_until BIGINT NOT NULL DEFAULT 0
    )"#,
    "CREATE INDEX blob_releases_due ON blob_releases (not_before)",
    r#"CREATE TABLE user_keys (
        name TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        access_key TEXT COLLATE "C" NOT NULL UNIQUE,
        secret_key TEXT NOT NULL,
        created BIGINT NOT NULL
    )"#,
    "CREATE TABLE root_credentials (
        id SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
        access_key TEXT NOT NULL,
        secret_key TEXT NOT NULL
    )",
    "CREATE TABLE settings_generation (
        id SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
        generation BIGINT NOT NULL
    )",
    "INSERT INTO settings_generation (id, generation) VALUES (1, 0)",
]];

/// The schema version this build writes.
#[allow(clippy::cast_possible_wrap)] // a handful of migrations (try_from is not const)
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`], one transaction per migration,
/// each under the migration lock. Refuses a database written by a newer build.
pub(super) async fn migrate(conn: &mut PgConnection) -> StoreResult<()> {
    loop {
        let mut tx = conn.begin().await.pg()?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .pg()?;
        // Under the lock: `CREATE TABLE IF NOT EXISTS` is not safe against a
        // concurrent twin (both may try to insert the catalog row).
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await
            .pg()?;
        let current: i64 = sqlx::query("SELECT MAX(version) AS v FROM schema_version")
            .fetch_one(&mut *tx)
            .await
            .pg()?
            .try_get::<Option<i64>, _>("v")
            .pg()?
            .unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "metadata schema version {current} is newer than this build \
                 supports ({SCHEMA_VERSION}); upgrade Preflight"
            )));
        }
        if current == SCHEMA_VERSION {
            tx.commit().await.pg()?;
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
            sqlx::query(statement).execute(&mut *tx).await.pg()?;
        }
        sqlx::query("DELETE FROM schema_version")
            .execute(&mut *tx)
            .await
            .pg()?;
        sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
            .bind(current + 1)
            .execute(&mut *tx)
            .await
            .pg()?;
        tx.commit().await.pg()?;
        tracing::info!(version = current + 1, "migrated PostgreSQL metadata schema");
    }
}
