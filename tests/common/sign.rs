//! SigV4 signing of raw requests (header or presigned query), so that tests
//! can send byte-exact requests as the bucket owner.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;

use super::{ACCESS_KEY, REGION, SECRET_KEY};

fn settings(presign: Option<Duration>) -> SigningSettings {
    let mut s = SigningSettings::default();
    s.percent_encoding_mode = PercentEncodingMode::Single;
    s.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    match presign {
        Some(expires) => {
            s.signature_location = SignatureLocation::QueryParams;
            s.expires_in = Some(expires);
        }
        None => s.payload_checksum_kind = PayloadChecksumKind::XAmzSha256,
    }
    s
}

/// Signs a request with the root key. Returns the URL to use (with the
/// signature in the query when presigning) and the headers to add.
pub fn sign_request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    presign: Option<Duration>,
) -> (String, Vec<(String, String)>) {
    let identity =
        aws_credential_types::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "tests").into();
    let settings = settings(presign);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let body = if presign.is_some() {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(body)
    };
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        body,
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .body(())
        .expect("request");
    instructions.apply_to_request_http1x(&mut req);
    let out_url = req.uri().to_string();
    let out_headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    (out_url, out_headers)
}
