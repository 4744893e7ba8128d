//! GetBucketCors from a live bucket: a SigV4-signed `GET /BUCKET?cors` (path style).

use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;

pub struct Target<'a> {
    pub endpoint: &'a str,
    pub bucket: &'a str,
    pub region: &'a str,
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub session_token: Option<String>,
}

/// What GetBucketCors answered.
pub enum Fetched {
    /// The configuration document (XML).
    Config(String),
    /// 404 NoSuchCORSConfiguration.
    NoConfig,
    /// 404 NoSuchBucket.
    NoBucket,
}

pub fn get_bucket_cors(t: &Target<'_>) -> anyhow::Result<Fetched> {
    if !t.endpoint.starts_with("http://") {
        bail!(
            "--endpoint must be http://HOST:PORT (this build has no TLS client); for an https endpoint, save `aws s3api get-bucket-cors --bucket {}` to a file and pass --config FILE",
            t.bucket
        );
    }
    let url = format!("{}/{}?cors", t.endpoint.trim_end_matches('/'), t.bucket);
    let headers = sign_get(t, &url)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (status, body) = runtime
        .block_on(async {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?;
            let mut req = client.get(&url);
            for (name, value) in &headers {
                req = req.header(name, value);
            }
            let res = req.send().await?;
            let status = res.status().as_u16();
            let body = res.text().await?;
            Ok::<_, reqwest::Error>((status, body))
        })
        .with_context(|| format!("GET {url} failed"))?;
    let code = xml_field(&body, "Code");
    match (status, code.as_deref()) {
        (200, _) => Ok(Fetched::Config(body)),
        (404, Some("NoSuchCORSConfiguration")) => Ok(Fetched::NoConfig),
        (404, Some("NoSuchBucket")) => Ok(Fetched::NoBucket),
        _ => bail!(
            "GET {url} answered {status} {}: {}",
            code.unwrap_or_default(),
            xml_field(&body, "Message").unwrap_or_default()
        ),
    }
}

/// The headers that sign `GET url` with an empty body.
fn sign_get(t: &Target<'_>, url: &str) -> anyhow::Result<Vec<(String, String)>> {
    let identity = aws_credential_types::Credentials::new(
        t.access_key,
        t.secret_key,
        t.session_token.clone(),
        None,
        "preflight-cli",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(t.region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .context("signing parameters")?
        .into();
    let signable = SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
        .context("the URL cannot be signed")?;
    let (instructions, _) = sign(signable, &params)
        .context("signing failed")?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect())
}

/// The text of the first `<name>` element.
fn xml_field(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(body[start..end].to_owned())
}
