//! Connection and body limits (issue 9): idle and keep-alive timeouts, the
//! connection caps (total and per peer), the body read timeout for PUT and
//! form uploads, and the h2 stream limit. Raw loopback sockets, small
//! limits set by flags, every test bounded to a few seconds.

// Test code: a panic is a failed test, and the casts make small test data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]

mod common;

use std::time::{Duration, Instant};

use common::{ACCESS_KEY, SECRET_KEY, TestServer, bucket_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Reads until EOF, reset or `limit`; `Some(elapsed)` when the server
/// closed the connection within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// One HTTP/1.1 response read off `stream`: (status, body).
async fn read_response(stream: &mut TcpStream, limit: Duration) -> Option<(u16, String)> {
    let deadline = Instant::now() + limit;
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let status = head.split_whitespace().nth(1)?.parse().ok()?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&data[end + 4..end + 4 + len]).to_string();
                return Some((status, body));
            }
        }
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => data.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(&server.addr).await.expect("connect")
}

/// A GET answered on a fresh connection (any status: the server serves).
async fn served(server: &TestServer) -> bool {
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&server.addr)).await
    else {
        return false;
    };
    let req = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    read_response(&mut s, Duration::from_secs(2))
        .await
        .is_some()
}

#[tokio::test]
async fn connection_that_sends_nothing_is_closed() {
    let server = TestServer::start_with(&["--idle-timeout", "1s"]);
    let mut s = connect(&server).await;
    let closed = closed_within(&mut s, Duration::from_secs(4)).await;
    let elapsed = closed.expect("an idle connection is closed after --idle-timeout");
    assert!(elapsed >= Duration::from_millis(800), "{elapsed:?}");
}

#[tokio::test]
async fn keep_alive_connection_idle_between_requests_is_closed() {
    let server = TestServer::start_with(&["--keep-alive-timeout", "1s"]);
    let mut s = connect(&server).await;
    for _ in 0..2 {
        let req = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
        s.write_all(req.as_bytes()).await.unwrap();
        let (status, _) = read_response(&mut s, Duration::from_secs(2))
            .await
            .expect("a response");
        assert!(status >= 200, "{status}");
    }
    let elapsed = closed_within(&mut s, Duration::from_secs(4))
        .await
        .expect("closed after --keep-alive-timeout");
    assert!(elapsed >= Duration::from_millis(800), "{elapsed:?}");
}

#[tokio::test]
async fn h2c_connection_idle_after_settings_is_closed() {
    let server = TestServer::start_with(&["--keep-alive-timeout", "1s", "--idle-timeout", "1s"]);
    let mut s = connect(&server).await;
    s.write_all(H2_PREFACE).await.unwrap();
    s.write_all(&frame(FRAME_SETTINGS, 0, 0, &[]))
        .await
        .unwrap();
    // The server's SETTINGS arrive, then (after the timeout) GOAWAY and EOF.
    let elapsed = closed_within(&mut s, Duration::from_secs(4))
        .await
        .expect("an idle h2c connection is closed");
    assert!(elapsed >= Duration::from_millis(800), "{elapsed:?}");
}

#[tokio::test]
async fn over_max_connections_new_ones_are_refused_and_serving_resumes() {
    let server = TestServer::start_with(&[
        "--max-connections",
        "20",
        "--max-connections-per-ip",
        "100",
        "--idle-timeout",
        "2s",
    ]);
    let mut idle = Vec::new();
    for _ in 0..30 {
        idle.push(connect(&server).await);
    }
    // The 10 over the cap are closed at once; the 20 admitted stay open
    // (until the idle timeout, 2 s: look for 1.5 s at most).
    let started = Instant::now();
    let mut closed = vec![false; idle.len()];
    while closed.iter().filter(|c| **c).count() < 10
        && started.elapsed() < Duration::from_millis(1500)
    {
        for (s, c) in idle.iter_mut().zip(closed.iter_mut()) {
            if !*c && closed_within(s, Duration::from_millis(5)).await.is_some() {
                *c = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // No more than those: one more look at the others, still before 2 s.
    for (s, c) in idle.iter_mut().zip(closed.iter_mut()) {
        if !*c && closed_within(s, Duration::from_millis(5)).await.is_some() {
            *c = true;
        }
    }
    assert!(started.elapsed() < Duration::from_millis(1800));
    let refused = closed.iter().filter(|c| **c).count();
    assert_eq!(
        refused, 10,
        "connections past --max-connections are refused"
    );
    // Once the idle ones time out, a fresh request is served.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(served(&server).await, "serving after idle connections went");
    drop(idle);
    assert!(served(&server).await);
    assert!(
        server.log().contains("connection limit reached"),
        "{}",
        server.log()
    );
}

/// A connection from `127.0.0.x` (the whole 127/8 is loopback on Linux).
async fn connect_from(server: &TestServer, source: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket
        .connect(server.addr.parse().unwrap())
        .await
        .expect("connect")
}

#[tokio::test]
async fn per_peer_connection_cap() {
    let server = TestServer::start_with(&["--max-connections-per-ip", "3"]);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(&server, "127.0.0.1").await);
    }
    for s in &mut held {
        assert!(closed_within(s, Duration::from_millis(300)).await.is_none());
    }
    let mut fourth = connect_from(&server, "127.0.0.1").await;
    assert!(
        closed_within(&mut fourth, Duration::from_secs(1))
            .await
            .is_some(),
        "a 4th connection from the same peer is refused"
    );
    // Another peer is not affected.
    let mut other = connect_from(&server, "127.0.0.2").await;
    let req = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    other.write_all(req.as_bytes()).await.unwrap();
    assert!(
        read_response(&mut other, Duration::from_secs(2))
            .await
            .is_some()
    );
    // Once one goes, the peer may connect again.
    held.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(served(&server).await);
}

async fn presigned_put(server: &TestServer, bucket: &str, key: &str) -> String {
    let s3 = server.client();
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(600)).unwrap(),
        )
        .await
        .unwrap()
        .uri()
        .to_owned()
}

fn path_and_query(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..])
}

fn tmp_files(server: &TestServer) -> usize {
    std::fs::read_dir(server.data_dir.join("tmp")).map_or(0, |d| d.count())
}

#[tokio::test]
async fn stalled_put_gets_request_timeout_and_leaves_no_temp_file() {
    let server = TestServer::start_with(&["--body-read-timeout", "1s"]);
    let bucket = bucket_name("stall");
    server
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let url = presigned_put(&server, &bucket, "stalled").await;
    let mut s = connect(&server).await;
    let head = format!(
        "PUT {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        path_and_query(&url),
        server.addr,
        1024 * 1024
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[b'x'; 10 * 1024]).await.unwrap();
    let started = Instant::now();
    let (status, body) = read_response(&mut s, Duration::from_secs(4))
        .await
        .expect("a stalled PUT is answered");
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        common::error_code(&body).as_deref(),
        Some("RequestTimeout"),
        "{body}"
    );
    assert!(body.contains("Idle connections will be closed."), "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(tmp_files(&server), 0, "the temp file is deleted");
    assert!(
        closed_within(&mut s, Duration::from_secs(2))
            .await
            .is_some()
    );
}

fn preflight_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_preflight"))
        .args(args)
        .env_remove("PREFLIGHT_ACCESS_KEY")
        .env_remove("PREFLIGHT_SECRET_KEY")
        .output()
        .expect("run preflight")
}

#[tokio::test]
async fn stalled_form_upload_gets_request_timeout_and_leaves_no_temp_file() {
    let server = TestServer::start_with(&["--body-read-timeout", "1s"]);
    let bucket = bucket_name("stall-form");
    server
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let out = preflight_cli(&[
        "presign",
        "post",
        &bucket,
        "uploads/",
        "--endpoint",
        &server.endpoint,
        "--access-key",
        ACCESS_KEY,
        "--secret-key",
        SECRET_KEY,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let boundary = "----preflight-limits-boundary";
    let mut body = Vec::new();
    for (name, value) in v["fields"].as_object().unwrap() {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{}\r\n",
                value.as_str().unwrap()
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&[b'x'; 10 * 1024]);
    let url = v["url"].as_str().unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        path_and_query(url),
        server.addr,
        body.len() + 1024 * 1024
    );
    let mut s = connect(&server).await;
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    let (status, body) = read_response(&mut s, Duration::from_secs(4))
        .await
        .expect("a stalled form upload is answered");
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        common::error_code(&body).as_deref(),
        Some("RequestTimeout"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(tmp_files(&server), 0, "the temp file is deleted");
}

// --- h2c, spoken frame by frame so the client can break the rules ---

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADERS: u8 = 0x1;
const FRAME_RST_STREAM: u8 = 0x3;
const FRAME_SETTINGS: u8 = 0x4;
const FRAME_GOAWAY: u8 = 0x7;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK "literal header field without indexing", new name, no Huffman.
fn hpack(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.push(0);
        for s in [name, value] {
            // A 7-bit-prefix integer (RFC 7541 §5.1), then the octets.
            let mut n = s.len();
            if n < 127 {
                out.push(n as u8);
            } else {
                out.push(127);
                n -= 127;
                while n >= 128 {
                    out.push((n % 128 + 128) as u8);
                    n /= 128;
                }
                out.push(n as u8);
            }
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

async fn read_frame(s: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    s.read_exact(&mut head).await.ok()?;
    let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.ok()?;
    Some((head[3], head[4], stream, payload))
}

#[tokio::test]
async fn h2c_connection_cannot_open_more_than_the_stream_limit() {
    let server = TestServer::start_with(&[
        "--h2-max-concurrent-streams",
        "4",
        "--body-read-timeout",
        "1s",
    ]);
    let bucket = bucket_name("h2-streams");
    server
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let url = presigned_put(&server, &bucket, "held").await;
    let mut s = connect(&server).await;
    s.write_all(H2_PREFACE).await.unwrap();
    s.write_all(&frame(FRAME_SETTINGS, 0, 0, &[]))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(4);
    // The server's SETTINGS advertise the limit; acknowledge them.
    let mut advertised = None;
    loop {
        let (kind, flags, _, payload) =
            tokio::time::timeout_at(deadline.into(), read_frame(&mut s))
                .await
                .unwrap()
                .expect("server SETTINGS");
        if kind == FRAME_SETTINGS && flags & FLAG_ACK == 0 {
            for p in payload.chunks(6) {
                if p[..2] == [0, 3] {
                    advertised = Some(u32::from_be_bytes([p[2], p[3], p[4], p[5]]));
                }
            }
            s.write_all(&frame(FRAME_SETTINGS, FLAG_ACK, 0, &[]))
                .await
                .unwrap();
            break;
        }
    }
    assert_eq!(advertised, Some(4), "SETTINGS_MAX_CONCURRENT_STREAMS");
    // Wait for the server to have our ACK applied (its ACK of ours too).
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Six PUTs that declare a body and send none: they stay open.
    let block = hpack(&[
        (":method", "PUT"),
        (":scheme", "http"),
        (":authority", &server.addr),
        (":path", path_and_query(&url)),
        ("content-length", "1048576"),
    ]);
    for i in 0..6u32 {
        s.write_all(&frame(FRAME_HEADERS, FLAG_END_HEADERS, 1 + 2 * i, &block))
            .await
            .unwrap();
    }
    let mut refused = Vec::new();
    let mut answered = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(4);
    while let Ok(Some((kind, _, stream, payload))) =
        tokio::time::timeout_at(deadline.into(), read_frame(&mut s)).await
    {
        // RST_STREAM NO_ERROR after a response (the body was not read) is
        // no refusal.
        if kind == FRAME_RST_STREAM {
            let code = u32::from_be_bytes(payload[..4].try_into().unwrap());
            if code != 0 {
                refused.push((stream, code));
            }
        }
        if kind == FRAME_HEADERS {
            // HPACK static index 12 is `:status 400`.
            answered.push((stream, payload.first() == Some(&0x8c)));
        }
        if kind == FRAME_GOAWAY {
            refused.push((0, u32::from_be_bytes(payload[4..8].try_into().unwrap())));
            break;
        }
        if answered.len() == 4 {
            break;
        }
    }
    // The four held streams, stalled, are answered 400 (RequestTimeout)
    // after the body read timeout.
    answered.sort_unstable();
    assert_eq!(
        answered,
        [(1, true), (3, true), (5, true), (7, true)],
        "refused: {refused:?}"
    );
    // Streams 9 and 11 are over the limit: REFUSED_STREAM (7) or a
    // PROTOCOL_ERROR (1); streams 1..7 are kept.
    assert!(
        refused.iter().any(|&(id, _)| id == 9 || id == 0),
        "{refused:?}"
    );
    assert!(
        refused.iter().all(|&(id, _)| id == 0 || id >= 9),
        "{refused:?}"
    );
}

/// A server started under `ulimit -n {nofile}`: (child, addr, log path).
fn start_with_fd_limit(
    nofile: u32,
    args: &[&str],
    tmp: &tempfile::TempDir,
) -> (std::process::Child, String, std::path::PathBuf) {
    use std::io::BufRead;
    let log = tmp.path().join("server.log");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_preflight"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start preflight");
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("banner").expect("banner line");
        if let Some(url) = line.strip_prefix("Preflight is serving S3 at http://") {
            break url.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr, log)
}

async fn served_at(addr: &str) -> bool {
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
    else {
        return false;
    };
    let req = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    read_response(&mut s, Duration::from_secs(2))
        .await
        .is_some()
}

/// The case, scaled down: more idle sockets than file descriptors.
/// Under the default cap (from the fd limit) the server refuses the extra
/// ones instead of running out of descriptors, logs that about once a
/// second, and serves again as soon as they go.
#[tokio::test]
async fn more_idle_sockets_than_fds_under_the_default_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, addr, log) = start_with_fd_limit(256, &[], &tmp);
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text
        .lines()
        .filter(|l| l.contains("connection limit reached"))
        .count();
    assert!((1..=4).contains(&lines), "{lines} lines:\n{text}");
    assert!(!text.contains("accept failed"), "{text}");
    drop(idle);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(served_at(&addr).await);
    let _ = child.kill();
    let _ = child.wait();
}

/// With a cap above the fd limit, accept fails (EMFILE): the server backs
/// off and logs about once a second instead of a line every few ms, and
/// accepts again once descriptors are free.
#[tokio::test]
async fn accept_errors_back_off_and_log_rarely() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, addr, log) = start_with_fd_limit(128, &["--max-connections", "1000"], &tmp);
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text.lines().filter(|l| l.contains("accept failed")).count();
    assert!((1..=5).contains(&lines), "{lines} lines:\n{text}");
    drop(idle);
    // The backlog drains (those clients are gone), then serving resumes.
    let started = Instant::now();
    while !served_at(&addr).await {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not serving again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A download the client never reads is cut after `--send-timeout`: the
/// client gets what the socket buffers held, then the close, not the rest.
#[tokio::test]
async fn unread_download_is_closed_after_the_send_timeout() {
    let server = TestServer::start_with(&["--send-timeout", "1s"]);
    let bucket = bucket_name("unread");
    let s3 = server.client();
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let size = 32 * 1024 * 1024;
    s3.put_object()
        .bucket(&bucket)
        .key("big")
        .body(vec![b'z'; size].into())
        .send()
        .await
        .unwrap();
    let url = s3
        .get_object()
        .bucket(&bucket)
        .key("big")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(600)).unwrap(),
        )
        .await
        .unwrap()
        .uri()
        .to_owned();
    let mut s = connect(&server).await;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        path_and_query(&url),
        server.addr
    );
    s.write_all(req.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => received += n,
            Err(_) => break false,
        }
    };
    assert!(ended, "the connection was closed");
    assert!(received < size, "got {received} of {size} bytes");
}

#[tokio::test]
async fn idle_admin_connection_is_closed() {
    let server =
        TestServer::start_with(&["--admin-addr", "127.0.0.1:0", "--header-read-timeout", "1s"]);
    let admin = server.admin_addr.clone().expect("admin address");
    let mut s = TcpStream::connect(&admin).await.unwrap();
    let elapsed = closed_within(&mut s, Duration::from_secs(4))
        .await
        .expect("an idle admin connection is closed after --header-read-timeout");
    assert!(elapsed >= Duration::from_millis(800), "{elapsed:?}");
}
