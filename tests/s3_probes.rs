//! The configuration reads that tools probe (Terraform's `aws_s3_bucket`
//! reads them all) answer as S3 answers a bucket without the feature: the
//! exact error code and status, or the empty document.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_s3::error::ProvideErrorMetadata;
use common::fixtures::{new_bucket, put_object};
use common::{TestServer, error_code};

/// The status and code of a failed SDK call.
macro_rules! failure {
    ($call:expr) => {{
        let err = $call.send().await.expect_err("the probe succeeded");
        let status = err.raw_response().map_or(0, |r| r.status().as_u16());
        let code = err
            .as_service_error()
            .and_then(|e| e.code())
            .unwrap_or("")
            .to_owned();
        (status, code)
    }};
}

#[tokio::test]
async fn configuration_reads_answer_as_for_a_bucket_without_the_feature() {
    let server = TestServer::start();
    let s3 = server.client();
    let b = new_bucket(&s3, "probes").await;

    let not_found = |code: &str| (404, code.to_owned());
    assert_eq!(
        failure!(s3.get_bucket_encryption().bucket(&b)),
        not_found("ServerSideEncryptionConfigurationNotFoundError")
    );
    assert_eq!(
        failure!(s3.get_bucket_website().bucket(&b)),
        not_found("NoSuchWebsiteConfiguration")
    );
    assert_eq!(
        failure!(s3.get_bucket_replication().bucket(&b)),
        not_found("ReplicationConfigurationNotFoundError")
    );
    assert_eq!(
        failure!(s3.get_object_lock_configuration().bucket(&b)),
        not_found("ObjectLockConfigurationNotFoundError")
    );
    assert_eq!(
        failure!(s3.get_bucket_ownership_controls().bucket(&b)),
        not_found("OwnershipControlsNotFoundError")
    );
    assert_eq!(
        failure!(s3.get_bucket_tagging().bucket(&b)),
        not_found("NoSuchTagSet")
    );
    assert_eq!(
        failure!(s3.get_bucket_lifecycle_configuration().bucket(&b)),
        not_found("NoSuchLifecycleConfiguration")
    );

    let logging = s3.get_bucket_logging().bucket(&b).send().await.unwrap();
    assert!(logging.logging_enabled().is_none());
    let payment = s3
        .get_bucket_request_payment()
        .bucket(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(payment.payer().map(|p| p.as_str()), Some("BucketOwner"));
    let accelerate = s3
        .get_bucket_accelerate_configuration()
        .bucket(&b)
        .send()
        .await
        .unwrap();
    assert!(accelerate.status().is_none());
    let notification = s3
        .get_bucket_notification_configuration()
        .bucket(&b)
        .send()
        .await
        .unwrap();
    assert!(notification.topic_configurations().is_empty());
    assert!(notification.queue_configurations().is_empty());
    let versioning = s3.get_bucket_versioning().bucket(&b).send().await.unwrap();
    assert!(
        versioning.status().is_none(),
        "a new bucket reports no status"
    );

    put_object(&s3, &b, "k", b"x").await;
    let tagging = s3
        .get_object_tagging()
        .bucket(&b)
        .key("k")
        .send()
        .await
        .unwrap();
    assert!(tagging.tag_set().is_empty());
    assert_eq!(
        failure!(s3.get_object_tagging().bucket(&b).key("missing")),
        (404, "NoSuchKey".to_owned())
    );

    // Of a missing bucket: NoSuchBucket, as for every bucket operation.
    let missing = common::bucket_name("no-such");
    assert_eq!(
        failure!(s3.get_bucket_encryption().bucket(&missing)),
        (404, "NoSuchBucket".to_owned())
    );
    assert_eq!(
        failure!(s3.get_bucket_versioning().bucket(&missing)),
        (404, "NoSuchBucket".to_owned())
    );
}

/// The exact documents, as raw HTTP: what a client that parses XML sees.
#[tokio::test]
async fn empty_configuration_documents_are_s3s() {
    let server = TestServer::start();
    let s3 = server.client();
    let b = new_bucket(&s3, "probe-xml").await;
    let get = |sub: &str| server.signed("GET", &format!("/{b}?{sub}"), &[], b"");
    for (sub, root) in [
        ("logging", "BucketLoggingStatus"),
        ("versioning", "VersioningConfiguration"),
        ("accelerate", "AccelerateConfiguration"),
        ("notification", "NotificationConfiguration"),
        ("requestPayment", "RequestPaymentConfiguration"),
    ] {
        let res = get(sub).send().await.unwrap();
        assert_eq!(res.status(), 200, "{sub}");
        let body = res.text().await.unwrap();
        assert!(body.contains(&format!("<{root}")), "{sub}: {body}");
        assert!(!body.contains("<Status>"), "{sub}: {body}");
    }
    let res = get("encryption").send().await.unwrap();
    assert_eq!(res.status(), 404);
    let body = res.text().await.unwrap();
    assert_eq!(
        error_code(&body).as_deref(),
        Some("ServerSideEncryptionConfigurationNotFoundError"),
        "{body}"
    );
    assert!(
        body.contains("<BucketName>") || body.contains("<Resource>"),
        "{body}"
    );
}

/// GetObjectAttributes (what boto3's `get_object_attributes` and the
/// aws CLI call): ETag, size, storage class, checksum, and a multipart
/// object's parts, paged.
#[tokio::test]
async fn get_object_attributes_of_single_and_multipart_objects() {
    use aws_sdk_s3::types::ObjectAttributes as A;
    let server = TestServer::start();
    let s3 = server.client();
    let b = new_bucket(&s3, "attrs").await;
    let put = s3
        .put_object()
        .bucket(&b)
        .key("single")
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"hello attributes",
        ))
        .send()
        .await
        .unwrap();
    let all = [
        A::Etag,
        A::ObjectSize,
        A::StorageClass,
        A::Checksum,
        A::ObjectParts,
    ];
    let got = s3
        .get_object_attributes()
        .bucket(&b)
        .key("single")
        .set_object_attributes(Some(all.to_vec()))
        .send()
        .await
        .unwrap();
    // Unquoted here, unlike every other ETag S3 sends.
    assert_eq!(got.e_tag(), put.e_tag().map(|e| e.trim_matches('"')));
    assert_eq!(got.object_size(), Some(16));
    assert_eq!(got.storage_class().map(|c| c.as_str()), Some("STANDARD"));
    assert_eq!(
        got.checksum().and_then(|c| c.checksum_sha256()),
        put.checksum_sha256()
    );
    assert!(
        got.object_parts().is_none(),
        "a single-part object has no parts"
    );

    let parts = [vec![b'a'; 5 << 20], vec![b'b'; 5 << 20], b"c".to_vec()];
    let part_refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    common::fixtures::multipart_put(&s3, &b, "multi", &part_refs).await;
    let page = |marker: Option<i32>| {
        s3.get_object_attributes()
            .bucket(&b)
            .key("multi")
            .object_attributes(A::ObjectParts)
            .object_attributes(A::ObjectSize)
            .max_parts(2)
            .set_part_number_marker(marker.map(|m| m.to_string()))
            .send()
    };
    let first = page(None).await.unwrap();
    assert_eq!(first.object_size(), Some((10 << 20) + 1));
    assert!(first.e_tag().is_none(), "only what was asked for");
    let op = first.object_parts().unwrap();
    assert_eq!(op.total_parts_count(), Some(3));
    assert_eq!(op.is_truncated(), Some(true));
    let numbers: Vec<_> = op.parts().iter().filter_map(|p| p.part_number()).collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(op.parts()[0].size(), Some(5 << 20));
    let next = op.next_part_number_marker().map(str::to_owned);
    assert_eq!(next.as_deref(), Some("2"));
    let second = page(Some(2)).await.unwrap();
    let op = second.object_parts().unwrap();
    let numbers: Vec<_> = op.parts().iter().filter_map(|p| p.part_number()).collect();
    assert_eq!(numbers, [3]);
    assert_eq!(op.is_truncated(), Some(false));

    assert_eq!(
        failure!(
            s3.get_object_attributes()
                .bucket(&b)
                .key("none")
                .object_attributes(A::Etag)
        ),
        (404, "NoSuchKey".to_owned())
    );
}
