//! The storage contract on every backend: the suites of
//! `preflight_store::conformance`, one test function per backend, each on a
//! fresh store made by a short helper below.
//!
//! Backends that need a server (PostgreSQL, S3) read its location from the
//! environment and skip with a message when it is unset (fail under CI).

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use preflight_store::conformance::{blob_store_suite, gc_suite, meta_store_suite};
use preflight_store::{FsBlobStore, SqliteMetaStore};

// --- SQLite metadata ---

/// A fresh SQLite store in its own temp dir (default release grace).
async fn fresh_sqlite() -> (tempfile::TempDir, SqliteMetaStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteMetaStore::open(dir.path().join("meta.sqlite"))
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_meta_store_contract() {
    let (_dir, store) = fresh_sqlite().await;
    meta_store_suite(&store).await.assert_all_passed("sqlite");
}

// --- filesystem blobs ---

/// A fresh blob directory.
async fn fresh_fs() -> (tempfile::TempDir, FsBlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).await.unwrap();
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_blob_store_contract() {
    let (_dir, store) = fresh_fs().await;
    blob_store_suite(&store).await.assert_all_passed("fs");
}

// --- the garbage collector on a pair ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_fs_gc_contract() {
    let (_meta_dir, meta) = fresh_sqlite().await;
    let (_blob_dir, blobs) = fresh_fs().await;
    gc_suite(&meta, &blobs).await.assert_all_passed("sqlite+fs");
}

// --- PostgreSQL metadata ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_meta_store_contract() {
    let Some(url) = common::postgres::fresh_database().await else {
        return;
    };
    let store =
        preflight_store::PostgresMetaStore::connect(&url, &preflight_store::MetaOptions::default())
            .await
            .unwrap();
    meta_store_suite(&store).await.assert_all_passed("postgres");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fs_gc_contract() {
    let Some(url) = common::postgres::fresh_database().await else {
        return;
    };
    let meta =
        preflight_store::PostgresMetaStore::connect(&url, &preflight_store::MetaOptions::default())
            .await
            .unwrap();
    let (_blob_dir, blobs) = fresh_fs().await;
    gc_suite(&meta, &blobs)
        .await
        .assert_all_passed("postgres+fs");
}

// --- OpenDAL s3 blobs, on a second Preflight as the S3 server ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opendal_s3_blob_store_contract() {
    let server = common::TestServer::start();
    let bucket = common::bucket_name("blobs");
    server
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let location = preflight_store::BlobLocation::parse(&format!(
        "s3://{bucket}/contract?endpoint={}&region=us-east-1",
        server.endpoint
    ))
    .unwrap();
    let creds = std::collections::HashMap::from([
        (
            "AWS_ACCESS_KEY_ID".to_owned(),
            common::ACCESS_KEY.to_owned(),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            common::SECRET_KEY.to_owned(),
        ),
    ]);
    let store = preflight_store::OpenDalBlobStore::from_location_with(
        &location,
        &creds,
        &preflight_store::OpenDalOptions::default(),
    )
    .unwrap();
    blob_store_suite(&store)
        .await
        .assert_all_passed("opendal-s3");
}
