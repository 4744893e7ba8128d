//! SigV4 signing of raw requests (header or presigned query), so that tests
//! can send byte-exact requests as the bucket owner.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

// ---------------------------------------------------------------------
// A hand-driven signer: the parts of a signature a test wants to choose
// (SignedHeaders, region, service, time, the signature's case), which
// aws-sigv4 does not let a caller get wrong on purpose.
// ---------------------------------------------------------------------

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// HMAC (RFC 2104) over a 64-byte-block hash.
fn hmac<D: Digest>(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let block = 64;
    let mut k = if key.len() > block {
        D::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(block, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let mut inner = D::new();
    inner.update(&ipad);
    inner.update(msg);
    let inner = inner.finalize();
    let mut outer = D::new();
    outer.update(&opad);
    outer.update(inner);
    outer.finalize().to_vec()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// RFC 3986 encoding as SigV4 wants it.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// How a request is signed with SigV4, every part chosen by the test.
#[derive(Debug, Clone)]
pub struct V4 {
    pub method: String,
    /// `http://host:port`
    pub endpoint: String,
    /// The `Host` the request will carry (and sign, when `host` is signed).
    pub host: String,
    /// Path, already percent-encoded.
    pub path: String,
    /// Query parameters, raw (encoded here).
    pub query: Vec<(String, String)>,
    /// Headers sent with the request (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The SignedHeaders list; `None`: `host` and every header given.
    pub signed: Option<Vec<String>>,
    pub region: String,
    pub service: String,
    /// `x-amz-content-sha256` (header auth); the body's hash by default.
    pub payload_hash: String,
    /// Presigned with this `X-Amz-Expires`, instead of header auth.
    pub presign: Option<u64>,
    /// Send the signature in upper-case hex.
    pub uppercase: bool,
    pub time: time::OffsetDateTime,
}

/// The result of signing: the URL and headers to send, and what a
/// chunked upload needs to sign its chunks.
#[derive(Debug, Clone)]
pub struct Signed {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub signature: String,
    pub amz_date: String,
    pub scope: String,
    pub key: Vec<u8>,
}

impl V4 {
    pub fn new(method: &str, endpoint: &str, path: &str, body: &[u8]) -> Self {
        let host = endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_owned();
        V4 {
            method: method.to_owned(),
            endpoint: endpoint.to_owned(),
            host,
            path: path.to_owned(),
            query: Vec::new(),
            headers: Vec::new(),
            signed: None,
            region: REGION.to_owned(),
            service: "s3".to_owned(),
            payload_hash: sha256_hex(body),
            presign: None,
            uppercase: false,
            time: time::OffsetDateTime::now_utc(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn sign(&self) -> Signed {
        let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        let amz_date = self.time.format(&fmt).unwrap();
        let day = &amz_date[..8];
        let scope = format!("{day}/{}/{}/aws4_request", self.region, self.service);
        let mut headers = self.headers.clone();
        if self.presign.is_none() {
            headers.push(("x-amz-date".into(), amz_date.clone()));
            headers.push(("x-amz-content-sha256".into(), self.payload_hash.clone()));
        }
        let mut signed: Vec<String> = match &self.signed {
            Some(list) => list.clone(),
            None => {
                let mut all: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
                all.push("host".into());
                all
            }
        };
        signed.sort();
        signed.dedup();
        let signed_list = signed.join(";");
        let mut query = self.query.clone();
        if let Some(expires) = self.presign {
            query.extend([
                ("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()),
                (
                    "X-Amz-Credential".into(),
                    format!("{}/{scope}", super::ACCESS_KEY),
                ),
                ("X-Amz-Date".into(), amz_date.clone()),
                ("X-Amz-Expires".into(), expires.to_string()),
                ("X-Amz-SignedHeaders".into(), signed_list.clone()),
            ]);
        }
        let mut canon_query: Vec<(String, String)> =
            query.iter().map(|(k, v)| (enc(k), enc(v))).collect();
        canon_query.sort();
        let canon_query = canon_query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let mut canon_headers = String::new();
        for name in &signed {
            let value = if name == "host" {
                self.host.clone()
            } else {
                headers
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.trim().to_owned())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            canon_headers.push_str(&format!("{name}:{value}\n"));
        }
        let payload = if self.presign.is_some() {
            "UNSIGNED-PAYLOAD".to_owned()
        } else {
            self.payload_hash.clone()
        };
        let canonical = format!(
            "{}\n{}\n{canon_query}\n{canon_headers}\n{signed_list}\n{payload}",
            self.method, self.path
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(canonical.as_bytes())
        );
        let key = signing_key(day, &self.region, &self.service);
        let signature = hex::encode(hmac::<Sha256>(&key, string_to_sign.as_bytes()));
        let sent = if self.uppercase {
            signature.to_ascii_uppercase()
        } else {
            signature.clone()
        };
        let mut url = format!("{}{}", self.endpoint, self.path);
        if self.presign.is_some() {
            url.push('?');
            url.push_str(&canon_query);
            url.push_str(&format!("&X-Amz-Signature={sent}"));
        } else {
            if !canon_query.is_empty() {
                url.push('?');
                url.push_str(&canon_query);
            }
            headers.push((
                "authorization".into(),
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_list}, Signature={sent}",
                    super::ACCESS_KEY
                ),
            ));
        }
        headers.push(("host".into(), self.host.clone()));
        Signed {
            url,
            headers,
            signature,
            amz_date,
            scope,
            key,
        }
    }
}

fn signing_key(day: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac::<Sha256>(format!("AWS4{SECRET_KEY}").as_bytes(), day.as_bytes());
    let k = hmac::<Sha256>(&k, region.as_bytes());
    let k = hmac::<Sha256>(&k, service.as_bytes());
    hmac::<Sha256>(&k, b"aws4_request")
}

/// One `aws-chunked` chunk signed after `prev` (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
pub fn chunk(signed: &Signed, prev: &str, data: &[u8]) -> (Vec<u8>, String) {
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{}\n{}",
        signed.amz_date,
        signed.scope,
        sha256_hex(b""),
        sha256_hex(data)
    );
    let sig = hex::encode(hmac::<Sha256>(&signed.key, string_to_sign.as_bytes()));
    let mut out = format!("{:x};chunk-signature={sig}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    (out, sig)
}

/// A SigV2 signature (HMAC-SHA1, base64) of a string to sign.
pub fn v2_signature(string_to_sign: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(hmac::<Sha1>(
        SECRET_KEY.as_bytes(),
        string_to_sign.as_bytes(),
    ))
}
