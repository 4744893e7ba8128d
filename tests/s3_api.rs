//! Buckets, presigned URLs, bad input, virtual-hosted style and graceful
//! shutdown, against the real server.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod s3_util;

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketCannedAcl, BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectCannedAcl,
    ObjectIdentifier,
};
use common::{ACCESS_KEY, SECRET_KEY, TestServer, bucket_name, client_for};
use s3_util::{assert_xml_error, expect_error, sdk_err};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn new_bucket(s3: &Client, tag: &str) -> String {
    let bucket = bucket_name(tag);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    bucket
}

async fn put(s3: &Client, bucket: &str, key: &str, body: &'static [u8]) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .unwrap();
}

fn location(region: &str) -> CreateBucketConfiguration {
    CreateBucketConfiguration::builder()
        .location_constraint(BucketLocationConstraint::from(region))
        .build()
}

#[tokio::test]
async fn bucket_life_cycle() {
    let server = TestServer::start();
    let s3 = server.client();
    let listed = s3.list_buckets().send().await.unwrap();
    assert!(listed.buckets().is_empty());
    assert!(listed.owner().and_then(|o| o.id()).is_some());

    let a = bucket_name("b-a");
    let b = bucket_name("b-b");
    s3.create_bucket().bucket(&a).send().await.unwrap();
    // A LocationConstraint equal to the server's region is accepted.
    s3.create_bucket()
        .bucket(&b)
        .create_bucket_configuration(location("us-east-1"))
        .send()
        .await
        .unwrap();
    let listed = s3.list_buckets().send().await.unwrap();
    let names: Vec<&str> = listed.buckets().iter().filter_map(|x| x.name()).collect();
    assert_eq!(names, [a.as_str(), b.as_str()]);
    assert!(listed.buckets().iter().all(|x| x.creation_date().is_some()));

    let other = s3
        .create_bucket()
        .bucket(bucket_name("b-eu"))
        .create_bucket_configuration(location("eu-west-1"))
        .send()
        .await;
    assert_eq!(
        sdk_err(other),
        (400, "IllegalLocationConstraintException".into())
    );
    // The owner re-creating a bucket in us-east-1: 200, as S3 answers
    // there "for legacy compatibility", with the ACL reset to the one the
    // request names (private by default) and the objects kept.
    s3.put_bucket_acl()
        .bucket(&a)
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket(&a)
        .key("kept")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    s3.create_bucket().bucket(&a).send().await.unwrap();
    let acl = s3.get_bucket_acl().bucket(&a).send().await.unwrap();
    let public = acl.grants().iter().any(|g| {
        g.grantee()
            .and_then(|g| g.uri())
            .is_some_and(|u| u.ends_with("/global/AllUsers"))
    });
    assert!(!public, "the re-creation reset the ACL to private");
    s3.head_object()
        .bucket(&a)
        .key("kept")
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket(&a)
        .key("kept")
        .send()
        .await
        .unwrap();

    s3.head_bucket().bucket(&a).send().await.unwrap();
    assert_eq!(
        sdk_err(s3.head_bucket().bucket("no-such-bucket-h").send().await).0,
        404
    );
    // us-east-1 is reported as an empty constraint, as S3 does.
    let loc = s3.get_bucket_location().bucket(&a).send().await.unwrap();
    assert_eq!(
        loc.location_constraint().map(|l| l.as_str()).unwrap_or(""),
        ""
    );
    assert_eq!(
        sdk_err(
            s3.get_bucket_location()
                .bucket("no-such-bucket-l")
                .send()
                .await
        ),
        (404, "NoSuchBucket".into())
    );

    put(&s3, &a, "k", b"v").await;
    assert_eq!(
        sdk_err(s3.delete_bucket().bucket(&a).send().await),
        (409, "BucketNotEmpty".into())
    );
    s3.delete_object().bucket(&a).key("k").send().await.unwrap();
    s3.delete_bucket().bucket(&a).send().await.unwrap();
    assert_eq!(
        sdk_err(s3.delete_bucket().bucket(&a).send().await),
        (404, "NoSuchBucket".into())
    );
    assert_eq!(sdk_err(s3.head_bucket().bucket(&a).send().await).0, 404);
    let listed = s3.list_buckets().send().await.unwrap();
    let names: Vec<&str> = listed.buckets().iter().filter_map(|x| x.name()).collect();
    assert_eq!(names, [b.as_str()]);
}

#[tokio::test]
async fn invalid_bucket_names() {
    let server = TestServer::start();
    let s3 = server.client();
    for name in ["Bad_Name", "ab", "-leading-dash"] {
        assert_eq!(
            sdk_err(s3.create_bucket().bucket(name).send().await),
            (400, "InvalidBucketName".into()),
            "{name}"
        );
    }
    // Raw HTTP: the name is refused before anything else is looked at.
    let res = server
        .http()
        .put(server.url("/Bad_Name"))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "InvalidBucketName").await;
    assert!(s3.list_buckets().send().await.unwrap().buckets().is_empty());
}

#[tokio::test]
async fn other_region() {
    let server = TestServer::start_with(&["--region", "eu-central-1"]);
    // Signed for the server's region: S3 refuses another region's scope.
    let config = server
        .client()
        .config()
        .to_builder()
        .region(aws_sdk_s3::config::Region::new("eu-central-1"))
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(config);
    let bucket = bucket_name("region");
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(location("eu-central-1"))
        .send()
        .await
        .unwrap();
    let loc = s3
        .get_bucket_location()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        loc.location_constraint().map(|l| l.as_str()),
        Some("eu-central-1")
    );
    let wrong = s3
        .create_bucket()
        .bucket(bucket_name("region"))
        .create_bucket_configuration(location("us-west-2"))
        .send()
        .await;
    assert_eq!(
        sdk_err(wrong),
        (400, "IllegalLocationConstraintException".into())
    );
}

fn presign_cfg(secs: u64) -> PresigningConfig {
    PresigningConfig::expires_in(Duration::from_secs(secs)).unwrap()
}

#[tokio::test]
async fn presigned_urls() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "presign").await;
    let http = server.http();

    let put_url = s3
        .put_object()
        .bucket(&bucket)
        .key("up.txt")
        .content_type("text/plain")
        .presigned(presign_cfg(600))
        .await
        .unwrap();
    let mut req = http.put(put_url.uri()).body("uploaded via URL");
    for (name, value) in put_url.headers() {
        req = req.header(name, value);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("etag"));

    let get_url = s3
        .get_object()
        .bucket(&bucket)
        .key("up.txt")
        .presigned(presign_cfg(600))
        .await
        .unwrap();
    let res = http.get(get_url.uri()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(res.text().await.unwrap(), "uploaded via URL");

    // A tampered signature.
    let uri = get_url.uri();
    let at = uri.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &uri[at..at + 1] == "0" { "1" } else { "0" };
    let tampered = format!("{}{}{}", &uri[..at], flipped, &uri[at + 1..]);
    let res = http.get(&tampered).send().await.unwrap();
    expect_error(res, 403, "SignatureDoesNotMatch").await;

    // Over seven days: refused before the signature is looked at.
    let week = s3
        .get_object()
        .bucket(&bucket)
        .key("up.txt")
        .presigned(presign_cfg(604_800))
        .await
        .unwrap();
    assert!(week.uri().contains("X-Amz-Expires=604800"));
    let res = http.get(week.uri()).send().await.unwrap();
    assert_eq!(res.status(), 200, "exactly seven days is allowed");
    let too_long = week
        .uri()
        .replace("X-Amz-Expires=604800", "X-Amz-Expires=604801");
    let res = http.get(&too_long).send().await.unwrap();
    let body = expect_error(res, 400, "AuthorizationQueryParametersError").await;
    assert!(body.contains("604800"), "{body}");
    // Negative: said so, not "should be a number".
    let negative = week
        .uri()
        .replace("X-Amz-Expires=604800", "X-Amz-Expires=-7");
    let res = http.get(&negative).send().await.unwrap();
    let body = expect_error(res, 400, "AuthorizationQueryParametersError").await;
    let message = common::xml_field(&body, "Message").unwrap_or_default();
    assert_eq!(message, "X-Amz-Expires must be non-negative", "{body}");

    // Expired.
    let short = s3
        .get_object()
        .bucket(&bucket)
        .key("up.txt")
        .presigned(presign_cfg(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = http.get(short.uri()).send().await.unwrap();
    let body = expect_error(res, 403, "AccessDenied").await;
    let message = common::xml_field(&body, "Message").unwrap_or_default();
    assert!(message.contains("Request has expired"), "{body}");
}

#[tokio::test]
async fn credentials_are_checked() {
    let server = TestServer::start();
    let bucket = new_bucket(&server.client(), "creds").await;
    let wrong_secret = client_for(&server.endpoint, ACCESS_KEY, "not-the-secret", true);
    assert_eq!(
        sdk_err(wrong_secret.list_objects_v2().bucket(&bucket).send().await),
        (403, "SignatureDoesNotMatch".into())
    );
    let put = wrong_secret
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(sdk_err(put), (403, "SignatureDoesNotMatch".into()));
    let unknown = client_for(&server.endpoint, "AKIAUNKNOWNKEY000000", SECRET_KEY, true);
    assert_eq!(
        sdk_err(unknown.list_buckets().send().await),
        (403, "InvalidAccessKeyId".into())
    );
    let list = server
        .client()
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(list.key_count(), Some(0));
}

#[tokio::test]
async fn bad_input_is_refused() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "bad").await;

    let long_key = "k".repeat(1025);
    let res = s3
        .put_object()
        .bucket(&bucket)
        .key(&long_key)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(sdk_err(res), (400, "KeyTooLongError".into()));
    put(&s3, &bucket, &"k".repeat(1024), b"x").await;

    let res = s3
        .put_object()
        .bucket(&bucket)
        .key("meta")
        .metadata("big", "v".repeat(2100))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(sdk_err(res), (400, "MetadataTooLarge".into()));
    let res = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("meta")
        .metadata("big", "v".repeat(2100))
        .send()
        .await;
    assert_eq!(sdk_err(res), (400, "MetadataTooLarge".into()));
    s3.put_object()
        .bucket(&bucket)
        .key("meta")
        .metadata("fits", "v".repeat(1900))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();

    // DeleteObjects with a body that is not the Delete document.
    let delete = Delete::builder()
        .objects(ObjectIdentifier::builder().key("meta").build().unwrap())
        .build()
        .unwrap();
    let res = s3
        .delete_objects()
        .bucket(&bucket)
        .delete(delete)
        .customize()
        .mutate_request(|req| {
            const GARBAGE: &str = "<Delete><Object>";
            *req.body_mut() = GARBAGE.into();
            req.headers_mut()
                .insert("content-length", GARBAGE.len().to_string());
            // The integrity header must describe the body actually sent, or
            // the answer is BadDigest before the XML is read.
            let checksums: Vec<String> = req
                .headers()
                .iter()
                .map(|(name, _)| name.to_owned())
                .filter(|name| name.starts_with("x-amz-checksum-"))
                .collect();
            for name in checksums {
                req.headers_mut().remove(name);
            }
            let md5 = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                <md5::Md5 as md5::Digest>::digest(GARBAGE.as_bytes()),
            );
            req.headers_mut().insert("content-md5", md5);
        })
        .send()
        .await;
    assert_eq!(sdk_err(res), (400, "MalformedXML".into()));
    // Nothing was deleted.
    s3.head_object()
        .bucket(&bucket)
        .key("meta")
        .send()
        .await
        .unwrap();

    // Canned ACLs are a closed list.
    let res = s3
        .put_object()
        .bucket(&bucket)
        .key("acl")
        .acl(ObjectCannedAcl::from("everyone-may-write"))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(sdk_err(res).0, 400);
    let res = s3
        .create_bucket()
        .bucket(bucket_name("acl"))
        .acl(BucketCannedAcl::from("nope"))
        .send()
        .await;
    assert_eq!(sdk_err(res).0, 400);
}

#[tokio::test]
async fn unknown_operations_are_not_implemented() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "notimpl").await;
    // Reads of configurations no bucket can have answer as S3 does for a
    // bucket without one (tests/s3_probes.rs); what would set them is 501.
    assert_eq!(
        sdk_err(s3.delete_bucket_website().bucket(&bucket).send().await),
        (501, "NotImplemented".into())
    );
    assert_eq!(
        sdk_err(s3.delete_bucket_replication().bucket(&bucket).send().await),
        (501, "NotImplemented".into())
    );
    assert_eq!(
        sdk_err(
            s3.get_bucket_analytics_configuration()
                .bucket(&bucket)
                .id("a")
                .send()
                .await
        ),
        (501, "NotImplemented".into())
    );
    // The same request signed, but as raw bytes: `DELETE /bucket?website`.
    let res = s3
        .delete_bucket_cors()
        .bucket(&bucket)
        .customize()
        .mutate_request(|req| {
            let uri = req.uri().replace("?cors", "?website");
            req.set_uri(uri).unwrap();
        })
        .send()
        .await;
    assert_eq!(sdk_err(res), (501, "NotImplemented".into()));
}

/// Sends a raw HTTP/1.1 request head plus `body` and returns what the server
/// answered, without sending the rest of the declared body.
async fn raw_exchange(addr: &str, head: &str, body: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&got).contains("</Error>") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server answered before the body was sent");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn oversized_put_is_refused_up_front() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "huge").await;
    let url = s3
        .put_object()
        .bucket(&bucket)
        .key("huge")
        .presigned(presign_cfg(300))
        .await
        .unwrap();
    let path = url.uri().strip_prefix(&server.endpoint).unwrap().to_owned();
    let six_gib: u64 = 6 * 1024 * 1024 * 1024;
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {six_gib}\r\n\r\n",
        server.addr
    );
    let answer = raw_exchange(&server.addr, &head, b"only a few bytes").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let body = &answer[answer.find("<?xml").expect("XML body")..];
    assert_eq!(
        common::error_code(body).as_deref(),
        Some("EntityTooLarge"),
        "{answer}"
    );
    assert_xml_error(body);
    let (status, _) = sdk_err(s3.head_object().bucket(&bucket).key("huge").send().await);
    assert_eq!(status, 404);

    // The same for a part.
    let upload = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("p")
        .send()
        .await
        .unwrap();
    let url = s3
        .upload_part()
        .bucket(&bucket)
        .key("p")
        .upload_id(upload.upload_id().unwrap())
        .part_number(1)
        .presigned(presign_cfg(300))
        .await
        .unwrap();
    let path = url.uri().strip_prefix(&server.endpoint).unwrap().to_owned();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {six_gib}\r\n\r\n",
        server.addr
    );
    let answer = raw_exchange(&server.addr, &head, b"only a few bytes").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>EntityTooLarge</Code>"), "{answer}");
}

#[tokio::test]
async fn virtual_hosted_style() {
    let domain = "s3.preflight.test";
    let server = TestServer::start_with(&["--domain", domain]);
    let s3 = server.client();
    let bucket = bucket_name("vhost");
    s3.create_bucket()
        .bucket(&bucket)
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("dir/hello.txt")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"hello vhost"))
        .send()
        .await
        .unwrap();
    put(&s3, &bucket, "secret.txt", b"private").await;

    let host = format!("{bucket}.{domain}:{}", server.port());
    let http = server.http();
    let res = http
        .get(server.url("/dir/hello.txt"))
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "hello vhost");
    let res = http
        .get(server.url("/"))
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert_eq!(
        common::xml_field(&body, "Name").as_deref(),
        Some(bucket.as_str()),
        "{body}"
    );
    assert_eq!(
        s3_util::xml_fields(&body, "Key"),
        ["dir/hello.txt", "secret.txt"]
    );
    let res = http
        .get(server.url("/?list-type=2&prefix=dir/"))
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        s3_util::xml_fields(&res.text().await.unwrap(), "Key"),
        ["dir/hello.txt"]
    );
    let res = http
        .get(server.url("/secret.txt"))
        .header("host", &host)
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "AccessDenied").await;
    let res = http
        .get(server.url("/missing"))
        .header("host", &host)
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NoSuchKey").await;

    // A signed virtual-hosted request: presign with a virtual-hosted client,
    // then resolve the bucket's host name to the server.
    let vhost_endpoint = format!("http://{domain}:{}", server.port());
    let vs3 = client_for(&vhost_endpoint, ACCESS_KEY, SECRET_KEY, false);
    let url = vs3
        .get_object()
        .bucket(&bucket)
        .key("secret.txt")
        .presigned(presign_cfg(300))
        .await
        .unwrap();
    assert!(
        url.uri().starts_with(&format!("http://{bucket}.{domain}:")),
        "{}",
        url.uri()
    );
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    let resolving = reqwest::Client::builder()
        .no_proxy()
        .resolve(&format!("{bucket}.{domain}"), addr)
        .build()
        .unwrap();
    let res = resolving.get(url.uri()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "private");

    // Path style still works on the same server.
    let res = http
        .get(server.url(&format!("/{bucket}/dir/hello.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let mut server = TestServer::start();
    let s3 = server.client();
    new_bucket(&s3, "term").await;
    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        server.log()
    );
    assert_eq!(status.code(), Some(0));
}

/// Outside us-east-1 the owner re-creating a bucket gets 409
/// BucketAlreadyOwnedByYou, as in every other S3 region.
#[tokio::test]
async fn recreating_a_bucket_outside_us_east_1_is_already_owned() {
    let server = TestServer::start_with(&["--region", "eu-west-1"]);
    let s3 = aws_sdk_s3::Client::from_conf(
        common::client_config(
            &server.endpoint,
            common::ACCESS_KEY,
            common::SECRET_KEY,
            true,
        )
        .region(aws_sdk_s3::config::Region::new("eu-west-1"))
        .build(),
    );
    let b = bucket_name("eu-again");
    let create = || {
        s3.create_bucket().bucket(&b).create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
    };
    create().send().await.unwrap();
    assert_eq!(
        sdk_err(create().send().await),
        (409, "BucketAlreadyOwnedByYou".into())
    );
}

/// ListBuckets pages as S3 does: `max-buckets`, an opaque
/// `continuation-token`, and `prefix`.
#[tokio::test]
async fn list_buckets_pages_and_filters() {
    let server = TestServer::start();
    let s3 = server.client();
    let names = ["pages-a", "pages-b", "pages-c", "other-d"];
    for n in names {
        s3.create_bucket().bucket(n).send().await.unwrap();
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let out = s3
            .list_buckets()
            .max_buckets(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        assert!(out.buckets().len() <= 2);
        seen.extend(
            out.buckets()
                .iter()
                .filter_map(|b| b.name().map(str::to_owned)),
        );
        token = out.continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["other-d", "pages-a", "pages-b", "pages-c"]);
    let out = s3.list_buckets().prefix("pages-").send().await.unwrap();
    let names: Vec<_> = out.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["pages-a", "pages-b", "pages-c"]);
    assert_eq!(out.prefix(), Some("pages-"));
    let all = s3.list_buckets().max_buckets(4).send().await.unwrap();
    assert_eq!(all.buckets().len(), 4);
    assert!(all.continuation_token().is_none());
    let res = s3.list_buckets().max_buckets(0).send().await;
    assert_eq!(sdk_err(res), (400, "InvalidArgument".into()));
}
