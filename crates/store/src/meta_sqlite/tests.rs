use std::collections::HashSet;

use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::{ObjectHeaders, ObjectLayout, PartRef};

mod multipart;

async fn store() -> (tempfile::TempDir, SqliteMetaStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteMetaStore::open(dir.path().join("meta.db"))
        .await
        .unwrap();
    (dir, store)
}

fn bucket(name: &str) -> BucketRecord {
    BucketRecord {
        name: name.to_owned(),
        region: "us-east-1".to_owned(),
        owner: "owner-id".to_owned(),
        created: datetime!(2024-05-06 07:08:09.123456789 UTC),
        acl: "private".to_owned(),
        cors: None,
        policy: None,
        public_access_block: None,
    }
}

fn object(bucket: &str, key: &str, blob: &BlobId) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size: 5,
        etag: "\"5d41402abc4b2a76b9719d911017c592\"".to_owned(),
        last_modified: datetime!(2024-05-06 07:08:10.5 UTC),
        acl: "private".to_owned(),
        headers: ObjectHeaders::default(),
        layout: ObjectLayout::Single { blob: blob.clone() },
    }
}

fn upload(bucket: &str, key: &str, id: &str, initiated: OffsetDateTime) -> UploadRecord {
    UploadRecord {
        upload_id: id.to_owned(),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        initiated,
        acl: "public-read".to_owned(),
        headers: ObjectHeaders {
            content_type: Some("text/plain".to_owned()),
            ..ObjectHeaders::default()
        },
    }
}

fn part(number: u32) -> PartRecord {
    PartRecord {
        number,
        blob: BlobId::new(),
        size: 5 << 20,
        etag: format!("\"etag-{number}\""),
        last_modified: datetime!(2024-05-06 07:08:11.001 UTC),
        checksums: vec![("CRC32".to_owned(), "AAAAAA==".to_owned())],
    }
}

fn keys(objects: &[ObjectRecord]) -> Vec<&str> {
    objects.iter().map(|o| o.key.as_str()).collect()
}

#[tokio::test]
async fn bucket_lifecycle() {
    let (_dir, store) = store().await;
    assert!(store.get_bucket("b").await.unwrap().is_none());
    store.create_bucket(&bucket("b")).await.unwrap();
    store.create_bucket(&bucket("a")).await.unwrap();
    assert!(matches!(
        store.create_bucket(&bucket("b")).await,
        Err(StoreError::BucketExists)
    ));
    assert_eq!(store.get_bucket("b").await.unwrap(), Some(bucket("b")));
    let names: Vec<_> = store
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["a", "b"]);

    store.delete_bucket("a").await.unwrap();
    assert!(store.get_bucket("a").await.unwrap().is_none());
    assert!(matches!(
        store.delete_bucket("a").await,
        Err(StoreError::NoSuchBucket)
    ));
}

#[tokio::test]
async fn bucket_settings() {
    let (_dir, store) = store().await;
    store.create_bucket(&bucket("b")).await.unwrap();
    store
        .set_bucket_setting("b", BucketSetting::Cors, Some("<CORSConfiguration/>"))
        .await
        .unwrap();
    store
        .set_bucket_setting("b", BucketSetting::Policy, Some("{}"))
        .await
        .unwrap();
    store
        .set_bucket_setting("b", BucketSetting::PublicAccessBlock, Some("<x/>"))
        .await
        .unwrap();
    store
        .set_bucket_setting("b", BucketSetting::Acl, Some("public-read"))
        .await
        .unwrap();
    let b = store.get_bucket("b").await.unwrap().unwrap();
    assert_eq!(b.cors.as_deref(), Some("<CORSConfiguration/>"));
    assert_eq!(b.policy.as_deref(), Some("{}"));
    assert_eq!(b.public_access_block.as_deref(), Some("<x/>"));
    assert_eq!(b.acl, "public-read");

    for setting in [
        BucketSetting::Cors,
        BucketSetting::Policy,
        BucketSetting::PublicAccessBlock,
        BucketSetting::Acl,
    ] {
        store.set_bucket_setting("b", setting, None).await.unwrap();
        assert!(matches!(
            store.set_bucket_setting("nope", setting, Some("x")).await,
            Err(StoreError::NoSuchBucket)
        ));
    }
    assert_eq!(store.get_bucket("b").await.unwrap(), Some(bucket("b")));
}

#[tokio::test]
async fn delete_bucket_refuses_objects_and_aborts_uploads() {
    let (_dir, store) = store().await;
    store.create_bucket(&bucket("b")).await.unwrap();
    store.create_bucket(&bucket("c")).await.unwrap();
    store
        .put_object(&object("b", "k", &BlobId::new()))
        .await
        .unwrap();
    let t = OffsetDateTime::now_utc();
    store
        .create_upload(&upload("b", "k", "u1", t))
        .await
        .unwrap();
    store.put_part("u1", &part(1)).await.unwrap();
    assert!(matches!(
        store.delete_bucket("b").await,
        Err(StoreError::BucketNotEmpty)
    ));
    // A refused delete aborts nothing.
    assert_eq!(store.list_parts("u1", 0, 10).await.unwrap().len(), 1);
    store.delete_object("b", "k").await.unwrap();

    // Uploads in progress do not keep a bucket alive: they are aborted in
    // the same transaction and their parts handed back.
    let p2 = part(2);
    store.put_part("u1", &p2).await.unwrap();
    store
        .create_upload(&upload("b", "k2", "u2", t))
        .await
        .unwrap();
    store
        .create_upload(&upload("c", "k", "u3", t))
        .await
        .unwrap();
    let p3 = part(1);
    store.put_part("u3", &p3).await.unwrap();
    let mut released: Vec<BlobId> = store
        .delete_bucket("b")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.blob)
        .collect();
    released.sort();
    assert_eq!(released.len(), 2);
    assert!(released.contains(&p2.blob));
    assert!(store.get_bucket("b").await.unwrap().is_none());
    assert_eq!(store.get_upload("b", "u1").await.unwrap(), None);
    assert_eq!(store.get_upload("b", "u2").await.unwrap(), None);
    assert!(store.list_parts("u1", 0, 10).await.unwrap().is_empty());
    // Another bucket's uploads are untouched.
    assert_eq!(store.list_parts("u3", 0, 10).await.unwrap(), [p3]);
    let blobs: HashSet<_> = store
        .referenced_blobs()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert!(!blobs.contains(&p2.blob));
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
async fn object_lifecycle() {
    let (_dir, store) = store().await;
    let blob = BlobId::new();
    assert!(matches!(
        store.put_object(&object("b", "k", &blob)).await,
        Err(StoreError::NoSuchBucket)
    ));
    store.create_bucket(&bucket("b")).await.unwrap();

    let mut first = object("b", "k", &blob);
    first.headers = ObjectHeaders {
        content_type: Some("text/plain".into()),
        cache_control: Some("no-cache".into()),
        content_disposition: Some("inline".into()),
        content_encoding: Some("gzip".into()),
        content_language: Some("fr".into()),
        expires: Some("Thu, 01 Dec 1994 16:00:00 GMT".into()),
        user_metadata: vec![("zeta".into(), "1".into()), ("alpha".into(), "é".into())],
        checksums: vec![("SHA256".into(), "abc=".into())],
    };
    assert_eq!(store.put_object(&first).await.unwrap(), None);
    assert_eq!(
        store.get_object("b", "k").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.get_object("b", "other").await.unwrap(), None);

    let second = object("b", "k", &BlobId::new());
    assert_eq!(store.put_object(&second).await.unwrap(), Some(first));
    assert_eq!(
        store.get_object("b", "k").await.unwrap(),
        Some(second.clone())
    );

    store.set_object_acl("b", "k", "public-read").await.unwrap();
    assert_eq!(
        store.get_object("b", "k").await.unwrap().unwrap().acl,
        "public-read"
    );
    assert!(matches!(
        store.set_object_acl("b", "missing", "private").await,
        Err(StoreError::NoSuchKey)
    ));

    let removed = store.delete_object("b", "k").await.unwrap().unwrap();
    assert_eq!(removed.layout, second.layout);
    assert_eq!(store.delete_object("b", "k").await.unwrap(), None);
    assert_eq!(store.get_object("b", "k").await.unwrap(), None);
}

#[tokio::test]
async fn listing_follows_utf8_byte_order() {
    let (_dir, store) = store().await;
    store.create_bucket(&bucket("b")).await.unwrap();
    store.create_bucket(&bucket("other")).await.unwrap();
    // Inserted shuffled; byte order puts ASCII first, then 2-byte, 4-byte.
    let shuffled = [
        "\u{10000}",
        "z",
        "é",
        "~",
        "b",
        "a",
        "B",
        "a/",
        "a/b",
        "\u{FFFD}",
    ];
    for key in shuffled {
        store
            .put_object(&object("b", key, &BlobId::new()))
            .await
            .unwrap();
    }
    store
        .put_object(&object("other", "a", &BlobId::new()))
        .await
        .unwrap();

    let all = store.list_objects("b", "", None, 100).await.unwrap();
    let expected = [
        "B",
        "a",
        "a/",
        "a/b",
        "b",
        "z",
        "~",
        "é",
        "\u{FFFD}",
        "\u{10000}",
    ];
    assert_eq!(keys(&all), expected);
    let mut by_bytes: Vec<&str> = shuffled.to_vec();
    by_bytes.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    assert_eq!(keys(&all), by_bytes);

    // Pagination with `after` walks the same order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_objects("b", "", after.as_deref(), 3)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().map(|o| o.key.clone());
        seen.extend(page.into_iter().map(|o| o.key));
    }
    assert_eq!(seen, expected);
    assert!(
        store
            .list_objects("b", "", None, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_objects("none", "", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn listing_by_prefix_is_exact() {
    let (_dir, store) = store().await;
    store.create_bucket(&bucket("b")).await.unwrap();
    let all = [
        "a",
        "a%",
        "a%b",
        "a_",
        "aX",
        "ab",
        "ab/1",
        "ab/2",
        "abc",
        "ac",
        "A",
        "é",
        "éa",
        "f",
        "a\u{10FFFF}",
        "a\u{10FFFF}x",
        "b",
    ];
    for key in all {
        store
            .put_object(&object("b", key, &BlobId::new()))
            .await
            .unwrap();
    }
    let list = |prefix: &'static str, after: Option<&'static str>, limit| {
        let store = store.clone();
        async move {
            let found = store.list_objects("b", prefix, after, limit).await.unwrap();
            found.into_iter().map(|o| o.key).collect::<Vec<_>>()
        }
    };
    // Case-sensitive, and % and _ are plain characters.
    assert_eq!(list("a%", None, 100).await, ["a%", "a%b"]);
    assert_eq!(list("a_", None, 100).await, ["a_"]);
    assert_eq!(list("A", None, 100).await, ["A"]);
    assert_eq!(list("ab", None, 100).await, ["ab", "ab/1", "ab/2", "abc"]);
    assert_eq!(list("é", None, 100).await, ["é", "éa"]);
    assert_eq!(
        list("a\u{10FFFF}", None, 100).await,
        ["a\u{10FFFF}", "a\u{10FFFF}x"]
    );
    assert_eq!(list("zz", None, 100).await, Vec::<String>::new());
    // `after` before, inside and past the prefix range; and a limit.
    assert_eq!(
        list("ab", Some("a"), 100).await,
        ["ab", "ab/1", "ab/2", "abc"]
    );
    assert_eq!(list("ab", Some("ab/1"), 100).await, ["ab/2", "abc"]);
    assert_eq!(list("ab", Some("ab/0"), 2).await, ["ab/1", "ab/2"]);
    assert_eq!(list("ab", Some("abd"), 100).await, Vec::<String>::new());
    assert_eq!(list("a", None, 3).await, ["a", "a%", "a%b"]);
}

#[tokio::test]
async fn referenced_blobs_cover_objects_and_parts() {
    let (_dir, store) = store().await;
    store.create_bucket(&bucket("b")).await.unwrap();
    let single = BlobId::new();
    store
        .put_object(&object("b", "one", &single))
        .await
        .unwrap();
    let (p1, p2) = (part(1), part(2));
    let mut multi = object("b", "many", &single);
    multi.layout = ObjectLayout::Parts {
        parts: [&p1, &p2]
            .iter()
            .map(|p| PartRef {
                number: p.number,
                blob: p.blob.clone(),
                size: p.size,
                etag: p.etag.clone(),
            })
            .collect(),
    };
    store.put_object(&multi).await.unwrap();
    store
        .create_upload(&upload("b", "k", "u", OffsetDateTime::now_utc()))
        .await
        .unwrap();
    let pending = part(1);
    store.put_part("u", &pending).await.unwrap();

    let found: HashSet<_> = store
        .referenced_blobs()
        .await
        .unwrap()
        .into_iter()
        .collect();
    let expected: HashSet<_> = [single, p1.blob, p2.blob, pending.blob]
        .into_iter()
        .collect();
    assert_eq!(found, expected);
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
