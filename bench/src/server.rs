//! The server under test: the release `preflight` binary on a free loopback
//! port with a data dir inside the bench's work dir.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::sign::Credentials;

pub struct PreflightProcess {
    child: Child,
    pub addr: SocketAddr,
    pub creds: Credentials,
}

impl PreflightProcess {
    pub fn start(binary: &Path, data_dir: PathBuf) -> anyhow::Result<Self> {
        Self::start_with(binary, data_dir, &[])
    }

    /// Starts the server with extra `serve` arguments (`--meta`, `--blobs`).
    pub fn start_with(binary: &Path, data_dir: PathBuf, extra: &[String]) -> anyhow::Result<Self> {
        if !binary.exists() {
            bail!(
                "server binary {} not found: build it with `cargo build --release --bin preflight`",
                binary.display()
            );
        }
        let creds = Credentials {
            access_key: "PFBENCHACCESSKEY0001".into(),
            secret_key: "preflight-bench-secret-key-000000000000000".into(),
        };
        let mut child = Command::new(binary)
            .arg("serve")
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--access-key")
            .arg(&creds.access_key)
            .arg("--secret-key")
            .arg(&creds.secret_key)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("Preflight is serving S3 at ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                bail!("server did not report its address within 30 s");
            }
        };
        let addr = url
            .trim_start_matches("http://")
            .parse()
            .with_context(|| format!("server address {url}"))?;
        Ok(PreflightProcess { child, addr, creds })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PreflightProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
