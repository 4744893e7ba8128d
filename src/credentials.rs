//! Root credentials kept in the data dir when none are given: generated
//! once, stored with mode 0600, reused on every start.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use preflight_server::RootCredentials;
use serde::{Deserialize, Serialize};

const FILE_NAME: &str = "credentials.json";

pub enum Source {
    Given,
    Loaded,
    Generated,
}

impl Source {
    pub fn describe(&self, data_dir: &Path) -> String {
        let path = file_path(data_dir);
        match self {
            Source::Given => {
                "from --access-key/--secret-key or PREFLIGHT_ACCESS_KEY/PREFLIGHT_SECRET_KEY"
                    .to_owned()
            }
            Source::Loaded => format!("loaded from {}", path.display()),
            Source::Generated => format!("generated and saved to {} (mode 0600)", path.display()),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    access_key: String,
    secret_key: String,
}

fn file_path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

pub fn load_or_generate(data_dir: &Path) -> anyhow::Result<(RootCredentials, Source)> {
    let path = file_path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let stored: Stored = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not valid", path.display()))?;
            let creds = RootCredentials {
                access_key: stored.access_key,
                secret_key: stored.secret_key,
            };
            Ok((creds, Source::Loaded))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let creds = generate();
            save(&path, &creds)?;
            Ok((creds, Source::Generated))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn generate() -> RootCredentials {
    let access = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    let secret_bytes: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
        .iter()
        .flat_map(|u| u.as_bytes().to_vec())
        .collect();
    let secret = base64::engine::general_purpose::STANDARD.encode(&secret_bytes[..30]);
    RootCredentials {
        access_key: format!("PF{}", &access[..18]),
        secret_key: secret,
    }
}

/// Writes the file atomically with mode 0600.
fn save(path: &Path, creds: &RootCredentials) -> anyhow::Result<()> {
    let stored = Stored {
        access_key: creds.access_key.clone(),
        secret_key: creds.secret_key.clone(),
    };
    let json = serde_json::to_vec_pretty(&stored)?;
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(&json)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The root credentials saved in the data dir, if the server made them.
pub fn load(data_dir: &Path) -> anyhow::Result<Option<RootCredentials>> {
    let path = file_path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let stored: Stored = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not valid", path.display()))?;
            Ok(Some(RootCredentials {
                access_key: stored.access_key,
                secret_key: stored.secret_key,
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
