//! `preflight presign`: presigned GET/PUT URLs and browser form uploads
//! (presigned POST), signed with the configured credentials.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Args, Subcommand};
use preflight_server::RootCredentials;
use preflight_server::sigv4;
use serde_json::{Map, Value, json};

use crate::credentials;
use crate::units::{parse_duration, parse_size};

/// Which key signs: flags, environment, else the data dir's credentials.json.
#[derive(Args, Clone)]
pub struct CredentialArgs {
    /// Access key (default: PREFLIGHT_ACCESS_KEY, else the data dir's root key).
    #[arg(long, env = "PREFLIGHT_ACCESS_KEY", requires = "secret_key")]
    pub access_key: Option<String>,
    /// Secret key (default: PREFLIGHT_SECRET_KEY, else the data dir's root key).
    #[arg(long, env = "PREFLIGHT_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Data dir whose credentials.json to use when no key is given.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
}

impl CredentialArgs {
    /// The root secret alone (what the admin listener wants).
    pub fn resolve_secret(&self) -> anyhow::Result<String> {
        match &self.secret_key {
            Some(secret) => Ok(secret.clone()),
            None => Ok(self.resolve()?.secret_key),
        }
    }

    pub fn resolve(&self) -> anyhow::Result<RootCredentials> {
        if let (Some(access_key), Some(secret_key)) = (&self.access_key, &self.secret_key) {
            return Ok(RootCredentials {
                access_key: access_key.clone(),
                secret_key: secret_key.clone(),
            });
        }
        credentials::load(&self.data_dir)?.with_context(|| {
            format!(
                "no credentials: pass --access-key/--secret-key, set PREFLIGHT_ACCESS_KEY/PREFLIGHT_SECRET_KEY, or point --data-dir at a data dir with credentials.json (not {})",
                self.data_dir.display()
            )
        })
    }
}

#[derive(Args, Clone)]
pub struct Target {
    /// The S3 endpoint the URL is for.
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    endpoint: String,
    /// Region of the signature.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[command(flatten)]
    credentials: CredentialArgs,
}

#[derive(Subcommand)]
pub enum PresignCommand {
    /// A presigned GET URL for an object.
    Get(UrlArgs),
    /// A presigned PUT URL for an object.
    Put(UrlArgs),
    /// A browser form upload (presigned POST): URL and form fields as JSON.
    Post(PostArgs),
}

#[derive(Args)]
pub struct UrlArgs {
    bucket: String,
    key: String,
    /// Validity, at most 7 days (`90s`, `15m`, `1h`, `7d`).
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    expires: Duration,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct PostArgs {
    bucket: String,
    /// An exact key, or a prefix ending in `/` (the browser's file name is
    /// appended through `${filename}`).
    key_or_prefix: String,
    /// Largest file accepted (`content-length-range`), e.g. `10MiB`.
    #[arg(long, value_parser = parse_size)]
    max_size: Option<u64>,
    /// Smallest file accepted.
    #[arg(long, value_parser = parse_size, default_value = "0")]
    min_size: u64,
    /// The form's Content-Type field must start with this (e.g. `image/`).
    #[arg(long)]
    content_type_prefix: Option<String>,
    /// Canned ACL of the stored object (a field and an exact condition).
    #[arg(long)]
    acl: Option<String>,
    /// 200, 201 (an XML PostResponse) or 204 (the default).
    #[arg(long)]
    success_action_status: Option<String>,
    /// Where the browser is sent (303) after a successful upload.
    #[arg(long)]
    success_action_redirect: Option<String>,
    /// Validity of the form (the policy's `expiration`).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    expires: Duration,
    #[command(flatten)]
    target: Target,
}

const MAX_URL_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn run(cmd: PresignCommand) -> anyhow::Result<()> {
    match cmd {
        PresignCommand::Get(args) => println!("{}", url(&args, "GET")?),
        PresignCommand::Put(args) => println!("{}", url(&args, "PUT")?),
        PresignCommand::Post(args) => {
            println!("{}", serde_json::to_string_pretty(&post(&args)?)?)
        }
    }
    Ok(())
}

fn url(args: &UrlArgs, method: &str) -> anyhow::Result<String> {
    if args.expires > MAX_URL_EXPIRY {
        bail!("--expires can be at most 7d (S3 refuses longer presigned URLs)");
    }
    let creds = args.target.credentials.resolve()?;
    presign_url(
        method,
        &args.target.endpoint,
        &args.bucket,
        &args.key,
        &args.target.region,
        &creds,
        args.expires,
    )
}

/// A SigV4 query-signed, path-style URL, signed by the `aws-sigv4` crate
/// (the same signer the AWS SDKs use).
fn presign_url(
    method: &str,
    endpoint: &str,
    bucket: &str,
    key: &str,
    region: &str,
    creds: &RootCredentials,
    expires: Duration,
) -> anyhow::Result<String> {
    use aws_sigv4::http_request::{
        PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    let url = format!(
        "{}/{}/{}",
        endpoint.trim_end_matches('/'),
        sigv4::uri_encode(bucket, false),
        sigv4::uri_encode(key, true)
    );
    let identity = aws_credential_types::Credentials::new(
        &creds.access_key,
        &creds.secret_key,
        None,
        None,
        "preflight-presign",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .context("presign parameters")?
        .into();
    let signable = SignableRequest::new(
        method,
        url.as_str(),
        std::iter::empty(),
        SignableBody::UnsignedPayload,
    )
    .context("URL to presign")?;
    let (instructions, _) = sign(signable, &params).context("presign")?.into_parts();
    let mut req = http::Request::builder()
        .method(method)
        .uri(url.as_str())
        .body(())
        .context("URL to presign")?;
    instructions.apply_to_request_http1x(&mut req);
    Ok(req.uri().to_string())
}

/// `{"url": ..., "fields": {...}}`, as boto3's generate_presigned_post.
pub fn post(args: &PostArgs) -> anyhow::Result<Value> {
    let creds = args.target.credentials.resolve()?;
    let now = time::OffsetDateTime::now_utc();
    let (amz_date, day) = sigv4::amz_date(now);
    let credential = format!(
        "{}/{day}/{}/s3/aws4_request",
        creds.access_key, args.target.region
    );
    let expiration = (now + args.expires)
        .format(&time::format_description::well_known::Rfc3339)
        .context("expiration out of range")?;

    let mut fields = Map::new();
    let mut conditions = vec![json!({ "bucket": args.bucket })];
    let prefix_mode = args.key_or_prefix.is_empty() || args.key_or_prefix.ends_with('/');
    if prefix_mode {
        fields.insert(
            "key".into(),
            json!(format!("{}${{filename}}", args.key_or_prefix)),
        );
        conditions.push(json!(["starts-with", "$key", args.key_or_prefix]));
    } else {
        fields.insert("key".into(), json!(args.key_or_prefix));
        conditions.push(json!({ "key": args.key_or_prefix }));
    }
    for (name, value) in [
        ("acl", &args.acl),
        ("success_action_status", &args.success_action_status),
        ("success_action_redirect", &args.success_action_redirect),
    ] {
        if let Some(v) = value {
            fields.insert(name.into(), json!(v));
            conditions.push(json!({ name: v }));
        }
    }
    if let Some(prefix) = &args.content_type_prefix {
        conditions.push(json!(["starts-with", "$Content-Type", prefix]));
    }
    if let Some(max) = args.max_size {
        if max < args.min_size {
            bail!("--max-size is smaller than --min-size");
        }
        conditions.push(json!(["content-length-range", args.min_size, max]));
    }
    for (name, value) in [
        ("x-amz-algorithm", sigv4::ALGORITHM),
        ("x-amz-credential", credential.as_str()),
        ("x-amz-date", amz_date.as_str()),
    ] {
        fields.insert(name.into(), json!(value));
        conditions.push(json!({ name: value }));
    }
    let policy = json!({ "expiration": expiration, "conditions": conditions });
    let policy_b64 = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let signature =
        sigv4::post_policy_signature(&creds.secret_key, &day, &args.target.region, &policy_b64)
            .context("signing date")?;
    fields.insert("policy".into(), json!(policy_b64));
    fields.insert("x-amz-signature".into(), json!(signature));
    let url = format!(
        "{}/{}",
        args.target.endpoint.trim_end_matches('/'),
        args.bucket
    );
    Ok(json!({ "url": url, "fields": fields }))
}
