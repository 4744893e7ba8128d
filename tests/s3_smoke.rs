//! A first end-to-end check: bucket and object round trip with aws-sdk-s3.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::TestServer;
use common::fixtures::new_bucket;

#[tokio::test]
async fn put_get_list_delete_round_trip() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "smoke").await;
    s3.put_object()
        .bucket(&bucket)
        .key("hello.txt")
        .content_type("text/plain")
        .body(ByteStream::from_static(b"hello world"))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("hello.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(got.e_tag(), Some("\"5eb63bbbe01eeed093cb22bb8f5acdc3\""));
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"hello world");
    let list = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(list.key_count(), Some(1));
    s3.delete_object()
        .bucket(&bucket)
        .key("hello.txt")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket(&bucket).send().await.unwrap();
}
