//! PostgreSQL-only behaviour: what several nodes on one database must get
//! right. The semantics shared with SQLite are covered by the contract suite
//! (`tests/store_contract.rs`).
//!
//! These tests need `PREFLIGHT_TEST_POSTGRES` (see `scripts/test-postgres`);
//! without it they print SKIPPED and pass, except under CI=true.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sqlx::Executor;
use time::macros::datetime;

use super::*;
use crate::ObjectLayout;
use crate::conformance::{bucket, object, part, upload};

/// A new empty database on the test server, or None (skip) without one.
async fn fresh_database() -> Option<String> {
    let Ok(base) = std::env::var("PREFLIGHT_TEST_POSTGRES") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PREFLIGHT_TEST_POSTGRES must be set under CI"
        );
        println!("SKIPPED: PREFLIGHT_TEST_POSTGRES not set");
        return None;
    };
    let name = format!("preflight_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&base).await.unwrap();
    conn.execute(&*format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    conn.close().await.unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&name);
    Some(url.to_string())
}

async fn store(url: &str) -> PostgresMetaStore {
    PostgresMetaStore::connect(url, &MetaOptions::default())
        .await
        .unwrap()
}

/// Two nodes starting at once on a fresh database both migrate it
/// successfully (one applies the migrations, the other waits and sees
/// them done), and a third finds nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_on_a_fresh_database_both_succeed() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(
                async move { PostgresMetaStore::connect(&url, &MetaOptions::default()).await },
            )
        })
        .collect();
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await.unwrap().expect("every racing start succeeds"));
    }
    let third = store(&url).await;
    let version: i64 = sqlx::query_scalar("SELECT version FROM schema_version")
        .fetch_one(&third.pool)
        .await
        .unwrap();
    assert_eq!(version, schema::SCHEMA_VERSION);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM settings_generation")
        .fetch_one(&third.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "the seed row was inserted once");
    stores[0].create_bucket(&bucket("b")).await.unwrap();
    assert!(third.get_bucket("b").await.unwrap().is_some());
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let first = store(&url).await;
    sqlx::query("UPDATE schema_version SET version = version + 1")
        .execute(&first.pool)
        .await
        .unwrap();
    let err = PostgresMetaStore::connect(&url, &MetaOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("upgrade Preflight"), "{err}");
}

/// A settings change committed on one node reaches another node's watch
/// within a second, carrying the new generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_settings_sees_another_nodes_commit() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let watcher = store(&url).await;
    let writer = store(&url).await;
    let mut watch = watcher.watch_settings().await.unwrap().expect("a channel");
    let before = watcher.settings_generation().await.unwrap();

    writer.create_bucket(&bucket("b")).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(1), watch.next())
        .await
        .expect("notified within 1 s")
        .expect("the stream goes on")
        .unwrap();
    assert_eq!(seen, before + 1);
    assert_eq!(writer.settings_generation().await.unwrap(), seen);

    writer
        .set_bucket_setting("b", BucketSetting::Cors, Some("<CORSConfiguration/>"))
        .await
        .unwrap();
    let key = UserKeyRecord {
        name: "alice".to_owned(),
        access_key: "AKALICE".to_owned(),
        secret_key: "secret".to_owned(),
        created: datetime!(2024-05-06 07:08:09 UTC),
    };
    writer.create_user_key(&key).await.unwrap();
    for expected in [seen + 1, seen + 2] {
        let next = tokio::time::timeout(Duration::from_secs(1), watch.next())
            .await
            .expect("notified within 1 s")
            .expect("the stream goes on")
            .unwrap();
        assert_eq!(next, expected);
    }

    // Failed writes and writes that do not touch cached state say nothing.
    assert!(matches!(
        writer.create_bucket(&bucket("b")).await,
        Err(StoreError::BucketExists)
    ));
    writer
        .put_object(&object("b", "k", &BlobId::new()))
        .await
        .unwrap();
    writer.delete_user_key("alice").await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(1), watch.next())
        .await
        .expect("notified within 1 s")
        .expect("the stream goes on")
        .unwrap();
    assert_eq!(next, seen + 3, "only the key deletion was notified");
}

/// The watch ends with an "unavailable" error when its connection dies, so
/// the caller knows to resubscribe and reread the generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_settings_fails_when_its_connection_is_lost() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let store = store(&url).await;
    let mut watch = store.watch_settings().await.unwrap().expect("a channel");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    assert_eq!(killed, [true]);
    let end = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the loss is noticed");
    match end {
        Some(Err(e)) => assert!(e.is_unavailable(), "{e}"),
        other => panic!("expected an unavailable error, got {other:?}"),
    }
    assert!(watch.next().await.is_none(), "the stream then ends");
    // Resubscribing works.
    let mut again = store.watch_settings().await.unwrap().expect("a channel");
    store.create_bucket(&bucket("b")).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(1), again.next())
        .await
        .expect("notified within 1 s");
    assert!(matches!(seen, Some(Ok(1))), "{seen:?}");
}

/// An unreachable database fails at once with one line that names it,
/// without its password, and says why.
#[tokio::test]
async fn unreachable_database_fails_fast_and_names_it() {
    let started = Instant::now();
    let err = PostgresMetaStore::connect(
        "postgres://preflight:hunter2@127.0.0.1:1/meta",
        &MetaOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(6));
    let shown = err.to_string();
    assert!(err.is_unavailable(), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.starts_with(
            "PostgreSQL: cannot connect to postgres://preflight:***@127.0.0.1:1/meta: "
        ),
        "{shown}"
    );
    assert!(shown.to_lowercase().contains("refused"), "{shown}");
}

/// `sslmode=require` (what managed PostgreSQL services ask for) connects
/// over TLS: the build carries a TLS stack for sqlx.
#[tokio::test]
async fn sslmode_require_connects_over_tls() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let store = store(&format!("{url}?sslmode=require")).await;
    let (ssl,): (bool,) =
        sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&store.pool)
            .await
            .unwrap();
    assert!(ssl, "the connection is not encrypted");
    store.ping().await.unwrap();
}

#[tokio::test]
async fn missing_database_names_it() {
    let Ok(base) = std::env::var("PREFLIGHT_TEST_POSTGRES") else {
        println!("SKIPPED: PREFLIGHT_TEST_POSTGRES not set");
        return;
    };
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path("preflight_no_such_database");
    let err = PostgresMetaStore::connect(url.as_str(), &MetaOptions::default())
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("preflight_no_such_database"), "{shown}");
    assert!(shown.contains("does not exist"), "{shown}");
    assert!(!err.is_unavailable(), "{shown}");
}

#[tokio::test]
async fn closed_pool_is_unavailable() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let store = store(&url).await;
    store.ping().await.unwrap();
    store.close().await;
    let err = store.ping().await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().starts_with("PostgreSQL: "), "{err}");
    let err = store.get_bucket("b").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

/// Keys are bytes: listing follows UTF-8 byte order whatever the database
/// collation, and a key may hold U+0000 (PostgreSQL TEXT could not).
#[tokio::test]
async fn keys_are_bytes() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let store = store(&url).await;
    store.create_bucket(&bucket("b")).await.unwrap();
    let keys = ["a", "B", "a\0z", "a b", "é", "Z", "\u{10FFFF}", "ab"];
    for key in keys {
        store
            .put_object(&object("b", key, &BlobId::new()))
            .await
            .unwrap();
    }
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    let listed = store.list_objects("b", "", None, 100).await.unwrap();
    let listed: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(listed, sorted);
    let listed = store
        .list_objects("b", "a", Some("a\0z"), 100)
        .await
        .unwrap();
    let listed: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(listed, ["a b", "ab"]);
    assert!(store.get_object("b", "a\0z").await.unwrap().is_some());
}

/// Writers of one key on two nodes never both see the same previous record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_on_two_nodes_replace_each_record_once() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let one = store(&url).await;
    let two = store(&url).await;
    one.create_bucket(&bucket("b")).await.unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move {
                let blob = BlobId::new();
                let replaced = if i % 5 == 4 {
                    store.delete_object("b", "hot").await.unwrap();
                    None
                } else {
                    store.put_object(&object("b", "hot", &blob)).await.unwrap()
                };
                (blob, i % 5 != 4, replaced.map(|r| r.layout.blobs()))
            })
        })
        .collect();
    let mut freed = Vec::new();
    let mut written = HashSet::new();
    for task in tasks {
        let (blob, put, replaced) = task.await.unwrap();
        if put {
            written.insert(blob);
        }
        freed.extend(replaced.into_iter().flatten());
    }
    let released: HashSet<BlobId> = one
        .claim_released_blobs(
            OffsetDateTime::now_utc() + Duration::from_secs(3600),
            Duration::from_secs(60),
            1000,
        )
        .await
        .unwrap()
        .into_iter()
        .collect();
    let live: HashSet<BlobId> = one
        .get_object("b", "hot")
        .await
        .unwrap()
        .map(|o| o.layout.blobs())
        .into_iter()
        .flatten()
        .collect();
    let freed_set: HashSet<_> = freed.iter().cloned().collect();
    assert_eq!(freed_set.len(), freed.len(), "a blob was replaced twice");
    // Every written blob is live or released (by a replacement or a delete),
    // never both, never neither.
    assert!(live.is_disjoint(&released), "the live blob was released");
    assert!(freed_set.is_subset(&released));
    let accounted: HashSet<_> = live.union(&released).cloned().collect();
    assert_eq!(accounted, written);
}

/// Parts of one number on two nodes: each replaced part is returned once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_put_parts_replace_each_part_once() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let one = store(&url).await;
    let two = store(&url).await;
    one.create_bucket(&bucket("b")).await.unwrap();
    one.create_upload(&upload("b", "k", "u1", datetime!(2024-05-06 07:08:09 UTC)))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move {
                let part = part(1);
                let replaced = store.put_part("u1", &part).await.unwrap();
                (part.blob, replaced.map(|p| p.blob))
            })
        })
        .collect();
    let mut written = HashSet::new();
    let mut replaced = Vec::new();
    for task in tasks {
        let (blob, old) = task.await.unwrap();
        written.insert(blob);
        replaced.extend(old);
    }
    assert_eq!(replaced.len(), 39);
    let live = one.list_parts("u1", 0, 10).await.unwrap();
    let mut accounted: HashSet<_> = replaced.into_iter().collect();
    assert_eq!(accounted.len(), 39, "a part was replaced twice");
    assert!(!accounted.contains(&live[0].blob));
    accounted.insert(live[0].blob.clone());
    assert_eq!(accounted, written);
}

/// delete_bucket racing puts on another node: either the bucket stays
/// (BucketNotEmpty) or every put that succeeded was before... none can have.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_bucket_never_loses_a_concurrent_put() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let one = store(&url).await;
    let two = store(&url).await;
    for round in 0..20 {
        let name = format!("b{round}");
        one.create_bucket(&bucket(&name)).await.unwrap();
        one.create_upload(&upload(
            &name,
            "k",
            &format!("u{round}"),
            datetime!(2024-05-06 07:08:09 UTC),
        ))
        .await
        .unwrap();
        let puts: Vec<_> = (0..4)
            .map(|i| {
                let (two, name) = (two.clone(), name.clone());
                tokio::spawn(async move {
                    if i == 0 {
                        two.put_part(&format!("u{round}"), &part(1))
                            .await
                            .map(|_| ())
                    } else {
                        two.put_object(&object(&name, &format!("k{i}"), &BlobId::new()))
                            .await
                            .map(|_| ())
                    }
                })
            })
            .collect();
        let deleted = one.delete_bucket(&name).await;
        let mut stored = 0;
        for put in puts {
            match put.await.unwrap() {
                Ok(()) => stored += 1,
                Err(StoreError::NoSuchBucket | StoreError::NoSuchUpload) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        match deleted {
            Ok(parts) => {
                assert!(one.get_bucket(&name).await.unwrap().is_none());
                // Only the part may have been stored: no object survived.
                assert!(stored <= 1, "an object was put into a deleted bucket");
                assert_eq!(parts.len(), stored);
            }
            Err(StoreError::BucketNotEmpty) => {
                assert!(
                    !one.list_objects(&name, "", None, 10)
                        .await
                        .unwrap()
                        .is_empty()
                );
            }
            Err(e) => panic!("unexpected {e}"),
        }
        let orphans: i64 =
            sqlx::query_scalar("SELECT count(*) FROM objects o LEFT JOIN buckets b ON b.name = o.bucket WHERE b.name IS NULL")
                .fetch_one(&one.pool)
                .await
                .unwrap();
        assert_eq!(orphans, 0);
    }
}

/// A part recorded while the upload completes on another node is either
/// part of the completion (returned as unused) or refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn complete_upload_accounts_for_every_racing_part() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let one = store(&url).await;
    let two = store(&url).await;
    one.create_bucket(&bucket("b")).await.unwrap();
    for round in 0..20 {
        let id = format!("u{round}");
        one.create_upload(&upload("b", "k", &id, datetime!(2024-05-06 07:08:09 UTC)))
            .await
            .unwrap();
        let first = part(1);
        one.put_part(&id, &first).await.unwrap();
        let racing = {
            let (two, id) = (two.clone(), id.clone());
            tokio::spawn(async move {
                let p = part(2);
                two.put_part(&id, &p).await.map(|_| p.blob)
            })
        };
        let mut done = object("b", "k", &first.blob);
        done.layout = ObjectLayout::Single {
            blob: first.blob.clone(),
        };
        let (_, unused) = one.complete_upload(&id, &done).await.unwrap();
        match racing.await.unwrap() {
            Ok(blob) => assert_eq!(
                unused.iter().map(|p| p.blob.clone()).collect::<Vec<_>>(),
                [blob]
            ),
            Err(StoreError::NoSuchUpload) => assert!(unused.is_empty()),
            Err(e) => panic!("unexpected {e}"),
        }
        let leftover: i64 = sqlx::query_scalar("SELECT count(*) FROM parts")
            .fetch_one(&one.pool)
            .await
            .unwrap();
        assert_eq!(leftover, 0);
    }
}

/// Two nodes' sweepers claim disjoint release rows; a claim hides a row
/// for its lease only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweepers_on_two_nodes_claim_disjoint_rows() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let one = store(&url).await;
    let two = store(&url).await;
    let blobs: Vec<BlobId> = (0..200).map(|_| BlobId::new()).collect();
    let t0 = datetime!(2024-01-01 00:00 UTC);
    one.release_blobs(&blobs, t0).await.unwrap();
    let lease = Duration::from_secs(60);
    let now = t0 + Duration::from_secs(1);
    let claims: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move { store.claim_released_blobs(now, lease, 30).await.unwrap() })
        })
        .collect();
    let mut claimed = Vec::new();
    for claim in claims {
        claimed.extend(claim.await.unwrap());
    }
    let unique: HashSet<_> = claimed.iter().cloned().collect();
    assert_eq!(unique.len(), claimed.len(), "a row was claimed twice");
    // 8 claims of 30 cover all 200 rows.
    assert_eq!(claimed.len(), 200);
    // Within the lease nothing is left; after it, the unforgotten rows
    // come back.
    assert!(
        one.claim_released_blobs(now + Duration::from_secs(59), lease, 1000)
            .await
            .unwrap()
            .is_empty()
    );
    one.forget_released_blobs(&claimed[..150]).await.unwrap();
    let again: HashSet<_> = two
        .claim_released_blobs(now + lease, lease, 1000)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(again, claimed[150..].iter().cloned().collect());
}

/// Callers dropped mid-write (clients hanging up) leave nothing half done
/// and no connection stuck in a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_writes_leave_no_open_transaction() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let store = PostgresMetaStore::connect(
        &url,
        &MetaOptions {
            pool_size: 2,
            ..MetaOptions::default()
        },
    )
    .await
    .unwrap();
    store.create_bucket(&bucket("b")).await.unwrap();
    for i in 0..300u64 {
        let object = object("b", &format!("k{}", i % 7), &BlobId::new());
        let write = store.put_object(&object);
        let _ = tokio::time::timeout(Duration::from_micros(i * 13 % 3000), write).await;
    }
    for i in 0..20 {
        let started = Instant::now();
        let later = object("b", &format!("after{i}"), &BlobId::new());
        tokio::time::timeout(Duration::from_secs(10), store.put_object(&later))
            .await
            .expect("a later write does not wait on a lock")
            .expect("a later write succeeds");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let idle_in_tx: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )
    .fetch_one(&store.pool)
    .await
    .unwrap();
    assert_eq!(idle_in_tx, 0);
    // Every key that a dropped write touched is whole: its previous blobs
    // are all released (each replaced record was seen by its replacer).
    let listed = store.list_objects("b", "after", None, 100).await.unwrap();
    assert_eq!(listed.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn root_credentials_first_wins_across_nodes() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let nodes = [store(&url).await, store(&url).await];
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = nodes[i % 2].clone();
            tokio::spawn(async move {
                let candidate = RootKeyRecord {
                    access_key: format!("ROOT{i}"),
                    secret_key: format!("secret{i}"),
                };
                store.root_credentials(&candidate).await.unwrap()
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(results.iter().filter(|(_, stored)| *stored).count(), 1);
    let winner = &results[0].0;
    assert!(results.iter().all(|(r, _)| r == winner));
}

#[tokio::test]
async fn user_key_conflicts() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let store = store(&url).await;
    let key = |name: &str, access: &str| UserKeyRecord {
        name: name.to_owned(),
        access_key: access.to_owned(),
        secret_key: "s".to_owned(),
        created: datetime!(2024-05-06 07:08:09 UTC),
    };
    store.create_user_key(&key("bob", "AK1")).await.unwrap();
    store.create_user_key(&key("Alice", "AK2")).await.unwrap();
    for dup in [key("bob", "AK3"), key("carol", "AK1")] {
        assert!(matches!(
            store.create_user_key(&dup).await,
            Err(StoreError::UserExists(name)) if name == dup.name
        ));
    }
    let names: Vec<String> = store
        .list_user_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["Alice", "bob"]);
    assert_eq!(store.settings_generation().await.unwrap(), 2);
    assert!(matches!(
        store.delete_user_key("carol").await,
        Err(StoreError::NoSuchUser(_))
    ));
}
