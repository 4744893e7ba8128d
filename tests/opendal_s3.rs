//! The OpenDAL blob store (`--blobs s3://…`) against a real S3 server: a
//! second Preflight, in embedded mode, started from the binary. Multipart
//! uploads (a 20 MiB blob is three parts), visibility only on finish, ranged
//! reads, listing, deletion, aborted writers and `check` refusals.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Test patterns keep the low bits of offsets on purpose.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use common::{ACCESS_KEY, SECRET_KEY, TestServer, fixtures::new_bucket};
use futures::TryStreamExt;
use preflight_store::{
    BlobId, BlobLocation, BlobStore, OpenDalBlobStore, OpenDalOptions, PART_SIZE, StoreError,
};

const PREFIX: &str = "some/prefix";

fn creds(access: &str, secret: &str) -> HashMap<String, String> {
    HashMap::from([
        ("AWS_ACCESS_KEY_ID".to_owned(), access.to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), secret.to_owned()),
    ])
}

fn open(server: &TestServer, bucket: &str, access: &str, secret: &str) -> OpenDalBlobStore {
    let location = BlobLocation::parse(&format!(
        "s3://{bucket}/{PREFIX}?endpoint={}&region=us-east-1",
        server.endpoint
    ))
    .unwrap();
    let options = OpenDalOptions {
        retries: 1,
        ..OpenDalOptions::default()
    };
    OpenDalBlobStore::from_location_with(&location, &creds(access, secret), &options).unwrap()
}

/// Bytes that differ at every offset of interest.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 13) as u8) ^ seed)
        .collect()
}

async fn write_blob(store: &OpenDalBlobStore, data: &[u8], piece: usize) -> (BlobId, u64) {
    let mut writer = store.create().await.unwrap();
    for chunk in data.chunks(piece.max(1)) {
        writer.write(chunk).await.unwrap();
    }
    writer.finish().await.unwrap()
}

async fn read_all(store: &OpenDalBlobStore, id: &BlobId, offset: u64, len: u64) -> Vec<u8> {
    let chunks: Vec<bytes::Bytes> = store
        .read(id, offset, len)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    chunks.concat()
}

/// Object keys under `prefix` in the server's bucket, seen through S3.
async fn keys_under(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

async fn uploads_in_progress(s3: &aws_sdk_s3::Client, bucket: &str) -> usize {
    s3.list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .uploads()
        .len()
}

#[tokio::test]
async fn opendal_s3_blobs_on_a_second_preflight() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "odal").await;
    let store = open(&server, &bucket, ACCESS_KEY, SECRET_KEY);
    store.check().await.unwrap();
    let before = SystemTime::now() - Duration::from_secs(5);

    // A 20 MiB blob: two full parts and a short last one. Nothing is visible
    // until `finish`, though the first parts are already uploaded.
    let big = pattern(20 << 20, 7);
    let mut writer = store.create().await.unwrap();
    let (head, tail) = big.split_at(big.len() - 100);
    for chunk in head.chunks(256 << 10) {
        writer.write(chunk).await.unwrap();
    }
    assert_eq!(
        keys_under(&s3, &bucket, PREFIX).await,
        Vec::<String>::new(),
        "a blob is visible before finish"
    );
    assert_eq!(uploads_in_progress(&s3, &bucket).await, 1);
    writer.write(tail).await.unwrap();
    let (big_id, size) = writer.finish().await.unwrap();
    assert_eq!(size, big.len() as u64);
    assert_eq!(uploads_in_progress(&s3, &bucket).await, 0);
    let key = format!("{PREFIX}/blobs/{big_id}");
    assert_eq!(keys_under(&s3, &bucket, PREFIX).await, vec![key.clone()]);
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.content_length(),
        Some(i64::try_from(big.len()).unwrap())
    );
    // A multipart object's ETag ends in -<parts>.
    assert!(
        head.e_tag().unwrap().ends_with("-3\""),
        "{:?}",
        head.e_tag()
    );

    // Ranged reads: everything, across a part boundary, the last byte.
    assert!(read_all(&store, &big_id, 0, size).await == big);
    let across = PART_SIZE as u64 - 10;
    assert_eq!(
        read_all(&store, &big_id, across, 20).await,
        big[PART_SIZE - 10..PART_SIZE + 10]
    );
    assert_eq!(
        read_all(&store, &big_id, size - 1, 1).await,
        big[big.len() - 1..]
    );
    // More than is there: an error, not a short read.
    let past: Result<Vec<bytes::Bytes>, _> = store
        .read(&big_id, size - 5, 10)
        .await
        .map(|s| s.try_collect())
        .unwrap()
        .await;
    assert!(past.is_err());

    // Small blobs: a single PUT each, empty included.
    let mut small = Vec::new();
    for (len, piece) in [
        (0usize, 1usize),
        (1, 1),
        (100 << 10, 7000),
        (PART_SIZE, 1 << 20),
    ] {
        let data = pattern(len, len as u8);
        let (id, size) = write_blob(&store, &data, piece).await;
        assert_eq!(size, len as u64);
        assert!(
            read_all(&store, &id, 0, size).await == data,
            "blob of {len}"
        );
        small.push((id, data));
    }
    let (id, data) = &small[2];
    assert_eq!(read_all(&store, id, 5000, 3).await, data[5000..5003]);
    assert_eq!(read_all(&store, id, 10, 0).await, Vec::<u8>::new());

    // Listing: every blob with its time; an object that is not a blob (a
    // stray key under blobs/) is skipped.
    s3.put_object()
        .bucket(&bucket)
        .key(format!("{PREFIX}/blobs/not-a-blob"))
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    let listed: Vec<_> = store.list().try_collect().await.unwrap();
    let mut ids: Vec<_> = listed.iter().map(|b| b.id.clone()).collect();
    ids.sort();
    let mut want: Vec<_> = small.iter().map(|(id, _)| id.clone()).collect();
    want.push(big_id.clone());
    want.sort();
    assert_eq!(ids, want);
    let after = SystemTime::now() + Duration::from_secs(5);
    for info in &listed {
        assert!(info.modified > before && info.modified < after, "{info:?}");
    }
    assert_eq!(store.sweep_temp(Duration::ZERO).await.unwrap(), 0);

    // Deleting: gone for reads, and deleting again is fine.
    store.delete(&big_id).await.unwrap();
    store.delete(&big_id).await.unwrap();
    match store.read(&big_id, 0, 1).await {
        Err(StoreError::NoSuchBlob(id)) => assert_eq!(id, big_id.0),
        Err(e) => panic!("expected NoSuchBlob, got {e}"),
        Ok(_) => panic!("read a deleted blob"),
    }
    assert!(matches!(
        store.read(&big_id, 0, 0).await,
        Err(StoreError::NoSuchBlob(_))
    ));
    assert!(!keys_under(&s3, &bucket, PREFIX).await.contains(&key));
}

#[tokio::test]
async fn opendal_s3_dropped_writer_leaves_nothing() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "odal-drop").await;
    let store = open(&server, &bucket, ACCESS_KEY, SECRET_KEY);

    // Enough for a multipart upload with parts sent (OpenDAL starts one
    // when a second part is full), then dropped.
    let mut writer = store.create().await.unwrap();
    for chunk in pattern(2 * PART_SIZE + (2 << 20), 3).chunks(1 << 20) {
        writer.write(chunk).await.unwrap();
    }
    // The upload task runs behind a queue: wait for it to start the upload.
    let mut started = 0;
    for _ in 0..100 {
        started = uploads_in_progress(&s3, &bucket).await;
        if started > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(started, 1, "no multipart upload under way");
    drop(writer);
    // The abort runs in the background.
    let mut left = 1;
    for _ in 0..100 {
        left = uploads_in_progress(&s3, &bucket).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "the upload of a dropped writer was not aborted");
    assert_eq!(keys_under(&s3, &bucket, "").await, Vec::<String>::new());
    let listed: Vec<_> = store.list().try_collect().await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");

    // A small write dropped before finish never sent anything.
    let mut writer = store.create().await.unwrap();
    writer.write(b"hello").await.unwrap();
    drop(writer);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(keys_under(&s3, &bucket, "").await, Vec::<String>::new());
}

#[tokio::test]
async fn opendal_s3_check_names_the_refusal() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "odal-check").await;

    let wrong_secret = open(&server, &bucket, ACCESS_KEY, "not-the-secret-key-at-all");
    let err = wrong_secret.check().await.unwrap_err();
    assert!(!err.is_unavailable(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("s3: s3://{bucket}/{PREFIX}: access denied (credentials refused)")
    );

    let unknown_key = open(&server, &bucket, "PFNOSUCHACCESSKEY000", SECRET_KEY);
    let err = unknown_key.check().await.unwrap_err();
    assert!(
        err.to_string()
            .ends_with("access denied (credentials refused)"),
        "{err}"
    );

    let no_bucket = open(&server, "no-such-bucket-here", ACCESS_KEY, SECRET_KEY);
    let err = no_bucket.check().await.unwrap_err();
    assert!(!err.is_unavailable(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("s3: s3://no-such-bucket-here/{PREFIX}: not found (no such bucket or container?)")
    );

    // The store is stopped: unreachable, and said fast.
    let store = open(&server, &bucket, ACCESS_KEY, SECRET_KEY);
    store.check().await.unwrap();
    drop(s3);
    drop(server);
    let started = std::time::Instant::now();
    let err = store.check().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains(": unreachable ("), "{err}");
}
