//! Large objects: PUT and GET of one big file over raw HTTP/1.1 (the leanest
//! possible client), next to `std::fs::copy` + fsync of the same file on the
//! same disk.

use std::fs::File;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BUF: usize = 1 << 20;

/// Writes `size` bytes of cheap pseudo-random data (not compressible, not
/// zero pages) to `path` and fsyncs it.
pub fn make_source(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut file = File::create(path)?;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = Vec::with_capacity(BUF);
    while block.len() < BUF {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        block.extend_from_slice(&state.to_le_bytes());
    }
    let mut written = 0u64;
    let mut i = 0u64;
    while written < size {
        block[..8].copy_from_slice(&i.to_le_bytes());
        let n = usize::try_from(size - written).map_or(BUF, |left| left.min(BUF));
        file.write_all(&block[..n])?;
        written += n as u64;
        i += 1;
    }
    file.sync_all()?;
    Ok(())
}

/// `std::fs::copy` plus fsync of the copy: what a durable PUT must at least do.
pub fn copy_baseline(src: &Path, dst: &Path) -> anyhow::Result<Duration> {
    let start = Instant::now();
    std::fs::copy(src, dst)?;
    File::open(dst)?.sync_all()?;
    let elapsed = start.elapsed();
    std::fs::remove_file(dst)?;
    Ok(elapsed)
}

/// Streams the file as an anonymous `PUT /bucket/key` (public-read object in
/// a public-read-write bucket) and waits for the 200.
pub async fn put_file(addr: SocketAddr, path: &str, src: &Path) -> anyhow::Result<Duration> {
    let size = std::fs::metadata(src)?.len();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    let src = src.to_owned();
    // Read on a plain thread: tokio's File would cap reads at its own buffer size.
    std::thread::spawn(move || {
        let mut file = match File::open(&src) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        loop {
            let mut buf = vec![0u8; BUF];
            match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(buf)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {size}\r\nx-amz-acl: public-read\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let mut sent = 0u64;
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        stream.write_all(&chunk).await?;
        sent += chunk.len() as u64;
    }
    ensure!(
        sent == size,
        "read {sent} of {size} bytes of the source file"
    );
    let (status, _, body) = read_head(&mut stream).await?;
    ensure!(
        status == 200,
        "PUT {path}: status {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(start.elapsed())
}

/// `GET /bucket/key` anonymously, reading and discarding the body.
pub async fn get_file(addr: SocketAddr, path: &str, expect_len: u64) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let (status, len, already) = read_head(&mut stream).await?;
    if status != 200 {
        bail!(
            "GET {path}: status {status}: {}",
            String::from_utf8_lossy(&already)
        );
    }
    ensure!(
        len == Some(expect_len),
        "GET {path}: Content-Length {len:?}, expected {expect_len}"
    );
    let mut got = already.len() as u64;
    let mut buf = vec![0u8; BUF];
    while got < expect_len {
        let n = stream.read(&mut buf).await?;
        ensure!(n > 0, "GET {path}: connection closed after {got} bytes");
        got += n as u64;
    }
    Ok(start.elapsed())
}

/// Reads a response head; returns the status, the Content-Length and the
/// body bytes read past the head (the whole body when it is small).
async fn read_head(stream: &mut TcpStream) -> anyhow::Result<(u16, Option<u64>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut tmp).await?;
        ensure!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = std::str::from_utf8(&buf[..end]).context("response head is not UTF-8")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status in response")?;
    let len = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok());
    let mut rest = buf[end..].to_vec();
    // Small bodies (errors) are read whole so they can be shown.
    if let Some(len) = len
        && len <= 64 * 1024
    {
        while (rest.len() as u64) < len {
            let n = stream.read(&mut tmp).await?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&tmp[..n]);
        }
    }
    Ok((status, len, rest))
}
