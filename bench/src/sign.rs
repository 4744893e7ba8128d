//! SigV4 (header form, signed payload) for the few setup requests the bench
//! makes as the bucket owner, through the `aws-sigv4` crate as the CLI signs.
//! Load requests are anonymous, so signing cost never shows up in the
//! measurements.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign as sigv4_sign,
};
use aws_sigv4::sign::v4;

pub const REGION: &str = "us-east-1";

pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

/// Signs `method path?query` with `headers` (lower-case names) and `body`;
/// returns the headers to send besides `host`, including `authorization`.
pub fn sign(
    creds: &Credentials,
    method: &str,
    host: &str,
    path: &str,
    query: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> anyhow::Result<Vec<(String, String)>> {
    let identity = aws_credential_types::Credentials::new(
        &creds.access_key,
        &creds.secret_key,
        None,
        None,
        "preflight-bench",
    )
    .into();
    // S3's signing rules: no double encoding, no path normalisation, and
    // the payload hash in x-amz-content-sha256.
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()?
        .into();
    let url = if query.is_empty() {
        format!("http://{host}{path}")
    } else {
        format!("http://{host}{path}?{query}")
    };
    let signable = SignableRequest::new(
        method,
        &url,
        headers.iter().map(|(k, v)| (*k, v.as_str())),
        SignableBody::Bytes(body),
    )?;
    let (instructions, _) = sigv4_sign(signable, &params)?.into_parts();
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    out.extend(
        instructions
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned())),
    );
    Ok(out)
}
