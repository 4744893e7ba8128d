//! Access keys of Preflight users. Each user `NAME` is the IAM principal
//! `arn:aws:iam::000000000000:user/NAME`, which bucket policies can name; a
//! user's key can do only what a policy or ACL grants.
//!
//! SigV4 needs the secret itself, so secrets are stored as they are, in
//! `keys.json` in the data dir with mode 0600, written atomically (temp
//! file, fsync, rename, fsync the directory). The server keeps them in
//! memory; they are never logged (`UserKey`'s `Debug` leaves the secret out).

pub mod admin;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::policy::{user_arn, valid_user_name};

pub const KEYS_FILE: &str = "keys.json";

/// One user and its key.
#[derive(Clone, Serialize, Deserialize)]
pub struct UserKey {
    pub name: String,
    pub access_key: String,
    pub secret_key: String,
    /// RFC 3339.
    pub created: String,
}

impl std::fmt::Debug for UserKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserKey")
            .field("name", &self.name)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

impl UserKey {
    pub fn arn(&self) -> String {
        user_arn(&self.name)
    }
}

/// What `keys list` shows: never the secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserSummary {
    pub name: String,
    pub access_key: String,
    pub arn: String,
    pub created: String,
}

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("invalid user name {0:?}: use 1-64 characters of A-Z a-z 0-9 + = , . @ _ -")]
    InvalidName(String),
    #[error("user {0} already exists")]
    Exists(String),
    #[error("no such user {0}")]
    NoSuchUser(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid keys file: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

#[derive(Default, Serialize, Deserialize)]
struct KeysFile {
    users: Vec<UserKey>,
}

/// The users of a data dir, loaded in memory.
#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    /// name → key
    users: RwLock<BTreeMap<String, UserKey>>,
}

impl KeyStore {
    /// Loads `keys.json` from the data dir (none yet: no users).
    pub fn open(data_dir: &Path) -> Result<KeyStore, KeyError> {
        let path = data_dir.join(KEYS_FILE);
        let file: KeysFile = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| KeyError::Corrupt {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => KeysFile::default(),
            Err(source) => return Err(KeyError::Io { path, source }),
        };
        let users = file
            .users
            .into_iter()
            .map(|u| (u.name.clone(), u))
            .collect();
        Ok(KeyStore {
            path,
            users: RwLock::new(users),
        })
    }

    /// An empty store that is never saved (tests).
    pub fn in_memory() -> KeyStore {
        KeyStore {
            path: PathBuf::new(),
            users: RwLock::new(BTreeMap::new()),
        }
    }

    /// The user name and secret of an access key.
    pub fn secret_of(&self, access_key: &str) -> Option<(String, String)> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users
            .values()
            .find(|u| u.access_key == access_key)
            .map(|u| (u.name.clone(), u.secret_key.clone()))
    }

    pub fn user_of(&self, access_key: &str) -> Option<String> {
        self.secret_of(access_key).map(|(name, _)| name)
    }

    pub fn list(&self) -> Vec<UserSummary> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users
            .values()
            .map(|u| UserSummary {
                name: u.name.clone(),
                access_key: u.access_key.clone(),
                arn: u.arn(),
                created: u.created.clone(),
            })
            .collect()
    }

    /// Creates a user with a new key and saves the file.
    pub fn add(&self, name: &str) -> Result<UserKey, KeyError> {
        if !valid_user_name(name) {
            return Err(KeyError::InvalidName(name.to_owned()));
        }
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        if users.contains_key(name) {
            return Err(KeyError::Exists(name.to_owned()));
        }
        let key = UserKey {
            name: name.to_owned(),
            access_key: new_access_key(),
            secret_key: new_secret_key(),
            created: now_rfc3339(),
        };
        let mut next = users.clone();
        next.insert(name.to_owned(), key.clone());
        self.save(&next)?;
        *users = next;
        Ok(key)
    }

    /// Removes a user and saves the file.
    pub fn remove(&self, name: &str) -> Result<(), KeyError> {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        if !users.contains_key(name) {
            return Err(KeyError::NoSuchUser(name.to_owned()));
        }
        let mut next = users.clone();
        next.remove(name);
        self.save(&next)?;
        *users = next;
        Ok(())
    }

    fn save(&self, users: &BTreeMap<String, UserKey>) -> Result<(), KeyError> {
        if self.path.as_os_str().is_empty() {
            return Ok(());
        }
        let file = KeysFile {
            users: users.values().cloned().collect(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|source| KeyError::Corrupt {
            path: self.path.clone(),
            source,
        })?;
        write_private_atomic(&self.path, &json).map_err(|source| KeyError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// temp file (mode 0600) → fsync → rename → fsync the directory.
fn write_private_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        out.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    out.truncate(n);
    out
}

/// `PK` + 18 characters of A-Z2-7: 20 characters like AWS keys.
fn new_access_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let chars: String = random_bytes(18)
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    format!("PK{chars}")
}

/// 40 characters of base64, like AWS secrets.
fn new_secret_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(random_bytes(30))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_list_remove_persist() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        let alice = store.add("alice").unwrap();
        assert_eq!(alice.access_key.len(), 20);
        assert_eq!(alice.secret_key.len(), 40);
        assert!(matches!(store.add("alice"), Err(KeyError::Exists(_))));
        assert!(matches!(
            store.add("bad name"),
            Err(KeyError::InvalidName(_))
        ));
        store.add("bob").unwrap();
        let again = KeyStore::open(dir.path()).unwrap();
        let names: Vec<String> = again.list().into_iter().map(|u| u.name).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(
            again.secret_of(&alice.access_key),
            Some(("alice".into(), alice.secret_key.clone()))
        );
        again.remove("alice").unwrap();
        assert!(matches!(
            again.remove("alice"),
            Err(KeyError::NoSuchUser(_))
        ));
        assert_eq!(KeyStore::open(dir.path()).unwrap().list().len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEYS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let store = KeyStore::in_memory();
        let k = store.add("carol").unwrap();
        assert!(!format!("{k:?}").contains(&k.secret_key));
    }
}
