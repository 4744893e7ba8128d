use std::sync::Mutex;

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::*;
use crate::{
    BlobWriter, BucketRecord, ByteStream, FsBlobStore, ObjectHeaders, ObjectLayout, ObjectRecord,
    PartRecord, SqliteMetaStore, StoreError, UploadRecord,
};

struct Stores {
    _dir: tempfile::TempDir,
    meta: SqliteMetaStore,
    blobs: FsBlobStore,
}

/// A fresh SQLite store (release grace zero: replaced blobs are due at
/// once) and blob store, with bucket `b`.
async fn stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let meta = SqliteMetaStore::open(dir.path().join("meta.db"))
        .await
        .unwrap()
        .with_release_grace(Duration::ZERO);
    let blobs = FsBlobStore::open(dir.path().join("data")).await.unwrap();
    meta.create_bucket(&BucketRecord {
        name: "b".into(),
        region: "r".into(),
        owner: "o".into(),
        created: OffsetDateTime::now_utc(),
        acl: "private".into(),
        cors: None,
        policy: None,
        public_access_block: None,
    })
    .await
    .unwrap();
    Stores {
        _dir: dir,
        meta,
        blobs,
    }
}

async fn put_blob(blobs: &dyn BlobStore) -> BlobId {
    let mut writer = blobs.create().await.unwrap();
    writer.write(b"data").await.unwrap();
    writer.finish().await.unwrap().0
}

fn object(key: &str, blob: &BlobId) -> ObjectRecord {
    ObjectRecord {
        bucket: "b".into(),
        key: key.into(),
        size: 4,
        etag: "\"e\"".into(),
        last_modified: OffsetDateTime::now_utc(),
        acl: "private".into(),
        headers: ObjectHeaders::default(),
        layout: ObjectLayout::Single { blob: blob.clone() },
    }
}

async fn listed(blobs: &dyn BlobStore) -> HashSet<BlobId> {
    let infos: Vec<BlobInfo> = blobs.list().try_collect().await.unwrap();
    infos.into_iter().map(|i| i.id).collect()
}

/// A blob store whose deletes fail for the ids in `failing`.
struct FailingDeletes {
    inner: FsBlobStore,
    failing: Mutex<HashSet<BlobId>>,
}

#[async_trait]
impl BlobStore for FailingDeletes {
    async fn create(&self) -> StoreResult<Box<dyn BlobWriter>> {
        self.inner.create().await
    }
    async fn read(&self, id: &BlobId, offset: u64, len: u64) -> StoreResult<ByteStream> {
        self.inner.read(id, offset, len).await
    }
    async fn delete(&self, id: &BlobId) -> StoreResult<()> {
        if self.failing.lock().unwrap().contains(id) {
            return Err(StoreError::Io(std::io::Error::other("injected failure")));
        }
        self.inner.delete(id).await
    }
    fn list(&self) -> BoxStream<'_, StoreResult<BlobInfo>> {
        self.inner.list()
    }
    async fn sweep_temp(&self, older_than: Duration) -> StoreResult<usize> {
        self.inner.sweep_temp(older_than).await
    }
    async fn check(&self) -> StoreResult<()> {
        self.inner.check().await
    }
}

#[tokio::test]
async fn reaping_deletes_released_blobs_and_retries_failures() {
    let s = stores().await;
    let lease = Duration::from_secs(60);
    let first = put_blob(&s.blobs).await;
    let second = put_blob(&s.blobs).await;
    let third = put_blob(&s.blobs).await;
    s.meta.put_object(&object("k", &first)).await.unwrap();
    s.meta.put_object(&object("k", &second)).await.unwrap();
    s.meta.put_object(&object("gone", &third)).await.unwrap();
    s.meta.delete_object("b", "gone").await.unwrap();

    let blobs = FailingDeletes {
        inner: s.blobs.clone(),
        failing: Mutex::new([third.clone()].into_iter().collect()),
    };
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        reap_released(&s.meta, &blobs, now, lease, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        listed(&s.blobs).await,
        [second.clone(), third.clone()].into()
    );
    // The failed one stays claimed until its lease runs out...
    blobs.failing.lock().unwrap().clear();
    assert_eq!(
        reap_released(&s.meta, &blobs, now, lease, 10)
            .await
            .unwrap(),
        0
    );
    assert!(listed(&s.blobs).await.contains(&third));
    // ...then it is retried; the deleted one was forgotten.
    let later = now + lease + time::Duration::seconds(1);
    assert_eq!(
        reap_released(&s.meta, &blobs, later, lease, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(listed(&s.blobs).await, [second.clone()].into());
    assert_eq!(
        reap_released(&s.meta, &blobs, later + lease * 2, lease, 10)
            .await
            .unwrap(),
        0
    );
    // A released blob already gone is fine, and its row is forgotten.
    let missing = BlobId::new();
    s.meta.release_blobs(&[missing], now).await.unwrap();
    assert_eq!(
        reap_released(&s.meta, &s.blobs, now, lease, 10)
            .await
            .unwrap(),
        1
    );
    assert!(
        s.meta
            .claim_released_blobs(later + lease * 4, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn reaping_waits_for_the_release_grace() {
    let s = stores().await;
    let meta = s.meta.clone().with_release_grace(Duration::from_secs(3600));
    let old = put_blob(&s.blobs).await;
    meta.put_object(&object("k", &old)).await.unwrap();
    meta.put_object(&object("k", &put_blob(&s.blobs).await))
        .await
        .unwrap();
    let lease = Duration::from_secs(60);
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        reap_released(&meta, &s.blobs, now, lease, 10)
            .await
            .unwrap(),
        0
    );
    assert!(listed(&s.blobs).await.contains(&old));
    let after = now + time::Duration::hours(2);
    assert_eq!(
        reap_released(&meta, &s.blobs, after, lease, 10)
            .await
            .unwrap(),
        1
    );
    assert!(!listed(&s.blobs).await.contains(&old));
}

#[tokio::test]
async fn sweep_keeps_referenced_young_and_pending_blobs() {
    let s = stores().await;
    let meta = s.meta.clone().with_release_grace(Duration::from_secs(3600));
    let now = OffsetDateTime::now_utc();
    let object_blob = put_blob(&s.blobs).await;
    meta.put_object(&object("k", &object_blob)).await.unwrap();
    let part_blob = put_blob(&s.blobs).await;
    meta.create_upload(&UploadRecord {
        upload_id: "u".into(),
        bucket: "b".into(),
        key: "k".into(),
        initiated: now,
        acl: "private".into(),
        headers: ObjectHeaders::default(),
    })
    .await
    .unwrap();
    meta.put_part(
        "u",
        &PartRecord {
            number: 1,
            blob: part_blob.clone(),
            size: 4,
            etag: "\"p\"".into(),
            last_modified: now,
            checksums: Vec::new(),
        },
    )
    .await
    .unwrap();
    // Replaced, in a release row not yet due: still readable.
    let pending = put_blob(&s.blobs).await;
    meta.put_object(&object("r", &pending)).await.unwrap();
    meta.put_object(&object("r", &put_blob(&s.blobs).await))
        .await
        .unwrap();
    let replacing = meta
        .get_object("b", "r")
        .await
        .unwrap()
        .unwrap()
        .layout
        .blobs();
    let orphan = put_blob(&s.blobs).await;
    let unfinished = s.blobs.create().await.unwrap();
    std::mem::forget(unfinished); // as if the process had crashed

    // Everything is young: nothing goes.
    let hour = Duration::from_secs(3600);
    let report = sweep_orphans(&meta, &s.blobs, hour).await.unwrap();
    assert_eq!(
        report,
        SweepReport {
            temp_files: 0,
            orphan_blobs: 0,
            kept_blobs: 5
        }
    );
    // With no grace, the orphan and the temp file go.
    let report = sweep_orphans(&meta, &s.blobs, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        report,
        SweepReport {
            temp_files: 1,
            orphan_blobs: 1,
            kept_blobs: 4
        }
    );
    let mut expected: HashSet<BlobId> = [object_blob, part_blob, pending].into();
    expected.extend(replacing);
    assert_eq!(listed(&s.blobs).await, expected);
    assert!(!expected.contains(&orphan));
    let again = sweep_orphans(&meta, &s.blobs, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(again.orphan_blobs, 0);
}

#[tokio::test]
async fn background_gc_reaps_and_sweeps() {
    let s = stores().await;
    let orphan = put_blob(&s.blobs).await;
    let replaced = put_blob(&s.blobs).await;
    s.meta.put_object(&object("k", &replaced)).await.unwrap();
    let live = put_blob(&s.blobs).await;
    s.meta.put_object(&object("k", &live)).await.unwrap();

    let meta: Arc<dyn MetaStore> = Arc::new(s.meta.clone());
    let blobs: Arc<dyn BlobStore> = Arc::new(s.blobs.clone());
    // Two nodes' collectors on the same stores.
    let options = GcOptions {
        reap_interval: Duration::from_millis(20),
        orphan_grace: Duration::ZERO,
        ..GcOptions::default()
    };
    let gcs = [
        spawn_gc(meta.clone(), blobs.clone(), options.clone()),
        spawn_gc(meta, blobs, options),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = listed(&s.blobs).await;
        if left == [live.clone()].into() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left after 10 s: {left:?} (orphan {orphan}, replaced {replaced})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for gc in gcs {
        assert!(!gc.is_finished(), "the collector stopped");
        gc.abort();
    }
}

/// The GC contract suite on SQLite and the filesystem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_contract_suite() {
    let dir = tempfile::tempdir().unwrap();
    let meta = SqliteMetaStore::open(dir.path().join("meta.db"))
        .await
        .unwrap();
    let blobs = FsBlobStore::open(dir.path().join("data")).await.unwrap();
    crate::conformance::gc_suite(&meta, &blobs)
        .await
        .assert_all_passed("sqlite+fs");
}

#[test]
fn referenced_ids_are_found_whatever_their_form() {
    let (a, b) = (BlobId::new(), BlobId::new());
    let legacy = BlobId("not-a-hex-id".to_owned());
    let mut ids: Vec<u128> = [&a, &b].iter().map(|id| bits(id).unwrap()).collect();
    ids.sort_unstable();
    let set = Referenced {
        ids,
        others: std::iter::once(legacy.0.clone()).collect(),
    };
    assert!(set.contains(&a) && set.contains(&b) && set.contains(&legacy));
    assert!(!set.contains(&BlobId::new()));
    assert!(!set.contains(&BlobId("other-legacy".to_owned())));
    // An upper-case spelling is not the id BlobId::new made.
    assert!(bits(&BlobId(a.0.to_uppercase())).is_none());
}
