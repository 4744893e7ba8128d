// Test data: byte patterns cut to u8 on purpose.
#![allow(clippy::cast_possible_truncation)]

use super::*;
use futures::TryStreamExt;

async fn store() -> (tempfile::TempDir, FsBlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).await.unwrap();
    (dir, store)
}

/// Deterministic, non-repeating-at-chunk-size test data.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

async fn put(store: &FsBlobStore, data: &[u8], piece: usize) -> (BlobId, u64) {
    let mut writer = store.create().await.unwrap();
    for part in data.chunks(piece.max(1)) {
        writer.write(part).await.unwrap();
    }
    writer.finish().await.unwrap()
}

async fn read_all(store: &FsBlobStore, id: &BlobId, offset: u64, len: u64) -> Vec<u8> {
    let chunks: Vec<Bytes> = store
        .read(id, offset, len)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(chunks.iter().all(|c| c.len() <= IO_CHUNK));
    chunks.concat()
}

async fn listed(store: &FsBlobStore) -> Vec<BlobId> {
    let infos: Vec<BlobInfo> = store.list().try_collect().await.unwrap();
    let mut ids: Vec<BlobId> = infos.into_iter().map(|i| i.id).collect();
    ids.sort();
    ids
}

fn dir_entries(dir: &Path) -> usize {
    fs::read_dir(dir).unwrap().count()
}

/// The contract suite, as `tests/store_contract.rs` runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_contract_suite() {
    let (_dir, store) = store().await;
    crate::conformance::blob_store_suite(&store)
        .await
        .assert_all_passed("fs");
}

#[tokio::test]
async fn open_creates_layout_and_is_idempotent() {
    let (dir, _store) = store().await;
    assert!(dir.path().join("tmp").is_dir());
    assert_eq!(dir_entries(&dir.path().join("blobs")), 256);
    assert!(dir.path().join("blobs/00").is_dir());
    assert!(dir.path().join("blobs/ff").is_dir());
    FsBlobStore::open(dir.path()).await.unwrap();
}

#[tokio::test]
async fn small_round_trip() {
    let (dir, store) = store().await;
    let (id, size) = put(&store, b"hello world", 3).await;
    assert_eq!(size, 11);
    assert!(BlobId::is_well_formed(&id.0));
    let path = dir.path().join("blobs").join(&id.0[..2]).join(&id.0);
    assert_eq!(fs::read(path).unwrap(), b"hello world");
    assert_eq!(dir_entries(&dir.path().join("tmp")), 0);
    assert_eq!(read_all(&store, &id, 0, 11).await, b"hello world");
    assert_eq!(read_all(&store, &id, 6, 5).await, b"world");
    assert_eq!(read_all(&store, &id, 4, 3).await, b"o w");
    assert_eq!(read_all(&store, &id, 11, 0).await, b"");
}

#[tokio::test]
async fn large_round_trip_with_ranges() {
    let (_dir, store) = store().await;
    let data = pattern(3 * IO_CHUNK + 12345);
    // Pieces that do not divide the buffer size, plus one larger than it.
    let (id, size) = put(&store, &data, 64 * 1024 + 3).await;
    assert_eq!(size, data.len() as u64);
    assert_eq!(read_all(&store, &id, 0, size).await, data);
    let (id2, _) = put(&store, &data, 2 * IO_CHUNK + 1).await;
    assert_eq!(read_all(&store, &id2, 0, size).await, data);

    for (offset, len) in [
        (0, 1),
        (1, IO_CHUNK),
        (IO_CHUNK - 1, 2),
        (IO_CHUNK, IO_CHUNK),
        (12, 2 * IO_CHUNK + 7),
        (data.len() - 1, 1),
        (100, data.len() - 100),
    ] {
        let got = read_all(&store, &id, offset as u64, len as u64).await;
        assert_eq!(
            got,
            &data[offset..offset + len],
            "offset {offset} len {len}"
        );
    }
}

#[tokio::test]
async fn reading_past_the_end_fails() {
    let (_dir, store) = store().await;
    let (id, _) = put(&store, b"short", 5).await;
    match store.read(&id, 2, 10).await {
        Err(StoreError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
        other => panic!("expected UnexpectedEof, got {:?}", other.map(|_| ())),
    }

    // A large read learns of the short file mid-stream.
    let data = pattern(IO_CHUNK + 10);
    let (id, size) = put(&store, &data, IO_CHUNK).await;
    let result: io::Result<Vec<Bytes>> = store
        .read(&id, 0, size + 1)
        .await
        .unwrap()
        .try_collect()
        .await;
    assert_eq!(result.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn malformed_ids_never_become_paths() {
    let (_dir, store) = store().await;
    for bad in [
        "../../etc/passwd",
        "",
        "ABCDEF0123456789abcdef0123456789",
        "00/x",
    ] {
        let id = BlobId(bad.to_owned());
        assert!(matches!(
            store.read(&id, 0, 1).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.delete(&id).await,
            Err(StoreError::Corrupt(_))
        ));
    }
}

#[tokio::test]
async fn dropped_writer_leaves_nothing() {
    let (dir, store) = store().await;
    let mut writer = store.create().await.unwrap();
    writer.write(&pattern(2 * IO_CHUNK + 5)).await.unwrap();
    assert_eq!(dir_entries(&dir.path().join("tmp")), 1);
    drop(writer);
    assert_eq!(dir_entries(&dir.path().join("tmp")), 0);
    assert!(listed(&store).await.is_empty());
}

#[tokio::test]
async fn list_and_sweep_temp() {
    let (dir, store) = store().await;
    let (a, _) = put(&store, b"a", 1).await;
    let (b, _) = put(&store, b"b", 1).await;
    // Leftovers of a crash: a temp file and a stray file among the blobs.
    fs::write(dir.path().join("tmp").join("dead.tmp"), b"x").unwrap();
    fs::create_dir(dir.path().join("tmp").join("junk")).unwrap();
    fs::write(dir.path().join("blobs/00/not-a-blob"), b"x").unwrap();

    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(listed(&store).await, expected);

    // Young leftovers may be another node's writes in progress.
    let hour = Duration::from_secs(3600);
    assert_eq!(store.sweep_temp(hour).await.unwrap(), 0);
    assert_eq!(dir_entries(&dir.path().join("tmp")), 2);
    let old = SystemTime::now() - 2 * hour;
    File::options()
        .write(true)
        .open(dir.path().join("tmp").join("dead.tmp"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    assert_eq!(store.sweep_temp(hour).await.unwrap(), 1);
    assert_eq!(store.sweep_temp(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(dir_entries(&dir.path().join("tmp")), 0);
    assert_eq!(store.sweep_temp(Duration::ZERO).await.unwrap(), 0);
}

#[tokio::test]
async fn finish_recreates_missing_fan_out_dir() {
    let (dir, store) = store().await;
    let writer = store.create().await.unwrap();
    // Remove every fan-out directory; the one this blob needs must come back.
    for byte in 0..=255u8 {
        fs::remove_dir(dir.path().join("blobs").join(format!("{byte:02x}"))).unwrap();
    }
    let (id, _) = writer.finish().await.unwrap();
    assert_eq!(read_all(&store, &id, 0, 0).await, b"");
    assert_eq!(listed(&store).await, vec![id]);
}
