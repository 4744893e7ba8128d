//! HTTPS against the real server: the aws SDK over TLS with a test CA,
//! `aws:SecureTransport` in bucket policies, HTTP/2 by ALPN on the S3 and
//! admin listeners, certificate reload on SIGHUP (old connections keep
//! working, new ones see the new certificate), the clear error for plain
//! HTTP on the TLS port, and `--tls-self-signed`.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use common::{ACCESS_KEY, SECRET_KEY, TestServer, bucket_name};

/// A test certificate authority and the server certificate it issued, as
/// PEM files in a temp dir.
struct TestCa {
    ca_pem: String,
    leaf_der: Vec<u8>,
    cert: PathBuf,
    key: PathBuf,
}

impl TestCa {
    /// A CA named `name` and a certificate for localhost and 127.0.0.1,
    /// written to `dir/NAME-cert.pem` and `dir/NAME-key.pem`.
    fn new(dir: &Path, name: &str) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("Preflight test CA {name}"),
        );
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("preflight {name}"));
        let leaf = params.signed_by(&key, &issuer).unwrap();
        let ca = TestCa {
            ca_pem: ca_cert.pem(),
            leaf_der: leaf.der().to_vec(),
            cert: dir.join(format!("{name}-cert.pem")),
            key: dir.join(format!("{name}-key.pem")),
        };
        std::fs::write(&ca.cert, leaf.pem()).unwrap();
        std::fs::write(&ca.key, key.serialize_pem()).unwrap();
        ca
    }

    /// `serve` arguments for this certificate.
    fn args(&self) -> Vec<String> {
        vec![
            "--tls-cert".to_owned(),
            self.cert.display().to_string(),
            "--tls-key".to_owned(),
            self.key.display().to_string(),
        ]
    }

    /// A raw HTTPS client that trusts this CA only and reports the
    /// certificate the server showed.
    fn http(&self) -> reqwest::Client {
        https_client(self.ca_pem.as_bytes(), false)
    }

    /// An aws-sdk-s3 client that trusts this CA only.
    fn s3(&self, endpoint: &str) -> aws_sdk_s3::Client {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(
                TlsContext::builder()
                    .with_trust_store(
                        TrustStore::empty()
                            .with_native_roots(false)
                            .with_pem_certificate(self.ca_pem.as_bytes()),
                    )
                    .build()
                    .unwrap(),
            )
            .build_https();
        let config = common::client_config(endpoint, ACCESS_KEY, SECRET_KEY, true)
            .http_client(http_client)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

fn https_client(root_pem: &[u8], http1_only: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem).unwrap())
        .tls_info(true);
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

/// The DER certificate the server presented on a response's connection.
fn peer_cert(res: &reqwest::Response) -> Vec<u8> {
    res.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("TLS info")
        .to_vec()
}

fn start(ca: &TestCa, extra: &[&str]) -> TestServer {
    let mut args = ca.args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TestServer::start_with(&args)
}

#[tokio::test]
async fn sdk_round_trip_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "a");
    let server = start(&ca, &[]);
    assert!(
        server.endpoint.starts_with("https://"),
        "{}",
        server.endpoint
    );
    let s3 = ca.s3(&server.endpoint);
    let bucket = bucket_name("tls-sdk");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let body = vec![7u8; 300_000];
    s3.put_object()
        .bucket(&bucket)
        .key("dir/blob.bin")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("dir/blob.bin")
        .send()
        .await
        .unwrap();
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes.as_ref(), body.as_slice());

    // A client that does not trust the CA is refused at the handshake.
    let other = TestCa::new(dir.path(), "stranger");
    let refused = other
        .http()
        .get(server.url(&format!("/{bucket}/dir/blob.bin")))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
}

fn public_read_if_secure(bucket: &str, secure: bool) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*","Condition":{{"Bool":{{"aws:SecureTransport":"{secure}"}}}}}}]}}"#
    )
}

async fn bucket_with_policy(s3: &aws_sdk_s3::Client, bucket: &str, policy: &str) {
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    s3.put_object()
        .bucket(bucket)
        .key("cat.png")
        .body(ByteStream::from_static(b"meow"))
        .send()
        .await
        .unwrap();
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put policy: {e:?}"));
}

#[tokio::test]
async fn secure_transport_is_true_over_tls_only() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "a");
    let server = start(&ca, &[]);
    let s3 = ca.s3(&server.endpoint);
    let https = ca.http();

    let tls_only = bucket_name("tls-only");
    bucket_with_policy(&s3, &tls_only, &public_read_if_secure(&tls_only, true)).await;
    let plain_only = bucket_name("plain-only");
    bucket_with_policy(&s3, &plain_only, &public_read_if_secure(&plain_only, false)).await;

    let res = https
        .get(server.url(&format!("/{tls_only}/cat.png")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "meow");
    let res = https
        .get(server.url(&format!("/{plain_only}/cat.png")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // The same policy on a plain HTTP server does not allow.
    let plain = TestServer::start();
    let s3 = plain.client();
    bucket_with_policy(&s3, &tls_only, &public_read_if_secure(&tls_only, true)).await;
    let res = plain
        .http()
        .get(plain.url(&format!("/{tls_only}/cat.png")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn http2_by_alpn_on_s3_and_admin_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "a");
    let server = start(&ca, &["--admin-addr", "127.0.0.1:0"]);
    let admin = server
        .admin_addr
        .clone()
        .expect("admin address in the banner");
    let https = ca.http();

    let res = https.get(server.url("/")).send().await.unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 403, "anonymous ListBuckets");
    let res = https
        .get(format!("https://{admin}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 200);

    // A client that offers only http/1.1 gets it.
    let h1 = https_client(ca.ca_pem.as_bytes(), true);
    let res = h1.get(server.url("/")).send().await.unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
    let res = h1
        .get(format!("https://{admin}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
    assert_eq!(res.status(), 200);
}

fn sighup(server: &TestServer) {
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(server.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits until a fresh connection trusting `ca` succeeds and returns the
/// certificate it saw.
async fn new_connection_cert(server: &TestServer, ca: &TestCa) -> Vec<u8> {
    let mut last = None;
    for _ in 0..50 {
        match ca.http().get(server.url("/")).send().await {
            Ok(res) => return peer_cert(&res),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no connection trusting the new CA: {last:?}");
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_keeps_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    let old = TestCa::new(dir.path(), "old");
    let server = start(&old, &[]);
    // HTTP/1.1 keep-alive: the pooled connection is reused below.
    let before = https_client(old.ca_pem.as_bytes(), true);
    let res = before.get(server.url("/")).send().await.unwrap();
    assert_eq!(peer_cert(&res), old.leaf_der);
    res.bytes().await.unwrap();

    // Replace the files (same paths) with a certificate from another CA.
    let new = TestCa::new(dir.path(), "new");
    std::fs::copy(&new.cert, &old.cert).unwrap();
    std::fs::copy(&new.key, &old.key).unwrap();
    sighup(&server);
    assert_eq!(new_connection_cert(&server, &new).await, new.leaf_der);
    // A client trusting only the old CA can not open a new connection...
    assert!(old.http().get(server.url("/")).send().await.is_err());
    // ...but the connection opened before keeps working, still on the old
    // certificate.
    let res = before.get(server.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(peer_cert(&res), old.leaf_der);

    // A broken file: the reload fails, the server keeps the new certificate.
    std::fs::write(&old.cert, "not a certificate").unwrap();
    sighup(&server);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !server.log().contains("reload failed") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload error logged:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(new_connection_cert(&server, &new).await, new.leaf_der);
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_told_to_use_https() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "a");
    let server = start(&ca, &[]);
    let url = format!("http://{}/photos/cat.png", server.addr);
    let res = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(
        body.contains(&format!("https://{}/photos/cat.png", server.addr)),
        "{body}"
    );
    // The port still speaks TLS afterwards.
    let res = ca.http().get(server.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn self_signed_certificate_is_written_served_and_reused() {
    let mut server = TestServer::start_with(&["--tls-self-signed"]);
    assert!(
        server.endpoint.starts_with("https://"),
        "{}",
        server.endpoint
    );
    let cert = server.data_dir.join("tls/self-signed-cert.pem");
    let key = server.data_dir.join("tls/self-signed-key.pem");
    assert!(key.exists());
    let pem = std::fs::read(&cert).expect("self-signed certificate");
    let https = https_client(&pem, false);
    for host in ["127.0.0.1", "localhost"] {
        let res = https
            .get(format!("https://{host}:{}/", server.port()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{host}: {e:?}"));
        assert_eq!(res.status(), 403);
        assert_eq!(res.version(), reqwest::Version::HTTP_2);
    }
    server.restart();
    assert_eq!(std::fs::read(&cert).unwrap(), pem, "reused on restart");
    let res = https_client(&pem, false)
        .get(server.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

/// An anonymous multipart/form-data upload (POST Object) of `key`.
async fn anonymous_form_post(client: &reqwest::Client, url: &str, key: &str) -> u16 {
    const BOUNDARY: &str = "----preflight-tls-boundary";
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n{key}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\
         Content-Type: text/plain\r\n\r\nform body\r\n--{BOUNDARY}--\r\n"
    );
    client
        .post(url)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn form_uploads_see_secure_transport_too() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "a");
    let server = start(&ca, &[]);
    let s3 = ca.s3(&server.endpoint);
    let https = ca.http();
    for (secure, expected) in [(true, 204), (false, 403)] {
        let bucket = bucket_name(if secure { "form-tls" } else { "form-plain" });
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::{bucket}/*","Condition":{{"Bool":{{"aws:SecureTransport":"{secure}"}}}}}}]}}"#
        );
        s3.put_bucket_policy()
            .bucket(&bucket)
            .policy(policy)
            .send()
            .await
            .unwrap();
        let url = server.url(&format!("/{bucket}"));
        assert_eq!(
            anonymous_form_post(&https, &url, "up.txt").await,
            expected,
            "policy allows when SecureTransport is {secure}"
        );
    }
}

#[test]
fn a_key_that_does_not_match_the_certificate_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let a = TestCa::new(dir.path(), "a");
    let b = TestCa::new(dir.path(), "b");
    let out = Command::new(env!("CARGO_BIN_EXE_preflight"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&a.cert)
        .arg("--tls-key")
        .arg(&b.key)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not belong to the certificate"),
        "{stderr}"
    );
}
