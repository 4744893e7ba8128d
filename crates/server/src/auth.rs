//! SigV4 secrets for s3s: the root key (more keys come with user management).

use s3s::S3Result;
use s3s::auth::{S3Auth, SecretKey};

use crate::RootCredentials;
use crate::errors::s3_err;

pub struct KeyAuth {
    root: RootCredentials,
}

impl KeyAuth {
    pub fn new(root: RootCredentials) -> Self {
        Self { root }
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.root.access_key {
            return Ok(SecretKey::from(self.root.secret_key.as_str()));
        }
        let mut e = s3_err(s3s::S3ErrorCode::InvalidAccessKeyId);
        e.set_message("The AWS Access Key Id you provided does not exist in our records.");
        Err(e)
    }
}
