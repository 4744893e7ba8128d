//! The bucket-settings directory and the keys in the metadata store, on the
//! embedded default (SQLite in the data dir): a setting changed through a
//! node is in force on that node at once; a key added by `preflight keys
//! add --data-dir` while the server runs works within a second; an old
//! data dir's keys.json is imported once; the blobs of a replaced object are
//! deleted by the store's garbage collector after the grace.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_s3::error::ProvideErrorMetadata;
use common::fixtures::{get_bytes, new_bucket, preflight, put_object};
use common::{SECRET_KEY, TestServer, client_for};

const ORIGIN: &str = "https://app.example";

fn cors_xml(origin: &str) -> String {
    format!(
        "<CORSConfiguration><CORSRule><AllowedOrigin>{origin}</AllowedOrigin>\
         <AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"
    )
}

#[tokio::test]
async fn a_cors_change_is_in_force_on_the_same_node_at_once() {
    let server = TestServer::start();
    let bucket = new_bucket(&server.client(), "dir").await;
    let path = format!("/{bucket}/k");
    for round in 0..5 {
        let origin = format!("https://app{round}.example");
        let res = server.put_cors_xml(&bucket, &cors_xml(&origin)).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        // The very next request sees it: no wait, no retry.
        let res = server
            .cors_preflight(&path, &origin, "GET")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "round {round}");
        assert_eq!(
            res.headers()["access-control-allow-origin"],
            origin.as_str()
        );
        // The previous round's origin is no longer allowed.
        let res = server
            .cors_preflight(&path, ORIGIN, "GET")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "round {round}");
    }
    let res = server
        .signed("DELETE", &format!("/{bucket}?cors"), &[], b"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = server
        .cors_preflight(&path, "https://app4.example", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "deleted at once");
}

/// The S3 error code of a ListObjectsV2 answer (`None`: it succeeded).
fn error_code<T>(
    res: Result<
        T,
        aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error>,
    >,
) -> Option<String> {
    res.err()
        .and_then(|e| e.into_service_error().code().map(str::to_owned))
}

/// Polls `f` until it is true, for at most `within`; returns how long it took.
async fn within<F, Fut>(within: Duration, mut f: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < within {
        if f().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn keys_add(data_dir: &Path, name: &str) -> (String, String) {
    let out = preflight(&[
        "keys",
        "add",
        name,
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        created["access_key"].as_str().unwrap().to_owned(),
        created["secret_key"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_key_added_by_the_cli_works_within_a_second() {
    let server = TestServer::start();
    let bucket = new_bucket(&server.client(), "clikey").await;
    let (ak, sk) = keys_add(&server.data_dir, "dora");
    let dora = client_for(&server.endpoint, &ak, &sk, true);
    // Known (AccessDenied on a bucket that grants dora nothing), not
    // InvalidAccessKeyId, within a second.
    let took = within(Duration::from_secs(1), || async {
        error_code(dora.list_objects_v2().bucket(&bucket).send().await).as_deref()
            == Some("AccessDenied")
    })
    .await;
    assert!(took.is_some(), "the server did not take the key within 1 s");

    // Removed by the CLI: refused again within a second.
    let out = preflight(&[
        "keys",
        "remove",
        "dora",
        "--data-dir",
        server.data_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let gone = within(Duration::from_secs(1), || async {
        error_code(dora.list_objects_v2().bucket(&bucket).send().await).as_deref()
            == Some("InvalidAccessKeyId")
    })
    .await;
    assert!(gone.is_some(), "the removed key still works");
    assert!(!server.data_dir.join("keys.json").exists());
}

#[tokio::test]
async fn an_old_keys_json_is_imported_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ak = "PKIMPORTED0000000001";
    let sk = "imported-secret-key-000000000000000000000";
    std::fs::write(
        data.join("keys.json"),
        serde_json::json!({"users": [{
            "name": "olga", "access_key": ak, "secret_key": sk,
            "created": "2024-01-02T03:04:05Z"
        }]})
        .to_string(),
    )
    .unwrap();
    // Listing through the CLI imports it too (the server is not running).
    let out = preflight(&[
        "keys",
        "list",
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["users"][0]["name"], "olga");
    assert_eq!(list["users"][0]["created"], "2024-01-02T03:04:05Z");
    assert!(!data.join("keys.json").exists());
    assert!(data.join("keys.json.imported").exists());

    // A second file (restored from a backup, say) is imported at start.
    std::fs::rename(data.join("keys.json.imported"), data.join("keys.json")).unwrap();
    let server = TestServer::start_in(&data, &[]);
    assert!(!data.join("keys.json").exists());
    let s3 = server.client();
    let bucket = new_bucket(&s3, "imported").await;
    let olga = client_for(&server.endpoint, ak, sk, true);
    let code = error_code(olga.list_objects_v2().bucket(&bucket).send().await);
    assert_eq!(
        code.as_deref(),
        Some("AccessDenied"),
        "olga is a known user"
    );
    let _ = SECRET_KEY;
}

/// The committed blobs under a data dir.
fn blob_files(data_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for fan in std::fs::read_dir(data_dir.join("blobs")).unwrap() {
        for blob in std::fs::read_dir(fan.unwrap().path()).unwrap() {
            out.push(blob.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_replaced_objects_blob_is_gone_after_the_grace() {
    let server = TestServer::start_with(&["--gc-grace", "1s"]);
    let s3 = server.client();
    let bucket = new_bucket(&s3, "gc").await;
    put_object(&s3, &bucket, "k", b"first").await;
    let first = blob_files(&server.data_dir);
    assert_eq!(first.len(), 1);
    put_object(&s3, &bucket, "k", b"second").await;
    // Within the grace both exist: a GET that read the old record may
    // still open the old blob.
    assert_eq!(blob_files(&server.data_dir).len(), 2);
    let gone = within(Duration::from_secs(15), || async {
        !blob_files(&server.data_dir).contains(&first[0])
    })
    .await;
    assert!(gone.is_some(), "the replaced blob is still there");
    assert_eq!(blob_files(&server.data_dir).len(), 1);
    assert_eq!(get_bytes(&s3, &bucket, "k").await, b"second");

    // A deleted object's blob goes the same way.
    s3.delete_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    let gone = within(Duration::from_secs(15), || async {
        blob_files(&server.data_dir).is_empty()
    })
    .await;
    assert!(gone.is_some(), "the deleted object's blob is still there");
}
