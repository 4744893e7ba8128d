//! What several nodes share: release rows, access keys, root credentials
//! and the settings generation.
//!
//! Claims are global, so each case looks for its own blobs in what a claim
//! returns, and the lease cases place their rows days or years ahead, at
//! times no other case claims.

use std::collections::HashSet;

use futures::TryStreamExt;

use super::*;
use crate::{BucketSetting, RootKeyRecord, StoreError, UserKeyRecord};

pub(super) async fn run(store: &dyn MetaStore, report: &mut SuiteReport) {
    run_cases!(
        report,
        (store),
        [
            replaced_and_deleted_objects_are_released_after_the_grace,
            multipart_writes_release_parts_at_once,
            deleted_bucket_releases_its_uploads_parts,
            released_blobs_are_still_referenced,
            claims_are_leased_and_forgotten,
            concurrent_claimers_never_share_a_row,
            user_keys_crud,
            root_credentials_first_wins,
            settings_generation_grows_with_cached_state,
        ]
    );
}

/// Later than any release grace the suite allows (1 day).
fn past_any_grace() -> time::Duration {
    time::Duration::days(2)
}

const LEASE: Duration = Duration::from_secs(60);

/// Claims everything due at `at` (a large batch) and returns it.
async fn claim_all(store: &dyn MetaStore, at: OffsetDateTime) -> HashSet<BlobId> {
    store
        .claim_released_blobs(at, LEASE, 100_000)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn replaced_and_deleted_objects_are_released_after_the_grace(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-rel-obj").await;
    let (first, second, third) = (BlobId::new(), BlobId::new(), BlobId::new());
    store.put_object(&object(&b, "k", &first)).await.unwrap();
    store.put_object(&object(&b, "k", &second)).await.unwrap();
    store.put_object(&object(&b, "gone", &third)).await.unwrap();
    store.delete_object(&b, "gone").await.unwrap();
    let after = OffsetDateTime::now_utc();

    // Not due within the grace (at least a second): a GET that read the old
    // record may still open the blob.
    let early = claim_all(store, after).await;
    assert!(
        !early.contains(&first) && !early.contains(&third),
        "released before the grace"
    );
    let due = claim_all(store, after + past_any_grace()).await;
    assert!(
        due.contains(&first),
        "the replaced object's blob is not released"
    );
    assert!(
        due.contains(&third),
        "the deleted object's blob is not released"
    );
    assert!(!due.contains(&second), "the live blob is released");
    // Overwriting with the same blob (a metadata-only rewrite) frees nothing.
    store.put_object(&object(&b, "k", &second)).await.unwrap();
    let later = claim_all(store, OffsetDateTime::now_utc() + past_any_grace() * 2).await;
    assert!(!later.contains(&second), "a blob still in use is released");
    store.forget_released_blobs(&[first, third]).await.unwrap();
}

async fn multipart_writes_release_parts_at_once(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-rel-mpu").await;
    let t = OffsetDateTime::now_utc();
    let (aborted, replaced_part, completed) = (unique("ua"), unique("ur"), unique("uc"));
    let before = OffsetDateTime::now_utc() - time::Duration::seconds(1);

    // put_part replacing a part: the old part's blob.
    store
        .create_upload(&upload(&b, "k", &replaced_part, t))
        .await
        .unwrap();
    let old_part = part(1);
    store.put_part(&replaced_part, &old_part).await.unwrap();
    let new_part = part(1);
    store.put_part(&replaced_part, &new_part).await.unwrap();

    // abort_upload: every part.
    store
        .create_upload(&upload(&b, "k", &aborted, t))
        .await
        .unwrap();
    let (a1, a2) = (part(1), part(2));
    store.put_part(&aborted, &a1).await.unwrap();
    store.put_part(&aborted, &a2).await.unwrap();
    store.abort_upload(&aborted).await.unwrap();

    // complete_upload: the parts it leaves out at once, the replaced
    // object's blob after the grace, the used parts never.
    let old_object = BlobId::new();
    store
        .put_object(&object(&b, "done", &old_object))
        .await
        .unwrap();
    store
        .create_upload(&upload(&b, "done", &completed, t))
        .await
        .unwrap();
    let (c1, c2, c3) = (part(1), part(2), part(3));
    for p in [&c1, &c2, &c3] {
        store.put_part(&completed, p).await.unwrap();
    }
    let (_, unused) = store
        .complete_upload(&completed, &multipart_object(&b, "done", &[&c1, &c3]))
        .await
        .unwrap();
    assert_eq!(unused, std::slice::from_ref(&c2));

    let not_yet = claim_all(store, before).await;
    for blob in [&old_part.blob, &a1.blob, &a2.blob, &c2.blob] {
        assert!(!not_yet.contains(blob), "{blob} released in the past");
    }
    let due = claim_all(
        store,
        OffsetDateTime::now_utc() + time::Duration::seconds(1),
    )
    .await;
    assert!(
        due.contains(&old_part.blob),
        "a replaced part is not released"
    );
    assert!(
        due.contains(&a1.blob) && due.contains(&a2.blob),
        "aborted parts are not released"
    );
    assert!(due.contains(&c2.blob), "an unused part is not released");
    assert!(
        !due.contains(&old_object),
        "a replaced object is released before the grace"
    );
    for live in [&new_part.blob, &c1.blob, &c3.blob] {
        assert!(!due.contains(live), "live blob {live} released");
    }
    let graced = claim_all(store, OffsetDateTime::now_utc() + past_any_grace()).await;
    assert!(
        graced.contains(&old_object),
        "the replaced object is not released"
    );
    for live in [&new_part.blob, &c1.blob, &c3.blob] {
        assert!(!graced.contains(live), "live blob {live} released");
    }
}

async fn deleted_bucket_releases_its_uploads_parts(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-rel-bucket").await;
    let u = unique("u");
    store
        .create_upload(&upload(&b, "k", &u, OffsetDateTime::now_utc()))
        .await
        .unwrap();
    let (p1, p2) = (part(1), part(2));
    store.put_part(&u, &p1).await.unwrap();
    store.put_part(&u, &p2).await.unwrap();
    store.delete_bucket(&b).await.unwrap();
    let due = claim_all(
        store,
        OffsetDateTime::now_utc() + time::Duration::seconds(1),
    )
    .await;
    assert!(due.contains(&p1.blob) && due.contains(&p2.blob));
}

/// A blob in a release row not yet reaped is still referenced (the orphan
/// sweep must not take it), and no longer once the row is forgotten.
async fn released_blobs_are_still_referenced(store: &dyn MetaStore) {
    let b = new_bucket(store, "b-rel-refs").await;
    let old = BlobId::new();
    store.put_object(&object(&b, "k", &old)).await.unwrap();
    store
        .put_object(&object(&b, "k", &BlobId::new()))
        .await
        .unwrap();
    let extra = BlobId::new();
    let far = OffsetDateTime::now_utc() + time::Duration::days(3000);
    store
        .release_blobs(std::slice::from_ref(&extra), far)
        .await
        .unwrap();
    let refs: HashSet<BlobId> = store.referenced_blobs().try_collect().await.unwrap();
    assert!(refs.contains(&old), "a pending release is not referenced");
    assert!(
        refs.contains(&extra),
        "release_blobs rows are not referenced"
    );
    store
        .forget_released_blobs(&[old.clone(), extra.clone()])
        .await
        .unwrap();
    let refs: HashSet<BlobId> = store.referenced_blobs().try_collect().await.unwrap();
    assert!(
        !refs.contains(&old) && !refs.contains(&extra),
        "forgotten rows still referenced"
    );
}

async fn claims_are_leased_and_forgotten(store: &dyn MetaStore) {
    // Years ahead: no other case claims this late.
    let base = OffsetDateTime::now_utc() + time::Duration::days(365 * 20);
    let (x, y) = (BlobId::new(), BlobId::new());
    store
        .release_blobs(&[x.clone(), y.clone()], base)
        .await
        .unwrap();
    store.release_blobs(&[], base).await.unwrap();
    let second = time::Duration::seconds(1);
    assert!(
        !claim_all(store, base - second).await.contains(&x),
        "claimed before due"
    );
    // Due at exactly `not_before`.
    let first = claim_all(store, base).await;
    assert!(first.contains(&x) && first.contains(&y));
    // Hidden while the lease runs...
    let during = claim_all(store, base + second).await;
    assert!(
        !during.contains(&x) && !during.contains(&y),
        "a claim was taken twice"
    );
    // ...and free again once it has run out (a reaper that died).
    let lease = time::Duration::try_from(LEASE).unwrap();
    let expired = claim_all(store, base + lease + second).await;
    assert!(
        expired.contains(&x) && expired.contains(&y),
        "an expired claim is not retaken"
    );
    store
        .forget_released_blobs(std::slice::from_ref(&x))
        .await
        .unwrap();
    store.forget_released_blobs(&[]).await.unwrap();
    let last = claim_all(store, base + lease * 3).await;
    assert!(!last.contains(&x), "a forgotten row is claimed");
    assert!(last.contains(&y), "an unforgotten row is lost");
    store
        .forget_released_blobs(&[y, BlobId::new()])
        .await
        .unwrap();
    assert!(!claim_all(store, base + lease * 5).await.contains(&x));
    // A limit is a limit.
    let z: Vec<BlobId> = (0..5).map(|_| BlobId::new()).collect();
    let at = base + time::Duration::days(1);
    store.release_blobs(&z, at).await.unwrap();
    assert!(
        store
            .claim_released_blobs(at, LEASE, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .claim_released_blobs(at, LEASE, 2)
            .await
            .unwrap()
            .len(),
        2
    );
    store.forget_released_blobs(&z).await.unwrap();
}

async fn concurrent_claimers_never_share_a_row(store: &dyn MetaStore) {
    let at = OffsetDateTime::now_utc() + time::Duration::days(365 * 30);
    let ours: Vec<BlobId> = (0..60).map(|_| BlobId::new()).collect();
    store.release_blobs(&ours, at).await.unwrap();
    let ours_set: HashSet<BlobId> = ours.iter().cloned().collect();
    // Rounds of four claimers at once, until all 60 are taken (rows that
    // other cases left due at `at` come out too). Every claim of every
    // round is at the same time, so no lease runs out in between: no row
    // may come out twice.
    let mut seen = HashSet::new();
    while !ours_set.is_subset(&seen) {
        let claims = (0..4).map(|_| store.claim_released_blobs(at, LEASE, 20));
        let mut round = 0;
        for claimed in futures::future::join_all(claims).await {
            for id in claimed.unwrap() {
                round += 1;
                assert!(seen.insert(id.clone()), "{id} was claimed twice");
            }
        }
        assert!(
            round > 0,
            "rows left unclaimed: {}",
            ours_set.difference(&seen).count()
        );
    }
    store.forget_released_blobs(&ours).await.unwrap();
}

fn user_key(name: &str) -> UserKeyRecord {
    UserKeyRecord {
        name: name.to_owned(),
        access_key: unique("AK").to_uppercase(),
        secret_key: unique("secret"),
        created: fixed_time(),
    }
}

async fn user_keys_crud(store: &dyn MetaStore) {
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = user_key(&alice);
    let b = user_key(&bob);
    store.create_user_key(&b).await.unwrap();
    store.create_user_key(&a).await.unwrap();
    let listed = store.list_user_keys().await.unwrap();
    assert!(listed.contains(&a) && listed.contains(&b), "{listed:?}");
    let names: Vec<&str> = listed.iter().map(|k| k.name.as_str()).collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "not ordered by name: {names:?}"
    );

    // A taken name, or a taken access key under another name.
    let mut same_name = user_key(&alice);
    same_name.secret_key = "other".to_owned();
    match store.create_user_key(&same_name).await {
        Err(StoreError::UserExists(name)) => assert_eq!(name, alice),
        other => panic!("a taken name: {other:?}"),
    }
    let carol = unique("carol");
    let mut same_access = user_key(&carol);
    same_access.access_key = a.access_key.clone();
    match store.create_user_key(&same_access).await {
        Err(StoreError::UserExists(name)) => assert_eq!(name, carol),
        other => panic!("a taken access key: {other:?}"),
    }
    let listed = store.list_user_keys().await.unwrap();
    assert!(!listed.iter().any(|k| k.name == carol));
    assert!(listed.contains(&a), "a refused create changed the key");

    store.delete_user_key(&alice).await.unwrap();
    let listed = store.list_user_keys().await.unwrap();
    assert!(!listed.iter().any(|k| k.name == alice) && listed.contains(&b));
    match store.delete_user_key(&alice).await {
        Err(StoreError::NoSuchUser(name)) => assert_eq!(name, alice),
        other => panic!("deleting a missing user: {other:?}"),
    }
    // The name and the access key are free again.
    store.create_user_key(&a).await.unwrap();
    store.delete_user_key(&alice).await.unwrap();
    store.delete_user_key(&bob).await.unwrap();
}

async fn root_credentials_first_wins(store: &dyn MetaStore) {
    fn candidate(_: ()) -> RootKeyRecord {
        RootKeyRecord {
            access_key: unique("ROOT").to_uppercase(),
            secret_key: unique("root-secret"),
        }
    }
    let first = candidate(());
    let (stored, mine) = store.root_credentials(&first).await.unwrap();
    // Stored by this call exactly when it returns the candidate.
    assert_eq!(mine, stored == first);
    let (again, mine) = store.root_credentials(&candidate(())).await.unwrap();
    assert!(!mine, "a second call stored its candidate");
    assert_eq!(again, stored);
    // Several nodes starting at once all get the same credentials.
    let racers: Vec<RootKeyRecord> = (0..4).map(|_| candidate(())).collect();
    let results = futures::future::join_all(racers.iter().map(|c| store.root_credentials(c))).await;
    for result in results {
        let (got, mine) = result.unwrap();
        assert!(!mine);
        assert_eq!(got, stored);
    }
}

async fn settings_generation_grows_with_cached_state(store: &dyn MetaStore) {
    let mut last = store.settings_generation().await.unwrap();
    let mut grew = |now: i64, what: &str| {
        assert!(
            now > last,
            "{what}: generation {now} did not grow past {last}"
        );
        last = now;
    };
    let b = unique("b-gen");
    store.create_bucket(&bucket(&b)).await.unwrap();
    grew(store.settings_generation().await.unwrap(), "create_bucket");
    store
        .set_bucket_setting(&b, BucketSetting::Cors, Some("<CORSConfiguration/>"))
        .await
        .unwrap();
    grew(
        store.settings_generation().await.unwrap(),
        "set_bucket_setting",
    );
    store
        .set_bucket_setting(&b, BucketSetting::Cors, None)
        .await
        .unwrap();
    grew(
        store.settings_generation().await.unwrap(),
        "clearing a setting",
    );
    let user = unique("gen-user");
    store.create_user_key(&user_key(&user)).await.unwrap();
    grew(
        store.settings_generation().await.unwrap(),
        "create_user_key",
    );
    store.delete_user_key(&user).await.unwrap();
    grew(
        store.settings_generation().await.unwrap(),
        "delete_user_key",
    );
    store.delete_bucket(&b).await.unwrap();
    grew(store.settings_generation().await.unwrap(), "delete_bucket");
}
