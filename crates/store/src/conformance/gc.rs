//! The garbage collector on a metadata store and a blob store together.

use std::collections::HashSet;

use super::*;
use crate::{StoreError, reap_released, sweep_orphans};

pub(super) async fn run(meta: &dyn MetaStore, blobs: &dyn BlobStore, report: &mut SuiteReport) {
    run_cases!(
        report,
        (meta, blobs),
        [
            reaping_deletes_due_blobs_only,
            reaping_tolerates_missing_blobs,
            sweep_spares_referenced_young_and_pending_blobs,
        ]
    );
}

const LEASE: Duration = Duration::from_secs(60);

async fn exists(blobs: &dyn BlobStore, id: &BlobId) -> bool {
    match blobs.read(id, 0, 0).await {
        Ok(_) => true,
        Err(StoreError::NoSuchBlob(_)) => false,
        Err(e) => panic!("reading {id}: {e}"),
    }
}

async fn new_blob(blobs: &dyn BlobStore) -> BlobId {
    put_blob(blobs, b"data", 4).await.0
}

async fn reaping_deletes_due_blobs_only(meta: &dyn MetaStore, blobs: &dyn BlobStore) {
    let b = new_bucket(meta, "b-reap").await;
    let (old, live) = (new_blob(blobs).await, new_blob(blobs).await);
    meta.put_object(&object(&b, "k", &old)).await.unwrap();
    meta.put_object(&object(&b, "k", &live)).await.unwrap();
    let now = OffsetDateTime::now_utc();
    reap_released(meta, blobs, now, LEASE, 1000).await.unwrap();
    assert!(exists(blobs, &old).await, "reaped within the release grace");
    let later = now + time::Duration::days(2);
    let reaped = reap_released(meta, blobs, later, LEASE, 100_000)
        .await
        .unwrap();
    assert!(reaped >= 1);
    assert!(!exists(blobs, &old).await, "a due blob was not reaped");
    assert!(exists(blobs, &live).await, "the live blob was reaped");
    // Its row is forgotten, not just leased.
    let much_later = later + time::Duration::days(1);
    let claimed = meta
        .claim_released_blobs(much_later, LEASE, 100_000)
        .await
        .unwrap();
    assert!(!claimed.contains(&old), "a reaped row came back");
}

async fn reaping_tolerates_missing_blobs(meta: &dyn MetaStore, blobs: &dyn BlobStore) {
    let gone = BlobId::new();
    let at = OffsetDateTime::now_utc() + time::Duration::days(3650);
    meta.release_blobs(std::slice::from_ref(&gone), at)
        .await
        .unwrap();
    let reaped = reap_released(meta, blobs, at, LEASE, 100_000)
        .await
        .unwrap();
    assert!(reaped >= 1);
    let claimed = meta
        .claim_released_blobs(at + time::Duration::days(1), LEASE, 100_000)
        .await
        .unwrap();
    assert!(!claimed.contains(&gone));
}

async fn sweep_spares_referenced_young_and_pending_blobs(
    meta: &dyn MetaStore,
    blobs: &dyn BlobStore,
) {
    let b = new_bucket(meta, "b-sweep").await;
    let object_blob = new_blob(blobs).await;
    meta.put_object(&object(&b, "k", &object_blob))
        .await
        .unwrap();
    let u = unique("u");
    meta.create_upload(&upload(&b, "k", &u, OffsetDateTime::now_utc()))
        .await
        .unwrap();
    let mut p = part(1);
    p.blob = new_blob(blobs).await;
    meta.put_part(&u, &p).await.unwrap();
    // Replaced: in a release row within its grace, still readable.
    let pending = new_blob(blobs).await;
    meta.put_object(&object(&b, "r", &pending)).await.unwrap();
    let replacing = new_blob(blobs).await;
    meta.put_object(&object(&b, "r", &replacing)).await.unwrap();
    let orphan = new_blob(blobs).await;

    // Young: nothing unreferenced goes.
    let report = sweep_orphans(meta, blobs, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(report.kept_blobs >= 5, "{report:?}");
    assert!(exists(blobs, &orphan).await, "a young orphan was swept");
    // With no grace the orphan goes, and only it among ours.
    let report = sweep_orphans(meta, blobs, Duration::ZERO).await.unwrap();
    assert!(report.orphan_blobs >= 1, "{report:?}");
    assert!(!exists(blobs, &orphan).await, "an old orphan was kept");
    let kept: HashSet<&BlobId> = [&object_blob, &p.blob, &pending, &replacing].into();
    for id in kept {
        assert!(exists(blobs, id).await, "referenced blob {id} was swept");
    }
}
