//! Blob stores: write once, read ranges, delete, list, sweep.

// Test data: byte patterns cut to u8 on purpose.
#![allow(clippy::cast_possible_truncation)]

use std::collections::HashMap;
use std::time::SystemTime;

use bytes::Bytes;
use futures::TryStreamExt;

use super::*;
use crate::{BlobInfo, StoreError};

pub(super) async fn run(store: &dyn BlobStore, report: &mut SuiteReport) {
    run_cases!(
        report,
        (store),
        [
            check_answers,
            small_round_trip_and_ranges,
            empty_blob,
            large_round_trip_with_ranges,
            reading_past_the_end_fails,
            missing_blob_errors,
            delete_removes_blob,
            unfinished_writer_is_discarded,
            list_gives_modified_times,
            sweep_temp_keeps_young_writes,
        ]
    );
}

/// Deterministic data that does not repeat at power-of-two sizes.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

async fn read_all(store: &dyn BlobStore, id: &BlobId, offset: u64, len: u64) -> Vec<u8> {
    let chunks: Vec<Bytes> = store
        .read(id, offset, len)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    chunks.concat()
}

async fn listed(store: &dyn BlobStore) -> HashMap<BlobId, SystemTime> {
    let infos: Vec<BlobInfo> = store.list().try_collect().await.unwrap();
    infos.into_iter().map(|i| (i.id, i.modified)).collect()
}

async fn check_answers(store: &dyn BlobStore) {
    store.check().await.unwrap();
}

async fn small_round_trip_and_ranges(store: &dyn BlobStore) {
    let (id, size) = put_blob(store, b"hello world", 3).await;
    assert_eq!(size, 11);
    assert!(BlobId::is_well_formed(&id.0), "{id}");
    assert_eq!(read_all(store, &id, 0, 11).await, b"hello world");
    assert_eq!(read_all(store, &id, 6, 5).await, b"world");
    assert_eq!(read_all(store, &id, 4, 3).await, b"o w");
    assert_eq!(read_all(store, &id, 10, 1).await, b"d");
    assert_eq!(read_all(store, &id, 11, 0).await, b"");
    // Every blob gets a fresh id.
    let (again, _) = put_blob(store, b"hello world", 11).await;
    assert_ne!(again, id);
}

async fn empty_blob(store: &dyn BlobStore) {
    let writer = store.create().await.unwrap();
    let (id, size) = writer.finish().await.unwrap();
    assert_eq!(size, 0);
    assert_eq!(read_all(store, &id, 0, 0).await, b"");
    assert!(listed(store).await.contains_key(&id));
}

async fn large_round_trip_with_ranges(store: &dyn BlobStore) {
    const MIB: usize = 1 << 20;
    let data = pattern(3 * MIB + 12345);
    // Pieces that divide nothing, and one larger than a MiB.
    let (id, size) = put_blob(store, &data, 64 * 1024 + 3).await;
    assert_eq!(size, data.len() as u64);
    assert_eq!(read_all(store, &id, 0, size).await, data);
    let (id2, _) = put_blob(store, &data, 2 * MIB + 1).await;
    assert_eq!(read_all(store, &id2, 0, size).await, data);
    for (offset, len) in [
        (0, 1),
        (1, MIB),
        (MIB - 1, 2),
        (MIB, MIB),
        (12, 2 * MIB + 7),
        (data.len() - 1, 1),
        (100, data.len() - 100),
    ] {
        let got = read_all(store, &id, offset as u64, len as u64).await;
        assert!(
            got == data[offset..offset + len],
            "offset {offset} len {len}"
        );
    }
}

async fn reading_past_the_end_fails(store: &dyn BlobStore) {
    let (id, _) = put_blob(store, b"short", 5).await;
    // Either at once or while streaming, but never short data as success.
    let result = match store.read(&id, 2, 10).await {
        Ok(stream) => stream.try_collect::<Vec<Bytes>>().await.map(|c| c.concat()),
        Err(e) => Err(std::io::Error::other(e)),
    };
    assert!(
        result.is_err(),
        "read past the end gave {:?}",
        result.map(|d| d.len())
    );
}

async fn missing_blob_errors(store: &dyn BlobStore) {
    let missing = BlobId::new();
    match store.read(&missing, 0, 1).await {
        Err(StoreError::NoSuchBlob(id)) => assert_eq!(id, missing.0),
        Err(e) => panic!("expected NoSuchBlob, got {e}"),
        Ok(_) => panic!("a missing blob was opened"),
    }
    // Deleting a missing blob is not an error.
    store.delete(&missing).await.unwrap();
}

async fn delete_removes_blob(store: &dyn BlobStore) {
    let (id, _) = put_blob(store, b"bye", 3).await;
    let (other, _) = put_blob(store, b"stay", 4).await;
    store.delete(&id).await.unwrap();
    assert!(matches!(
        store.read(&id, 0, 3).await,
        Err(StoreError::NoSuchBlob(_))
    ));
    store.delete(&id).await.unwrap();
    let left = listed(store).await;
    assert!(!left.contains_key(&id) && left.contains_key(&other));
    assert_eq!(read_all(store, &other, 0, 4).await, b"stay");
}

async fn unfinished_writer_is_discarded(store: &dyn BlobStore) {
    let before = listed(store).await;
    let mut writer = store.create().await.unwrap();
    writer.write(&pattern(2 * (1 << 20) + 5)).await.unwrap();
    drop(writer);
    // A crash: the writer never finishes nor drops.
    let mut leaked = store.create().await.unwrap();
    leaked.write(b"lost").await.unwrap();
    std::mem::forget(leaked);
    let after = listed(store).await;
    assert!(
        after.keys().all(|id| before.contains_key(id)),
        "an unfinished write became a blob"
    );
    store.sweep_temp(Duration::ZERO).await.unwrap();
    assert!(listed(store).await.keys().all(|id| before.contains_key(id)));
}

async fn list_gives_modified_times(store: &dyn BlobStore) {
    // Some stores keep seconds only.
    let slack = Duration::from_secs(5);
    let start = SystemTime::now() - slack;
    let (a, _) = put_blob(store, b"a", 1).await;
    let (b, _) = put_blob(store, b"b", 1).await;
    let end = SystemTime::now() + slack;
    let found = listed(store).await;
    for id in [&a, &b] {
        let modified = found.get(id).copied();
        assert!(
            modified.is_some_and(|m| m >= start && m <= end),
            "{id}: modified {modified:?} not within the write"
        );
    }
}

async fn sweep_temp_keeps_young_writes(store: &dyn BlobStore) {
    // A write in progress (maybe on another node) survives a sweep of
    // older leftovers and then commits.
    let mut writer = store.create().await.unwrap();
    writer.write(b"in progress").await.unwrap();
    store.sweep_temp(Duration::from_secs(3600)).await.unwrap();
    writer.write(b", done").await.unwrap();
    let (id, size) = writer.finish().await.unwrap();
    assert_eq!(size, 17);
    assert_eq!(read_all(store, &id, 0, 17).await, b"in progress, done");
    // Sweeping temp files never touches committed blobs.
    store.sweep_temp(Duration::ZERO).await.unwrap();
    assert_eq!(read_all(store, &id, 0, 17).await, b"in progress, done");
}
