//! Answers where S3 refuses a request and Preflight used to answer
//! differently (issue 9): part numbers, DeleteObjects integrity headers,
//! bucket names, storage classes and explicit grants.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod s3_util;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AccessControlPolicy, Grant, Grantee, Owner, Permission, StorageClass, Type,
};
use common::fixtures::{delete_keys, new_bucket, put_object};
use common::{TestServer, bucket_name, xml_field};
use s3_util::{expect_error, md5_b64, sdk_err};

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

async fn put(s3: &Client, bucket: &str, key: &str, body: &'static [u8]) {
    put_object(s3, bucket, key, body).await;
}

/// A request signed with the root key, sent byte for byte as given.
async fn signed(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> reqwest::Response {
    server
        .signed(method, path, headers, body)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

fn message(body: &str) -> String {
    xml_field(body, "Message").unwrap_or_default()
}

#[tokio::test]
async fn part_numbers_out_of_range_are_invalid_arguments() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "partno").await;
    put(&s3, &bucket, "k", b"hello").await;

    // Before: 0 and 10001 were 416 InvalidPartNumber, like a part the
    // object does not have.
    for n in ["0", "10001", "-1"] {
        let path = format!("/{bucket}/k?partNumber={n}");
        let res = signed(&server, "GET", &path, &[], b"").await;
        let body = expect_error(res, 400, "InvalidArgument").await;
        assert_eq!(
            message(&body),
            "Part number must be an integer between 1 and 10000, inclusive",
            "partNumber={n}"
        );
        let res = signed(&server, "HEAD", &path, &[], b"").await;
        assert_eq!(res.status(), 400, "HEAD partNumber={n}");
    }
    // s3s refuses a part number that is not a number before Preflight sees
    // it: the code is S3's, the message is s3s's.
    let res = signed(
        &server,
        "GET",
        &format!("/{bucket}/k?partNumber=abc"),
        &[],
        b"",
    )
    .await;
    expect_error(res, 400, "InvalidArgument").await;

    assert_eq!(
        sdk_err(
            s3.get_object()
                .bucket(&bucket)
                .key("k")
                .part_number(0)
                .send()
                .await
        ),
        (400, "InvalidArgument".into())
    );
    // In range but not a part of the object: still 416.
    let res = signed(
        &server,
        "GET",
        &format!("/{bucket}/k?partNumber=2"),
        &[],
        b"",
    )
    .await;
    expect_error(res, 416, "InvalidPartNumber").await;
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("k")
        .part_number(1)
        .send()
        .await
        .unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), "hello");
}

const DELETE_XML: &str = "<Delete><Object><Key>k</Key></Object></Delete>";

#[tokio::test]
async fn delete_objects_needs_an_integrity_header() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "delint").await;
    let path = format!("/{bucket}?delete");
    put(&s3, &bucket, "k", b"v").await;

    // Before: accepted without any integrity header.
    let res = signed(&server, "POST", &path, &[], DELETE_XML.as_bytes()).await;
    let body = expect_error(res, 400, "InvalidRequest").await;
    assert_eq!(
        message(&body),
        "Missing required header for this request: Content-MD5"
    );
    // Naming an algorithm without a value is not enough.
    let res = signed(
        &server,
        "POST",
        &path,
        &[("x-amz-sdk-checksum-algorithm", "CRC32")],
        DELETE_XML.as_bytes(),
    )
    .await;
    expect_error(res, 400, "InvalidRequest").await;
    let res = signed(
        &server,
        "POST",
        &path,
        &[("content-md5", "not-an-md5")],
        DELETE_XML.as_bytes(),
    )
    .await;
    expect_error(res, 400, "InvalidDigest").await;
    // Nothing was deleted by the refused requests.
    s3.head_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();

    let md5 = md5_b64(DELETE_XML.as_bytes());
    let res = signed(
        &server,
        "POST",
        &path,
        &[("content-md5", &md5)],
        DELETE_XML.as_bytes(),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("<Deleted>"));

    // The SDK sends a checksum header by default: the usual path works.
    put(&s3, &bucket, "k2", b"v").await;
    let out = delete_keys(&s3, &bucket, &["k2"], None).await;
    assert_eq!(out.deleted().len(), 1);
}

/// A Content-MD5 or checksum that does not match the DeleteObjects body is
/// BadDigest (before: the deletion went ahead).
#[tokio::test]
async fn delete_objects_digest_must_match() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "deldig").await;
    let path = format!("/{bucket}?delete");
    let wrong_md5 = md5_b64(b"something else");
    for header in [
        ("content-md5", wrong_md5.as_str()),
        ("x-amz-checksum-crc32", "AAAAAA=="),
    ] {
        let res = signed(&server, "POST", &path, &[header], DELETE_XML.as_bytes()).await;
        expect_error(res, 400, "BadDigest").await;
    }
}

#[tokio::test]
async fn bucket_names_follow_s3_rules() {
    let server = TestServer::start();
    let s3 = server.client();
    let too_long = "a".repeat(64);
    // Before: the names after "xn--abc" were created (s3s checks only part
    // of S3's rules).
    let invalid = [
        "ab",
        too_long.as_str(),
        "Upper",
        "under_score",
        "-start",
        "end-",
        "a..b",
        "192.168.1.1",
        "xn--abc",
        "abc.-def",
        "abc-.def",
        "sthree-x",
        "sthree-configurator",
        "amzn-s3-demo-bucket",
        "abc-s3alias",
        "abc--ol-s3",
        "abc.mrap",
        "abc--x-s3",
        "abc--table-s3",
    ];
    // Raw requests: the SDK takes `--x-s3` names for directory buckets.
    for (i, name) in invalid.iter().enumerate() {
        let res = signed(&server, "PUT", &format!("/{name}"), &[], b"").await;
        let body = expect_error(res, 400, "InvalidBucketName").await;
        // s3s refuses the first nine itself, with no message.
        if i >= 9 {
            assert_eq!(
                message(&body),
                "The specified bucket is not valid.",
                "{name}"
            );
        }
    }
    for name in ["abc.-def", "sthree-x", "xn--abc"] {
        assert_eq!(
            sdk_err(s3.create_bucket().bucket(name).send().await),
            (400, "InvalidBucketName".into()),
            "{name}"
        );
    }
    assert!(s3.list_buckets().send().await.unwrap().buckets().is_empty());

    let dotted = format!("{}.example", bucket_name("dots"));
    for ok in [dotted.as_str(), "a-b", "1.2.3", &"a".repeat(63)] {
        s3.create_bucket().bucket(ok).send().await.unwrap();
    }
    assert_eq!(s3.list_buckets().send().await.unwrap().buckets().len(), 4);
}

const STORAGE_CLASSES: [&str; 11] = [
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "OUTPOSTS",
    "SNOW",
    "EXPRESS_ONEZONE",
];

#[tokio::test]
async fn storage_classes_are_checked_and_stored_as_standard() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "class").await;
    put(&s3, &bucket, "src", b"v").await;
    let bogus = StorageClass::from("BOGUS");

    // Before: BOGUS was accepted and dropped.
    let res = s3
        .put_object()
        .bucket(&bucket)
        .key("k")
        .storage_class(bogus.clone())
        .body(ByteStream::from_static(b"v"))
        .send()
        .await;
    assert_eq!(sdk_err(res), (400, "InvalidStorageClass".into()));
    let res = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .storage_class(bogus.clone())
        .send()
        .await;
    assert_eq!(sdk_err(res), (400, "InvalidStorageClass".into()));
    let res = s3
        .copy_object()
        .bucket(&bucket)
        .key("k")
        .copy_source(format!("{bucket}/src"))
        .storage_class(bogus)
        .send()
        .await;
    assert_eq!(sdk_err(res), (400, "InvalidStorageClass".into()));
    let res = signed(
        &server,
        "PUT",
        &format!("/{bucket}/k"),
        &[("x-amz-storage-class", "BOGUS")],
        b"v",
    )
    .await;
    let body = expect_error(res, 400, "InvalidStorageClass").await;
    assert_eq!(
        message(&body),
        "The storage class you specified is not valid"
    );
    assert!(
        s3.head_object()
            .bucket(&bucket)
            .key("k")
            .send()
            .await
            .is_err()
    );

    // Every class S3 knows is accepted; Preflight keeps one class of storage.
    for class in STORAGE_CLASSES {
        let key = format!("put-{class}");
        s3.put_object()
            .bucket(&bucket)
            .key(&key)
            .storage_class(StorageClass::from(class))
            .body(ByteStream::from_static(b"v"))
            .send()
            .await
            .unwrap();
        let head = s3
            .head_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.storage_class(), None, "{class}: STANDARD is not sent");
        let upload = s3
            .create_multipart_upload()
            .bucket(&bucket)
            .key(&key)
            .storage_class(StorageClass::from(class))
            .send()
            .await
            .unwrap();
        s3.abort_multipart_upload()
            .bucket(&bucket)
            .key(&key)
            .upload_id(upload.upload_id().unwrap())
            .send()
            .await
            .unwrap();
        s3.copy_object()
            .bucket(&bucket)
            .key(format!("copy-{class}"))
            .copy_source(format!("{bucket}/src"))
            .storage_class(StorageClass::from(class))
            .send()
            .await
            .unwrap();
    }
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(listed.contents().len(), 1 + 2 * STORAGE_CLASSES.len());
    assert!(
        listed
            .contents()
            .iter()
            .all(|o| o.storage_class().map(|c| c.as_str()) == Some("STANDARD"))
    );
}

const OBJECT_GRANTS: [&str; 4] = [
    "x-amz-grant-full-control",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
];
const BUCKET_GRANTS: [&str; 5] = [
    "x-amz-grant-full-control",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write",
    "x-amz-grant-write-acp",
];

/// An operation that takes grant headers: name, method, path, the grant
/// headers it has, other headers it needs.
type GrantCase<'a> = (
    &'a str,
    &'a str,
    String,
    &'a [&'a str],
    Vec<(&'a str, &'a str)>,
);

#[tokio::test]
async fn grant_headers_are_not_implemented() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "grants").await;
    put(&s3, &bucket, "src", b"v").await;
    let new_bucket_path = format!("/{}", bucket_name("grants-new"));
    let copy_source = format!("/{bucket}/src");
    let grantee = format!("uri=\"{ALL_USERS}\"");

    // Before: every one of these succeeded and the grant was dropped.
    let cases: Vec<GrantCase> = vec![
        (
            "CreateBucket",
            "PUT",
            new_bucket_path.clone(),
            &BUCKET_GRANTS,
            vec![],
        ),
        (
            "PutBucketAcl",
            "PUT",
            format!("/{bucket}?acl"),
            &BUCKET_GRANTS,
            vec![],
        ),
        (
            "PutObject",
            "PUT",
            format!("/{bucket}/put"),
            &OBJECT_GRANTS,
            vec![],
        ),
        (
            "CopyObject",
            "PUT",
            format!("/{bucket}/copy"),
            &OBJECT_GRANTS,
            vec![("x-amz-copy-source", copy_source.as_str())],
        ),
        (
            "CreateMultipartUpload",
            "POST",
            format!("/{bucket}/mpu?uploads"),
            &OBJECT_GRANTS,
            vec![],
        ),
        (
            "PutObjectAcl",
            "PUT",
            format!("/{bucket}/src?acl"),
            &BUCKET_GRANTS,
            vec![],
        ),
    ];
    for (op, method, path, grants, others) in &cases {
        for grant in grants.iter() {
            let mut headers = others.clone();
            headers.push((grant, grantee.as_str()));
            let res = signed(&server, method, path, &headers, b"").await;
            let body = expect_error(res, 501, "NotImplemented").await;
            let msg = message(&body);
            assert!(
                msg.contains(&format!("{grant} header")) && msg.contains("x-amz-acl"),
                "{op} {grant}: {msg}"
            );
        }
    }
    // Nothing was created or changed by the refused requests.
    let buckets = s3.list_buckets().send().await.unwrap();
    assert_eq!(buckets.buckets().len(), 1);
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(listed.contents().len(), 1);
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());
    for acl in [
        s3.get_bucket_acl()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .grants()
            .len(),
        s3.get_object_acl()
            .bucket(&bucket)
            .key("src")
            .send()
            .await
            .unwrap()
            .grants()
            .len(),
    ] {
        assert_eq!(acl, 1, "only the owner's FULL_CONTROL");
    }
    // The SDK's grant setters take the same path.
    let res = s3
        .put_object()
        .bucket(&bucket)
        .key("sdk")
        .grant_read(&grantee)
        .body(ByteStream::from_static(b"v"))
        .send()
        .await;
    assert_eq!(sdk_err(res), (501, "NotImplemented".into()));
}

fn canonical(id: &str) -> Grantee {
    Grantee::builder()
        .r#type(Type::CanonicalUser)
        .id(id)
        .build()
        .unwrap()
}

fn group(uri: &str) -> Grantee {
    Grantee::builder()
        .r#type(Type::Group)
        .uri(uri)
        .build()
        .unwrap()
}

fn grant(grantee: Grantee, permission: Permission) -> Grant {
    Grant::builder()
        .grantee(grantee)
        .permission(permission)
        .build()
}

#[tokio::test]
async fn acl_bodies_beyond_canned_acls_are_not_implemented() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "aclbody").await;
    put(&s3, &bucket, "k", b"v").await;
    let owner_id = s3
        .get_bucket_acl()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .owner()
        .and_then(|o| o.id())
        .unwrap()
        .to_owned();
    let owner = Owner::builder().id(&owner_id).build();
    let other = "0".repeat(64);
    let policy = |grants: Vec<Grant>| {
        AccessControlPolicy::builder()
            .owner(owner.clone())
            .set_grants(Some(grants))
            .build()
    };
    let owner_full = || grant(canonical(&owner_id), Permission::FullControl);

    // Before: FULL_CONTROL for another account was accepted as `private`.
    let refused = [
        vec![
            owner_full(),
            grant(canonical(&other), Permission::FullControl),
        ],
        vec![grant(canonical(&other), Permission::FullControl)],
        vec![owner_full(), grant(canonical(&other), Permission::Read)],
        vec![owner_full(), grant(group(ALL_USERS), Permission::ReadAcp)],
        vec![
            owner_full(),
            grant(group(ALL_USERS), Permission::Read),
            grant(
                group("http://acs.amazonaws.com/groups/global/AuthenticatedUsers"),
                Permission::Read,
            ),
        ],
    ];
    for grants in refused {
        let res = s3
            .put_bucket_acl()
            .bucket(&bucket)
            .access_control_policy(policy(grants.clone()))
            .send()
            .await;
        assert_eq!(sdk_err(res), (501, "NotImplemented".into()), "{grants:?}");
        let res = s3
            .put_object_acl()
            .bucket(&bucket)
            .key("k")
            .access_control_policy(policy(grants.clone()))
            .send()
            .await;
        assert_eq!(sdk_err(res), (501, "NotImplemented".into()), "{grants:?}");
    }
    let acl = s3.get_bucket_acl().bucket(&bucket).send().await.unwrap();
    assert_eq!(acl.grants().len(), 1, "still private");

    // What a canned ACL expresses is accepted.
    s3.put_bucket_acl()
        .bucket(&bucket)
        .access_control_policy(policy(vec![
            owner_full(),
            grant(group(ALL_USERS), Permission::Read),
        ]))
        .send()
        .await
        .unwrap();
    let acl = s3.get_bucket_acl().bucket(&bucket).send().await.unwrap();
    let uris: Vec<&str> = acl
        .grants()
        .iter()
        .filter_map(|g| g.grantee().and_then(|g| g.uri()))
        .collect();
    assert_eq!(uris, [ALL_USERS]);
    s3.put_object_acl()
        .bucket(&bucket)
        .key("k")
        .access_control_policy(policy(vec![owner_full()]))
        .send()
        .await
        .unwrap();
}

/// A client's mistakes are the client's to fix: they are not logged as
/// server errors (s3s would log each at ERROR); a server log at its
/// default level stays free of them.
#[tokio::test]
async fn client_mistakes_are_not_logged_as_errors() {
    let server = TestServer::start();
    let s3 = server.client();
    let res = s3.create_bucket().bucket("Not_A_Valid_Name").send().await;
    assert_eq!(sdk_err(res).0, 400);
    let bucket = new_bucket(&s3, "quiet-log").await;
    let res = s3.get_object().bucket(&bucket).key("missing").send().await;
    assert_eq!(sdk_err(res), (404, "NoSuchKey".into()));
    let wrong = common::client_for(&server.endpoint, common::ACCESS_KEY, "not-the-secret", true);
    let res = wrong.list_objects_v2().bucket(&bucket).send().await;
    assert_eq!(sdk_err(res), (403, "SignatureDoesNotMatch".into()));
    let unknown = common::client_for(&server.endpoint, "AKIANOSUCHKEY0000000", "x", true);
    let res = unknown.list_objects_v2().bucket(&bucket).send().await;
    assert_eq!(sdk_err(res).0, 403);
    // Whatever was logged got there before the answers above.
    let log = server.log();
    assert!(
        !log.contains("ERROR"),
        "client mistakes logged as errors:\n{log}"
    );
}
