//! Canned ACLs: `x-amz-acl` on CreateBucket, PutObject, CopyObject and
//! CreateMultipartUpload, Put/Get Bucket/Object ACL, and what anonymous
//! requests may do. An anonymous request succeeds exactly where an ACL grants
//! it; everything else is 403 AccessDenied.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod s3_util;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketCannedAcl, CompletedMultipartUpload, CompletedPart, Grant, ObjectCannedAcl, Permission,
};
use common::{TestServer, bucket_name, xml_field};
use s3_util::expect_error;

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

async fn bucket_with_acl(s3: &Client, tag: &str, acl: Option<BucketCannedAcl>) -> String {
    let bucket = bucket_name(tag);
    s3.create_bucket()
        .bucket(&bucket)
        .set_acl(acl)
        .send()
        .await
        .unwrap();
    bucket
}

async fn put_with_acl(s3: &Client, bucket: &str, key: &str, acl: Option<ObjectCannedAcl>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .set_acl(acl)
        .body(ByteStream::from(format!("body of {key}").into_bytes()))
        .send()
        .await
        .unwrap();
}

/// The (group URI, permission) pairs of the group grants, and whether the
/// owner has FULL_CONTROL.
fn summarize(grants: &[Grant]) -> (bool, Vec<(String, String)>) {
    let mut owner_full = false;
    let mut groups = Vec::new();
    for g in grants {
        let grantee = g.grantee().unwrap();
        let perm = g.permission().unwrap().as_str().to_owned();
        match grantee.uri() {
            Some(uri) => groups.push((uri.to_owned(), perm)),
            None => owner_full |= grantee.id().is_some() && perm == "FULL_CONTROL",
        }
    }
    groups.sort();
    (owner_full, groups)
}

fn all_users(perms: &[&str]) -> Vec<(String, String)> {
    perms
        .iter()
        .map(|p| (ALL_USERS.to_owned(), (*p).to_owned()))
        .collect()
}

#[tokio::test]
async fn public_read_bucket() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = bucket_with_acl(&s3, "pub", Some(BucketCannedAcl::PublicRead)).await;
    put_with_acl(
        &s3,
        &bucket,
        "public.txt",
        Some(ObjectCannedAcl::PublicRead),
    )
    .await;
    put_with_acl(&s3, &bucket, "private.txt", None).await;

    let acl = s3.get_bucket_acl().bucket(&bucket).send().await.unwrap();
    assert_eq!(summarize(acl.grants()), (true, all_users(&["READ"])));
    assert!(acl.owner().unwrap().id().is_some());

    let http = server.http();
    // Listing is granted: v1 and v2.
    let res = http
        .get(server.url(&format!("/{bucket}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("<Key>public.txt</Key>") && body.contains("<Key>private.txt</Key>"),
        "{body}"
    );
    let res = http
        .get(server.url(&format!("/{bucket}?list-type=2")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .head(server.url(&format!("/{bucket}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // A public object: GET and HEAD.
    let res = http
        .get(server.url(&format!("/{bucket}/public.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "body of public.txt");
    let res = http
        .head(server.url(&format!("/{bucket}/public.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-length"], "18");

    // A private object in a public-read bucket.
    let res = http
        .get(server.url(&format!("/{bucket}/private.txt")))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let res = http
        .head(server.url(&format!("/{bucket}/private.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // A missing key: the bucket grants listing, so NoSuchKey.
    let res = http
        .get(server.url(&format!("/{bucket}/missing")))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, 404, "NoSuchKey").await;
    // S3 names the key (and, for NoSuchBucket, the bucket) in the error.
    assert_eq!(
        xml_field(&body, "Key").as_deref(),
        Some("missing"),
        "{body}"
    );
    let res = http
        .get(server.url("/no-such-bucket-here/k"))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, 404, "NoSuchBucket").await;
    assert_eq!(
        xml_field(&body, "BucketName").as_deref(),
        Some("no-such-bucket-here"),
        "{body}"
    );

    // Reading is not writing, and ACLs are the owner's.
    let res = http
        .put(server.url(&format!("/{bucket}/new.txt")))
        .body("x")
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let res = http
        .delete(server.url(&format!("/{bucket}/public.txt")))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let res = http
        .get(server.url(&format!("/{bucket}?acl")))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let res = http
        .get(server.url(&format!("/{bucket}/public.txt?acl")))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let res = http
        .get(server.url(&format!("/{bucket}?location")))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let res = http
        .delete(server.url(&format!("/{bucket}")))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let res = http
        .get(server.url(&format!("/{bucket}?uploads")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "ListMultipartUploads is a bucket READ");
}

#[tokio::test]
async fn private_bucket() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = bucket_with_acl(&s3, "priv", None).await;
    put_with_acl(
        &s3,
        &bucket,
        "public.txt",
        Some(ObjectCannedAcl::PublicRead),
    )
    .await;
    put_with_acl(&s3, &bucket, "private.txt", Some(ObjectCannedAcl::Private)).await;
    put_with_acl(
        &s3,
        &bucket,
        "auth.txt",
        Some(ObjectCannedAcl::AuthenticatedRead),
    )
    .await;

    let acl = s3.get_bucket_acl().bucket(&bucket).send().await.unwrap();
    assert_eq!(summarize(acl.grants()), (true, vec![]));
    let acl = s3
        .get_object_acl()
        .bucket(&bucket)
        .key("public.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(summarize(acl.grants()), (true, all_users(&["READ"])));
    let acl = s3
        .get_object_acl()
        .bucket(&bucket)
        .key("private.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(summarize(acl.grants()), (true, vec![]));

    let http = server.http();
    // A public object is readable even though the bucket is not listable.
    let res = http
        .get(server.url(&format!("/{bucket}/public.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "body of public.txt");
    let res = http
        .head(server.url(&format!("/{bucket}/public.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for key in ["private.txt", "auth.txt"] {
        let res = http
            .get(server.url(&format!("/{bucket}/{key}")))
            .send()
            .await
            .unwrap();
        expect_error(res, 403, "AccessDenied").await;
    }
    // A missing key does not reveal itself without list permission.
    let res = http
        .get(server.url(&format!("/{bucket}/missing")))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let res = http
        .get(server.url(&format!("/{bucket}")))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let res = http
        .head(server.url(&format!("/{bucket}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = http
        .put(server.url(&format!("/{bucket}/x")))
        .body("x")
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    // The service: ListBuckets and CreateBucket.
    let res = http.get(server.url("/")).send().await.unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let res = http
        .put(server.url("/anonymous-bucket"))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let buckets = s3.list_buckets().send().await.unwrap();
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, [bucket.as_str()]);
    // Owner-only operations on a missing bucket are denied too, not NoSuchBucket.
    let res = http
        .get(server.url("/no-such-bucket-a?acl"))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    // Reads of a missing bucket are NoSuchBucket.
    let res = http
        .get(server.url("/no-such-bucket-a/k"))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NoSuchBucket").await;
}

#[tokio::test]
async fn public_read_write_bucket() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = bucket_with_acl(&s3, "pubrw", Some(BucketCannedAcl::PublicReadWrite)).await;
    let acl = s3.get_bucket_acl().bucket(&bucket).send().await.unwrap();
    assert_eq!(
        summarize(acl.grants()),
        (true, all_users(&["READ", "WRITE"]))
    );

    let http = server.http();
    let res = http
        .put(server.url(&format!("/{bucket}/dropped.txt")))
        .body("anonymous upload")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("dropped.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"anonymous upload"
    );
    let res = http
        .get(server.url(&format!("/{bucket}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .delete(server.url(&format!("/{bucket}/dropped.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // Bucket settings stay the owner's.
    let res = http
        .put(server.url(&format!("/{bucket}?acl")))
        .header("x-amz-acl", "private")
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let res = http
        .delete(server.url(&format!("/{bucket}")))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
}

#[tokio::test]
async fn put_bucket_and_object_acl() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = bucket_with_acl(&s3, "putacl", None).await;
    put_with_acl(&s3, &bucket, "k", None).await;
    let http = server.http();
    let list_url = server.url(&format!("/{bucket}"));
    let object_url = server.url(&format!("/{bucket}/k"));
    assert_eq!(http.get(&list_url).send().await.unwrap().status(), 403);
    assert_eq!(http.get(&object_url).send().await.unwrap().status(), 403);

    s3.put_bucket_acl()
        .bucket(&bucket)
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let acl = s3.get_bucket_acl().bucket(&bucket).send().await.unwrap();
    assert_eq!(summarize(acl.grants()), (true, all_users(&["READ"])));
    assert_eq!(http.get(&list_url).send().await.unwrap().status(), 200);
    // The bucket's ACL does not make its objects readable.
    assert_eq!(http.get(&object_url).send().await.unwrap().status(), 403);

    s3.put_object_acl()
        .bucket(&bucket)
        .key("k")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let acl = s3
        .get_object_acl()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(summarize(acl.grants()), (true, all_users(&["READ"])));
    assert_eq!(http.get(&object_url).send().await.unwrap().status(), 200);

    // And back to private.
    s3.put_bucket_acl()
        .bucket(&bucket)
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .unwrap();
    s3.put_object_acl()
        .bucket(&bucket)
        .key("k")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await
        .unwrap();
    assert_eq!(http.get(&list_url).send().await.unwrap().status(), 403);
    assert_eq!(http.get(&object_url).send().await.unwrap().status(), 403);

    let missing = s3
        .get_object_acl()
        .bucket(&bucket)
        .key("missing")
        .send()
        .await;
    assert_eq!(s3_util::sdk_err(missing), (404, "NoSuchKey".into()));
}

#[tokio::test]
async fn acl_on_copy_and_multipart() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = bucket_with_acl(&s3, "aclcopy", None).await;
    put_with_acl(&s3, &bucket, "src", Some(ObjectCannedAcl::PublicRead)).await;
    let http = server.http();

    s3.copy_object()
        .bucket(&bucket)
        .key("copy-public")
        .copy_source(format!("{bucket}/src"))
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    // A copy does not inherit the source's ACL: without x-amz-acl it is private.
    s3.copy_object()
        .bucket(&bucket)
        .key("copy-private")
        .copy_source(format!("{bucket}/src"))
        .send()
        .await
        .unwrap();
    let res = http
        .get(server.url(&format!("/{bucket}/copy-public")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "body of src");
    let res = http
        .get(server.url(&format!("/{bucket}/copy-private")))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;

    let upload = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("mpu")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let part = s3
        .upload_part()
        .bucket(&bucket)
        .key("mpu")
        .upload_id(upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"multipart body"))
        .send()
        .await
        .unwrap();
    // Until completed, there is nothing to read.
    let res = http
        .get(server.url(&format!("/{bucket}/mpu")))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    s3.complete_multipart_upload()
        .bucket(&bucket)
        .key("mpu")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let res = http
        .get(server.url(&format!("/{bucket}/mpu")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "multipart body");
    let acl = s3
        .get_object_acl()
        .bucket(&bucket)
        .key("mpu")
        .send()
        .await
        .unwrap();
    let grants = acl.grants();
    assert!(grants.iter().any(|g| {
        g.grantee().and_then(|g| g.uri()) == Some(ALL_USERS)
            && g.permission() == Some(&Permission::Read)
    }));
}
