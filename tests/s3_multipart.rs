//! Multipart uploads against the real server: the whole life cycle, part
//! copies, listing, the multipart ETag, and the errors of CompleteMultipartUpload.

// Test code: a panic is a failed test, and the casts make small test data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]

mod common;
mod s3_util;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::CompletedMultipartUpload;
use common::TestServer;
use common::fixtures::{completed, create_upload, get_bytes, new_bucket, put_object, upload_part};
use md5::{Digest, Md5};
use s3_util::{pattern, sdk_err};

const MIB: usize = 1024 * 1024;

/// The multipart ETag: MD5 of the binary part MD5s, then `-N`.
fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut all = Md5::new();
    for p in parts {
        all.update(Md5::digest(p));
    }
    format!("\"{}-{}\"", hex::encode(all.finalize()), parts.len())
}

#[tokio::test]
async fn multipart_life_cycle() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "mpu").await;
    let key = "big/object.bin";

    // The source of the part copy.
    let source = pattern(6 * MIB, 9);
    put_object(&s3, &bucket, "source", &source).await;

    let created = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .content_type("application/x-big")
        .metadata("kind", "multipart")
        .send()
        .await
        .unwrap();
    assert_eq!(created.bucket(), Some(bucket.as_str()));
    assert_eq!(created.key(), Some(key));
    let upload = created.upload_id().unwrap().to_owned();

    let part1 = pattern(5 * MIB, 1);
    let part3 = pattern(1000, 3);
    let etag1 = upload_part(&s3, &bucket, key, &upload, 1, &part1).await;
    assert_eq!(etag1, format!("\"{}\"", s3_util::md5_hex(&part1)));
    // Part 2: 5 MiB copied out of the middle of `source`.
    let (first, last) = (100usize, 100 + 5 * MIB - 1);
    let copied = s3
        .upload_part_copy()
        .bucket(&bucket)
        .key(key)
        .upload_id(&upload)
        .part_number(2)
        .copy_source(format!("{bucket}/source"))
        .copy_source_range(format!("bytes={first}-{last}"))
        .send()
        .await
        .unwrap();
    let part2 = &source[first..=last];
    let etag2 = copied
        .copy_part_result()
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned();
    assert_eq!(etag2, format!("\"{}\"", s3_util::md5_hex(part2)));
    // Part 3 streams from a file: aws-chunked with a CRC32 trailer.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("part3");
    std::fs::write(&path, &part3).unwrap();
    let etag3 = s3
        .upload_part()
        .bucket(&bucket)
        .key(key)
        .upload_id(&upload)
        .part_number(3)
        .body(ByteStream::from_path(&path).await.unwrap())
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned();
    assert_eq!(etag3, format!("\"{}\"", s3_util::md5_hex(&part3)));

    // ListMultipartUploads shows the upload.
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let ids: Vec<(&str, &str)> = uploads
        .uploads()
        .iter()
        .map(|u| (u.key().unwrap(), u.upload_id().unwrap()))
        .collect();
    assert_eq!(ids, [(key, upload.as_str())]);

    // ListParts, two at a time.
    let list_page = |marker: Option<&str>| {
        s3.list_parts()
            .bucket(&bucket)
            .key(key)
            .upload_id(&upload)
            .max_parts(2)
            .set_part_number_marker(marker.map(str::to_owned))
            .send()
    };
    let sizes = |parts: &[aws_sdk_s3::types::Part]| -> Vec<(i32, i64)> {
        parts
            .iter()
            .map(|p| (p.part_number().unwrap(), p.size().unwrap()))
            .collect()
    };
    let page1 = list_page(None).await.unwrap();
    assert_eq!(
        sizes(page1.parts()),
        [(1, 5 * MIB as i64), (2, 5 * MIB as i64)]
    );
    assert_eq!(page1.is_truncated(), Some(true));
    assert_eq!(page1.next_part_number_marker(), Some("2"));
    assert_eq!(page1.parts()[0].e_tag(), Some(etag1.as_str()));
    let page2 = list_page(Some("2")).await.unwrap();
    assert_eq!(sizes(page2.parts()), [(3, 1000)]);
    assert_eq!(page2.is_truncated(), Some(false));
    assert_eq!(page2.parts()[0].e_tag(), Some(etag3.as_str()));

    let done = s3
        .complete_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .upload_id(&upload)
        .multipart_upload(completed(&[(1, &etag1), (2, &etag2), (3, &etag3)]))
        .send()
        .await
        .unwrap();
    let expected_etag = multipart_etag(&[&part1, part2, &part3]);
    assert_eq!(done.e_tag(), Some(expected_etag.as_str()));
    let etag = done.e_tag().unwrap();
    assert!(etag.len() == 2 + 32 + 2 && etag.ends_with("-3\""), "{etag}");

    let mut whole = part1.clone();
    whole.extend_from_slice(part2);
    whole.extend_from_slice(&part3);
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(got.e_tag(), Some(expected_etag.as_str()));
    assert_eq!(got.content_type(), Some("application/x-big"));
    assert_eq!(
        got.metadata().unwrap().get("kind").map(String::as_str),
        Some("multipart")
    );
    assert_eq!(got.content_length(), Some(whole.len() as i64));
    let body = got.body.collect().await.unwrap().into_bytes();
    assert!(
        body.as_ref() == whole.as_slice(),
        "the object is not the concatenated parts"
    );

    // Ranges across both part boundaries.
    for (start, end) in [
        (5 * MIB - 10, 5 * MIB + 9),
        (10 * MIB - 5, 10 * MIB + 4),
        (0, whole.len() - 1),
    ] {
        let got = s3
            .get_object()
            .bucket(&bucket)
            .key(key)
            .range(format!("bytes={start}-{end}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            got.content_range(),
            Some(format!("bytes {start}-{end}/{}", whole.len()).as_str())
        );
        let body = got.body.collect().await.unwrap().into_bytes();
        assert!(body.as_ref() == &whole[start..=end], "range {start}-{end}");
    }
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.parts_count(), Some(3));

    // The upload is gone.
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());
    let gone = s3
        .list_parts()
        .bucket(&bucket)
        .key(key)
        .upload_id(&upload)
        .send()
        .await;
    assert_eq!(sdk_err(gone), (404, "NoSuchUpload".into()));
}

#[tokio::test]
async fn complete_rejects_bad_part_lists() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "mpu-err").await;
    let upload = create_upload(&s3, &bucket, "k").await;
    let part1 = pattern(5 * MIB, 4);
    let etag1 = upload_part(&s3, &bucket, "k", &upload, 1, &part1).await;
    let etag2 = upload_part(&s3, &bucket, "k", &upload, 2, b"tail").await;
    let complete = |parts: CompletedMultipartUpload| {
        s3.complete_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .upload_id(&upload)
            .multipart_upload(parts)
            .send()
    };

    let wrong_etag = complete(completed(&[
        (1, &etag1),
        (2, "\"00000000000000000000000000000000\""),
    ]))
    .await;
    assert_eq!(sdk_err(wrong_etag), (400, "InvalidPart".into()));
    let missing_part = complete(completed(&[(1, &etag1), (3, &etag2)])).await;
    assert_eq!(sdk_err(missing_part), (400, "InvalidPart".into()));
    let out_of_order = complete(completed(&[(2, &etag2), (1, &etag1)])).await;
    assert_eq!(sdk_err(out_of_order), (400, "InvalidPartOrder".into()));
    let repeated = complete(completed(&[(1, &etag1), (1, &etag1)])).await;
    assert_eq!(sdk_err(repeated), (400, "InvalidPartOrder".into()));

    // The failures left the upload intact: it still completes.
    let done = complete(completed(&[(1, &etag1), (2, &etag2)]))
        .await
        .unwrap();
    assert_eq!(
        done.e_tag(),
        Some(multipart_etag(&[&part1, b"tail"]).as_str())
    );
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(5 * MIB as i64 + 4));
}

#[tokio::test]
async fn parts_other_than_the_last_must_be_5_mib() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "mpu-small").await;
    let upload = create_upload(&s3, &bucket, "k").await;
    let etag1 = upload_part(&s3, &bucket, "k", &upload, 1, b"a").await;
    let etag2 = upload_part(&s3, &bucket, "k", &upload, 2, b"b").await;
    let complete = |parts: CompletedMultipartUpload| {
        s3.complete_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .upload_id(&upload)
            .multipart_upload(parts)
            .send()
    };
    let small = complete(completed(&[(1, &etag1), (2, &etag2)])).await;
    assert_eq!(sdk_err(small), (400, "EntityTooSmall".into()));
    // A single small part is a valid (last) part.
    let done = complete(completed(&[(1, &etag1)])).await.unwrap();
    assert_eq!(done.e_tag(), Some(multipart_etag(&[b"a"]).as_str()));
    assert_eq!(get_bytes(&s3, &bucket, "k").await, b"a");
}

#[tokio::test]
async fn abort_and_unknown_uploads() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "mpu-abort").await;
    let upload = create_upload(&s3, &bucket, "k").await;
    upload_part(&s3, &bucket, "k", &upload, 1, b"part").await;
    let abort = || {
        s3.abort_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .upload_id(&upload)
            .send()
    };
    abort().await.unwrap();
    let parts = s3
        .list_parts()
        .bucket(&bucket)
        .key("k")
        .upload_id(&upload)
        .send()
        .await;
    assert_eq!(sdk_err(parts), (404, "NoSuchUpload".into()));
    assert_eq!(sdk_err(abort().await), (404, "NoSuchUpload".into()));
    let part = s3
        .upload_part()
        .bucket(&bucket)
        .key("k")
        .upload_id("not-an-upload")
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(sdk_err(part), (404, "NoSuchUpload".into()));
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());
    // Nothing was created.
    let (status, _) = sdk_err(s3.head_object().bucket(&bucket).key("k").send().await);
    assert_eq!(status, 404);
}

#[tokio::test]
async fn part_numbers_are_limited_to_10000() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "mpu-num").await;
    let upload = create_upload(&s3, &bucket, "k").await;
    for n in [10_001, 0] {
        let res = s3
            .upload_part()
            .bucket(&bucket)
            .key("k")
            .upload_id(&upload)
            .part_number(n)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await;
        assert_eq!(sdk_err(res), (400, "InvalidArgument".into()), "part {n}");
    }
    upload_part(&s3, &bucket, "k", &upload, 10_000, b"last").await;
    let parts = s3
        .list_parts()
        .bucket(&bucket)
        .key("k")
        .upload_id(&upload)
        .send()
        .await
        .unwrap();
    assert_eq!(parts.parts()[0].part_number(), Some(10_000));
}

#[tokio::test]
async fn list_multipart_uploads_paging() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "mpu-list").await;
    let mut expected = Vec::new();
    for key in ["a/1", "a/2", "b/1"] {
        expected.push((key.to_owned(), create_upload(&s3, &bucket, key).await));
    }
    let all = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let got: Vec<(String, String)> = all
        .uploads()
        .iter()
        .map(|u| {
            (
                u.key().unwrap().to_owned(),
                u.upload_id().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    let prefixed = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .prefix("a/")
        .send()
        .await
        .unwrap();
    assert_eq!(prefixed.uploads().len(), 2);
    let page = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .max_uploads(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.uploads().len(), 2);
    assert_eq!(page.is_truncated(), Some(true));
    assert_eq!(page.next_key_marker(), Some("a/2"));
    let rest = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .key_marker("a/2")
        .set_upload_id_marker(page.next_upload_id_marker().map(str::to_owned))
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = rest.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, ["b/1"]);
    assert_eq!(rest.is_truncated(), Some(false));
}

/// Committed blob files under the data dir.
fn blob_files(server: &TestServer) -> usize {
    let Ok(dirs) = std::fs::read_dir(server.data_dir.join("blobs")) else {
        return 0;
    };
    dirs.filter_map(Result::ok)
        .filter_map(|d| std::fs::read_dir(d.path()).ok())
        .map(|files| files.count())
        .sum()
}

#[tokio::test]
async fn delete_bucket_aborts_uploads_in_progress() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "mpu-delete").await;
    for i in 0..3 {
        let key = format!("k{i}");
        let id = create_upload(&s3, &bucket, &key).await;
        upload_part(&s3, &bucket, &key, &id, 1, &pattern(1000, i)).await;
    }
    assert_eq!(blob_files(&server), 3);
    // ListObjects shows an empty bucket; DeleteBucket agrees, as in S3.
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0));
    s3.delete_bucket().bucket(&bucket).send().await.unwrap();
    let (status, _) = sdk_err(s3.head_bucket().bucket(&bucket).send().await);
    assert_eq!(status, 404);
    // The parts' files go with the uploads.
    assert_eq!(blob_files(&server), 0);

    // Objects still keep a bucket alive.
    let bucket = new_bucket(&s3, "mpu-delete").await;
    put_object(&s3, &bucket, "obj", b"x").await;
    let (status, code) = sdk_err(s3.delete_bucket().bucket(&bucket).send().await);
    assert_eq!((status, code.as_str()), (409, "BucketNotEmpty"));
}

#[tokio::test]
async fn abort_incomplete_uploads_after_flag() {
    let server = TestServer::start_with(&["--abort-incomplete-uploads-after", "2s"]);
    let s3 = server.client();
    let bucket = new_bucket(&s3, "mpu-expiry").await;
    let old = create_upload(&s3, &bucket, "old").await;
    upload_part(&s3, &bucket, "old", &old, 1, &pattern(1000, 1)).await;
    let listed = |s3: Client, bucket: String| async move {
        s3.list_multipart_uploads()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .uploads
            .unwrap_or_default()
            .into_iter()
            .filter_map(|u| u.upload_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(listed(s3.clone(), bucket.clone()).await, vec![old.clone()]);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let young = create_upload(&s3, &bucket, "young").await;
    // Past 2 s (plus one pass of the worker), the old upload is aborted
    // and its part deleted; the young one stays.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let ids = listed(s3.clone(), bucket.clone()).await;
        if ids == vec![young.clone()] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still listed: {ids:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(blob_files(&server), 0);
    let (status, code) = sdk_err(
        s3.upload_part()
            .bucket(&bucket)
            .key("old")
            .upload_id(&old)
            .part_number(2)
            .body(ByteStream::from_static(b"late"))
            .send()
            .await,
    );
    assert_eq!((status, code.as_str()), (404, "NoSuchUpload"));
}

/// A CompleteMultipartUpload sent again after it succeeded (its answer was
/// lost) gets the same 200 answer, as in S3; another parts list for the
/// finished upload is still NoSuchUpload.
#[tokio::test]
async fn completing_a_completed_upload_again_answers_the_same() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "mpu-twice").await;
    let id = create_upload(&s3, &bucket, "k").await;
    let first = upload_part(&s3, &bucket, "k", &id, 1, &pattern(5 << 20, 1)).await;
    let second = upload_part(&s3, &bucket, "k", &id, 2, b"tail").await;
    let parts = completed(&[(1, &first), (2, &second)]);
    let complete = |parts: CompletedMultipartUpload| {
        s3.complete_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .upload_id(&id)
            .multipart_upload(parts)
            .send()
    };
    let done = complete(parts.clone()).await.unwrap();
    let again = complete(parts).await.unwrap();
    assert_eq!(again.e_tag(), done.e_tag());
    let other = complete(completed(&[(1, &first)])).await;
    assert_eq!(sdk_err(other), (404, "NoSuchUpload".into()));
    assert_eq!(get_bytes(&s3, &bucket, "k").await.len(), (5 << 20) + 4);
}
