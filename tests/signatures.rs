//! What a signature covers, over every entrance (s3s operations, the CORS
//! API route, form uploads, presigned URLs, SigV2): one table, one runner.
//! Each row says how the request is signed, which headers are added after
//! signing, and S3's answer. Headers a signature does not cover must not
//! change what a request does (issue 9: a presigned PUT plus
//! `x-amz-copy-source` became a CopyObject made public).

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use common::sign::{V4, chunk, v2_signature};
use common::{ACCESS_KEY, REGION, SECRET_KEY, TestServer, error_code, xml_field};

const DOMAIN: &str = "s3.local";
const BUCKET: &str = "sigs";
const VAULT: &str = "vault";
const BOUNDARY: &str = "----preflight-signatures-boundary";

/// Where a request enters the server.
#[derive(Debug, Clone, Copy)]
enum Entrance {
    /// PutObject (s3s), body `hello`.
    PutObject,
    /// GetObject (s3s) of the object `src`.
    GetObject,
    /// GetBucketCors (the custom route in front of s3s's operations).
    CorsApi,
    /// DeleteObject of `public/k` signed for `public.s3.local`, sent
    /// with `Host: victim.s3.local`.
    DeleteVirtualHost,
    /// A browser form upload (POST Object), body `form-file`.
    FormUpload,
    /// PutObject with an `aws-chunked` body.
    Chunked(ChunkedBody),
}

#[derive(Debug, Clone, Copy)]
enum ChunkedBody {
    /// Signed chunks, ending with the signed zero-length chunk.
    Complete,
    /// Signed chunks, the zero-length chunk left out.
    NoFinalChunk,
    /// A chunk signature that is wrong.
    BadChunkSignature,
    /// STREAMING-UNSIGNED-PAYLOAD-TRAILER, complete with its trailer.
    UnsignedComplete,
    /// STREAMING-UNSIGNED-PAYLOAD-TRAILER, stopped after the data chunk.
    UnsignedNoFinalChunk,
}

/// How a request is signed.
#[derive(Debug, Clone, Copy)]
enum How {
    /// SigV4 Authorization header, every header signed.
    Header,
    /// SigV4 Authorization header with this SignedHeaders list.
    HeaderSigning(&'static [&'static str]),
    /// SigV4 header, credential scope with this region and service.
    HeaderScope(&'static str, &'static str),
    /// SigV4 header, the signature in upper-case hex.
    HeaderUppercase,
    /// SigV4 header with this `x-amz-content-sha256`.
    HeaderPayload(&'static str),
    /// Presigned SigV4 URL signing `host` only (as `preflight presign`).
    Presigned,
    /// Presigned SigV4 URL with this SignedHeaders list (headers sent).
    PresignedSigning(&'static [(&'static str, &'static str)]),
    /// Presigned SigV4 URL, credential scope with this region.
    PresignedRegion(&'static str),
    /// Presigned SigV4 URL whose X-Amz-SignedHeaders leaves out `host`.
    PresignedNoHost,
    /// SigV2 Authorization header (`AWS AK:sig`).
    V2Header,
    /// SigV2 presigned URL valid for this many seconds.
    V2Query(i64),
    /// A form upload signed by its POST policy.
    Form,
}

struct Row {
    name: &'static str,
    entrance: Entrance,
    how: How,
    /// Headers added after signing.
    after: &'static [(&'static str, &'static str)],
    status: u16,
    code: Option<&'static str>,
    /// For object writes: what the key holds afterwards (`None`: absent).
    stored: Option<Option<&'static [u8]>>,
}

const fn row(
    name: &'static str,
    entrance: Entrance,
    how: How,
    after: &'static [(&'static str, &'static str)],
    status: u16,
    code: Option<&'static str>,
) -> Row {
    Row {
        name,
        entrance,
        how,
        after,
        status,
        code,
        stored: None,
    }
}

const COPY_PUBLIC: &[(&str, &str)] = &[
    ("x-amz-copy-source", "/vault/payroll.csv"),
    ("x-amz-acl", "public-read"),
];
const ACL: &[(&str, &str)] = &[("x-amz-acl", "public-read")];
const META: &[(&str, &str)] = &[("x-amz-meta-owner", "mallory")];
const COPY: &[(&str, &str)] = &[("x-amz-copy-source", "/vault/payroll.csv")];
const TOKEN: &[(&str, &str)] = &[("x-amz-security-token", "forged")];
const NONE: &[(&str, &str)] = &[];
const HELLO: &[u8] = b"hello";
const PAYROLL: &[u8] = b"alice,1000000\n";
const FORM_FILE: &[u8] = b"form-file";

use Entrance as E;
use How as H;

fn rows() -> Vec<Row> {
    let denied = Some("AccessDenied");
    let no_sig = Some("SignatureDoesNotMatch");
    vec![
        // --- s3s operations, header auth ---
        Row {
            stored: Some(Some(HELLO)),
            ..row("put, header", E::PutObject, H::Header, NONE, 200, None)
        },
        Row {
            stored: Some(None),
            ..row(
                "put, header, +acl",
                E::PutObject,
                H::Header,
                ACL,
                403,
                denied,
            )
        },
        Row {
            stored: Some(None),
            ..row(
                "put, header, +meta",
                E::PutObject,
                H::Header,
                META,
                403,
                denied,
            )
        },
        Row {
            stored: Some(None),
            ..row(
                "put, header, +copy-source",
                E::PutObject,
                H::Header,
                COPY,
                403,
                denied,
            )
        },
        row(
            "get, header, +token",
            E::GetObject,
            H::Header,
            TOKEN,
            403,
            denied,
        ),
        row(
            "get, x-amz-date unsigned",
            E::GetObject,
            H::HeaderSigning(&["host", "x-amz-content-sha256"]),
            NONE,
            403,
            denied,
        ),
        row(
            "get, x-amz-content-sha256 unsigned",
            E::GetObject,
            H::HeaderSigning(&["host", "x-amz-date"]),
            NONE,
            403,
            denied,
        ),
        row(
            "get, host unsigned",
            E::GetObject,
            H::HeaderSigning(&["x-amz-content-sha256", "x-amz-date"]),
            NONE,
            403,
            denied,
        ),
        row(
            "delete replayed to another virtual host",
            E::DeleteVirtualHost,
            H::HeaderSigning(&["x-amz-content-sha256", "x-amz-date"]),
            NONE,
            403,
            denied,
        ),
        row(
            "get, region eu-west-1",
            E::GetObject,
            H::HeaderScope("eu-west-1", "s3"),
            NONE,
            400,
            Some("AuthorizationHeaderMalformed"),
        ),
        row(
            "get, service sts",
            E::GetObject,
            H::HeaderScope(REGION, "sts"),
            NONE,
            400,
            Some("AuthorizationHeaderMalformed"),
        ),
        row(
            "get, upper-case signature",
            E::GetObject,
            H::HeaderUppercase,
            NONE,
            403,
            no_sig,
        ),
        Row {
            stored: Some(None),
            ..row(
                "put, x-amz-content-sha256 of another body",
                E::PutObject,
                H::HeaderPayload(
                    "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
                ),
                NONE,
                400,
                Some("XAmzContentSHA256Mismatch"),
            )
        },
        Row {
            stored: Some(None),
            ..row(
                "put, x-amz-content-sha256: zz",
                E::PutObject,
                H::HeaderPayload("zz"),
                NONE,
                400,
                Some("InvalidArgument"),
            )
        },
        // --- presigned URLs ---
        Row {
            stored: Some(Some(HELLO)),
            ..row(
                "put, presigned",
                E::PutObject,
                H::Presigned,
                NONE,
                200,
                None,
            )
        },
        Row {
            stored: Some(None),
            ..row(
                "put, presigned, +copy-source +acl",
                E::PutObject,
                H::Presigned,
                COPY_PUBLIC,
                403,
                denied,
            )
        },
        Row {
            stored: Some(Some(HELLO)),
            ..row(
                "put, presigned, signed meta",
                E::PutObject,
                H::PresignedSigning(&[("x-amz-meta-owner", "alice")]),
                NONE,
                200,
                None,
            )
        },
        Row {
            stored: Some(None),
            ..row(
                "put, presigned, x-amz-content-sha256 of another body",
                E::PutObject,
                H::Presigned,
                &[(
                    "x-amz-content-sha256",
                    "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
                )],
                400,
                Some("XAmzContentSHA256Mismatch"),
            )
        },
        row(
            "get, presigned, +meta",
            E::GetObject,
            H::Presigned,
            META,
            403,
            denied,
        ),
        row(
            "get, presigned and an Authorization header",
            E::GetObject,
            H::Presigned,
            &[("authorization", "AWS4-HMAC-SHA256 Credential=x")],
            400,
            Some("InvalidArgument"),
        ),
        row(
            "get, presigned, host unsigned",
            E::GetObject,
            H::PresignedNoHost,
            NONE,
            403,
            denied,
        ),
        row(
            "get, presigned, region eu-west-1",
            E::GetObject,
            H::PresignedRegion("eu-west-1"),
            NONE,
            400,
            Some("AuthorizationQueryParametersError"),
        ),
        // --- the CORS API route ---
        row("cors, header", E::CorsApi, H::Header, NONE, 200, None),
        row(
            "cors, header, +acl",
            E::CorsApi,
            H::Header,
            ACL,
            403,
            denied,
        ),
        row("cors, presigned", E::CorsApi, H::Presigned, NONE, 200, None),
        row(
            "cors, presigned, +meta",
            E::CorsApi,
            H::Presigned,
            META,
            403,
            denied,
        ),
        row(
            "cors, region eu-west-1",
            E::CorsApi,
            H::HeaderScope("eu-west-1", "s3"),
            NONE,
            400,
            Some("AuthorizationHeaderMalformed"),
        ),
        // --- form uploads: headers are not part of a POST policy and
        // change nothing ---
        Row {
            stored: Some(Some(FORM_FILE)),
            ..row("form", E::FormUpload, H::Form, NONE, 204, None)
        },
        Row {
            stored: Some(Some(FORM_FILE)),
            ..row(
                "form, +copy-source +acl headers",
                E::FormUpload,
                H::Form,
                COPY_PUBLIC,
                204,
                None,
            )
        },
        // --- SigV2: x-amz-* headers are in the string to sign ---
        row("get, v2 header", E::GetObject, H::V2Header, NONE, 200, None),
        row(
            "get, v2 header, +acl",
            E::GetObject,
            H::V2Header,
            ACL,
            403,
            no_sig,
        ),
        Row {
            stored: Some(Some(HELLO)),
            ..row(
                "put, v2 presigned",
                E::PutObject,
                H::V2Query(300),
                NONE,
                200,
                None,
            )
        },
        Row {
            stored: Some(None),
            ..row(
                "put, v2 presigned, +copy-source +acl",
                E::PutObject,
                H::V2Query(300),
                COPY_PUBLIC,
                403,
                no_sig,
            )
        },
        Row {
            stored: Some(None),
            ..row(
                "put, v2 presigned for ten years",
                E::PutObject,
                H::V2Query(10 * 365 * 24 * 3600),
                NONE,
                400,
                Some("AuthorizationQueryParametersError"),
            )
        },
        row(
            "get, v2 presigned and an Authorization header",
            E::GetObject,
            H::V2Query(300),
            &[("authorization", "AWS PFTESTACCESSKEY00001:x")],
            400,
            Some("InvalidArgument"),
        ),
        // --- aws-chunked bodies ---
        Row {
            stored: Some(Some(HELLO)),
            ..row(
                "chunked",
                E::Chunked(ChunkedBody::Complete),
                H::Header,
                NONE,
                200,
                None,
            )
        },
        Row {
            stored: Some(None),
            ..row(
                "chunked without its final chunk",
                E::Chunked(ChunkedBody::NoFinalChunk),
                H::Header,
                NONE,
                400,
                Some("IncompleteBody"),
            )
        },
        Row {
            stored: Some(None),
            ..row(
                "chunked, bad chunk signature",
                E::Chunked(ChunkedBody::BadChunkSignature),
                H::Header,
                NONE,
                403,
                no_sig,
            )
        },
        Row {
            stored: Some(Some(HELLO)),
            ..row(
                "chunked unsigned with trailer",
                E::Chunked(ChunkedBody::UnsignedComplete),
                H::Header,
                NONE,
                200,
                None,
            )
        },
        Row {
            stored: Some(None),
            ..row(
                "chunked unsigned without its final chunk",
                E::Chunked(ChunkedBody::UnsignedNoFinalChunk),
                H::Header,
                NONE,
                400,
                Some("IncompleteBody"),
            )
        },
        Row {
            stored: Some(None),
            ..row(
                "chunked, +acl after signing",
                E::Chunked(ChunkedBody::Complete),
                H::Header,
                ACL,
                403,
                denied,
            )
        },
    ]
}

/// A request ready to send.
struct Req {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn http_date(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&fmt).unwrap()
}

/// The method, path (with any sub-resource query) and body of an entrance.
fn target(entrance: Entrance, key: &str) -> (&'static str, String, Vec<(String, String)>, Vec<u8>) {
    match entrance {
        E::PutObject | E::Chunked(_) => ("PUT", format!("/{BUCKET}/{key}"), vec![], HELLO.to_vec()),
        E::GetObject => ("GET", format!("/{BUCKET}/src"), vec![], vec![]),
        E::CorsApi => (
            "GET",
            format!("/{BUCKET}"),
            vec![("cors".to_owned(), String::new())],
            vec![],
        ),
        E::DeleteVirtualHost => ("DELETE", format!("/{key}"), vec![], vec![]),
        E::FormUpload => ("POST", format!("/{BUCKET}"), vec![], vec![]),
    }
}

fn build(server: &TestServer, row: &Row, key: &str) -> Req {
    let (method, path, query, body) = target(row.entrance, key);
    if let E::FormUpload = row.entrance {
        return form_request(server, key);
    }
    let mut v4 = V4::new(method, &server.endpoint, &path, &body);
    v4.query = query.clone();
    if let E::DeleteVirtualHost = row.entrance {
        v4.host = format!("public.{DOMAIN}");
    }
    let mut body = body;
    let req = match row.how {
        H::Header
        | H::HeaderSigning(_)
        | H::HeaderScope(..)
        | H::HeaderUppercase
        | H::HeaderPayload(_) => {
            match row.how {
                H::HeaderSigning(list) => {
                    v4.signed = Some(list.iter().map(|s| s.to_string()).collect())
                }
                H::HeaderScope(region, service) => {
                    v4.region = region.to_owned();
                    v4.service = service.to_owned();
                }
                H::HeaderUppercase => v4.uppercase = true,
                H::HeaderPayload(hash) => v4.payload_hash = hash.to_owned(),
                _ => {}
            }
            if let E::Chunked(kind) = row.entrance {
                return chunked_request(v4, kind, row.after);
            }
            let s = v4.sign();
            Req {
                method: method.to_owned(),
                url: s.url,
                headers: s.headers,
                body: std::mem::take(&mut body),
            }
        }
        H::Presigned | H::PresignedSigning(_) | H::PresignedRegion(_) | H::PresignedNoHost => {
            v4.presign = Some(300);
            v4.signed = Some(vec!["host".to_owned()]);
            match row.how {
                H::PresignedSigning(list) => {
                    for (k, val) in list {
                        v4 = v4.header(k, val);
                    }
                    v4.signed = None;
                }
                H::PresignedRegion(region) => v4.region = region.to_owned(),
                H::PresignedNoHost => {
                    v4 = v4.header("x-amz-meta-owner", "alice");
                    v4.signed = Some(vec!["x-amz-meta-owner".to_owned()]);
                }
                _ => {}
            }
            let s = v4.sign();
            Req {
                method: method.to_owned(),
                url: s.url,
                headers: s.headers,
                body,
            }
        }
        H::V2Header => {
            let date = http_date(time::OffsetDateTime::now_utc());
            let sts = format!("{method}\n\n\n{date}\n{path}");
            let auth = format!("AWS {ACCESS_KEY}:{}", v2_signature(&sts));
            Req {
                method: method.to_owned(),
                url: server.url(&path),
                headers: vec![("date".into(), date), ("authorization".into(), auth)],
                body,
            }
        }
        H::V2Query(secs) => {
            let expires = time::OffsetDateTime::now_utc().unix_timestamp() + secs;
            let sts = format!("{method}\n\n\n{expires}\n{path}");
            let sig = common::sign::enc(&v2_signature(&sts));
            Req {
                method: method.to_owned(),
                url: server.url(&format!(
                    "{path}?AWSAccessKeyId={ACCESS_KEY}&Expires={expires}&Signature={sig}"
                )),
                headers: vec![],
                body,
            }
        }
        H::Form => unreachable!("form uploads are built above"),
    };
    let mut req = req;
    if let E::DeleteVirtualHost = row.entrance {
        req.url = server.url(&path);
        for (k, v) in &mut req.headers {
            if k == "host" {
                *v = format!("victim.{DOMAIN}");
            }
        }
    }
    add_after(&mut req.headers, row.after);
    req
}

fn add_after(headers: &mut Vec<(String, String)>, after: &[(&str, &str)]) {
    for (k, v) in after {
        headers.push((k.to_string(), v.to_string()));
    }
}

fn chunked_request(mut v4: V4, kind: ChunkedBody, after: &[(&str, &str)]) -> Req {
    let unsigned = matches!(
        kind,
        ChunkedBody::UnsignedComplete | ChunkedBody::UnsignedNoFinalChunk
    );
    v4.payload_hash = if unsigned {
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER".to_owned()
    } else {
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_owned()
    };
    v4 = v4
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", &HELLO.len().to_string());
    if unsigned {
        v4 = v4.header("x-amz-trailer", "x-amz-checksum-crc32");
    }
    let s = v4.sign();
    let mut body = Vec::new();
    if unsigned {
        body.extend_from_slice(format!("{:x}\r\n", HELLO.len()).as_bytes());
        body.extend_from_slice(HELLO);
        body.extend_from_slice(b"\r\n");
        if let ChunkedBody::UnsignedComplete = kind {
            // CRC32 of "hello" is 0x3610a686.
            let crc =
                base64::engine::general_purpose::STANDARD.encode(0x3610_a686_u32.to_be_bytes());
            body.extend_from_slice(format!("0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n").as_bytes());
        }
    } else {
        let (first, sig) = chunk(&s, &s.signature, HELLO);
        let mut first = first;
        if let ChunkedBody::BadChunkSignature = kind {
            // Flip one hex digit of the chunk signature.
            let at = first.iter().position(|&b| b == b'=').unwrap() + 1;
            first[at] = if first[at] == b'0' { b'1' } else { b'0' };
        }
        body.extend_from_slice(&first);
        if !matches!(kind, ChunkedBody::NoFinalChunk) {
            let (last, _) = chunk(&s, &sig, b"");
            body.extend_from_slice(&last);
        }
    }
    let mut headers = s.headers;
    add_after(&mut headers, after);
    Req {
        method: "PUT".to_owned(),
        url: s.url,
        headers,
        body,
    }
}

fn form_request(server: &TestServer, key: &str) -> Req {
    use preflight_server::sigv4;
    let (amz_date, day) = sigv4::amz_date(time::OffsetDateTime::now_utc());
    let credential = format!("{ACCESS_KEY}/{day}/{REGION}/s3/aws4_request");
    let expiration = (time::OffsetDateTime::now_utc() + time::Duration::minutes(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let policy = serde_json::json!({
        "expiration": expiration,
        "conditions": [
            { "bucket": BUCKET },
            { "key": key },
            { "x-amz-algorithm": "AWS4-HMAC-SHA256" },
            { "x-amz-credential": credential },
            { "x-amz-date": amz_date },
        ]
    })
    .to_string();
    let b64 = base64::engine::general_purpose::STANDARD.encode(policy);
    let signature = sigv4::post_policy_signature(SECRET_KEY, &day, REGION, &b64).unwrap();
    let fields = [
        ("key", key.to_owned()),
        ("x-amz-algorithm", "AWS4-HMAC-SHA256".to_owned()),
        ("x-amz-credential", credential),
        ("x-amz-date", amz_date),
        ("policy", b64),
        ("x-amz-signature", signature),
    ];
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(FORM_FILE);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    Req {
        method: "POST".to_owned(),
        url: server.url(&format!("/{BUCKET}")),
        headers: vec![(
            "content-type".to_owned(),
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )],
        body,
    }
}

async fn send(http: &reqwest::Client, req: &Req) -> (u16, String) {
    let (status, _, body) = send_full(http, req).await;
    (status, body)
}

/// Status, `Access-Control-Allow-Origin` and body.
async fn send_full(http: &reqwest::Client, req: &Req) -> (u16, Option<String>, String) {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
    let mut b = http.request(method, &req.url).body(req.body.clone());
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let res = b.send().await.unwrap();
    let status = res.status().as_u16();
    let allow_origin = res
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, allow_origin, res.text().await.unwrap())
}

#[tokio::test]
async fn unsigned_headers_and_scopes_over_every_entrance() {
    let server = TestServer::start_with(&["--domain", DOMAIN]);
    let s3 = server.client();
    for b in [BUCKET, VAULT, "public", "victim"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    s3.put_object()
        .bucket(VAULT)
        .key("payroll.csv")
        .body(PAYROLL.to_vec().into())
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket(BUCKET)
        .key("src")
        .body(HELLO.to_vec().into())
        .send()
        .await
        .unwrap();
    let cors = aws_sdk_s3::types::CorsConfiguration::builder()
        .cors_rules(
            aws_sdk_s3::types::CorsRule::builder()
                .allowed_methods("GET")
                .allowed_origins("*")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    s3.put_bucket_cors()
        .bucket(BUCKET)
        .cors_configuration(cors)
        .send()
        .await
        .unwrap();

    let http = server.http();
    let mut failures = Vec::new();
    for (i, row) in rows().iter().enumerate() {
        let key = format!("k{i}");
        if let E::DeleteVirtualHost = row.entrance {
            for b in ["public", "victim"] {
                s3.put_object()
                    .bucket(b)
                    .key(&key)
                    .body(HELLO.to_vec().into())
                    .send()
                    .await
                    .unwrap();
            }
        }
        let req = build(&server, row, &key);
        let (status, body) = send(&http, &req).await;
        let code = error_code(&body);
        let mut wrong = Vec::new();
        if status != row.status {
            wrong.push(format!("status {status}, expected {}", row.status));
        }
        if let Some(expected) = row.code
            && code.as_deref() != Some(expected)
        {
            wrong.push(format!("code {code:?}, expected {expected}"));
        }
        if status >= 400 && xml_field(&body, "RequestId").is_none() {
            wrong.push("no RequestId in the error".to_owned());
        }
        if let Some(stored) = row.stored {
            let got = s3.get_object().bucket(BUCKET).key(&key).send().await;
            let got = match got {
                Ok(o) => Some(o.body.collect().await.unwrap().into_bytes().to_vec()),
                Err(_) => None,
            };
            if got.as_deref() != stored {
                wrong.push(format!(
                    "stored {:?}, expected {:?}",
                    got.as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned()),
                    stored.map(|b| String::from_utf8_lossy(b).into_owned())
                ));
            }
            if got.is_some() {
                // Never public: no unsigned x-amz-acl took effect.
                let anon = http
                    .get(server.url(&format!("/{BUCKET}/{key}")))
                    .send()
                    .await
                    .unwrap();
                if anon.status().as_u16() != 403 {
                    wrong.push(format!("anonymous GET answered {}", anon.status()));
                }
            }
        }
        if let E::DeleteVirtualHost = row.entrance {
            let victim = s3.head_object().bucket("victim").key(&key).send().await;
            if victim.is_err() {
                wrong.push("victim's object was deleted".to_owned());
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("{}: {}\n    {body}", row.name, wrong.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows wrong:\n{}",
        failures.len(),
        rows().len(),
        failures.join("\n")
    );
}

/// The answers carry what S3 puts in them: which headers were not
/// signed, and the region expected.
#[tokio::test]
async fn error_details() {
    let server = TestServer::start();
    let s3 = server.client();
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let cors = aws_sdk_s3::types::CorsConfiguration::builder()
        .cors_rules(
            aws_sdk_s3::types::CorsRule::builder()
                .allowed_methods("GET")
                .allowed_origins("https://example.com")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    s3.put_bucket_cors()
        .bucket(BUCKET)
        .cors_configuration(cors)
        .send()
        .await
        .unwrap();
    let http = server.http();

    let s = V4::new("GET", &server.endpoint, &format!("/{BUCKET}/x"), b"")
        .header("x-amz-meta-a", "1")
        .sign();
    let mut req = Req {
        method: "GET".into(),
        url: s.url,
        headers: s.headers,
        body: vec![],
    };
    // Only x-amz-meta-a was signed among these.
    req.headers.push(("X-Amz-Acl".into(), "public-read".into()));
    req.headers.push(("x-amz-meta-b".into(), "2".into()));
    req.headers
        .push(("origin".into(), "https://example.com".into()));
    let (status, allow_origin, body) = send_full(&http, &req).await;
    assert_eq!(status, 403, "{body}");
    // CORS headers on the refusal too, so a browser can read it.
    assert_eq!(allow_origin.as_deref(), Some("https://example.com"));
    assert_eq!(
        xml_field(&body, "Message").as_deref(),
        Some("There were headers present in the request which were not signed"),
        "{body}"
    );
    assert_eq!(
        xml_field(&body, "HeadersNotSigned").as_deref(),
        Some("x-amz-acl, x-amz-meta-b"),
        "{body}"
    );

    let mut v4 = V4::new("GET", &server.endpoint, &format!("/{BUCKET}/x"), b"");
    v4.region = "eu-west-1".into();
    let s = v4.sign();
    let req = Req {
        method: "GET".into(),
        url: s.url,
        headers: s.headers,
        body: vec![],
    };
    let (status, body) = send(&http, &req).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        xml_field(&body, "Message")
            .map(|m| m.replace("&apos;", "'"))
            .as_deref(),
        Some(
            "The authorization header is malformed; the region 'eu-west-1' is wrong; expecting 'us-east-1'"
        ),
        "{body}"
    );
    assert_eq!(
        xml_field(&body, "Region").as_deref(),
        Some(REGION),
        "{body}"
    );
}

/// SigV2 on bucket requests: S3's CanonicalizedResource of a bucket is
/// `/bucket/`, whether the request path is `/bucket` (path style, as
/// boto3 and s3cmd send it) or the bucket is in the host. Every
/// bucket-level call signed that way works, by header and presigned.
#[tokio::test]
async fn sigv2_bucket_requests_sign_the_bucket_with_its_slash() {
    let server = TestServer::start();
    let bucket = common::bucket_name("v2-bucket");
    let http = server.http();
    let send = |method: &'static str, path: String, resource: String| {
        let date = http_date(time::OffsetDateTime::now_utc());
        let sts = format!("{method}\n\n\n{date}\n{resource}");
        let auth = format!("AWS {ACCESS_KEY}:{}", v2_signature(&sts));
        http.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            server.url(&path),
        )
        .header("date", date)
        .header("authorization", auth)
        .send()
    };
    let b = &bucket;
    let res = send("PUT", format!("/{b}"), format!("/{b}/"))
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "CreateBucket: {}",
        res.text().await.unwrap()
    );
    for (method, path, resource) in [
        ("HEAD", format!("/{b}"), format!("/{b}/")),
        ("GET", format!("/{b}"), format!("/{b}/")),
        ("GET", format!("/{b}?location"), format!("/{b}/?location")),
        ("GET", format!("/{b}?acl"), format!("/{b}/?acl")),
        ("GET", format!("/{b}/"), format!("/{b}/")),
    ] {
        let res = send(method, path.clone(), resource).await.unwrap();
        assert_eq!(
            res.status(),
            200,
            "{method} {path}: {}",
            res.text().await.unwrap()
        );
    }
    // Presigned: ListObjects by query signature.
    let expires = time::OffsetDateTime::now_utc().unix_timestamp() + 300;
    let sig = common::sign::enc(&v2_signature(&format!("GET\n\n\n{expires}\n/{b}/")));
    let url = server.url(&format!(
        "/{b}?AWSAccessKeyId={ACCESS_KEY}&Expires={expires}&Signature={sig}"
    ));
    let res = http.get(url).send().await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "presigned ListObjects: {}",
        res.text().await.unwrap()
    );
    // A wrong secret is still refused.
    let date = http_date(time::OffsetDateTime::now_utc());
    let res = http
        .get(server.url(&format!("/{b}")))
        .header("date", &date)
        .header(
            "authorization",
            format!("AWS {ACCESS_KEY}:AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = send("DELETE", format!("/{b}"), format!("/{b}/"))
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        204,
        "DeleteBucket: {}",
        res.text().await.unwrap()
    );
}
