//! Access keys of Preflight users. Each user `NAME` is the IAM principal
//! `arn:aws:iam::000000000000:user/NAME`, which bucket policies can name; a
//! user's key can do only what a policy or ACL grants.
//!
//! SigV4 needs the secret itself, so secrets are stored as they are, in the
//! metadata store (`user_keys`), which every node shares. Each node keeps
//! them in memory: the follower reloads them when the store's settings
//! generation moves (a key added through another node, or by `preflight keys
//! add` on the same SQLite file). They are never logged (`UserKey`'s `Debug`
//! leaves the secret out).
//!
//! Before issue 11 the keys lived in `keys.json` in the data dir;
//! [`import_keys_file`] moves such a file into the store once.

pub mod admin;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use preflight_store::{MetaStore, StoreError, UserKeyRecord};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::policy::{user_arn, valid_user_name};

/// The keys file of data dirs made before the keys moved into the store.
pub const KEYS_FILE: &str = "keys.json";
/// What [`import_keys_file`] renames it to once imported.
pub const IMPORTED_KEYS_FILE: &str = "keys.json.imported";

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

    fn from_record(r: UserKeyRecord) -> Self {
        UserKey {
            created: r.created.format(&Rfc3339).unwrap_or_default(),
            name: r.name,
            access_key: r.access_key,
            secret_key: r.secret_key,
        }
    }

    fn to_record(&self) -> UserKeyRecord {
        UserKeyRecord {
            name: self.name.clone(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            created: OffsetDateTime::parse(&self.created, &Rfc3339)
                .unwrap_or_else(|_| OffsetDateTime::now_utc()),
        }
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
    #[error("metadata store: {0}")]
    Store(StoreError),
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

impl From<StoreError> for KeyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UserExists(name) => KeyError::Exists(name),
            StoreError::NoSuchUser(name) => KeyError::NoSuchUser(name),
            other => KeyError::Store(other),
        }
    }
}

impl KeyError {
    /// Whether the store could not be reached (503, retry later).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, KeyError::Store(e) if e.is_unavailable())
    }
}

#[derive(Default, Serialize, Deserialize)]
struct KeysFile {
    users: Vec<UserKey>,
}

/// The users, read through the metadata store and cached in memory.
pub struct KeyStore {
    /// `None`: kept in memory only (tests).
    meta: Option<Arc<dyn MetaStore>>,
    /// name → key
    users: RwLock<Arc<BTreeMap<String, UserKey>>>,
    /// Serializes this node's changes with reloads, so a reload that read
    /// the store before a change never swaps it out after it was applied.
    update: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore").finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Loads the users from the store.
    pub async fn load(meta: Arc<dyn MetaStore>) -> Result<KeyStore, KeyError> {
        let users = read_all(meta.as_ref()).await?;
        Ok(KeyStore {
            meta: Some(meta),
            users: RwLock::new(Arc::new(users)),
            update: tokio::sync::Mutex::new(()),
        })
    }

    /// An empty store that is never saved (tests).
    pub fn in_memory() -> KeyStore {
        KeyStore {
            meta: None,
            users: RwLock::new(Arc::new(BTreeMap::new())),
            update: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self) -> Arc<BTreeMap<String, UserKey>> {
        self.users.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn edit(&self, change: impl FnOnce(&mut BTreeMap<String, UserKey>)) {
        let mut guard = self.users.write().unwrap_or_else(|e| e.into_inner());
        let mut next = BTreeMap::clone(&guard);
        change(&mut next);
        *guard = Arc::new(next);
    }

    /// The user name and secret of an access key.
    pub fn secret_of(&self, access_key: &str) -> Option<(String, String)> {
        self.snapshot()
            .values()
            .find(|u| u.access_key == access_key)
            .map(|u| (u.name.clone(), u.secret_key.clone()))
    }

    pub fn user_of(&self, access_key: &str) -> Option<String> {
        self.secret_of(access_key).map(|(name, _)| name)
    }

    pub fn list(&self) -> Vec<UserSummary> {
        self.snapshot()
            .values()
            .map(|u| UserSummary {
                name: u.name.clone(),
                access_key: u.access_key.clone(),
                arn: u.arn(),
                created: u.created.clone(),
            })
            .collect()
    }

    /// Creates a user with a new key, in the store then the cache (one
    /// task: run to completion even if the caller goes away).
    pub async fn add(self: &Arc<Self>, name: &str) -> Result<UserKey, KeyError> {
        if !valid_user_name(name) {
            return Err(KeyError::InvalidName(name.to_owned()));
        }
        let key = UserKey {
            name: name.to_owned(),
            access_key: new_access_key(),
            secret_key: new_secret_key(),
            created: now_rfc3339(),
        };
        let store = self.clone();
        let added = key.clone();
        spawn_to_completion(async move {
            let _update = store.update.lock().await;
            match &store.meta {
                Some(meta) => meta.create_user_key(&added.to_record()).await?,
                None if store.snapshot().contains_key(&added.name) => {
                    return Err(KeyError::Exists(added.name));
                }
                None => {}
            }
            store.edit(|users| {
                users.insert(added.name.clone(), added);
            });
            Ok(())
        })
        .await?;
        Ok(key)
    }

    /// Removes a user, from the store then the cache.
    pub async fn remove(self: &Arc<Self>, name: &str) -> Result<(), KeyError> {
        let store = self.clone();
        let name = name.to_owned();
        spawn_to_completion(async move {
            let _update = store.update.lock().await;
            match &store.meta {
                Some(meta) => meta.delete_user_key(&name).await?,
                None if !store.snapshot().contains_key(&name) => {
                    return Err(KeyError::NoSuchUser(name));
                }
                None => {}
            }
            store.edit(|users| {
                users.remove(&name);
            });
            Ok(())
        })
        .await
    }

    /// Re-reads every user from the store (the follower calls it when the
    /// settings generation moved).
    pub async fn reload(&self) -> Result<(), KeyError> {
        let Some(meta) = &self.meta else {
            return Ok(());
        };
        let _update = self.update.lock().await;
        let users = read_all(meta.as_ref()).await?;
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(users);
        Ok(())
    }
}

async fn read_all(meta: &dyn MetaStore) -> Result<BTreeMap<String, UserKey>, KeyError> {
    Ok(meta
        .list_user_keys()
        .await?
        .into_iter()
        .map(|r| (r.name.clone(), UserKey::from_record(r)))
        .collect())
}

async fn spawn_to_completion<T, F>(change: F) -> Result<T, KeyError>
where
    F: Future<Output = Result<T, KeyError>> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(change)
        .await
        .map_err(|e| KeyError::Store(StoreError::Io(std::io::Error::other(e))))?
}

/// Moves the users of an old `keys.json` in `data_dir` into the store, once:
/// each user is created (one already there, same name, is kept as it is),
/// then the file is renamed to `keys.json.imported`. Returns how many users
/// the file held (`None`: no file).
pub async fn import_keys_file(
    meta: &dyn MetaStore,
    data_dir: &Path,
) -> Result<Option<usize>, KeyError> {
    let path = data_dir.join(KEYS_FILE);
    let file: KeysFile = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| KeyError::Corrupt {
            path: path.clone(),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(KeyError::Io { path, source }),
    };
    let existing: Vec<String> = meta
        .list_user_keys()
        .await?
        .into_iter()
        .map(|k| k.name)
        .collect();
    for user in &file.users {
        if existing.contains(&user.name) {
            continue;
        }
        match meta.create_user_key(&user.to_record()).await {
            Ok(()) | Err(StoreError::UserExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let imported = data_dir.join(IMPORTED_KEYS_FILE);
    std::fs::rename(&path, &imported).map_err(|source| KeyError::Io {
        path: path.clone(),
        source,
    })?;
    if let Ok(dir) = std::fs::File::open(data_dir) {
        let _ = dir.sync_all();
    }
    tracing::info!(
        users = file.users.len(),
        from = %path.display(),
        renamed_to = %imported.display(),
        "imported access keys into the metadata store"
    );
    Ok(Some(file.users.len()))
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

    #[tokio::test]
    async fn add_list_remove_in_memory() {
        let store = Arc::new(KeyStore::in_memory());
        let alice = store.add("alice").await.unwrap();
        assert_eq!(alice.access_key.len(), 20);
        assert_eq!(alice.secret_key.len(), 40);
        assert!(matches!(store.add("alice").await, Err(KeyError::Exists(_))));
        assert!(matches!(
            store.add("bad name").await,
            Err(KeyError::InvalidName(_))
        ));
        store.add("bob").await.unwrap();
        let names: Vec<String> = store.list().into_iter().map(|u| u.name).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(
            store.secret_of(&alice.access_key),
            Some(("alice".into(), alice.secret_key.clone()))
        );
        store.remove("alice").await.unwrap();
        assert!(matches!(
            store.remove("alice").await,
            Err(KeyError::NoSuchUser(_))
        ));
        assert_eq!(store.list().len(), 1);
    }

    #[test]
    fn records_round_trip() {
        let key = UserKey {
            name: "dan".into(),
            access_key: new_access_key(),
            secret_key: new_secret_key(),
            created: "2024-05-06T07:08:09Z".into(),
        };
        let back = UserKey::from_record(key.to_record());
        assert_eq!(back.created, key.created);
        assert_eq!(back.secret_key, key.secret_key);
    }

    #[tokio::test]
    async fn debug_hides_the_secret() {
        let store = Arc::new(KeyStore::in_memory());
        let k = store.add("carol").await.unwrap();
        assert!(!format!("{k:?}").contains(&k.secret_key));
    }
}
