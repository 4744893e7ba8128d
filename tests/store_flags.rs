//! `preflight serve --meta/--blobs`: a location that is wrong or cannot be
//! reached stops the server at start with one line on stderr naming it, and
//! a non-zero exit, never a panic or a backtrace.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ACCESS_KEY, SECRET_KEY, TestServer};

/// Runs `preflight serve` with `args` on a fresh data dir; it must exit by
/// itself within `within`. Returns the exit code and stderr.
fn serve_fails(args: &[&str], within: Duration) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_preflight"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .args(args)
        .env_remove("PREFLIGHT_META")
        .env_remove("PREFLIGHT_BLOBS")
        .env("RUST_LOG", "error")
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > within {
            let _ = child.kill();
            panic!("preflight serve {args:?} still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

/// The one line of a start failure: `preflight: ...`, no panic.
fn one_line(stderr: &str) -> &str {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("preflight: "), "{stderr}");
    lines[0]
}

#[test]
fn a_bad_meta_uri_stops_the_start() {
    let (code, stderr) = serve_fails(
        &["--meta", "mysql://u:hunter2@127.0.0.1/db"],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(1), "{stderr}");
    let line = one_line(&stderr);
    assert!(line.contains("--meta"), "{line}");
    assert!(line.contains("postgres://"), "says what it expects: {line}");
    assert!(!line.contains("hunter2"), "the password stays out: {line}");
}

#[test]
fn a_bad_blobs_uri_stops_the_start() {
    let (code, stderr) = serve_fails(&["--blobs", "ftp://host/dir"], Duration::from_secs(20));
    assert_eq!(code, Some(1), "{stderr}");
    let line = one_line(&stderr);
    assert!(line.contains("--blobs"), "{line}");
    assert!(line.contains("unknown blob store ftp://"), "{line}");

    let (code, stderr) = serve_fails(&["--blobs", "/no/scheme"], Duration::from_secs(20));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(one_line(&stderr).contains("--blobs"), "{stderr}");
}

#[test]
fn an_unusable_blob_dir_stops_the_start() {
    // A file where the blob directory should be.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let uri = format!("fs://{}", file.display());
    let (code, stderr) = serve_fails(&["--blobs", &uri], Duration::from_secs(20));
    assert_eq!(code, Some(1), "{stderr}");
    let line = one_line(&stderr);
    assert!(line.contains("cannot open blobs"), "{line}");
    assert!(line.contains(&file.display().to_string()), "{line}");
}

#[test]
fn an_unreachable_postgres_stops_the_start() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let (code, stderr) = serve_fails(
        &["--meta", "postgres://u:hunter2@127.0.0.1:1/db"],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(1), "{stderr}");
    let line = one_line(&stderr);
    assert!(
        line.starts_with("preflight: cannot open metadata postgres://u:***@127.0.0.1:1/db"),
        "{line}"
    );
    assert!(!line.contains("hunter2"), "{line}");
    assert!(
        line.to_ascii_lowercase().contains("refused"),
        "says why: {line}"
    );
}

#[tokio::test]
async fn explicit_sqlite_and_fs_locations_serve() {
    // --meta sqlite and --blobs fs://DATA_DIR are what no flag means.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let blobs = format!("fs://{}", data.display());
    let server = TestServer::start_with(&["--meta", "sqlite", "--blobs", &blobs]);
    let s3 = server.client();
    let bucket = common::fixtures::new_bucket(&s3, "flags").await;
    common::fixtures::put_object(&s3, &bucket, "k", b"hello").await;
    assert_eq!(
        common::fixtures::get_bytes(&s3, &bucket, "k").await,
        b"hello"
    );
    assert!(server.data_dir.join("meta.sqlite").exists());
}
