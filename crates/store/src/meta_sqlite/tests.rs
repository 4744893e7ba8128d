use std::collections::HashSet;

use time::macros::datetime;

use super::*;
use crate::conformance::{bucket, object, part, upload};

async fn store() -> (tempfile::TempDir, SqliteMetaStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteMetaStore::open(dir.path().join("meta.db"))
        .await
        .unwrap();
    (dir, store)
}

/// A caller dropped in the middle of a write (a client hanging up) must not
/// leave a transaction open on a pooled connection: later writes would fail
/// ("begin_with at non-zero transaction depth") or wait on SQLite's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_writes_leave_no_open_transaction() {
    let (_dir, store) = store().await;
    store.create_bucket(&bucket("b")).await.unwrap();
    for i in 0..400u64 {
        let object = object("b", &format!("k{}", i % 7), &BlobId::new());
        let write = store.put_object(&object);
        // Cancel at every point from "before the first poll" to "done".
        let _ = tokio::time::timeout(std::time::Duration::from_micros(i * 7 % 900), write).await;
    }
    // The writes that had started finish in the background, in order.
    let started = std::time::Instant::now();
    let drain = object("b", "drain", &BlobId::new());
    let drain = store.put_object(&drain);
    tokio::time::timeout(std::time::Duration::from_secs(30), drain)
        .await
        .expect("the started writes finish")
        .expect("a later write succeeds");
    println!("started writes drained in {:?}", started.elapsed());
    for i in 0..20 {
        let started = std::time::Instant::now();
        let later = object("b", &format!("after{i}"), &BlobId::new());
        let write = store.put_object(&later);
        tokio::time::timeout(std::time::Duration::from_secs(2), write)
            .await
            .expect("a later write does not wait on a lock")
            .expect("a later write succeeds");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
    // A write, once started, completes: every started key is either
    // absent or complete, and the later ones are all there.
    let listed = store.list_objects("b", "after", None, 100).await.unwrap();
    assert_eq!(listed.len(), 20);
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let store = SqliteMetaStore::open(&path).await.unwrap();
    store.create_bucket(&bucket("b")).await.unwrap();
    let obj = object("b", "k", &BlobId::new());
    store.put_object(&obj).await.unwrap();
    let u = upload("b", "k", "u", datetime!(2024-03-04 05:06:07.000000123 UTC));
    store.create_upload(&u).await.unwrap();
    let p = part(7);
    store.put_part("u", &p).await.unwrap();
    store.close().await;
    drop(store);

    let store = SqliteMetaStore::open(&path).await.unwrap();
    assert_eq!(store.get_bucket("b").await.unwrap(), Some(bucket("b")));
    assert_eq!(store.get_object("b", "k").await.unwrap(), Some(obj));
    assert_eq!(store.get_upload("b", "u").await.unwrap(), Some(u));
    assert_eq!(store.list_parts("u", 0, 10).await.unwrap(), [p]);
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let store = SqliteMetaStore::open(&path).await.unwrap();
    sqlx::query("UPDATE schema_version SET version = version + 1")
        .execute(&store.pool)
        .await
        .unwrap();
    store.close().await;
    assert!(matches!(
        SqliteMetaStore::open(&path).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_replace_each_record_once() {
    let (dir, store) = store().await;
    store.create_bucket(&bucket("b")).await.unwrap();
    // A second store on the same file has its own in-process lock, like
    // another process: only SQLite's `BEGIN IMMEDIATE` keeps them apart.
    let other = SqliteMetaStore::open(dir.path().join("meta.db"))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = if i % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                let blob = BlobId::new();
                let replaced = store.put_object(&object("b", "hot", &blob)).await.unwrap();
                (blob, replaced.map(|r| r.layout.blobs()))
            })
        })
        .collect();
    let mut written = HashSet::new();
    let mut freed = Vec::new();
    for task in tasks {
        let (blob, replaced) = task.await.unwrap();
        written.insert(blob);
        freed.extend(replaced.into_iter().flatten());
    }
    let live = store
        .get_object("b", "hot")
        .await
        .unwrap()
        .unwrap()
        .layout
        .blobs();

    // Exactly one put saw no previous record; every other blob is either
    // freed exactly once or is the live one.
    assert_eq!(freed.len(), 63);
    let mut accounted: HashSet<_> = freed.iter().cloned().collect();
    assert_eq!(accounted.len(), freed.len(), "a blob was freed twice");
    assert!(!accounted.contains(&live[0]), "the live blob was freed");
    accounted.extend(live);
    assert_eq!(accounted, written);
}

/// The contract suite (`tests/store_contract.rs` runs it too, from the
/// workspace), here so that this crate's tests cover SQLite on their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_contract_suite() {
    let (_dir, store) = store().await;
    crate::conformance::meta_store_suite(&store)
        .await
        .assert_all_passed("sqlite");
}

#[tokio::test]
async fn durable_journal_settings() {
    let (_dir, store) = store().await;
    let mut conn = store.pool.acquire().await.unwrap();
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
    // FULL = 2: the WAL is fsynced on every commit.
    let synchronous: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(synchronous, 2);
}

/// A database written by a build before issue 11 (schema version 1) gains
/// the release, key, credential and generation tables and keeps its data.
#[tokio::test]
async fn migrates_from_version_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    {
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::query("CREATE TABLE schema_version (version BIGINT NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
        for statement in schema::MIGRATIONS[0] {
            sqlx::query(statement).execute(&mut conn).await.unwrap();
        }
        sqlx::query("INSERT INTO schema_version (version) VALUES (1)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO buckets (name, region, owner, created, acl)
             VALUES ('old', 'r', 'o', 0, 'private')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let store = SqliteMetaStore::open(&path).await.unwrap();
    let version: i64 = sqlx::query("SELECT version FROM schema_version")
        .fetch_one(&store.pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, schema::SCHEMA_VERSION);
    assert!(store.get_bucket("old").await.unwrap().is_some());
    let before = store.settings_generation().await.unwrap();
    store.create_bucket(&bucket("new")).await.unwrap();
    assert!(store.settings_generation().await.unwrap() > before);
    assert!(store.list_user_keys().await.unwrap().is_empty());
    store
        .put_object(&object("old", "k", &BlobId::new()))
        .await
        .unwrap();
    let released = store.delete_object("old", "k").await.unwrap().unwrap();
    let rows: i64 = sqlx::query("SELECT COUNT(*) FROM blob_releases WHERE blob = $1")
        .bind(&released.layout.blobs()[0].0)
        .fetch_one(&store.pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    // Opening again is a no-op.
    store.close().await;
    SqliteMetaStore::open(&path).await.unwrap();
}

/// The uploads expiry query reads the `initiated` index, not the table.
#[tokio::test]
async fn uploads_by_age_use_an_index() {
    let (_dir, store) = store().await;
    let plan: Vec<String> = sqlx::query(
        "EXPLAIN QUERY PLAN SELECT upload_id FROM uploads WHERE initiated < 5
         ORDER BY initiated, upload_id LIMIT 10",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get::<String, _>("detail"))
    .collect();
    assert!(
        plan.iter().any(|d| d.contains("uploads_by_initiated")),
        "{plan:?}"
    );
}

/// Each page of the reference scan is one short query: more references
/// than a page still come out complete.
#[tokio::test]
async fn referenced_blobs_span_pages() {
    let (_dir, store) = store().await;
    store.create_bucket(&bucket("b")).await.unwrap();
    let total = usize::try_from(REFERENCE_PAGE).unwrap() * 2 + 7;
    let mut expected = HashSet::new();
    let mut w = store.begin_write().await.unwrap();
    for i in 0..total {
        let blob = BlobId::new();
        expected.insert(blob.clone());
        replace_object(
            w.conn(),
            &object("b", &format!("k{i:05}"), &blob),
            &WriteCondition::NONE,
        )
        .await
        .unwrap();
    }
    let released: Vec<BlobId> = (0..total).map(|_| BlobId::new()).collect();
    record_releases(w.conn(), &released, 0).await.unwrap();
    w.commit().await.unwrap();
    expected.extend(released);
    let found: Vec<BlobId> = store.referenced_blobs().try_collect().await.unwrap();
    assert_eq!(found.len(), expected.len(), "a blob came twice");
    assert_eq!(found.into_iter().collect::<HashSet<_>>(), expected);
}
