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
use aws_sdk_s3::types::{BucketCannedAcl, Grant, ObjectCannedAcl, Permission};
use common::fixtures::{completed, get_bytes, upload_part};
use common::{TestServer, bucket_name, xml_field};
use reqwest::Method;
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

/// [`summarize`] of an object's ACL.
async fn object_grants(s3: &Client, bucket: &str, key: &str) -> (bool, Vec<(String, String)>) {
    let acl = s3
        .get_object_acl()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    summarize(acl.grants())
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

    // Listing is granted: v1 and v2.
    let res = server.anon_get(&format!("/{bucket}")).await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("<Key>public.txt</Key>") && body.contains("<Key>private.txt</Key>"),
        "{body}"
    );
    let res = server.anon_get(&format!("/{bucket}?list-type=2")).await;
    assert_eq!(res.status(), 200);
    let res = server.anon(Method::HEAD, &format!("/{bucket}")).await;
    assert_eq!(res.status(), 200);

    // A public object: GET and HEAD.
    let res = server.anon_get(&format!("/{bucket}/public.txt")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "body of public.txt");
    let res = server
        .anon(Method::HEAD, &format!("/{bucket}/public.txt"))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-length"], "18");

    // A private object in a public-read bucket.
    let res = server.anon_get(&format!("/{bucket}/private.txt")).await;
    expect_error(res, 403, "AccessDenied").await;
    let res = server
        .anon(Method::HEAD, &format!("/{bucket}/private.txt"))
        .await;
    assert_eq!(res.status(), 403);

    // A missing key: the bucket grants listing, so NoSuchKey.
    let res = server.anon_get(&format!("/{bucket}/missing")).await;
    let body = expect_error(res, 404, "NoSuchKey").await;
    // S3 names the key (and, for NoSuchBucket, the bucket) in the error.
    assert_eq!(
        xml_field(&body, "Key").as_deref(),
        Some("missing"),
        "{body}"
    );
    let res = server.anon_get("/no-such-bucket-here/k").await;
    let body = expect_error(res, 404, "NoSuchBucket").await;
    assert_eq!(
        xml_field(&body, "BucketName").as_deref(),
        Some("no-such-bucket-here"),
        "{body}"
    );

    // Reading is not writing, and ACLs are the owner's.
    let res = server.anon_put(&format!("/{bucket}/new.txt"), "x").await;
    expect_error(res, 403, "AccessDenied").await;
    for (method, path) in [
        (Method::DELETE, format!("/{bucket}/public.txt")),
        (Method::GET, format!("/{bucket}?acl")),
        (Method::GET, format!("/{bucket}/public.txt?acl")),
        (Method::GET, format!("/{bucket}?location")),
        (Method::DELETE, format!("/{bucket}")),
    ] {
        expect_error(server.anon(method, &path).await, 403, "AccessDenied").await;
    }
    let res = server.anon_get(&format!("/{bucket}?uploads")).await;
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
    assert_eq!(
        object_grants(&s3, &bucket, "public.txt").await,
        (true, all_users(&["READ"]))
    );
    assert_eq!(
        object_grants(&s3, &bucket, "private.txt").await,
        (true, vec![])
    );

    // A public object is readable even though the bucket is not listable.
    let res = server.anon_get(&format!("/{bucket}/public.txt")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "body of public.txt");
    let res = server
        .anon(Method::HEAD, &format!("/{bucket}/public.txt"))
        .await;
    assert_eq!(res.status(), 200);
    // A missing key does not reveal itself without list permission.
    for path in ["/private.txt", "/auth.txt", "/missing", ""] {
        let res = server.anon_get(&format!("/{bucket}{path}")).await;
        expect_error(res, 403, "AccessDenied").await;
    }
    let res = server.anon(Method::HEAD, &format!("/{bucket}")).await;
    assert_eq!(res.status(), 403);
    let res = server.anon_put(&format!("/{bucket}/x"), "x").await;
    expect_error(res, 403, "AccessDenied").await;
    // The service: ListBuckets and CreateBucket.
    let res = server.anon_get("/").await;
    expect_error(res, 403, "AccessDenied").await;
    let res = server.anon(Method::PUT, "/anonymous-bucket").await;
    expect_error(res, 403, "AccessDenied").await;
    let buckets = s3.list_buckets().send().await.unwrap();
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, [bucket.as_str()]);
    // Owner-only operations on a missing bucket are denied too, not NoSuchBucket.
    let res = server.anon_get("/no-such-bucket-a?acl").await;
    expect_error(res, 403, "AccessDenied").await;
    // Reads of a missing bucket are NoSuchBucket.
    let res = server.anon_get("/no-such-bucket-a/k").await;
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

    let res = server
        .anon_put(&format!("/{bucket}/dropped.txt"), "anonymous upload")
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        get_bytes(&s3, &bucket, "dropped.txt").await,
        b"anonymous upload"
    );
    let res = server.anon_get(&format!("/{bucket}")).await;
    assert_eq!(res.status(), 200);
    let res = server
        .anon(Method::DELETE, &format!("/{bucket}/dropped.txt"))
        .await;
    assert_eq!(res.status(), 204);
    // Bucket settings stay the owner's.
    let res = server
        .http()
        .put(server.url(&format!("/{bucket}?acl")))
        .header("x-amz-acl", "private")
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let res = server.anon(Method::DELETE, &format!("/{bucket}")).await;
    expect_error(res, 403, "AccessDenied").await;
}

async fn set_bucket_acl(s3: &Client, bucket: &str, acl: BucketCannedAcl) {
    s3.put_bucket_acl()
        .bucket(bucket)
        .acl(acl)
        .send()
        .await
        .unwrap();
}

async fn set_object_acl(s3: &Client, bucket: &str, key: &str, acl: ObjectCannedAcl) {
    s3.put_object_acl()
        .bucket(bucket)
        .key(key)
        .acl(acl)
        .send()
        .await
        .unwrap();
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

    set_bucket_acl(&s3, &bucket, BucketCannedAcl::PublicRead).await;
    let acl = s3.get_bucket_acl().bucket(&bucket).send().await.unwrap();
    assert_eq!(summarize(acl.grants()), (true, all_users(&["READ"])));
    assert_eq!(http.get(&list_url).send().await.unwrap().status(), 200);
    // The bucket's ACL does not make its objects readable.
    assert_eq!(http.get(&object_url).send().await.unwrap().status(), 403);

    set_object_acl(&s3, &bucket, "k", ObjectCannedAcl::PublicRead).await;
    assert_eq!(
        object_grants(&s3, &bucket, "k").await,
        (true, all_users(&["READ"]))
    );
    assert_eq!(http.get(&object_url).send().await.unwrap().status(), 200);

    // And back to private.
    set_bucket_acl(&s3, &bucket, BucketCannedAcl::Private).await;
    set_object_acl(&s3, &bucket, "k", ObjectCannedAcl::Private).await;
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
    let res = server.anon_get(&format!("/{bucket}/copy-public")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "body of src");
    let res = server.anon_get(&format!("/{bucket}/copy-private")).await;
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
    let part = upload_part(&s3, &bucket, "mpu", upload_id, 1, b"multipart body").await;
    // Until completed, there is nothing to read.
    let res = server.anon_get(&format!("/{bucket}/mpu")).await;
    expect_error(res, 403, "AccessDenied").await;
    s3.complete_multipart_upload()
        .bucket(&bucket)
        .key("mpu")
        .upload_id(upload_id)
        .multipart_upload(completed(&[(1, &part)]))
        .send()
        .await
        .unwrap();
    let res = server.anon_get(&format!("/{bucket}/mpu")).await;
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
