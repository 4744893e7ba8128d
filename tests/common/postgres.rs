//! A fresh PostgreSQL database per test, on the server that
//! `PREFLIGHT_TEST_POSTGRES` names (`scripts/test-postgres start` prints
//! one). Without it the PostgreSQL tests print SKIPPED and pass, except
//! under CI=true, where a missing server is a failure.

use sqlx::{Connection, Executor, PgConnection};

/// The variable that names the test server.
pub const TEST_POSTGRES: &str = "PREFLIGHT_TEST_POSTGRES";

/// Creates `preflight_test_<random>` on the test server and returns its
/// URL, or `None` (after printing SKIPPED) when no server is configured.
pub async fn fresh_database() -> Option<String> {
    let Ok(base) = std::env::var(TEST_POSTGRES) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{TEST_POSTGRES} must be set under CI=true (scripts/test-postgres start)"
        );
        println!("SKIPPED: {TEST_POSTGRES} not set");
        return None;
    };
    let name = format!("preflight_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("{TEST_POSTGRES}={base}: {e}"));
    conn.execute(&*format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
    conn.close().await.unwrap();
    Some(with_database(&base, &name))
}

/// `url` with its database (the path) replaced by `name`, query kept.
fn with_database(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let host_end = head[authority_start..]
        .find('/')
        .map_or(head.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &head[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}
