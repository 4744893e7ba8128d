//! Buckets, objects and multipart uploads.

use std::collections::HashSet;

use futures::TryStreamExt;
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::{BucketSetting, EtagMatch, StoreError, WriteCondition};

pub(super) async fn run(store: &dyn MetaStore, report: &mut SuiteReport) {
    run_cases!(
        report,
        (store),
        [
            bucket_lifecycle,
            bucket_settings,
            delete_bucket_refuses_objects_and_aborts_uploads,
            object_lifecycle,
            object_headers_round_trip,
            listing_follows_utf8_byte_order,
            listing_by_prefix_is_exact,
            multipart_upload_lifecycle,
            completion_refuses_a_replaced_part,
            abort_returns_parts,
            listing_uploads,
            uploads_initiated_before_a_cutoff,
            referenced_blobs_cover_objects_and_parts,
            concurrent_puts_of_one_key_lose_no_update,
            conditional_writes_decide_on_the_current_object,
            conditional_deletes_decide_on_the_current_object,
            conditional_completion_leaves_a_refused_upload_intact,
            racing_create_only_writes_have_one_winner,
            ping_answers,
        ]
    );
}

fn keys(objects: &[ObjectRecord]) -> Vec<&str> {
    objects.iter().map(|o| o.key.as_str()).collect()
}

fn upload_ids(found: Vec<UploadRecord>) -> Vec<String> {
    found.into_iter().map(|u| u.upload_id).collect()
}

async fn bucket_lifecycle(store: &dyn MetaStore) {
    let b = unique("b-life");
    let a = format!("{b}-a");
    assert!(store.get_bucket(&b).await.unwrap().is_none());
    store.create_bucket(&bucket(&b)).await.unwrap();
    store.create_bucket(&bucket(&a)).await.unwrap();
    assert!(matches!(
        store.create_bucket(&bucket(&b)).await,
        Err(StoreError::BucketExists)
    ));
    assert_eq!(store.get_bucket(&b).await.unwrap(), Some(bucket(&b)));
    let listed = store.list_buckets().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|b| b.name.as_str()).collect();
    assert!(
        names.contains(&b.as_str()) && names.contains(&a.as_str()),
        "{names:?}"
    );
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "not ordered: {names:?}"
    );
    assert!(listed.contains(&bucket(&a)));

    store.delete_bucket(&a).await.unwrap();
    assert!(store.get_bucket(&a).await.unwrap().is_none());
    assert!(matches!(
        store.delete_bucket(&a).await,
        Err(StoreError::NoSuchBucket)
    ));
    let names: Vec<String> = store
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert!(!names.contains(&a) && names.contains(&b));
}

async fn bucket_settings(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-settings").await;
    let missing = unique("b-missing");
    store
        .set_bucket_setting(&b, BucketSetting::Cors, Some("<CORSConfiguration/>"))
        .await
        .unwrap();
    store
        .set_bucket_setting(&b, BucketSetting::Policy, Some("{}"))
        .await
        .unwrap();
    store
        .set_bucket_setting(&b, BucketSetting::PublicAccessBlock, Some("<x/>"))
        .await
        .unwrap();
    store
        .set_bucket_setting(&b, BucketSetting::Acl, Some("public-read"))
        .await
        .unwrap();
    let got = store.get_bucket(&b).await.unwrap().unwrap();
    assert_eq!(got.cors.as_deref(), Some("<CORSConfiguration/>"));
    assert_eq!(got.policy.as_deref(), Some("{}"));
    assert_eq!(got.public_access_block.as_deref(), Some("<x/>"));
    assert_eq!(got.acl, "public-read");

    for setting in [
        BucketSetting::Cors,
        BucketSetting::Policy,
        BucketSetting::PublicAccessBlock,
        BucketSetting::Acl,
    ] {
        store.set_bucket_setting(&b, setting, None).await.unwrap();
        assert!(matches!(
            store.set_bucket_setting(&missing, setting, Some("x")).await,
            Err(StoreError::NoSuchBucket)
        ));
    }
    // Clearing the ACL makes it private again.
    assert_eq!(store.get_bucket(&b).await.unwrap(), Some(bucket(&b)));
    assert!(store.get_bucket(&missing).await.unwrap().is_none());
}

async fn delete_bucket_refuses_objects_and_aborts_uploads(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-del").await;
    let c = new_bucket(store, "b-del-other").await;
    let (u1, u2, u3) = (unique("u1"), unique("u2"), unique("u3"));
    store
        .put_object(&object(&b, "k", &BlobId::new()))
        .await
        .unwrap();
    let t = OffsetDateTime::now_utc();
    store.create_upload(&upload(&b, "k", &u1, t)).await.unwrap();
    store.put_part(&u1, &part(1)).await.unwrap();
    assert!(matches!(
        store.delete_bucket(&b).await,
        Err(StoreError::BucketNotEmpty)
    ));
    // A refused delete aborts nothing.
    assert_eq!(store.list_parts(&u1, 0, 10).await.unwrap().len(), 1);
    assert!(store.get_bucket(&b).await.unwrap().is_some());
    store.delete_object(&b, "k").await.unwrap();

    // Uploads in progress do not keep a bucket alive: they are aborted in
    // the same transaction and their parts handed back.
    let p2 = part(2);
    store.put_part(&u1, &p2).await.unwrap();
    store
        .create_upload(&upload(&b, "k2", &u2, t))
        .await
        .unwrap();
    store.create_upload(&upload(&c, "k", &u3, t)).await.unwrap();
    let p3 = part(1);
    store.put_part(&u3, &p3).await.unwrap();
    let released: Vec<BlobId> = store
        .delete_bucket(&b)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.blob)
        .collect();
    assert_eq!(released.len(), 2);
    assert!(released.contains(&p2.blob));
    assert!(store.get_bucket(&b).await.unwrap().is_none());
    assert_eq!(store.get_upload(&b, &u1).await.unwrap(), None);
    assert_eq!(store.get_upload(&b, &u2).await.unwrap(), None);
    assert!(store.list_parts(&u1, 0, 10).await.unwrap().is_empty());
    // Another bucket's uploads are untouched.
    assert_eq!(store.list_parts(&u3, 0, 10).await.unwrap(), [p3]);
    assert!(matches!(
        store.delete_bucket(&b).await,
        Err(StoreError::NoSuchBucket)
    ));
    // The bucket name can be used again, empty.
    store.create_bucket(&bucket(&b)).await.unwrap();
    assert!(
        store
            .list_uploads(&b, "", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn object_lifecycle(store: &dyn MetaStore) {
    let b = unique("b-obj");
    let blob = BlobId::new();
    assert!(matches!(
        store.put_object(&object(&b, "k", &blob)).await,
        Err(StoreError::NoSuchBucket)
    ));
    store.create_bucket(&bucket(&b)).await.unwrap();

    let first = object(&b, "k", &blob);
    assert_eq!(store.put_object(&first).await.unwrap(), None);
    assert_eq!(
        store.get_object(&b, "k").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.get_object(&b, "other").await.unwrap(), None);

    let second = object(&b, "k", &BlobId::new());
    assert_eq!(store.put_object(&second).await.unwrap(), Some(first));
    assert_eq!(
        store.get_object(&b, "k").await.unwrap(),
        Some(second.clone())
    );

    store.set_object_acl(&b, "k", "public-read").await.unwrap();
    assert_eq!(
        store.get_object(&b, "k").await.unwrap().unwrap().acl,
        "public-read"
    );
    assert!(matches!(
        store.set_object_acl(&b, "missing", "private").await,
        Err(StoreError::NoSuchKey)
    ));

    let removed = store.delete_object(&b, "k").await.unwrap().unwrap();
    assert_eq!(removed.layout, second.layout);
    assert_eq!(removed.acl, "public-read");
    assert_eq!(store.delete_object(&b, "k").await.unwrap(), None);
    assert_eq!(store.get_object(&b, "k").await.unwrap(), None);
    assert_eq!(
        store.delete_object(&unique("b-none"), "k").await.unwrap(),
        None
    );
}

/// Every field of an object, timestamps to the nanosecond, comes back as
/// stored.
async fn object_headers_round_trip(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-headers").await;
    let mut obj = object(&b, "k", &BlobId::new());
    obj.size = 1 << 40;
    obj.last_modified = datetime!(2024-02-29 23:59:59.123456789 UTC);
    obj.headers = ObjectHeaders {
        content_type: Some("text/plain".into()),
        cache_control: Some("no-cache".into()),
        content_disposition: Some("inline".into()),
        content_encoding: Some("gzip".into()),
        content_language: Some("fr".into()),
        expires: Some("Thu, 01 Dec 1994 16:00:00 GMT".into()),
        user_metadata: vec![("zeta".into(), "1".into()), ("alpha".into(), "é".into())],
        checksums: vec![("SHA256".into(), "abc=".into())],
    };
    store.put_object(&obj).await.unwrap();
    assert_eq!(store.get_object(&b, "k").await.unwrap(), Some(obj));
}

async fn listing_follows_utf8_byte_order(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-order").await;
    let other = new_bucket(store, "b-order-other").await;
    // Inserted shuffled; byte order puts ASCII first, then 2-byte, 3-byte,
    // 4-byte sequences.
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
            .put_object(&object(&b, key, &BlobId::new()))
            .await
            .unwrap();
    }
    store
        .put_object(&object(&other, "a", &BlobId::new()))
        .await
        .unwrap();

    let all = store.list_objects(&b, "", None, 100).await.unwrap();
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
            .list_objects(&b, "", after.as_deref(), 3)
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
            .list_objects(&b, "", None, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_objects(&unique("b-none"), "", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn listing_by_prefix_is_exact(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-prefix").await;
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
            .put_object(&object(&b, key, &BlobId::new()))
            .await
            .unwrap();
    }
    let list = |prefix: &'static str, after: Option<&'static str>, limit| {
        let b = b.clone();
        async move {
            let found = store.list_objects(&b, prefix, after, limit).await.unwrap();
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
    assert_eq!(list("a", None, 0).await, Vec::<String>::new());
}

async fn multipart_upload_lifecycle(store: &dyn MetaStore) {
    let b = unique("b-mpu");
    let c = new_bucket(store, "b-mpu-other").await;
    let (u1, u2) = (unique("u1"), unique("u2"));
    let t = datetime!(2024-01-01 00:00:00 UTC);
    assert!(matches!(
        store.create_upload(&upload(&b, "k", &u1, t)).await,
        Err(StoreError::NoSuchBucket)
    ));
    store.create_bucket(&bucket(&b)).await.unwrap();
    let up = upload(&b, "k", &u1, t);
    store.create_upload(&up).await.unwrap();
    assert_eq!(store.get_upload(&b, &u1).await.unwrap(), Some(up.clone()));
    assert_eq!(store.get_upload(&c, &u1).await.unwrap(), None);
    assert_eq!(store.get_upload(&b, &u2).await.unwrap(), None);

    assert!(matches!(
        store.put_part(&u2, &part(1)).await,
        Err(StoreError::NoSuchUpload)
    ));
    let (p1, p2, p3) = (part(1), part(2), part(3));
    for p in [&p3, &p1, &p2] {
        assert_eq!(store.put_part(&u1, p).await.unwrap(), None);
    }
    // Re-uploading part 2 returns the part it replaced.
    let p2b = part(2);
    assert_eq!(store.put_part(&u1, &p2b).await.unwrap(), Some(p2.clone()));

    let listed = store.list_parts(&u1, 0, 100).await.unwrap();
    assert_eq!(listed, [p1.clone(), p2b.clone(), p3.clone()]);
    assert_eq!(
        store.list_parts(&u1, 1, 1).await.unwrap(),
        std::slice::from_ref(&p2b)
    );
    assert!(store.list_parts(&u1, 3, 100).await.unwrap().is_empty());
    assert!(store.list_parts(&u1, 0, 0).await.unwrap().is_empty());
    assert!(store.list_parts(&u2, 0, 100).await.unwrap().is_empty());

    // Complete with parts 1 and 2 only, over an existing object.
    let old = object(&b, "k", &BlobId::new());
    store.put_object(&old).await.unwrap();
    let done = multipart_object(&b, "k", &[&p1, &p2b]);
    assert!(matches!(
        store.complete_upload(&u2, &done).await,
        Err(StoreError::NoSuchUpload)
    ));
    let mut wrong_key = done.clone();
    wrong_key.key = "other".to_owned();
    assert!(matches!(
        store.complete_upload(&u1, &wrong_key).await,
        Err(StoreError::NoSuchUpload)
    ));
    let mut wrong_bucket = done.clone();
    wrong_bucket.bucket = c.clone();
    assert!(matches!(
        store.complete_upload(&u1, &wrong_bucket).await,
        Err(StoreError::NoSuchUpload)
    ));

    let (replaced, unused) = store.complete_upload(&u1, &done).await.unwrap();
    assert_eq!(replaced, Some(old));
    assert_eq!(unused, [p3]);
    assert_eq!(store.get_object(&b, "k").await.unwrap(), Some(done.clone()));
    assert_eq!(store.get_upload(&b, &u1).await.unwrap(), None);
    assert!(store.list_parts(&u1, 0, 100).await.unwrap().is_empty());
    assert!(matches!(
        store.complete_upload(&u1, &done).await,
        Err(StoreError::NoSuchUpload)
    ));

    // A completion over no object replaces nothing.
    let u3 = unique("u3");
    store
        .create_upload(&upload(&b, "fresh", &u3, t))
        .await
        .unwrap();
    let p = part(1);
    store.put_part(&u3, &p).await.unwrap();
    let (replaced, unused) = store
        .complete_upload(&u3, &multipart_object(&b, "fresh", &[&p]))
        .await
        .unwrap();
    assert_eq!(replaced, None);
    assert!(unused.is_empty());
}

/// The manifest is built from a listing of the parts; a part uploaded again
/// before the commit has released the blob the manifest names. The commit
/// must refuse it (and change nothing) rather than publish an object whose
/// part the reaper is about to delete.
async fn completion_refuses_a_replaced_part(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-stale").await;
    let u = unique("u");
    let t = OffsetDateTime::now_utc();
    store.create_upload(&upload(&b, "k", &u, t)).await.unwrap();
    let (p1, p2) = (part(1), part(2));
    store.put_part(&u, &p1).await.unwrap();
    store.put_part(&u, &p2).await.unwrap();
    let stale = multipart_object(&b, "k", &[&p1, &p2]);
    // Part 2 again, between the listing and the commit.
    let p2b = part(2);
    store.put_part(&u, &p2b).await.unwrap();
    assert!(matches!(
        store.complete_upload(&u, &stale).await,
        Err(StoreError::InvalidPart)
    ));
    assert_eq!(store.get_object(&b, "k").await.unwrap(), None);
    assert_eq!(
        store.list_parts(&u, 0, 10).await.unwrap(),
        [p1.clone(), p2b.clone()]
    );
    // The upload is intact: a manifest of its current parts completes it.
    let fresh = multipart_object(&b, "k", &[&p1, &p2b]);
    let (replaced, unused) = store.complete_upload(&u, &fresh).await.unwrap();
    assert_eq!(replaced, None);
    assert!(unused.is_empty());
    assert_eq!(store.get_object(&b, "k").await.unwrap(), Some(fresh));
}

async fn abort_returns_parts(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-abort").await;
    let u = unique("u");
    let t = OffsetDateTime::now_utc();
    store.create_upload(&upload(&b, "k", &u, t)).await.unwrap();
    let (p1, p2) = (part(1), part(2));
    store.put_part(&u, &p2).await.unwrap();
    store.put_part(&u, &p1).await.unwrap();
    assert_eq!(store.abort_upload(&u).await.unwrap(), [p1, p2]);
    assert!(matches!(
        store.abort_upload(&u).await,
        Err(StoreError::NoSuchUpload)
    ));
    assert_eq!(store.get_upload(&b, &u).await.unwrap(), None);
    assert!(store.list_parts(&u, 0, 10).await.unwrap().is_empty());
}

async fn listing_uploads(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-uploads").await;
    let c = new_bucket(store, "b-uploads-other").await;
    let t1 = datetime!(2024-01-01 00:00:01 UTC);
    let t2 = datetime!(2024-01-01 00:00:02 UTC);
    // Upload ids are global: a random stem, with suffixes that set their order.
    let stem = unique("up");
    let id = |s: &str| format!("{stem}-{s}");
    // Same key: ordered by initiation time, then id.
    let all = [
        upload(&b, "a/1", &id("zz"), t1),
        upload(&b, "a/1", &id("aa"), t2),
        upload(&b, "a/1", &id("bb"), t2),
        upload(&b, "a/2", &id("cc"), t1),
        upload(&b, "b", &id("dd"), t1),
    ];
    for u in all.iter().rev() {
        store.create_upload(u).await.unwrap();
    }
    store
        .create_upload(&upload(&c, "a/1", &id("ee"), t1))
        .await
        .unwrap();
    let ids = |v: &[&str]| v.iter().map(|s| id(s)).collect::<Vec<_>>();

    let list = |prefix: &'static str, after: Option<(&'static str, String)>, limit| {
        let b = b.clone();
        async move {
            let after = after.as_ref().map(|(k, u)| (*k, u.as_str()));
            upload_ids(store.list_uploads(&b, prefix, after, limit).await.unwrap())
        }
    };
    assert_eq!(
        list("", None, 100).await,
        ids(&["zz", "aa", "bb", "cc", "dd"])
    );
    assert_eq!(list("a/", None, 100).await, ids(&["zz", "aa", "bb", "cc"]));
    assert_eq!(list("a/", None, 2).await, ids(&["zz", "aa"]));
    assert_eq!(
        list("", Some(("a/1", id("aa"))), 100).await,
        ids(&["bb", "cc", "dd"])
    );
    assert_eq!(
        list("", Some(("a/1", id("zz"))), 2).await,
        ids(&["aa", "bb"])
    );
    // No upload id marker: the next key.
    assert_eq!(
        list("", Some(("a/1", String::new())), 100).await,
        ids(&["cc", "dd"])
    );
    // A marker upload that no longer exists: ids after it under that key.
    assert_eq!(
        list("", Some(("a/1", id("ab"))), 100).await,
        ids(&["zz", "bb", "cc", "dd"])
    );
    assert!(list("", None, 0).await.is_empty());
    assert!(list("zz", None, 10).await.is_empty());
}

/// The only case that uses times before 2000, so that its uploads are the
/// oldest in the store.
async fn uploads_initiated_before_a_cutoff(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-expiry").await;
    let c = new_bucket(store, "b-expiry-other").await;
    let t = datetime!(1971-01-01 00:00:00 UTC);
    let minute = time::Duration::minutes(1);
    let (u1, u2, u3) = (unique("u1"), unique("u2"), unique("u3"));
    store.create_upload(&upload(&b, "z", &u1, t)).await.unwrap();
    store
        .create_upload(&upload(&c, "a", &u2, t + minute))
        .await
        .unwrap();
    store
        .create_upload(&upload(&b, "a", &u3, t + minute * 2))
        .await
        .unwrap();

    // Oldest first, across buckets, strictly before the cutoff, bounded.
    let old = store
        .list_uploads_initiated_before(t + minute * 2, 10)
        .await
        .unwrap();
    assert_eq!(upload_ids(old), [u1.clone(), u2.clone()]);
    let first = store
        .list_uploads_initiated_before(t + minute * 10, 1)
        .await
        .unwrap();
    assert_eq!(upload_ids(first), std::slice::from_ref(&u1));
    assert!(
        store
            .list_uploads_initiated_before(t, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_uploads_initiated_before(t + minute * 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
    store.abort_upload(&u1).await.unwrap();
    let rest = store
        .list_uploads_initiated_before(t + minute * 10, 10)
        .await
        .unwrap();
    assert_eq!(upload_ids(rest), [u2.clone(), u3.clone()]);
    // Clean up: later runs of this case on the same store stay exact.
    store.abort_upload(&u2).await.unwrap();
    store.abort_upload(&u3).await.unwrap();
}

async fn referenced_blobs_cover_objects_and_parts(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-refs").await;
    let u = unique("u");
    let single = BlobId::new();
    store.put_object(&object(&b, "one", &single)).await.unwrap();
    let (p1, p2) = (part(1), part(2));
    store
        .put_object(&multipart_object(&b, "many", &[&p1, &p2]))
        .await
        .unwrap();
    store
        .create_upload(&upload(&b, "k", &u, OffsetDateTime::now_utc()))
        .await
        .unwrap();
    let pending = part(1);
    store.put_part(&u, &pending).await.unwrap();

    let found: Vec<BlobId> = store.referenced_blobs().try_collect().await.unwrap();
    let found_set: HashSet<&BlobId> = found.iter().collect();
    for blob in [&single, &p1.blob, &p2.blob, &pending.blob] {
        assert!(found_set.contains(blob), "{blob} is not listed");
    }
    assert!(!found_set.contains(&BlobId::new()));
}

/// Eight writers of one key at once: each sees a distinct previous record,
/// so every replaced blob is handed back exactly once.
async fn concurrent_puts_of_one_key_lose_no_update(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-hot").await;
    let written: Vec<BlobId> = (0..8).map(|_| BlobId::new()).collect();
    let puts = written.iter().map(|blob| {
        let record = object(&b, "hot", blob);
        async move { store.put_object(&record).await.unwrap() }
    });
    let replaced = futures::future::join_all(puts).await;
    let live = store
        .get_object(&b, "hot")
        .await
        .unwrap()
        .unwrap()
        .layout
        .blobs();
    assert_eq!(replaced.iter().filter(|r| r.is_none()).count(), 1);
    let freed: Vec<BlobId> = replaced
        .into_iter()
        .flatten()
        .flat_map(|r| r.layout.blobs())
        .collect();
    let mut accounted: HashSet<BlobId> = freed.iter().cloned().collect();
    assert_eq!(accounted.len(), freed.len(), "a record was replaced twice");
    assert!(
        !accounted.contains(&live[0]),
        "the live blob was handed back"
    );
    accounted.extend(live);
    assert_eq!(accounted, written.into_iter().collect());
}

fn if_match(etag: &str) -> WriteCondition {
    WriteCondition {
        if_match: Some(EtagMatch::parse(etag)),
        ..WriteCondition::NONE
    }
}

fn if_none_match(etag: &str) -> WriteCondition {
    WriteCondition {
        if_none_match: Some(EtagMatch::parse(etag)),
        ..WriteCondition::NONE
    }
}

fn with_etag(mut record: ObjectRecord, etag: &str) -> ObjectRecord {
    record.etag = format!("\"{etag}\"");
    record
}

async fn conditional_writes_decide_on_the_current_object(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-cond").await;
    let first = with_etag(object(&b, "k", &BlobId::new()), "e1");
    // If-Match needs an object: none yet is NoSuchKey, and nothing is written.
    for cond in [if_match("*"), if_match("\"e1\"")] {
        assert!(matches!(
            store.put_object_if(&first, &cond).await,
            Err(StoreError::NoSuchKey)
        ));
    }
    assert_eq!(store.get_object(&b, "k").await.unwrap(), None);
    // Create only if absent: once.
    assert_eq!(
        store
            .put_object_if(&first, &if_none_match("*"))
            .await
            .unwrap(),
        None
    );
    let second = with_etag(object(&b, "k", &BlobId::new()), "e2");
    for cond in [
        if_none_match("*"),
        if_none_match("\"e1\""),
        if_none_match("e1"),
    ] {
        assert!(
            matches!(
                store.put_object_if(&second, &cond).await,
                Err(StoreError::PreconditionFailed)
            ),
            "{cond:?}"
        );
    }
    assert!(matches!(
        store.put_object_if(&second, &if_match("\"e9\"")).await,
        Err(StoreError::PreconditionFailed)
    ));
    assert_eq!(
        store.get_object(&b, "k").await.unwrap(),
        Some(first.clone())
    );
    // A matching ETag, quoted or not, and If-None-Match of another ETag.
    assert_eq!(
        store.put_object_if(&second, &if_match("e1")).await.unwrap(),
        Some(first.clone())
    );
    let third = with_etag(object(&b, "k", &BlobId::new()), "e3");
    assert_eq!(
        store
            .put_object_if(&third, &if_none_match("\"e1\""))
            .await
            .unwrap(),
        Some(second.clone())
    );
    let fourth = with_etag(object(&b, "k", &BlobId::new()), "e4");
    assert_eq!(
        store.put_object_if(&fourth, &if_match("*")).await.unwrap(),
        Some(third)
    );
    assert_eq!(store.get_object(&b, "k").await.unwrap(), Some(fourth));
}

async fn conditional_deletes_decide_on_the_current_object(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-cdel").await;
    let record = with_etag(object(&b, "k", &BlobId::new()), "e1");
    store.put_object(&record).await.unwrap();
    let wrong_size = WriteCondition {
        if_match_size: Some(record.size + 1),
        ..WriteCondition::NONE
    };
    let wrong_time = WriteCondition {
        if_match_last_modified: Some(record.last_modified - time::Duration::seconds(5)),
        ..WriteCondition::NONE
    };
    for cond in [if_match("\"e2\""), wrong_size, wrong_time] {
        assert!(
            matches!(
                store.delete_object_if(&b, "k", &cond).await,
                Err(StoreError::PreconditionFailed)
            ),
            "{cond:?}"
        );
    }
    assert_eq!(
        store.get_object(&b, "k").await.unwrap(),
        Some(record.clone())
    );
    let right = WriteCondition {
        if_match: Some(EtagMatch::parse("\"e1\"")),
        if_match_size: Some(record.size),
        if_match_last_modified: Some(record.last_modified),
        ..WriteCondition::NONE
    };
    assert_eq!(
        store.delete_object_if(&b, "k", &right).await.unwrap(),
        Some(record)
    );
    // Deleting nothing succeeds whatever the condition.
    assert_eq!(
        store
            .delete_object_if(&b, "k", &if_match("e2"))
            .await
            .unwrap(),
        None
    );
}

async fn conditional_completion_leaves_a_refused_upload_intact(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-ccomp").await;
    let existing = with_etag(object(&b, "k", &BlobId::new()), "e1");
    store.put_object(&existing).await.unwrap();
    let u = unique("u");
    let t = OffsetDateTime::now_utc();
    store.create_upload(&upload(&b, "k", &u, t)).await.unwrap();
    let p1 = part(1);
    store.put_part(&u, &p1).await.unwrap();
    let done = multipart_object(&b, "k", &[&p1]);
    assert!(matches!(
        store
            .complete_upload_if(&u, &done, &if_none_match("*"))
            .await,
        Err(StoreError::PreconditionFailed)
    ));
    assert!(store.get_upload(&b, &u).await.unwrap().is_some());
    assert_eq!(
        store.list_parts(&u, 0, 10).await.unwrap(),
        std::slice::from_ref(&p1)
    );
    assert_eq!(
        store.get_object(&b, "k").await.unwrap(),
        Some(existing.clone())
    );
    let (replaced, unused) = store
        .complete_upload_if(&u, &done, &if_match("\"e1\""))
        .await
        .unwrap();
    assert_eq!(replaced, Some(existing));
    assert!(unused.is_empty());
}

/// Create-only writes racing for one key: exactly one wins, the others
/// see its object and fail, and the winner's record is what is stored.
async fn racing_create_only_writes_have_one_winner(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-race").await;
    let records: Vec<ObjectRecord> = (0..8)
        .map(|i| with_etag(object(&b, "lock", &BlobId::new()), &format!("w{i}")))
        .collect();
    let cond = if_none_match("*");
    let puts = records
        .iter()
        .map(|r| async { store.put_object_if(r, &cond).await });
    let outcomes = futures::future::join_all(puts).await;
    let winners: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_ok())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .filter(|o| o.is_err())
            .all(|o| matches!(o, Err(StoreError::PreconditionFailed)))
    );
    assert_eq!(
        store.get_object(&b, "lock").await.unwrap().as_ref(),
        Some(&records[winners[0]])
    );
}

async fn ping_answers(store: &dyn MetaStore) {
    store.ping().await.unwrap();
    // Polling or a channel: either is fine, but asking must work.
    store.watch_settings().await.unwrap();
}
