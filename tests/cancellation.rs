//! Clients that hang up in the middle of a write must not wedge the server.
//!
//! Raw TCP clients send PutObject, UploadPart, CompleteMultipartUpload,
//! CopyObject, DeleteObjects and form uploads, and close their sockets at
//! random points: inside the headers, inside the body, or right after the
//! last byte (before the answer). Afterwards every write must succeed
//! promptly, every listed object must be complete with its exact bytes, and
//! no temp file may be left behind.

// Test code: a panic is a failed test, and the casts make small test data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use common::sign::sign_request;
use common::{TestServer, bucket_name};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Concurrent clients, as in the report.
const CLIENTS: usize = 16;
/// Hung-up requests of each kind.
const PER_KIND: usize = 60;
const BOUNDARY: &str = "----preflight-cancel-boundary";

/// The bytes any complete version of `key` holds: 4 KiB derived from the key.
fn content(key: &str) -> Vec<u8> {
    let line = format!("{key}\n");
    line.as_bytes().iter().copied().cycle().take(4096).collect()
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// A request as bytes, and where its headers end.
struct RawRequest {
    bytes: Vec<u8>,
    header_len: usize,
}

fn raw_request(
    server: &TestServer,
    method: &str,
    path: &str,
    extra: &[(String, String)],
    body: &[u8],
    signed: bool,
) -> RawRequest {
    let url = server.url(path);
    let mut headers: Vec<(String, String)> = extra.to_vec();
    let mut target = path.to_owned();
    if signed {
        let (signed_url, signed_headers) = sign_request(method, &url, extra, body, None);
        headers.extend(signed_headers);
        target = signed_url
            .strip_prefix(&server.endpoint)
            .unwrap_or(&signed_url)
            .to_owned();
    }
    let mut head = format!("{method} {target} HTTP/1.1\r\nhost: {}\r\n", server.addr);
    for (k, v) in &headers {
        if k.eq_ignore_ascii_case("host") {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = head.into_bytes();
    let header_len = bytes.len();
    bytes.extend_from_slice(body);
    RawRequest { bytes, header_len }
}

/// A small deterministic generator: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Sends part of (or all of) a request, then hangs up without reading the
/// answer.
async fn send_and_hang_up(server: &TestServer, req: &RawRequest, rng_seed: u64) {
    let mut rng = Rng(rng_seed | 1);
    let Ok(mut stream) = TcpStream::connect(&server.addr).await else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let len = req.bytes.len();
    let cut = match rng.below(4) {
        0 => 1 + rng.below(req.header_len - 1),
        1 => req.header_len + rng.below(len - req.header_len),
        _ => len,
    };
    // Send in two pieces, so the server has started on the request.
    let first = cut / 2;
    if stream.write_all(&req.bytes[..first]).await.is_err() {
        return;
    }
    tokio::time::sleep(Duration::from_micros(rng.below(500) as u64)).await;
    if stream.write_all(&req.bytes[first..cut]).await.is_err() {
        return;
    }
    if cut == len {
        // Right after the last byte, or a little later: inside the handler.
        let wait = rng.below(3000) as u64;
        tokio::time::sleep(Duration::from_micros(wait)).await;
    }
    drop(stream);
}

/// Sends a whole request and reads the status and body.
async fn send_whole(server: &TestServer, req: &RawRequest) -> (u16, String) {
    let mut stream = TcpStream::connect(&server.addr).await.unwrap();
    stream.write_all(&req.bytes).await.unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    // `Connection: close` is not sent: read until the body is complete.
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&bytes);
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if bytes.len() >= end + 4 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn put_object(server: &TestServer, bucket: &str, key: &str) -> RawRequest {
    raw_request(
        server,
        "PUT",
        &format!("/{bucket}/{key}"),
        &[],
        &content(key),
        true,
    )
}

fn upload_part(server: &TestServer, bucket: &str, key: &str, id: &str, n: u32) -> RawRequest {
    raw_request(
        server,
        "PUT",
        &format!("/{bucket}/{key}?partNumber={n}&uploadId={id}"),
        &[],
        &content(key),
        true,
    )
}

fn complete_upload(server: &TestServer, bucket: &str, key: &str, id: &str) -> RawRequest {
    let xml = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"{}\"</ETag></Part></CompleteMultipartUpload>",
        md5_hex(&content(key))
    );
    raw_request(
        server,
        "POST",
        &format!("/{bucket}/{key}?uploadId={id}"),
        &[],
        xml.as_bytes(),
        true,
    )
}

fn copy_object(server: &TestServer, bucket: &str, src: &str, key: &str) -> RawRequest {
    raw_request(
        server,
        "PUT",
        &format!("/{bucket}/{key}"),
        &[("x-amz-copy-source".to_owned(), format!("/{bucket}/{src}"))],
        b"",
        true,
    )
}

fn delete_objects(server: &TestServer, bucket: &str, keys: &[String]) -> RawRequest {
    let mut xml = String::from("<Delete>");
    for k in keys {
        xml.push_str(&format!("<Object><Key>{k}</Key></Object>"));
    }
    xml.push_str("</Delete>");
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(xml.as_bytes()));
    raw_request(
        server,
        "POST",
        &format!("/{bucket}?delete"),
        &[("content-md5".to_owned(), md5)],
        xml.as_bytes(),
        true,
    )
}

/// An anonymous form upload (the bucket is public-read-write).
fn post_form(server: &TestServer, bucket: &str, key: &str) -> RawRequest {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n{key}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&content(key));
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    raw_request(
        server,
        "POST",
        &format!("/{bucket}"),
        &[(
            "content-type".to_owned(),
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )],
        &body,
        false,
    )
}

/// Files left in the blob store's temp directory.
fn temp_files(server: &TestServer) -> usize {
    std::fs::read_dir(server.data_dir.join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hung_up_writes_leave_the_server_writable_and_consistent() {
    let server = Arc::new(TestServer::start());
    let s3 = server.client();
    let bucket = bucket_name("cancel");
    s3.create_bucket()
        .bucket(&bucket)
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicReadWrite)
        .send()
        .await
        .unwrap();

    // What the hung-up requests work on.
    let put = |key: String| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            s3.put_object()
                .bucket(&bucket)
                .key(&key)
                .body(content(&key).into())
                .send()
                .await
                .unwrap();
        }
    };
    put("copy-source".to_owned()).await;
    let mut uploads = Vec::new();
    for i in 0..PER_KIND {
        let key = format!("mpu-{i}");
        let id = s3
            .create_multipart_upload()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .unwrap()
            .upload_id
            .unwrap();
        s3.upload_part()
            .bucket(&bucket)
            .key(&key)
            .upload_id(&id)
            .part_number(1)
            .body(content(&key).into())
            .send()
            .await
            .unwrap();
        uploads.push((key, id));
    }
    let part_key = "parts".to_owned();
    let part_upload = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key(&part_key)
        .send()
        .await
        .unwrap()
        .upload_id
        .unwrap();
    for i in 0..PER_KIND {
        put(format!("del-{i}")).await;
    }

    let mut requests = Vec::new();
    for (i, (key, id)) in uploads.iter().enumerate() {
        requests.push(put_object(&server, &bucket, &format!("put-{}", i % 20)));
        requests.push(upload_part(
            &server,
            &bucket,
            &part_key,
            &part_upload,
            1 + (i % 10) as u32,
        ));
        requests.push(complete_upload(&server, &bucket, key, id));
        requests.push(copy_object(
            &server,
            &bucket,
            "copy-source",
            &format!("copy-{}", i % 20),
        ));
        let keys: Vec<String> = (0..3)
            .map(|j| format!("del-{}", (i + j) % PER_KIND))
            .collect();
        requests.push(delete_objects(&server, &bucket, &keys));
        requests.push(post_form(&server, &bucket, &format!("form-{}", i % 20)));
    }
    let requests = Arc::new(requests);

    // The hang-ups: CLIENTS at a time.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let server = server.clone();
        let requests = requests.clone();
        let next = next.clone();
        clients.push(tokio::spawn(async move {
            let mut rng = Rng(seed ^ (c as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(req) = requests.get(i) else { break };
                send_and_hang_up(&server, req, rng.next()).await;
            }
        }));
    }
    for c in clients {
        tokio::time::timeout(Duration::from_secs(60), c)
            .await
            .expect("hang-ups finish")
            .unwrap();
    }
    println!(
        "{} hung-up requests in {:?}",
        requests.len(),
        started.elapsed()
    );

    // Later writes succeed promptly: no 500, no wait on a lock.
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let key = format!("after-{i}");
        let started = Instant::now();
        let (status, text) = tokio::time::timeout(
            Duration::from_secs(3),
            send_whole(&server, &put_object(&server, &bucket, &key)),
        )
        .await
        .unwrap_or_else(|_| panic!("PUT {key} hung; log:\n{}", server.log()));
        assert_eq!(status, 200, "PUT {key}: {text}\nlog:\n{}", server.log());
        assert!(started.elapsed() < Duration::from_secs(2), "PUT {key} slow");
        slowest = slowest.max(started.elapsed());
    }
    println!("slowest later PUT: {slowest:?}");
    let (status, text) = tokio::time::timeout(
        Duration::from_secs(3),
        send_whole(&server, &post_form(&server, &bucket, "form-after")),
    )
    .await
    .expect("form upload hung");
    assert_eq!(status, 204, "form upload: {text}");
    let (status, text) = tokio::time::timeout(
        Duration::from_secs(3),
        send_whole(
            &server,
            &delete_objects(&server, &bucket, &["after-0".to_owned()]),
        ),
    )
    .await
    .expect("DeleteObjects hung");
    assert_eq!(status, 200, "DeleteObjects: {text}");

    // Nothing half-done is visible: every listed object is complete.
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .max_keys(1000)
        .send()
        .await
        .unwrap();
    let objects = listed.contents.unwrap_or_default();
    assert!(objects.len() > 20, "listing has the later writes");
    for obj in &objects {
        let key = obj.key.clone().unwrap();
        let expected = if key.starts_with("copy-") && key != "copy-source" {
            content("copy-source")
        } else {
            content(&key)
        };
        assert_eq!(
            obj.size,
            Some(expected.len() as i64),
            "listed size of {key}"
        );
        let got = s3
            .get_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {key}: {e:?}"));
        let bytes = got.body.collect().await.unwrap().into_bytes();
        assert!(bytes == expected, "bytes of {key}");
    }
    // A completed upload is an object; an upload still listed was not
    // completed and its object is absent.
    let open_uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .uploads
        .unwrap_or_default();
    for (key, id) in &uploads {
        let still_open = open_uploads
            .iter()
            .any(|u| u.upload_id.as_deref() == Some(id));
        let is_object = objects.iter().any(|o| o.key.as_deref() == Some(key));
        assert!(
            still_open != is_object,
            "{key}: open {still_open}, object {is_object}"
        );
    }
    // The parts that made it are complete.
    let parts = s3
        .list_parts()
        .bucket(&bucket)
        .key(&part_key)
        .upload_id(&part_upload)
        .send()
        .await
        .unwrap()
        .parts
        .unwrap_or_default();
    for p in parts {
        assert_eq!(p.size, Some(4096));
        assert_eq!(
            p.e_tag.as_deref(),
            Some(&*format!("\"{}\"", md5_hex(&content(&part_key))))
        );
    }

    // Unfinished bodies are discarded: the temp directory empties soon.
    let deadline = Instant::now() + Duration::from_secs(3);
    while temp_files(&server) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(temp_files(&server), 0, "temp files left behind");
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

/// A durable blob is always committed or released: hung-up PUTs of new keys
/// (nothing replaced, so nothing waits on the GC grace) leave exactly one
/// blob file per listed object.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hung_up_puts_leave_no_orphan_blobs() {
    let server = Arc::new(TestServer::start());
    let s3 = server.client();
    let bucket = bucket_name("orphans");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let requests: Arc<Vec<RawRequest>> = Arc::new(
        (0..200)
            .map(|i| put_object(&server, &bucket, &format!("new-{i}")))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (server, requests, next) = (server.clone(), requests.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let mut rng = Rng(seed ^ (c as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(req) = requests.get(i) else { break };
                send_and_hang_up(&server, req, rng.next()).await;
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    // Let the commits that had started finish.
    let mut settled = (usize::MAX, usize::MAX);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let objects = s3
            .list_objects_v2()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .key_count()
            .unwrap_or(0) as usize;
        settled = (objects, blob_files(&server));
        if settled.0 == settled.1 && temp_files(&server) == 0 {
            break;
        }
    }
    println!("objects, blob files: {settled:?}");
    assert_eq!(settled.0, settled.1, "(objects, blob files)");
    assert_eq!(temp_files(&server), 0, "temp files left behind");
}

fn put_bucket_cors(server: &TestServer, bucket: &str, origin: &str) -> RawRequest {
    let xml = format!(
        "<CORSConfiguration><CORSRule><AllowedOrigin>{origin}</AllowedOrigin>\
         <AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"
    );
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(xml.as_bytes()));
    raw_request(
        server,
        "PUT",
        &format!("/{bucket}?cors"),
        &[("content-md5".to_owned(), md5)],
        xml.as_bytes(),
        true,
    )
}

/// The origins among `origins` whose GET preflight `server` allows.
async fn allowed_origins(server: &TestServer, bucket: &str, origins: &[String]) -> Vec<String> {
    let http = server.http();
    let mut allowed = Vec::new();
    for origin in origins {
        let res = http
            .request(
                reqwest::Method::OPTIONS,
                server.url(&format!("/{bucket}/k")),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            allowed.push(origin.clone());
        }
    }
    allowed
}

/// A bucket setting changed by clients that hang up: the cache that
/// answers preflights and the store must never disagree, so the server
/// answers the same before and after a restart (which reloads the cache
/// from the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hung_up_setting_changes_leave_cache_and_store_agreeing() {
    let mut server = TestServer::start();
    let bucket = bucket_name("cancel-cors");
    server
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let origins: Vec<String> = (0..PER_KIND)
        .map(|i| format!("https://app{i}.example"))
        .collect();
    let requests: Vec<RawRequest> = origins
        .iter()
        .map(|o| put_bucket_cors(&server, &bucket, o))
        .collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    for round in requests.chunks(CLIENTS) {
        let sends = round
            .iter()
            .map(|req| send_and_hang_up(&server, req, rng.next()));
        futures::future::join_all(sends).await;
    }
    // The commit points that had started run to completion.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = allowed_origins(&server, &bucket, &origins).await;
    assert!(
        before.len() <= 1,
        "several configurations in force: {before:?}"
    );
    server.restart();
    let after = allowed_origins(&server, &bucket, &origins).await;
    assert_eq!(before, after, "the cache said one thing, the store another");
    // The bucket still takes a change.
    let (status, text) = send_whole(&server, &put_bucket_cors(&server, &bucket, &origins[0])).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        allowed_origins(&server, &bucket, &origins).await,
        [origins[0].clone()]
    );
}
