//! The contract suites: what every [`MetaStore`] and [`BlobStore`] does,
//! whatever the engine. Built with the `testing` feature, run by the
//! workspace's `tests/store_contract.rs` on each backend.
//!
//! A suite runs its cases one after another on the same store and reports
//! each one: a case that panics (a failed assertion) is caught and
//! reported, and the next case runs. Cases do not rely on what other cases
//! left in the store: they use fresh bucket names, upload ids and user
//! names, look for their own records in global lists ("contains", never
//! "equals"), compare generations as "greater than before", and place
//! their release rows at times of their own.
//!
//! What the suites assume of the store under test: it is fresh (nothing
//! else writes to it while the suite runs), and for the metadata store its
//! release grace is between 1 second and 1 day (the default is 60 s).

// The cases are tests: a failed unwrap is a failed case, caught and reported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod blob;
mod gc;
mod meta;
mod meta_shared;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use time::OffsetDateTime;

use crate::{
    BlobId, BlobStore, BucketRecord, MetaStore, ObjectHeaders, ObjectLayout, ObjectRecord,
    PartRecord, PartRef, UploadRecord,
};

/// How long one case may take before it counts as failed (hung).
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// The outcome of a suite, case by case.
#[derive(Debug, Default)]
pub struct SuiteReport {
    pub passed: Vec<&'static str>,
    /// Case name and what went wrong.
    pub failed: Vec<(&'static str, String)>,
}

impl SuiteReport {
    /// Prints how many cases passed on `backend`; panics listing every
    /// failed case.
    pub fn assert_all_passed(&self, backend: &str) {
        println!("{} cases passed on {backend}", self.passed.len());
        if !self.failed.is_empty() {
            let list: Vec<String> = self
                .failed
                .iter()
                .map(|(name, why)| format!("  {name}: {why}"))
                .collect();
            panic!(
                "{} of {} cases failed on {backend}:\n{}",
                self.failed.len(),
                self.failed.len() + self.passed.len(),
                list.join("\n")
            );
        }
    }

    /// Merges another suite's report (e.g. the GC cases) into this one.
    pub fn extend(&mut self, other: SuiteReport) {
        self.passed.extend(other.passed);
        self.failed.extend(other.failed);
    }

    /// Runs one case, catching its panic or hang.
    async fn run(&mut self, name: &'static str, case: impl Future<Output = ()>) {
        let case = tokio::time::timeout(CASE_TIMEOUT, AssertUnwindSafe(case).catch_unwind());
        match case.await {
            Ok(Ok(())) => self.passed.push(name),
            Ok(Err(panic)) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panicked".to_owned());
                self.failed.push((name, why));
            }
            Err(_) => self
                .failed
                .push((name, format!("timed out after {CASE_TIMEOUT:?}"))),
        }
    }
}

/// Runs the named cases, in order, on one store.
macro_rules! run_cases {
    ($report:expr, $args:tt, [$($case:ident),* $(,)?]) => {
        $(
            $report.run(stringify!($case), $case $args).await;
        )*
    };
}
use run_cases;

/// Every [`MetaStore`] case, on `store` (a fresh store; see the module docs).
pub async fn meta_store_suite(store: &dyn MetaStore) -> SuiteReport {
    let mut report = SuiteReport::default();
    meta::run(store, &mut report).await;
    meta_shared::run(store, &mut report).await;
    report
}

/// Every [`BlobStore`] case, on `store` (a fresh store).
pub async fn blob_store_suite(store: &dyn BlobStore) -> SuiteReport {
    let mut report = SuiteReport::default();
    blob::run(store, &mut report).await;
    report
}

/// The garbage collector ([`crate::reap_released`], [`crate::sweep_orphans`])
/// on a pair of fresh stores used together.
pub async fn gc_suite(meta: &dyn MetaStore, blobs: &dyn BlobStore) -> SuiteReport {
    let mut report = SuiteReport::default();
    gc::run(meta, blobs, &mut report).await;
    report
}

// --- fixtures shared by the cases ---

/// `prefix` and a random suffix: a name no other case uses.
fn unique(prefix: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &suffix[..12])
}

/// A fixed time of the cases (never before 2000: see
/// `meta::uploads_initiated_before_a_cutoff`).
fn fixed_time() -> OffsetDateTime {
    time::macros::datetime!(2024-05-06 07:08:09.123456789 UTC)
}

pub(crate) fn bucket(name: &str) -> BucketRecord {
    BucketRecord {
        name: name.to_owned(),
        region: "us-east-1".to_owned(),
        owner: "owner-id".to_owned(),
        created: fixed_time(),
        acl: "private".to_owned(),
        cors: None,
        policy: None,
        public_access_block: None,
    }
}

/// Creates a fresh bucket and returns its name.
async fn new_bucket(store: &dyn MetaStore, prefix: &str) -> String {
    let name = unique(prefix);
    store.create_bucket(&bucket(&name)).await.unwrap();
    name
}

pub(crate) fn object(bucket: &str, key: &str, blob: &BlobId) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size: 5,
        etag: "\"5d41402abc4b2a76b9719d911017c592\"".to_owned(),
        last_modified: time::macros::datetime!(2024-05-06 07:08:10.5 UTC),
        acl: "private".to_owned(),
        headers: ObjectHeaders::default(),
        layout: ObjectLayout::Single { blob: blob.clone() },
    }
}

pub(crate) fn upload(bucket: &str, key: &str, id: &str, initiated: OffsetDateTime) -> UploadRecord {
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

pub(crate) fn part(number: u32) -> PartRecord {
    PartRecord {
        number,
        blob: BlobId::new(),
        size: 5 << 20,
        etag: format!("\"etag-{number}\""),
        last_modified: time::macros::datetime!(2024-05-06 07:08:11.001 UTC),
        checksums: vec![("CRC32".to_owned(), "AAAAAA==".to_owned())],
    }
}

/// A multipart object made of `parts`.
fn multipart_object(bucket: &str, key: &str, parts: &[&PartRecord]) -> ObjectRecord {
    let mut done = object(bucket, key, &parts[0].blob);
    done.layout = ObjectLayout::Parts {
        parts: parts
            .iter()
            .map(|p| PartRef {
                number: p.number,
                blob: p.blob.clone(),
                size: p.size,
                etag: p.etag.clone(),
            })
            .collect(),
    };
    done.etag = format!("\"abc-{}\"", parts.len());
    done
}

/// Writes a blob of `data` in pieces of `piece` bytes.
async fn put_blob(store: &dyn BlobStore, data: &[u8], piece: usize) -> (BlobId, u64) {
    let mut writer = store.create().await.unwrap();
    for chunk in data.chunks(piece.max(1)) {
        writer.write(chunk).await.unwrap();
    }
    writer.finish().await.unwrap()
}
