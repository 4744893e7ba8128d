//! `--blobs` URLs of OpenDAL services turned into OpenDAL configurations.
//!
//! The URL names the service, the bucket (or container) and the prefix;
//! its query carries what is not a secret (endpoint, region, account);
//! credentials come from the environment, read through a map so that tests
//! pass their own instead of changing the process environment.

use std::collections::HashMap;

use opendal::services::{AzblobConfig, GcsConfig, S3Config};

/// An OpenDAL service named by a `--blobs` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    S3,
    Gcs,
    Azblob,
}

impl Service {
    /// The scheme of the URL and the `backend` of errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Service::S3 => "s3",
            Service::Gcs => "gcs",
            Service::Azblob => "azblob",
        }
    }

    fn from_scheme(scheme: &str) -> Option<Service> {
        match scheme {
            "s3" => Some(Service::S3),
            "gcs" => Some(Service::Gcs),
            "azblob" => Some(Service::Azblob),
            _ => None,
        }
    }

    /// The query parameters the service takes.
    fn parameters(self) -> &'static [&'static str] {
        match self {
            Service::S3 => &["endpoint", "region", "virtual_host_style"],
            Service::Gcs => &["endpoint"],
            Service::Azblob => &["endpoint", "account"],
        }
    }
}

/// What a `--blobs` URL of an OpenDAL service says, credentials aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) service: Service,
    /// Bucket (S3, GCS) or container (Azure).
    pub(crate) bucket: String,
    /// The prefix inside the bucket, without slashes around it; may be empty.
    pub(crate) prefix: String,
    pub(crate) endpoint: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) account: Option<String>,
    pub(crate) virtual_host_style: bool,
}

impl Target {
    /// Reads a `--blobs` URL whose scheme is an OpenDAL service.
    pub(crate) fn parse(url: &url::Url) -> Result<Target, String> {
        let shown = without_query(url);
        let service = Service::from_scheme(url.scheme())
            .ok_or_else(|| format!("{shown}: not an OpenDAL service"))?;
        let bucket = url.host_str().unwrap_or_default().to_owned();
        if bucket.is_empty() {
            return Err(format!(
                "{shown}: {}:// needs a bucket or container, e.g. {}://NAME/PREFIX",
                service.name(),
                service.name()
            ));
        }
        if url.port().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "{shown}: the host part is the bucket name; pass the server as ?endpoint=URL \
                 and credentials in the environment"
            ));
        }
        let prefix = url
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        let mut target = Target {
            service,
            bucket,
            prefix,
            endpoint: None,
            region: None,
            account: None,
            virtual_host_style: false,
        };
        for (name, value) in url.query_pairs() {
            let value = value.into_owned();
            match name.as_ref() {
                name if !service.parameters().contains(&name) => {
                    return Err(format!(
                        "{shown}: unknown parameter {name:?} (a {}:// location takes {})",
                        service.name(),
                        service.parameters().join(", ")
                    ));
                }
                "endpoint" => {
                    let endpoint = url::Url::parse(&value)
                        .ok()
                        .filter(|e| matches!(e.scheme(), "http" | "https"))
                        .ok_or_else(|| {
                            format!("{shown}: endpoint {value:?} is not an http(s):// URL")
                        })?;
                    target.endpoint = Some(endpoint.as_str().trim_end_matches('/').to_owned());
                }
                "region" => target.region = Some(value),
                "account" => target.account = Some(value),
                "virtual_host_style" => {
                    target.virtual_host_style = match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(format!(
                                "{shown}: virtual_host_style is true or false, not {value:?}"
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(target)
    }

    /// `s3://bucket/prefix`: how errors name the location.
    pub(crate) fn label(&self) -> String {
        if self.prefix.is_empty() {
            format!("{}://{}", self.service.name(), self.bucket)
        } else {
            format!("{}://{}/{}", self.service.name(), self.bucket, self.prefix)
        }
    }

    /// The OpenDAL root: the prefix as an absolute directory.
    fn root(&self) -> String {
        if self.prefix.is_empty() {
            "/".to_owned()
        } else {
            format!("/{}/", self.prefix)
        }
    }

    /// The OpenDAL configuration, with credentials taken from `env`.
    pub(crate) fn config(&self, env: &HashMap<String, String>) -> Result<ServiceConfig, String> {
        let var = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        match self.service {
            Service::S3 => {
                let mut config = S3Config::default();
                config.bucket = self.bucket.clone();
                config.root = Some(self.root());
                config.endpoint = self.endpoint.clone().or_else(|| var("AWS_ENDPOINT_URL"));
                config.region = self
                    .region
                    .clone()
                    .or_else(|| var("AWS_REGION"))
                    .or_else(|| var("AWS_DEFAULT_REGION"))
                    .or_else(|| Some("us-east-1".to_owned()));
                config.enable_virtual_host_style = self.virtual_host_style;
                match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                    (Some(access), Some(secret)) => {
                        config.access_key_id = Some(access);
                        config.secret_access_key = Some(secret);
                        config.session_token = var("AWS_SESSION_TOKEN");
                        // The keys given are the keys used: no profile file,
                        // no instance metadata behind our back.
                        config.disable_config_load = true;
                    }
                    (None, None) => {}
                    _ => {
                        return Err(format!(
                            "{}: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither",
                            self.label()
                        ));
                    }
                }
                Ok(ServiceConfig::S3(Box::new(config)))
            }
            Service::Gcs => {
                let mut config = GcsConfig::default();
                config.bucket = self.bucket.clone();
                config.root = Some(self.root());
                config.endpoint = self.endpoint.clone();
                config.credential_path = var("GOOGLE_APPLICATION_CREDENTIALS");
                Ok(ServiceConfig::Gcs(Box::new(config)))
            }
            Service::Azblob => {
                let account = self
                    .account
                    .clone()
                    .or_else(|| var("AZURE_STORAGE_ACCOUNT"));
                let endpoint = match (&self.endpoint, &account) {
                    (Some(endpoint), _) => endpoint.clone(),
                    (None, Some(account)) => format!("https://{account}.blob.core.windows.net"),
                    (None, None) => {
                        return Err(format!(
                            "{}: azblob:// needs ?endpoint=URL or an account \
                             (?account=NAME or AZURE_STORAGE_ACCOUNT)",
                            self.label()
                        ));
                    }
                };
                let config = AzblobConfig {
                    container: self.bucket.clone(),
                    root: Some(self.root()),
                    endpoint: Some(endpoint),
                    account_name: account,
                    account_key: var("AZURE_STORAGE_KEY"),
                    sas_token: var("AZURE_STORAGE_SAS_TOKEN"),
                    ..AzblobConfig::default()
                };
                Ok(ServiceConfig::Azblob(Box::new(config)))
            }
        }
    }
}

/// The configuration of one OpenDAL service.
/// (The OpenDAL configurations print without their secrets.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServiceConfig {
    S3(Box<S3Config>),
    Gcs(Box<GcsConfig>),
    Azblob(Box<AzblobConfig>),
}

/// The URL without its query and user info, for messages (a secret put
/// there by mistake is not echoed).
fn without_query(url: &url::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    let _ = url.set_password(None);
    let _ = url.set_username("");
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(value: &str) -> Result<Target, String> {
        Target::parse(&url::Url::parse(value).unwrap())
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn s3(config: ServiceConfig) -> S3Config {
        match config {
            ServiceConfig::S3(config) => *config,
            _ => panic!("not an S3 configuration"),
        }
    }

    #[test]
    fn s3_bucket_prefix_endpoint_region() {
        let t =
            target("s3://thatbucket/some/prefix?endpoint=http://127.0.0.1:9000/&region=eu-west-3")
                .unwrap();
        assert_eq!(t.service, Service::S3);
        assert_eq!(t.bucket, "thatbucket");
        assert_eq!(t.prefix, "some/prefix");
        assert_eq!(t.label(), "s3://thatbucket/some/prefix");
        let c = s3(t
            .config(&env(&[
                ("AWS_ACCESS_KEY_ID", "AK"),
                ("AWS_SECRET_ACCESS_KEY", "SK"),
                ("AWS_SESSION_TOKEN", "TOKEN"),
                ("AWS_REGION", "ignored-when-the-url-says"),
            ]))
            .unwrap());
        assert_eq!(c.bucket, "thatbucket");
        assert_eq!(c.root.as_deref(), Some("/some/prefix/"));
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.region.as_deref(), Some("eu-west-3"));
        assert_eq!(c.access_key_id.as_deref(), Some("AK"));
        assert_eq!(c.secret_access_key.as_deref(), Some("SK"));
        assert_eq!(c.session_token.as_deref(), Some("TOKEN"));
        assert!(c.disable_config_load);
        assert!(!c.enable_virtual_host_style);
    }

    #[test]
    fn s3_defaults_from_env() {
        let t = target("s3://b").unwrap();
        assert_eq!(t.prefix, "");
        assert_eq!(t.label(), "s3://b");
        let c = s3(t.config(&env(&[])).unwrap());
        assert_eq!(c.root.as_deref(), Some("/"));
        assert_eq!(c.endpoint, None);
        assert_eq!(c.region.as_deref(), Some("us-east-1"));
        // No keys: OpenDAL's own chain (profile, web identity, IMDS) runs.
        assert_eq!(c.access_key_id, None);
        assert!(!c.disable_config_load);

        let c = s3(t
            .config(&env(&[
                ("AWS_DEFAULT_REGION", "ap-south-1"),
                ("AWS_ENDPOINT_URL", "https://s3.example.net"),
            ]))
            .unwrap());
        assert_eq!(c.region.as_deref(), Some("ap-south-1"));
        assert_eq!(c.endpoint.as_deref(), Some("https://s3.example.net"));

        let t = target("s3://b//a//b/?virtual_host_style=true").unwrap();
        assert_eq!(t.prefix, "a/b");
        assert!(s3(t.config(&env(&[])).unwrap()).enable_virtual_host_style);
    }

    #[test]
    fn s3_half_credentials_refused() {
        let t = target("s3://b/p").unwrap();
        let err = t.config(&env(&[("AWS_ACCESS_KEY_ID", "AK")])).unwrap_err();
        assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    }

    #[test]
    fn bad_urls() {
        let err = target("s3:///prefix").unwrap_err();
        assert!(err.contains("needs a bucket"), "{err}");
        let err = target("s3://b/p?endpoit=http://x").unwrap_err();
        assert!(err.contains("unknown parameter \"endpoit\""), "{err}");
        let err = target("s3://b/p?endpoint=localhost:9000").unwrap_err();
        assert!(err.contains("not an http(s):// URL"), "{err}");
        let err = target("s3://b:9000/p").unwrap_err();
        assert!(err.contains("?endpoint=URL"), "{err}");
        let err = target("s3://key:secret@b/p").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert!(target("gcs://b/p?region=x").is_err());
        assert!(target("s3://b/p?virtual_host_style=yes").is_err());
    }

    #[test]
    fn gcs_config() {
        let t = target("gcs://gbucket/pre?endpoint=http://127.0.0.1:4443").unwrap();
        let ServiceConfig::Gcs(c) = t
            .config(&env(&[("GOOGLE_APPLICATION_CREDENTIALS", "/etc/sa.json")]))
            .unwrap()
        else {
            panic!("not GCS");
        };
        assert_eq!(c.bucket, "gbucket");
        assert_eq!(c.root.as_deref(), Some("/pre/"));
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:4443"));
        assert_eq!(c.credential_path.as_deref(), Some("/etc/sa.json"));
    }

    #[test]
    fn azblob_config() {
        let t =
            target("azblob://cont/x/y?endpoint=http://127.0.0.1:10000/devstoreaccount1").unwrap();
        let ServiceConfig::Azblob(c) = t
            .config(&env(&[
                ("AZURE_STORAGE_ACCOUNT", "devstoreaccount1"),
                ("AZURE_STORAGE_KEY", "a2V5"),
            ]))
            .unwrap()
        else {
            panic!("not Azure");
        };
        assert_eq!(c.container, "cont");
        assert_eq!(c.root.as_deref(), Some("/x/y/"));
        assert_eq!(
            c.endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        assert_eq!(c.account_name.as_deref(), Some("devstoreaccount1"));
        assert_eq!(c.account_key.as_deref(), Some("a2V5"));

        // The account alone gives the public endpoint.
        let t = target("azblob://cont?account=acct").unwrap();
        let ServiceConfig::Azblob(c) = t.config(&env(&[])).unwrap() else {
            panic!("not Azure");
        };
        assert_eq!(
            c.endpoint.as_deref(),
            Some("https://acct.blob.core.windows.net")
        );
        // Neither: a clear refusal.
        let err = target("azblob://cont")
            .unwrap()
            .config(&env(&[]))
            .unwrap_err();
        assert!(err.contains("AZURE_STORAGE_ACCOUNT"), "{err}");
    }
}
