//! ListObjectsV2 and ListObjects (v1): prefix, delimiter, paging, start-after,
//! marker, encoding-type=url, and UTF-8 byte order.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod s3_util;

use aws_sdk_s3::types::EncodingType;
use common::TestServer;
use common::fixtures::{bucket_with_keys, keys, prefixes};
use s3_util::sdk_err;

const TREE: [&str; 6] = [
    "docs/x.txt",
    "photos/2024/a.jpg",
    "photos/2024/b.jpg",
    "photos/2025/c.jpg",
    "photos/top.jpg",
    "readme",
];

#[tokio::test]
async fn prefix_and_delimiter() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = bucket_with_keys(&s3, "tree", &TREE).await;

    let all = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(keys(all.contents()), TREE);
    assert_eq!(all.key_count(), Some(6));
    assert_eq!(all.is_truncated(), Some(false));
    let first = &all.contents()[0];
    assert_eq!(first.size(), Some(10));
    assert_eq!(
        first.e_tag(),
        Some(format!("\"{}\"", s3_util::md5_hex(b"docs/x.txt")).as_str())
    );

    let top = s3
        .list_objects_v2()
        .bucket(&bucket)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(prefixes(top.common_prefixes()), ["docs/", "photos/"]);
    assert_eq!(keys(top.contents()), ["readme"]);
    assert_eq!(top.key_count(), Some(3));

    let photos = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("photos/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        prefixes(photos.common_prefixes()),
        ["photos/2024/", "photos/2025/"]
    );
    assert_eq!(keys(photos.contents()), ["photos/top.jpg"]);
    assert_eq!(photos.prefix(), Some("photos/"));

    let v1 = s3
        .list_objects()
        .bucket(&bucket)
        .prefix("photos/2024/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        keys(v1.contents()),
        ["photos/2024/a.jpg", "photos/2024/b.jpg"]
    );
    let v1 = s3
        .list_objects()
        .bucket(&bucket)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(prefixes(v1.common_prefixes()), ["docs/", "photos/"]);

    // An unmatched prefix lists nothing.
    let none = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("zzz")
        .send()
        .await
        .unwrap();
    assert!(none.contents().is_empty());
    assert_eq!(none.key_count(), Some(0));

    assert_eq!(
        sdk_err(s3.list_objects_v2().bucket("no-such-bucket-l").send().await),
        (404, "NoSuchBucket".into())
    );
}

fn numbered_keys() -> Vec<String> {
    (0..25).map(|i| format!("key-{i:02}")).collect()
}

#[tokio::test]
async fn v2_paging_with_continuation_tokens() {
    let server = TestServer::start();
    let s3 = server.client();
    let numbered = numbered_keys();
    let refs: Vec<&str> = numbered.iter().map(String::as_str).collect();
    let bucket = bucket_with_keys(&s3, "page2", &refs).await;

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(&bucket)
            .max_keys(7)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(out.max_keys(), Some(7));
        assert_eq!(out.continuation_token(), token.as_deref());
        pages.push(out.contents().len());
        seen.extend(out.contents().iter().map(|o| o.key().unwrap().to_owned()));
        if out.is_truncated() == Some(true) {
            token = Some(
                out.next_continuation_token()
                    .expect("token when truncated")
                    .to_owned(),
            );
        } else {
            assert_eq!(out.next_continuation_token(), None);
            break;
        }
    }
    assert_eq!(pages, [7, 7, 7, 4]);
    assert_eq!(seen, numbered);

    let after = s3
        .list_objects_v2()
        .bucket(&bucket)
        .start_after("key-19")
        .send()
        .await
        .unwrap();
    assert_eq!(
        keys(after.contents()),
        ["key-20", "key-21", "key-22", "key-23", "key-24"]
    );
    assert_eq!(after.start_after(), Some("key-19"));

    // max-keys 0: an empty page.
    let zero = s3
        .list_objects_v2()
        .bucket(&bucket)
        .max_keys(0)
        .send()
        .await
        .unwrap();
    assert!(zero.contents().is_empty());
}

#[tokio::test]
async fn v1_paging_with_marker() {
    let server = TestServer::start();
    let s3 = server.client();
    let numbered = numbered_keys();
    let refs: Vec<&str> = numbered.iter().map(String::as_str).collect();
    let bucket = bucket_with_keys(&s3, "page1", &refs).await;

    let mut seen: Vec<String> = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let out = s3
            .list_objects()
            .bucket(&bucket)
            .max_keys(7)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(out.marker().unwrap_or(""), marker.as_deref().unwrap_or(""));
        pages.push(out.contents().len());
        seen.extend(out.contents().iter().map(|o| o.key().unwrap().to_owned()));
        if out.is_truncated() != Some(true) {
            break;
        }
        // Without a delimiter, the next marker is the last key.
        marker = seen.last().cloned();
    }
    assert_eq!(pages, [7, 7, 7, 4]);
    assert_eq!(seen, numbered);

    let out = s3
        .list_objects()
        .bucket(&bucket)
        .marker("key-22")
        .send()
        .await
        .unwrap();
    assert_eq!(keys(out.contents()), ["key-23", "key-24"]);

    // With a delimiter, v1 returns NextMarker.
    let tree = bucket_with_keys(&s3, "page1d", &TREE).await;
    let out = s3
        .list_objects()
        .bucket(&tree)
        .delimiter("/")
        .max_keys(1)
        .send()
        .await
        .unwrap();
    assert_eq!(out.is_truncated(), Some(true));
    assert_eq!(out.next_marker(), Some("docs/"));
    let out = s3
        .list_objects()
        .bucket(&tree)
        .delimiter("/")
        .marker("docs/")
        .send()
        .await
        .unwrap();
    assert_eq!(prefixes(out.common_prefixes()), ["photos/"]);
    assert_eq!(keys(out.contents()), ["readme"]);
}

#[tokio::test]
async fn encoding_type_url() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = bucket_with_keys(&s3, "enc", &["with space/é+x"]).await;

    let out = s3
        .list_objects_v2()
        .bucket(&bucket)
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(out.encoding_type(), Some(&EncodingType::Url));
    assert_eq!(keys(out.contents()), ["with%20space/%C3%A9%2Bx"]);

    let out = s3
        .list_objects()
        .bucket(&bucket)
        .delimiter("/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(prefixes(out.common_prefixes()), ["with%20space/"]);

    // Without it, the key comes back as is (XML-escaped only).
    let out = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(out.contents()[0].key(), Some("with space/é+x"));
}

#[tokio::test]
async fn keys_list_in_utf8_byte_order() {
    let server = TestServer::start();
    let s3 = server.client();
    // Inserted out of order; a collation by code point or locale would differ.
    let bucket = bucket_with_keys(&s3, "utf8", &["😀", "é", "z", "~", "b", "a"]).await;
    let expected = ["a", "b", "z", "~", "é", "😀"];

    let v2 = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(keys(v2.contents()), expected);
    let v1 = s3.list_objects().bucket(&bucket).send().await.unwrap();
    assert_eq!(keys(v1.contents()), expected);

    // Paging one key at a time keeps the order across pages.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(&bucket)
            .max_keys(1)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        seen.extend(out.contents().iter().map(|o| o.key().unwrap().to_owned()));
        token = out.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, expected);

    let after = s3
        .list_objects_v2()
        .bucket(&bucket)
        .start_after("~")
        .send()
        .await
        .unwrap();
    assert_eq!(keys(after.contents()), ["é", "😀"]);
}

/// ListObjects (v1) sends its top-level Prefix as given even with
/// `encoding-type=url` (the SDKs do not decode it there); V2 encodes it.
#[tokio::test]
async fn v1_prefix_is_never_encoded() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = bucket_with_keys(&s3, "v1-prefix", &["a b/c", "quux"]).await;
    for encoding in [None, Some("url")] {
        let query = match encoding {
            Some(e) => format!("prefix=a%20b%2F&encoding-type={e}"),
            None => "prefix=a%20b%2F".to_owned(),
        };
        let res = server
            .signed("GET", &format!("/{bucket}?{query}"), &[], b"")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body = res.text().await.unwrap();
        assert!(
            body.contains("<Prefix>a b/</Prefix>"),
            "{encoding:?}: {body}"
        );
    }
    let res = server
        .signed(
            "GET",
            &format!("/{bucket}?list-type=2&prefix=a%20b%2F&encoding-type=url"),
            &[],
            b"",
        )
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    assert!(body.contains("<Prefix>a%20b/</Prefix>"), "{body}");
}
