//! `preflight keys add|list|remove`: users' access keys, either in the
//! metadata store directly (the data dir's `meta.sqlite`, or `--meta` /
//! PREFLIGHT_META for PostgreSQL; a running server sees the change within a
//! second) or through a running server's admin listener (`--admin-url`,
//! authenticated with the root secret key).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use preflight_server::keys::{KeyStore, UserSummary};
use preflight_server::{MetaLocation, MetaOptions};
use serde_json::{Value, json};

use crate::presign::CredentialArgs;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create user NAME with a new access key; prints the secret once.
    Add {
        name: String,
        #[command(flatten)]
        at: Where,
    },
    /// List users and their access keys (never the secrets).
    List {
        #[command(flatten)]
        at: Where,
    },
    /// Remove user NAME and its key.
    Remove {
        name: String,
        #[command(flatten)]
        at: Where,
    },
}

#[derive(Args)]
pub struct Where {
    /// A running server's admin listener, e.g. http://127.0.0.1:9001
    /// (else the metadata store is changed directly).
    #[arg(long)]
    admin_url: Option<String>,
    /// The metadata store to change directly: `sqlite` (meta.sqlite in
    /// --data-dir), `sqlite:///FILE` or `postgres://...`.
    #[arg(
        long,
        env = "PREFLIGHT_META",
        default_value = "sqlite",
        hide_env_values = true
    )]
    meta: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The root key authenticates admin calls; --data-dir is also where
    /// the embedded metadata store lives.
    #[command(flatten)]
    credentials: CredentialArgs,
}

pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Add { name, at } => {
            let created = match &at.admin_url {
                Some(url) => admin_call(&at, url, "POST", &name)?,
                None => {
                    let k = local_store(&at).await?.add(&name).await?;
                    json!({"name": k.name, "arn": k.arn(), "access_key": k.access_key,
                           "secret_key": k.secret_key, "created": k.created})
                }
            };
            if at.json {
                println!("{created}");
            } else {
                let s = |k: &str| created[k].as_str().unwrap_or_default().to_owned();
                println!("User:       {} ({})", s("name"), s("arn"));
                println!("Access key: {}", s("access_key"));
                println!("Secret key: {}", s("secret_key"));
                println!("The secret key is shown only this once.");
            }
        }
        KeysCommand::List { at } => {
            let users: Vec<UserSummary> = match &at.admin_url {
                Some(url) => {
                    serde_json::from_value(admin_call(&at, url, "GET", "")?["users"].clone())
                        .context("unexpected answer from the admin endpoint")?
                }
                None => local_store(&at).await?.list(),
            };
            if at.json {
                println!("{}", json!({ "users": users }));
            } else if users.is_empty() {
                println!("No users. Create one with: preflight keys add NAME");
            } else {
                println!("{:<24} {:<22} {:<26} ARN", "NAME", "ACCESS KEY", "CREATED");
                for u in users {
                    println!(
                        "{:<24} {:<22} {:<26} {}",
                        u.name, u.access_key, u.created, u.arn
                    );
                }
            }
        }
        KeysCommand::Remove { name, at } => {
            match &at.admin_url {
                Some(url) => {
                    admin_call(&at, url, "DELETE", &name)?;
                }
                None => local_store(&at).await?.remove(&name).await?,
            }
            if !at.json {
                println!("Removed user {name}.");
            }
        }
    }
    Ok(())
}

/// The keys of the metadata store, opened directly (an old data dir's
/// keys.json is imported first, as the server does at start).
async fn local_store(at: &Where) -> anyhow::Result<Arc<KeyStore>> {
    let data_dir: &Path = &at.credentials.data_dir;
    let location = MetaLocation::parse(&at.meta, data_dir)
        .map_err(|e| anyhow::anyhow!("invalid --meta: {e}"))?;
    if let MetaLocation::Sqlite(file) = &location
        && !data_dir.is_dir()
        && !file.exists()
    {
        bail!("data dir {} does not exist", data_dir.display());
    }
    let meta = preflight_server::open_meta(&location, &MetaOptions::default()).await?;
    if matches!(location, MetaLocation::Sqlite(_)) {
        preflight_server::keys::import_keys_file(meta.as_ref(), data_dir).await?;
    }
    Ok(Arc::new(KeyStore::load(meta).await?))
}

/// One plain HTTP/1.1 call to the admin listener.
fn admin_call(at: &Where, url: &str, method: &str, name: &str) -> anyhow::Result<Value> {
    let secret = at.credentials.resolve_secret()?;
    let Some(authority) = url.strip_prefix("http://") else {
        bail!("--admin-url must be http://HOST:PORT");
    };
    let authority = authority.trim_end_matches('/');
    let path = if name.is_empty() {
        "/admin/keys".to_owned()
    } else {
        format!(
            "/admin/keys/{}",
            preflight_server::sigv4::uri_encode(name, false)
        )
    };
    let mut stream =
        TcpStream::connect(authority).with_context(|| format!("cannot connect to {url}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        secret
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP answer from the admin endpoint")?;
    let value: Value = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body.trim()).unwrap_or(Value::String(body.to_owned()))
    };
    if !(200..300).contains(&status) {
        let msg = value["error"]
            .as_str()
            .map_or_else(|| body.to_owned(), str::to_owned);
        bail!("admin endpoint answered {status}: {msg}");
    }
    Ok(value)
}
