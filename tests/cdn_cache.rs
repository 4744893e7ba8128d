//! S3's cache problem, reproduced with a real cache, and the CDN-safe mode
//! that fixes it: nginx with `proxy_cache` in front of Preflight on loopback.
//!
//! S3 sends `Vary` only when a CORS rule matched (spec §9). A shared cache
//! that stored a response to a request without `Origin` serves it again to a
//! cross-origin request, which then lacks `Access-Control-Allow-Origin`.
//! With `--cors-vary always` every response of a bucket with CORS carries
//! `Vary: Origin, ...`, and the cache keeps the variants apart.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule, ObjectCannedAcl};
use common::{TestServer, bucket_name};

const NGINX: &str = "/usr/sbin/nginx";
const ORIGIN: &str = "https://app.example";

/// nginx as a caching reverse proxy. Its cache key ignores `Origin`, as a
/// CDN's default key does; nginx honors `Vary` when storing variants.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(upstream_port: u16) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let p = dir.path().display();
        let conf = format!(
            r#"
daemon off;
user root;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    proxy_cache_path {p}/cache levels=1 keys_zone=s3:1m max_size=64m;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream_port};
            proxy_set_header Host $http_host;
            proxy_http_version 1.1;
            proxy_cache s3;
            proxy_cache_key $scheme$proxy_host$request_uri;
            proxy_cache_valid 200 10m;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"#
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(NGINX)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path())
            .spawn()
            .expect("start nginx");
        let nginx = Nginx {
            child,
            port,
            _dir: dir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return nginx;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nginx did not start");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers too (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nginx_available() -> bool {
    if Path::new(NGINX).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "nginx is required in CI ({NGINX} is missing)"
    );
    eprintln!("skipping: {NGINX} is not installed (apt-get install nginx)");
    false
}

/// A public object in a bucket with a CORS rule for `ORIGIN`.
async fn public_object(server: &TestServer) -> String {
    let s3 = server.client();
    let bucket = bucket_name("cdn");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("logo.svg")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"<svg/>"))
        .send()
        .await
        .unwrap();
    let rule = CorsRule::builder()
        .allowed_origins(ORIGIN)
        .allowed_methods("GET")
        .build()
        .unwrap();
    s3.put_bucket_cors()
        .bucket(&bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    format!("/{bucket}/logo.svg")
}

/// A same-origin GET fills the cache, then a cross-origin GET follows.
/// Returns (cache status, Access-Control-Allow-Origin) of the second one.
async fn cached_then_cross_origin(vary_mode: &str) -> (String, Option<String>) {
    let server = TestServer::start_with(&["--cors-vary", vary_mode]);
    let path = public_object(&server).await;
    let nginx = Nginx::start(server.port());
    let http = server.http();
    let url = format!("http://127.0.0.1:{}{path}", nginx.port);

    let first = http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-cache-status"], "MISS");
    assert!(first.headers().get("access-control-allow-origin").is_none());

    let second = http
        .get(&url)
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 200);
    let status = second.headers()["x-cache-status"]
        .to_str()
        .unwrap()
        .to_owned();
    let allow = second
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(second.text().await.unwrap(), "<svg/>");
    (status, allow)
}

#[tokio::test]
async fn aws_mode_reproduces_the_cache_problem() {
    if !nginx_available() {
        return;
    }
    let (status, allow) = cached_then_cross_origin("aws").await;
    // The cache served the Origin-less response: the browser would refuse it.
    assert_eq!(status, "HIT");
    assert_eq!(allow, None);
}

#[tokio::test]
async fn always_mode_keeps_cors_through_the_cache() {
    if !nginx_available() {
        return;
    }
    let (status, allow) = cached_then_cross_origin("always").await;
    assert_eq!(status, "MISS");
    assert_eq!(allow.as_deref(), Some(ORIGIN));
}
