//! Durability and memory: SIGKILL the real server at awkward moments and check
//! that what was acknowledged survives whole, that what was not acknowledged
//! leaves nothing behind (no visible key, no temp file, no orphan blob), and
//! that a 1 GiB round trip keeps the server's memory flat.

// Test code: a panic is a failed test, and the casts make small test data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::TestServer;
use common::fixtures::{get_bytes_and_etag, multipart_put, new_bucket, presign_for, put_object};

const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------
// Deterministic pseudo-random data, generated chunk by chunk.
// ---------------------------------------------------------------------------

/// Size of one generated chunk.
const CHUNK: usize = 1 << 20;

/// An endless deterministic byte stream: chunk `i` is a 1 MiB pseudo-random
/// block rotated by an index-dependent offset, with the index stamped in
/// front, so every chunk differs and any byte can be regenerated cheaply
/// (two memcpys per chunk, fast even in a debug build).
struct Pattern {
    block: Vec<u8>,
    seed: u64,
}

impl Pattern {
    fn new(seed: u64) -> Self {
        let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
        let mut block = Vec::with_capacity(CHUNK);
        while block.len() < CHUNK {
            block.extend_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        Pattern { block, seed }
    }

    /// Fills `out` with chunk `index` (exactly `CHUNK` bytes).
    fn chunk_into(&self, index: u64, out: &mut Vec<u8>) {
        out.clear();
        let rot = (index.wrapping_mul(0x2545_F491) % CHUNK as u64) as usize;
        out.extend_from_slice(&self.block[rot..]);
        out.extend_from_slice(&self.block[..rot]);
        out[..8].copy_from_slice(&(index ^ self.seed).to_le_bytes());
    }

    /// The first `len` bytes of the stream, in memory (small objects only).
    fn bytes(&self, len: usize) -> Vec<u8> {
        let mut all = Vec::with_capacity(len);
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut index = 0;
        while all.len() < len {
            self.chunk_into(index, &mut chunk);
            let take = (len - all.len()).min(CHUNK);
            all.extend_from_slice(&chunk[..take]);
            index += 1;
        }
        all
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Checks received bytes, in pieces of any size, against a [`Pattern`].
struct Verifier<'a> {
    pattern: &'a Pattern,
    pos: u64,
    chunk: Vec<u8>,
    chunk_index: Option<u64>,
}

impl<'a> Verifier<'a> {
    fn new(pattern: &'a Pattern) -> Self {
        Verifier {
            pattern,
            pos: 0,
            chunk: Vec::with_capacity(CHUNK),
            chunk_index: None,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let index = self.pos / CHUNK as u64;
            if self.chunk_index != Some(index) {
                self.pattern.chunk_into(index, &mut self.chunk);
                self.chunk_index = Some(index);
            }
            let off = (self.pos % CHUNK as u64) as usize;
            let n = (CHUNK - off).min(data.len());
            assert!(
                data[..n] == self.chunk[off..off + n],
                "received bytes differ from the generated stream in [{}, {})",
                self.pos,
                self.pos + n as u64
            );
            self.pos += n as u64;
            data = &data[n..];
        }
    }
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1 over TCP: full control over when bytes go out.
// ---------------------------------------------------------------------------

/// A presigned request as (path-and-query, extra headers).
struct Presigned {
    path: String,
    headers: Vec<(String, String)>,
}

async fn presign_put(
    s3: &aws_sdk_s3::Client,
    server: &TestServer,
    bucket: &str,
    key: &str,
) -> Presigned {
    let req = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .presigned(presign_for(3600))
        .await
        .unwrap();
    to_presigned(server, req.uri(), req.headers())
}

async fn presign_get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let req = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(presign_for(3600))
        .await
        .unwrap();
    assert_eq!(
        req.headers().count(),
        0,
        "a presigned GET needs no extra headers"
    );
    req.uri().to_owned()
}

fn to_presigned<'a>(
    server: &TestServer,
    uri: &str,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> Presigned {
    let path = uri
        .strip_prefix(&server.endpoint)
        .unwrap_or_else(|| panic!("presigned URI {uri} is not on {}", server.endpoint));
    Presigned {
        path: path.to_owned(),
        headers: headers.map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
    }
}

/// Opens a connection and sends the head of a PUT of `len` bytes.
async fn start_put(server: &TestServer, req: &Presigned, len: u64) -> TcpStream {
    let mut stream = TcpStream::connect(&server.addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut head = format!(
        "PUT {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {len}\r\n",
        req.path, server.addr
    );
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Sends `len` bytes of `pattern`; returns the MD5 of what was sent.
///
/// The MD5 runs on its own thread so that, in a debug build, hashing here
/// overlaps with the server's own MD5 instead of adding to it.
async fn send_pattern(stream: &mut TcpStream, pattern: &Pattern, len: u64) -> [u8; 16] {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
    let hasher = std::thread::spawn(move || {
        let mut md5 = Md5::new();
        while let Some(chunk) = rx.blocking_recv() {
            md5.update(&chunk);
        }
        <[u8; 16]>::from(md5.finalize())
    });
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut sent = 0u64;
    let mut index = 0;
    while sent < len {
        pattern.chunk_into(index, &mut chunk);
        let n = (len - sent).min(CHUNK as u64) as usize;
        stream.write_all(&chunk[..n]).await.unwrap();
        tx.send(bytes::Bytes::copy_from_slice(&chunk[..n]))
            .await
            .unwrap();
        sent += n as u64;
        index += 1;
    }
    drop(tx);
    hasher.join().unwrap()
}

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response with a `Content-Length` body.
async fn read_response(stream: &mut TcpStream) -> std::io::Result<RawResponse> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------
// Looking at the data dir.
// ---------------------------------------------------------------------------

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

fn tmp_files(server: &TestServer) -> usize {
    count_files(&server.data_dir.join("tmp"))
}

fn blob_files(server: &TestServer) -> usize {
    count_files(&server.data_dir.join("blobs"))
}

/// Bytes in `tmp/` (the upload in progress).
fn tmp_bytes(server: &TestServer) -> u64 {
    let Ok(entries) = std::fs::read_dir(server.data_dir.join("tmp")) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

async fn head_status(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> u16 {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => 200,
        Err(e) => e
            .raw_response()
            .map(|r| r.status().as_u16())
            .unwrap_or_else(|| panic!("HEAD failed without a response: {e:?}")),
    }
}

/// Restarts after a SIGKILL and checks the startup sweep left no temp file
/// and exactly `blobs` committed blob files.
fn crash_restart(server: &mut TestServer, blobs: usize, what: &str) {
    server.kill9();
    server.restart();
    assert_eq!(
        tmp_files(server),
        0,
        "{what}: tmp/ not empty after restart; log:\n{}",
        server.log()
    );
    assert_eq!(
        blob_files(server),
        blobs,
        "{what}: blob files after restart (orphans?)"
    );
}

// ---------------------------------------------------------------------------
// a) Crashes.
// ---------------------------------------------------------------------------

/// A 64 MiB upload killed halfway: after restart the key does not exist and
/// nothing of it remains on disk.
#[tokio::test]
async fn crash_during_upload_leaves_nothing() {
    let mut server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "crash-mid").await;
    // One committed object, so "no orphan" is not trivially "no file".
    let keep = Pattern::new(7).bytes(100_000);
    put_object(&s3, &bucket, "keep", &keep).await;
    assert_eq!(blob_files(&server), 1);

    let req = presign_put(&s3, &server, &bucket, "big").await;
    let pattern = Pattern::new(1);
    let total = 64 * MIB;
    let mut stream = start_put(&server, &req, total).await;
    // Stream slowly until the server has really started writing to tmp/.
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut sent = 0u64;
    let mut index = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sent < 16 * MIB || tmp_bytes(&server) < 4 * MIB {
        assert!(
            Instant::now() < deadline,
            "server never wrote the upload to tmp/"
        );
        assert!(sent < total - MIB, "upload almost done before tmp/ filled");
        pattern.chunk_into(index, &mut chunk);
        stream.write_all(&chunk).await.unwrap();
        sent += CHUNK as u64;
        index += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(tmp_files(&server), 1, "one upload in progress in tmp/");
    println!(
        "killing with {} MiB sent, {} MiB in tmp/",
        sent / MIB,
        tmp_bytes(&server) / MIB
    );

    crash_restart(&mut server, 1, "mid-upload");
    drop(stream);
    assert_eq!(
        head_status(&s3, &bucket, "big").await,
        404,
        "a killed upload must not be visible"
    );
    assert_eq!(get_bytes_and_etag(&s3, &bucket, "keep").await.0, keep);
    let list = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(list.key_count(), Some(1));
}

/// Kills right after the last body byte, before reading the response, at a
/// range of delays that straddle fsync, rename and the metadata commit. The
/// object is either absent, or present whole; never partial or orphaned.
#[tokio::test]
async fn crash_around_commit_is_all_or_nothing() {
    let mut server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "crash-commit").await;
    let len = 3 * MIB + 12_345;
    let mut live_blobs = 0;
    let mut outcomes = Vec::new();
    for (i, delay_ms) in [0u64, 0, 1, 2, 3, 5, 8, 13, 20, 40].into_iter().enumerate() {
        let key = format!("obj-{i}");
        let pattern = Pattern::new(100 + i as u64);
        let req = presign_put(&s3, &server, &bucket, &key).await;
        let mut stream = start_put(&server, &req, len).await;
        let md5 = send_pattern(&mut stream, &pattern, len).await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill9();
        drop(stream);
        server.restart();
        assert_eq!(tmp_files(&server), 0, "tmp/ not empty after restart");
        match head_status(&s3, &bucket, &key).await {
            404 => outcomes.push(format!("{delay_ms}ms:absent")),
            200 => {
                let (body, etag) = get_bytes_and_etag(&s3, &bucket, &key).await;
                assert_eq!(
                    body.len() as u64,
                    len,
                    "{key}: partial object visible after crash"
                );
                assert!(
                    body == pattern.bytes(len as usize),
                    "{key}: wrong bytes after crash"
                );
                assert_eq!(etag, format!("\"{}\"", hex::encode(md5)));
                live_blobs += 1;
                outcomes.push(format!("{delay_ms}ms:present"));
            }
            other => panic!("HEAD {key} after crash: {other}"),
        }
        assert_eq!(
            blob_files(&server),
            live_blobs,
            "{key}: orphan blob after crash"
        );
    }
    println!("kill-after-last-byte outcomes: {}", outcomes.join(" "));
}

/// Every acknowledged PUT survives an immediate SIGKILL with its exact bytes
/// and ETag; an acknowledged overwrite fully replaces the old version.
#[tokio::test]
async fn acknowledged_puts_survive_sigkill() {
    let mut server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "crash-ack").await;
    let mut objects = Vec::new();
    for i in 0..20u64 {
        let key = format!("small/{i:02}");
        let data = Pattern::new(1000 + i).bytes(1 + (i as usize * 7919) % 200_000);
        let etag = format!("\"{}\"", md5_hex(&data));
        assert_eq!(put_object(&s3, &bucket, &key, &data).await, etag);
        crash_restart(&mut server, objects.len() + 1, &key);
        let (got, got_etag) = get_bytes_and_etag(&s3, &bucket, &key).await;
        assert!(got == data, "{key}: bytes differ after SIGKILL");
        assert_eq!(got_etag, etag);
        objects.push((key, data, etag));
    }

    // Overwrite with different content and size, then crash.
    let key = objects[3].0.clone();
    let data = Pattern::new(4242).bytes(333_333);
    let etag = format!("\"{}\"", md5_hex(&data));
    assert_eq!(put_object(&s3, &bucket, &key, &data).await, etag);
    crash_restart(&mut server, objects.len(), "overwrite");
    objects[3] = (key, data, etag);

    for (key, data, etag) in &objects {
        let (got, got_etag) = get_bytes_and_etag(&s3, &bucket, key).await;
        assert!(got == *data, "{key}: bytes differ after restarts");
        assert_eq!(&got_etag, etag, "{key}");
    }
    let list = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(list.key_count(), Some(20));
}

/// A multipart upload completed right before a SIGKILL survives whole.
#[tokio::test]
async fn completed_multipart_survives_sigkill() {
    let mut server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "crash-mpu").await;
    let data = Pattern::new(77).bytes((5 * MIB + 5 * MIB + 1234) as usize);
    let parts: Vec<&[u8]> = vec![
        &data[..5 * MIB as usize],
        &data[5 * MIB as usize..10 * MIB as usize],
        &data[10 * MIB as usize..],
    ];
    let part_md5s: Vec<u8> = parts.iter().flat_map(|p| Md5::digest(p).to_vec()).collect();
    let done = multipart_put(&s3, &bucket, "mpu", &parts).await;
    let etag = format!("\"{}-3\"", md5_hex(&part_md5s));
    assert_eq!(done, etag);

    crash_restart(&mut server, 3, "multipart");
    let (got, got_etag) = get_bytes_and_etag(&s3, &bucket, "mpu").await;
    assert_eq!(got.len(), data.len());
    assert!(got == data, "multipart bytes differ after SIGKILL");
    assert_eq!(got_etag, etag);
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "completed upload still listed"
    );
}

// ---------------------------------------------------------------------------
// b) 1 GiB round trip with flat server memory.
// ---------------------------------------------------------------------------

/// Samples a process's VmRSS every 100 ms until stopped.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak_kib: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
    pid: u32,
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| {
            v.trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kib = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak_kib.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = proc_status_kib(pid, "VmRSS") {
                    p.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        RssSampler {
            stop,
            peak_kib,
            thread: Some(thread),
            pid,
        }
    }

    /// Stops sampling; returns (peak sampled VmRSS, VmHWM) in KiB.
    fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        let hwm = proc_status_kib(self.pid, "VmHWM").expect("VmHWM");
        (self.peak_kib.load(Ordering::Relaxed), hwm)
    }
}

/// PUT and GET 1 GiB generated on the fly (the test never holds it either),
/// comparing every received byte and the ETag with the generated stream,
/// while the server's RSS is sampled: it must stay flat.
#[tokio::test]
async fn one_gib_round_trip_keeps_server_rss_flat() {
    const SIZE: u64 = 1024 * MIB;
    const RSS_LIMIT_MIB: u64 = 200;
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "gib").await;
    let pattern = Pattern::new(2024);
    let idle_kib = proc_status_kib(server.pid(), "VmRSS").unwrap_or(0);
    let sampler = RssSampler::start(server.pid());

    let started = Instant::now();
    let req = presign_put(&s3, &server, &bucket, "gib").await;
    let mut stream = start_put(&server, &req, SIZE).await;
    let md5 = send_pattern(&mut stream, &pattern, SIZE).await;
    let resp = read_response(&mut stream).await.unwrap();
    assert_eq!(
        resp.status,
        200,
        "PUT 1 GiB: {}",
        String::from_utf8_lossy(&resp.body)
    );
    let etag = format!("\"{}\"", hex::encode(md5));
    assert_eq!(
        resp.header("etag"),
        Some(etag.as_str()),
        "ETag is the MD5 of the sent stream"
    );
    let put_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let url = presign_get(&s3, &bucket, "gib").await;
    let mut got = server.http().get(url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.content_length(), Some(SIZE));
    assert_eq!(
        got.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some(etag.as_str())
    );
    let mut verifier = Verifier::new(&pattern);
    let mut paused = false;
    while let Some(chunk) = got.chunk().await.unwrap() {
        verifier.update(&chunk);
        // A slow reader: the server must wait for the socket, not read
        // the rest of the blob into memory meanwhile (the sampler runs).
        if !paused && verifier.pos >= 8 * MIB {
            paused = true;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    assert_eq!(verifier.pos, SIZE, "GET returned {} bytes", verifier.pos);
    let get_secs = started.elapsed().as_secs_f64();

    let (peak_kib, hwm_kib) = sampler.finish();
    println!(
        "1 GiB round trip: PUT {put_secs:.1} s ({:.0} MiB/s), GET {get_secs:.1} s ({:.0} MiB/s); \
         server RSS idle {} MiB, peak sampled VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        1024.0 / put_secs,
        1024.0 / get_secs,
        idle_kib / 1024,
        peak_kib as f64 / 1024.0,
        hwm_kib as f64 / 1024.0
    );
    assert!(peak_kib > 0, "no RSS sample taken");
    assert!(
        peak_kib < RSS_LIMIT_MIB * 1024,
        "server VmRSS peaked at {} MiB",
        peak_kib / 1024
    );
    assert!(
        hwm_kib < RSS_LIMIT_MIB * 1024,
        "server VmHWM {} MiB",
        hwm_kib / 1024
    );
}
