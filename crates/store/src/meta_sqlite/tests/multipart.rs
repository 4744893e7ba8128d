//! Multipart uploads: parts, completion, abort and listing.

use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

#[tokio::test]
async fn multipart_upload_lifecycle() {
    let (_dir, store) = store().await;
    let t = datetime!(2024-01-01 00:00:00 UTC);
    assert!(matches!(
        store.create_upload(&upload("b", "k", "u1", t)).await,
        Err(StoreError::NoSuchBucket)
    ));
    store.create_bucket(&bucket("b")).await.unwrap();
    store.create_bucket(&bucket("c")).await.unwrap();
    let u1 = upload("b", "k", "u1", t);
    store.create_upload(&u1).await.unwrap();
    assert_eq!(store.get_upload("b", "u1").await.unwrap(), Some(u1.clone()));
    assert_eq!(store.get_upload("c", "u1").await.unwrap(), None);
    assert_eq!(store.get_upload("b", "u2").await.unwrap(), None);

    assert!(matches!(
        store.put_part("u2", &part(1)).await,
        Err(StoreError::NoSuchUpload)
    ));
    let p1 = part(1);
    let p2 = part(2);
    let p3 = part(3);
    for p in [&p3, &p1, &p2] {
        assert_eq!(store.put_part("u1", p).await.unwrap(), None);
    }
    // Re-uploading part 2 returns the part it replaced.
    let p2b = part(2);
    assert_eq!(store.put_part("u1", &p2b).await.unwrap(), Some(p2.clone()));

    let listed = store.list_parts("u1", 0, 100).await.unwrap();
    assert_eq!(listed, [p1.clone(), p2b.clone(), p3.clone()]);
    assert_eq!(
        store.list_parts("u1", 1, 1).await.unwrap(),
        std::slice::from_ref(&p2b)
    );
    assert!(store.list_parts("u1", 3, 100).await.unwrap().is_empty());
    assert!(store.list_parts("u2", 0, 100).await.unwrap().is_empty());

    // Complete with parts 1 and 2 only, over an existing object.
    let old = object("b", "k", &BlobId::new());
    store.put_object(&old).await.unwrap();
    let mut done = object("b", "k", &p1.blob);
    done.layout = ObjectLayout::Parts {
        parts: [&p1, &p2b]
            .iter()
            .map(|p| PartRef {
                number: p.number,
                blob: p.blob.clone(),
                size: p.size,
                etag: p.etag.clone(),
            })
            .collect(),
    };
    done.etag = "\"abc-2\"".to_owned();
    assert!(matches!(
        store.complete_upload("u2", &done).await,
        Err(StoreError::NoSuchUpload)
    ));
    let mut wrong_key = done.clone();
    wrong_key.key = "other".to_owned();
    assert!(matches!(
        store.complete_upload("u1", &wrong_key).await,
        Err(StoreError::NoSuchUpload)
    ));

    let (replaced, unused) = store.complete_upload("u1", &done).await.unwrap();
    assert_eq!(replaced, Some(old));
    assert_eq!(unused, [p3]);
    assert_eq!(store.get_object("b", "k").await.unwrap(), Some(done));
    assert_eq!(store.get_upload("b", "u1").await.unwrap(), None);
    assert!(store.list_parts("u1", 0, 100).await.unwrap().is_empty());
    assert!(matches!(
        store.complete_upload("u1", &wrong_key).await,
        Err(StoreError::NoSuchUpload)
    ));
}

#[tokio::test]
async fn abort_returns_parts() {
    let (_dir, store) = store().await;
    store.create_bucket(&bucket("b")).await.unwrap();
    let t = OffsetDateTime::now_utc();
    store
        .create_upload(&upload("b", "k", "u", t))
        .await
        .unwrap();
    let (p1, p2) = (part(1), part(2));
    store.put_part("u", &p2).await.unwrap();
    store.put_part("u", &p1).await.unwrap();
    assert_eq!(store.abort_upload("u").await.unwrap(), [p1, p2]);
    assert!(matches!(
        store.abort_upload("u").await,
        Err(StoreError::NoSuchUpload)
    ));
    assert_eq!(store.get_upload("b", "u").await.unwrap(), None);
}

#[tokio::test]
async fn listing_uploads() {
    let (_dir, store) = store().await;
    store.create_bucket(&bucket("b")).await.unwrap();
    store.create_bucket(&bucket("c")).await.unwrap();
    let t1 = datetime!(2024-01-01 00:00:01 UTC);
    let t2 = datetime!(2024-01-01 00:00:02 UTC);
    // Same key: ordered by initiation time, then id.
    let all = [
        upload("b", "a/1", "zz", t1),
        upload("b", "a/1", "aa", t2),
        upload("b", "a/1", "bb", t2),
        upload("b", "a/2", "cc", t1),
        upload("b", "b", "dd", t1),
    ];
    for u in all.iter().rev() {
        store.create_upload(u).await.unwrap();
    }
    store
        .create_upload(&upload("c", "a/1", "ee", t1))
        .await
        .unwrap();

    let ids = |found: Vec<UploadRecord>| found.into_iter().map(|u| u.upload_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_uploads("b", "", None, 100).await.unwrap()),
        ["zz", "aa", "bb", "cc", "dd"]
    );
    assert_eq!(
        ids(store.list_uploads("b", "a/", None, 100).await.unwrap()),
        ["zz", "aa", "bb", "cc"]
    );
    assert_eq!(
        ids(store.list_uploads("b", "a/", None, 2).await.unwrap()),
        ["zz", "aa"]
    );
    assert_eq!(
        ids(store
            .list_uploads("b", "", Some(("a/1", "aa")), 100)
            .await
            .unwrap()),
        ["bb", "cc", "dd"]
    );
    assert_eq!(
        ids(store
            .list_uploads("b", "", Some(("a/1", "zz")), 2)
            .await
            .unwrap()),
        ["aa", "bb"]
    );
    assert_eq!(
        ids(store
            .list_uploads("b", "", Some(("a/1", "")), 100)
            .await
            .unwrap()),
        ["cc", "dd"]
    );
    // A marker upload that no longer exists: ids after it under that key.
    assert_eq!(
        ids(store
            .list_uploads("b", "", Some(("a/1", "ab")), 100)
            .await
            .unwrap()),
        ["zz", "bb", "cc", "dd"]
    );
    assert!(
        store
            .list_uploads("b", "", None, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn uploads_initiated_before_a_cutoff() {
    let (_dir, store) = store().await;
    store.create_bucket(&bucket("b")).await.unwrap();
    store.create_bucket(&bucket("c")).await.unwrap();
    let t = datetime!(2024-01-01 00:00:00 UTC);
    let minute = time::Duration::minutes(1);
    store
        .create_upload(&upload("b", "z", "u1", t))
        .await
        .unwrap();
    store
        .create_upload(&upload("c", "a", "u2", t + minute))
        .await
        .unwrap();
    store
        .create_upload(&upload("b", "a", "u3", t + minute * 2))
        .await
        .unwrap();
    let ids = |v: Vec<UploadRecord>| v.into_iter().map(|u| u.upload_id).collect::<Vec<_>>();

    // Oldest first, across buckets, strictly before the cutoff, bounded.
    let old = store
        .list_uploads_initiated_before(t + minute * 2, 10)
        .await
        .unwrap();
    assert_eq!(ids(old), ["u1", "u2"]);
    let first = store
        .list_uploads_initiated_before(t + minute * 10, 1)
        .await
        .unwrap();
    assert_eq!(ids(first), ["u1"]);
    assert!(
        store
            .list_uploads_initiated_before(t, 10)
            .await
            .unwrap()
            .is_empty()
    );
    store.abort_upload("u1").await.unwrap();
    let rest = store
        .list_uploads_initiated_before(t + minute * 10, 10)
        .await
        .unwrap();
    assert_eq!(ids(rest), ["u2", "u3"]);
}
