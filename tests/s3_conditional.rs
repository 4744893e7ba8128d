//! Conditional writes and deletes, as S3 answers them: `If-None-Match: *`
//! (create only if absent) and `If-Match` on PutObject, CopyObject's
//! destination and CompleteMultipartUpload; `If-Match`,
//! `x-amz-if-match-size` and `x-amz-if-match-last-modified-time` on
//! DeleteObject, and per-key ETags in DeleteObjects. Each scenario runs on
//! the embedded store and, when the test PostgreSQL is configured, on a
//! PostgreSQL-backed node: the condition is decided by the store.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use common::TestServer;
use common::fixtures::{completed, create_upload, get_bytes, new_bucket, put_object, upload_part};

/// The embedded node, and a PostgreSQL-backed one when configured.
async fn nodes() -> Vec<(&'static str, TestServer, Option<tempfile::TempDir>)> {
    let mut nodes = vec![("sqlite", TestServer::start(), None)];
    if std::env::var(common::postgres::TEST_POSTGRES).is_ok()
        && let Some(db) = common::postgres::fresh_database().await
    {
        let blobs = tempfile::tempdir().unwrap();
        let uri = format!("fs://{}", blobs.path().display());
        let node = TestServer::start_with(&["--meta", db.as_str(), "--blobs", uri.as_str()]);
        nodes.push(("postgres", node, Some(blobs)));
    } else {
        println!("postgres: SKIPPED (no {})", common::postgres::TEST_POSTGRES);
    }
    nodes
}

/// The HTTP status and S3 code of a failed call.
fn failure<E: ProvideErrorMetadata>(
    res: Result<
        impl std::fmt::Debug,
        aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    >,
) -> (u16, String) {
    let err = res.expect_err("the call succeeded");
    let status = err.raw_response().map_or(0, |r| r.status().as_u16());
    let code = err.as_service_error().and_then(|e| e.code()).unwrap_or("");
    (status, code.to_owned())
}

async fn put_if(
    s3: &Client,
    bucket: &str,
    key: &str,
    body: &'static [u8],
    if_match: Option<&str>,
    if_none_match: Option<&str>,
) -> Result<String, (u16, String)> {
    let res = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .set_if_match(if_match.map(str::to_owned))
        .set_if_none_match(if_none_match.map(str::to_owned))
        .body(ByteStream::from_static(body))
        .send()
        .await;
    match res {
        Ok(out) => Ok(out.e_tag.unwrap()),
        Err(_) => Err(failure(res)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_object_if_none_match_and_if_match() {
    for (backend, node, _blobs) in nodes().await {
        let s3 = node.client();
        let b = new_bucket(&s3, "cond-put").await;
        let precondition = (412, "PreconditionFailed".to_owned());
        let no_key = (404, "NoSuchKey".to_owned());

        // If-Match needs an object.
        assert_eq!(
            put_if(&s3, &b, "k", b"x", Some("*"), None).await,
            Err(no_key.clone()),
            "{backend}"
        );
        assert_eq!(
            put_if(&s3, &b, "k", b"x", Some("\"abc\""), None).await,
            Err(no_key),
            "{backend}"
        );
        // Create only if absent: the first succeeds, the second is 412 and
        // leaves the object as it was.
        let first = put_if(&s3, &b, "k", b"first", None, Some("*"))
            .await
            .unwrap();
        assert_eq!(
            put_if(&s3, &b, "k", b"second", None, Some("*")).await,
            Err(precondition.clone()),
            "{backend}"
        );
        assert_eq!(get_bytes(&s3, &b, "k").await, b"first", "{backend}");
        // If-None-Match of the current ETag fails; of another one succeeds.
        assert_eq!(
            put_if(&s3, &b, "k", b"second", None, Some(&first)).await,
            Err(precondition.clone())
        );
        // If-Match of another ETag fails; of the current one succeeds.
        assert_eq!(
            put_if(&s3, &b, "k", b"second", Some("\"0123\""), None).await,
            Err(precondition)
        );
        let second = put_if(&s3, &b, "k", b"second", Some(&first), None)
            .await
            .unwrap();
        put_if(&s3, &b, "k", b"third", None, Some(&first))
            .await
            .unwrap();
        assert_ne!(first, second);
        put_if(&s3, &b, "k", b"fourth", Some("*"), None)
            .await
            .unwrap();
        assert_eq!(get_bytes(&s3, &b, "k").await, b"fourth", "{backend}");
    }
}

/// Sixteen clients race to create one key: exactly one wins, the others
/// get 412, and the stored bytes are the winner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_create_only_puts_have_one_winner() {
    for (backend, node, _blobs) in nodes().await {
        let s3 = Arc::new(node.client());
        let b = new_bucket(&s3, "cond-race").await;
        for round in 0..3 {
            let key = format!("lock-{round}");
            let writers = (0..16).map(|w| {
                let (s3, b, key) = (s3.clone(), b.clone(), key.clone());
                tokio::spawn(async move {
                    let body = format!("writer {w}");
                    let res = s3
                        .put_object()
                        .bucket(&b)
                        .key(&key)
                        .if_none_match("*")
                        .body(ByteStream::from(body.clone().into_bytes()))
                        .send()
                        .await;
                    match res {
                        Ok(_) => Ok(body),
                        Err(_) => Err(failure(res)),
                    }
                })
            });
            let mut winners = Vec::new();
            for w in futures::future::join_all(writers).await {
                match w.unwrap() {
                    Ok(body) => winners.push(body),
                    Err(failed) => {
                        assert!(
                            failed == (412, "PreconditionFailed".to_owned())
                                || failed == (409, "ConditionalRequestConflict".to_owned()),
                            "{backend}: {failed:?}"
                        );
                    }
                }
            }
            assert_eq!(winners.len(), 1, "{backend}: {winners:?}");
            assert_eq!(
                get_bytes(&s3, &b, &key).await,
                winners[0].as_bytes(),
                "{backend}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_destination_conditions() {
    for (backend, node, _blobs) in nodes().await {
        let s3 = node.client();
        let b = new_bucket(&s3, "cond-copy").await;
        put_object(&s3, &b, "src", b"source bytes").await;
        let dst_etag = put_object(&s3, &b, "dst", b"destination").await;
        let copy = |if_none_match: Option<&'static str>, if_match: Option<String>| {
            s3.copy_object()
                .bucket(&b)
                .key("dst")
                .copy_source(format!("{b}/src"))
                .set_if_none_match(if_none_match.map(str::to_owned))
                .set_if_match(if_match)
                .send()
        };
        assert_eq!(
            failure(copy(Some("*"), None).await),
            (412, "PreconditionFailed".to_owned()),
            "{backend}"
        );
        assert_eq!(
            failure(copy(None, Some("\"feed\"".to_owned())).await),
            (412, "PreconditionFailed".to_owned())
        );
        assert_eq!(get_bytes(&s3, &b, "dst").await, b"destination");
        copy(None, Some(dst_etag)).await.unwrap();
        assert_eq!(
            get_bytes(&s3, &b, "dst").await,
            b"source bytes",
            "{backend}"
        );
        // Create-only copy to a new key.
        s3.copy_object()
            .bucket(&b)
            .key("fresh")
            .copy_source(format!("{b}/src"))
            .if_none_match("*")
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_multipart_upload_conditions() {
    for (backend, node, _blobs) in nodes().await {
        let s3 = node.client();
        let b = new_bucket(&s3, "cond-mpu").await;
        let existing = put_object(&s3, &b, "k", b"already here").await;
        let id = create_upload(&s3, &b, "k").await;
        let etag = upload_part(&s3, &b, "k", &id, 1, b"the only part").await;
        let complete = |if_none_match: Option<&'static str>, if_match: Option<String>| {
            s3.complete_multipart_upload()
                .bucket(&b)
                .key("k")
                .upload_id(&id)
                .multipart_upload(completed(&[(1, &etag)]))
                .set_if_none_match(if_none_match.map(str::to_owned))
                .set_if_match(if_match)
                .send()
        };
        assert_eq!(
            failure(complete(Some("*"), None).await),
            (412, "PreconditionFailed".to_owned()),
            "{backend}"
        );
        // Refused, the upload is intact: its part is still listed.
        let parts = s3
            .list_parts()
            .bucket(&b)
            .key("k")
            .upload_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(parts.parts().len(), 1, "{backend}");
        assert_eq!(get_bytes(&s3, &b, "k").await, b"already here");
        complete(None, Some(existing)).await.unwrap();
        assert_eq!(get_bytes(&s3, &b, "k").await, b"the only part", "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_deletes() {
    for (backend, node, _blobs) in nodes().await {
        let s3 = node.client();
        let b = new_bucket(&s3, "cond-del").await;
        let etag = put_object(&s3, &b, "k", b"12345").await;
        let res = s3
            .delete_object()
            .bucket(&b)
            .key("k")
            .if_match("\"bad\"")
            .send()
            .await;
        assert_eq!(
            failure(res),
            (412, "PreconditionFailed".to_owned()),
            "{backend}"
        );
        let res = s3
            .delete_object()
            .bucket(&b)
            .key("k")
            .if_match_size(4)
            .send()
            .await;
        assert_eq!(
            failure(res),
            (412, "PreconditionFailed".to_owned()),
            "{backend}"
        );
        assert_eq!(get_bytes(&s3, &b, "k").await, b"12345");
        s3.delete_object()
            .bucket(&b)
            .key("k")
            .if_match(&etag)
            .if_match_size(5)
            .send()
            .await
            .unwrap();
        // Nothing to delete: 204 whatever the condition.
        s3.delete_object()
            .bucket(&b)
            .key("k")
            .if_match("\"bad\"")
            .send()
            .await
            .unwrap();

        // DeleteObjects: a per-key ETag that does not match is a per-key error.
        let etag = put_object(&s3, &b, "a", b"a").await;
        put_object(&s3, &b, "c", b"c").await;
        let id = |key: &str, etag: &str| {
            ObjectIdentifier::builder()
                .key(key)
                .e_tag(etag)
                .build()
                .unwrap()
        };
        let out = s3
            .delete_objects()
            .bucket(&b)
            .delete(
                Delete::builder()
                    .objects(id("a", &etag))
                    .objects(id("c", "\"bad\""))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let deleted: Vec<_> = out.deleted().iter().filter_map(|d| d.key()).collect();
        assert_eq!(deleted, ["a"], "{backend}");
        let errors: Vec<_> = out
            .errors()
            .iter()
            .map(|e| (e.key().unwrap_or(""), e.code().unwrap_or("")))
            .collect();
        assert_eq!(errors, [("c", "PreconditionFailed")], "{backend}");
        assert_eq!(get_bytes(&s3, &b, "c").await, b"c");
    }
}
