//! Test harness: starts the real `preflight` binary on a free loopback port
//! with a temp data dir, and hands out clients for it.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

pub mod fixtures;
pub mod nginx;
pub mod postgres;
pub mod sign;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const ACCESS_KEY: &str = "PFTESTACCESSKEY00001";
pub const SECRET_KEY: &str = "preflight-test-secret-key-0000000000000000";
pub const REGION: &str = "us-east-1";

pub struct TestServer {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, or `https://` when started with TLS.
    pub endpoint: String,
    pub addr: String,
    pub data_dir: PathBuf,
    /// `127.0.0.1:PORT` of the admin listener, when started with `--admin-addr`.
    pub admin_addr: Option<String>,
    _tmp: Option<tempfile::TempDir>,
    extra_args: Vec<String>,
    /// Pass `--access-key`/`--secret-key` ([`ACCESS_KEY`], [`SECRET_KEY`]).
    root_flags: bool,
    /// The root credentials the start banner printed (its `Try:` line).
    pub printed_root: Option<(String, String)>,
}

impl TestServer {
    /// Starts a server with a fresh data dir.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with a fresh data dir and extra `serve` arguments.
    pub fn start_with(args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let mut server = TestServer {
            child: None,
            endpoint: String::new(),
            addr: "127.0.0.1:0".to_owned(),
            data_dir,
            admin_addr: None,
            _tmp: Some(tmp),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            root_flags: true,
            printed_root: None,
        };
        server.spawn();
        server
    }

    /// Starts a server without root key flags: it uses the credentials of
    /// its store (or of its data dir), as `preflight serve` does.
    pub fn start_without_root_flags(args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut server = TestServer {
            child: None,
            endpoint: String::new(),
            addr: "127.0.0.1:0".to_owned(),
            data_dir: tmp.path().join("data"),
            admin_addr: None,
            _tmp: Some(tmp),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            root_flags: false,
            printed_root: None,
        };
        server.spawn();
        server
    }

    /// Starts a server on an existing data dir (kept after the test).
    pub fn start_in(data_dir: &Path, args: &[&str]) -> Self {
        let mut server = TestServer {
            child: None,
            endpoint: String::new(),
            addr: "127.0.0.1:0".to_owned(),
            data_dir: data_dir.to_owned(),
            admin_addr: None,
            _tmp: None,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            root_flags: true,
            printed_root: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        std::fs::create_dir_all(&self.data_dir).ok();
        let mut command = Command::new(env!("CARGO_BIN_EXE_preflight"));
        command
            .arg("serve")
            .arg("--addr")
            .arg(&self.addr)
            .arg("--data-dir")
            .arg(&self.data_dir);
        if self.root_flags {
            command
                .arg("--access-key")
                .arg(ACCESS_KEY)
                .arg("--secret-key")
                .arg(SECRET_KEY);
        }
        let mut child = command
            .args(&self.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("PREFLIGHT_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start preflight");
        let stdout = child.stdout.take().expect("stdout");
        // The start banner: the S3 endpoint, the admin endpoint if any, then
        // the data directory.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep draining the pipe.
                }
            }
        });
        let mut endpoint = None;
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("server did not start; log:\n{}", self.log()));
            if let Some(url) = line.strip_prefix("Preflight is serving S3 at ") {
                endpoint = Some(url.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("Admin endpoint at ") {
                let url = rest.split_whitespace().next().unwrap_or_default();
                let addr = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"));
                self.admin_addr = addr.map(str::to_owned);
            } else if let Some(try_line) = line.strip_prefix("Try: ") {
                // The banner's last line.
                let value = |name: &str| {
                    try_line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix(name))
                        .map(str::to_owned)
                };
                if let (Some(ak), Some(sk)) =
                    (value("AWS_ACCESS_KEY_ID="), value("AWS_SECRET_ACCESS_KEY="))
                {
                    self.printed_root = Some((ak, sk));
                }
                break;
            }
        }
        let endpoint = endpoint.expect("S3 endpoint in the banner");
        self.addr = endpoint
            .strip_prefix("https://")
            .or_else(|| endpoint.strip_prefix("http://"))
            .unwrap_or(&endpoint)
            .to_owned();
        self.endpoint = endpoint;
        self.child = Some(child);
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir
            .parent()
            .unwrap_or(Path::new("/tmp"))
            .join("server.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, as a crash or power loss would stop it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a graceful exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        child.wait().expect("wait")
    }

    /// Starts the server again on the same port and data dir.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.endpoint, path)
    }

    pub fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    /// An aws-sdk-s3 client with the root credentials, path style, default
    /// checksum behavior.
    pub fn client(&self) -> aws_sdk_s3::Client {
        client_for(&self.endpoint, ACCESS_KEY, SECRET_KEY, true)
    }

    /// A raw HTTP client that adds nothing on its own.
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn client_for(
    endpoint: &str,
    access_key: &str,
    secret_key: &str,
    path_style: bool,
) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        client_config(endpoint, access_key, secret_key, path_style).build(),
    )
}

/// The SDK configuration of [`client_for`], for tests that add to it (an
/// HTTPS client that trusts a test CA).
pub fn client_config(
    endpoint: &str,
    access_key: &str,
    secret_key: &str,
    path_style: bool,
) -> aws_sdk_s3::config::Builder {
    let creds = aws_credential_types::Credentials::new(
        access_key,
        secret_key,
        None,
        None,
        "preflight-tests",
    );
    aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(path_style)
}

/// A unique bucket name for a test.
pub fn bucket_name(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}-{}",
        tag,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The S3 error code of an XML error body.
pub fn error_code(body: &str) -> Option<String> {
    xml_field(body, "Code")
}

/// The text of the first `<name>` element of an XML body.
pub fn xml_field(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(body[start..end].to_owned())
}
