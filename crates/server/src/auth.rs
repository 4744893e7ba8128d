//! SigV4 secrets for s3s: the root key, then the users' keys (in memory).

use std::sync::Arc;

use s3s::S3Result;
use s3s::auth::{S3Auth, SecretKey};

use crate::config::RootCredentials;
use crate::errors::s3_err;
use crate::keys::KeyStore;

pub struct KeyAuth {
    root: RootCredentials,
    keys: Arc<KeyStore>,
}

impl KeyAuth {
    pub fn new(root: RootCredentials, keys: Arc<KeyStore>) -> Self {
        Self { root, keys }
    }

    /// The secret of an access key, root or user.
    pub fn secret_of(&self, access_key: &str) -> Option<String> {
        if access_key == self.root.access_key {
            return Some(self.root.secret_key.clone());
        }
        self.keys.secret_of(access_key).map(|(_, secret)| secret)
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if let Some(secret) = self.secret_of(access_key) {
            return Ok(SecretKey::from(secret.as_str()));
        }
        let mut e = s3_err(s3s::S3ErrorCode::InvalidAccessKeyId);
        e.set_message("The AWS Access Key Id you provided does not exist in our records.");
        Err(e)
    }
}
