//! Preflight as several stateless nodes on one PostgreSQL database and one
//! blob directory, without a load balancer: a change made through node A
//! is in force on node B within a second; when the database cannot be
//! reached, requests that need it answer 503 ServiceUnavailable (S3 XML,
//! CORS headers as for any error) and `/health` says so; the node recovers
//! by itself when the database is back.
//!
//! Needs PREFLIGHT_TEST_POSTGRES (`scripts/test-postgres start`); skipped
//! without it, except under CI=true.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::fixtures::{get_bytes, new_bucket, put_object};
use common::{SECRET_KEY, TestServer, client_for, error_code};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

fn url_of(s: &str) -> reqwest::Url {
    reqwest::Url::parse(s).unwrap()
}

/// A node on `meta` with the blobs in `blobs`.
fn node(meta: &str, blobs: &Path, extra: &[&str]) -> TestServer {
    let blobs = format!("fs://{}", blobs.display());
    let mut args = vec![
        "--meta",
        meta,
        "--blobs",
        &blobs,
        "--admin-addr",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    TestServer::start_with(&args)
}

fn cors_xml(origin: &str) -> String {
    format!(
        "<CORSConfiguration><CORSRule><AllowedOrigin>{origin}</AllowedOrigin>\
         <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>\
         </CORSRule></CORSConfiguration>"
    )
}

async fn allowed(server: &TestServer, path: &str, origin: &str) -> bool {
    let res = server
        .cors_preflight(path, origin, "GET")
        .send()
        .await
        .unwrap();
    res.status() == 200
}

/// Polls `f` every 5 ms until it is true, for at most `limit`.
async fn time_until<F, Fut>(limit: Duration, mut f: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if f().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_node_is_in_force_on_another_within_a_second() {
    let Some(meta) = common::postgres::fresh_database().await else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let a = node(&meta, shared.path(), &[]);
    let b = node(&meta, shared.path(), &[]);
    let bucket = new_bucket(&a.client(), "nodes").await;
    let path = format!("/{bucket}/k");

    // A bucket created on A is there on B.
    let seen = time_until(Duration::from_secs(1), || async {
        b.client()
            .head_bucket()
            .bucket(&bucket)
            .send()
            .await
            .is_ok()
    })
    .await;
    assert!(seen.is_some(), "B does not see A's bucket");
    // Objects go through the shared store and blobs.
    put_object(&a.client(), &bucket, "k", b"from a").await;
    assert_eq!(get_bytes(&b.client(), &bucket, "k").await, b"from a");

    let mut delays = Vec::new();
    for round in 0..5 {
        let origin = format!("https://app{round}.example");
        let res = a.put_cors_xml(&bucket, &cors_xml(&origin)).await;
        assert_eq!(res.status(), 200);
        assert!(allowed(&a, &path, &origin).await, "A at once");
        let took = time_until(Duration::from_secs(1), || allowed(&b, &path, &origin))
            .await
            .unwrap_or_else(|| panic!("round {round}: B did not see A's CORS within 1 s"));
        delays.push(took);
    }
    eprintln!("CORS invalidation delays A -> B: {delays:?}");

    // A key added through A's admin listener works on B.
    let admin = format!(
        "http://{}/admin/keys/erin",
        a.admin_addr.as_deref().unwrap()
    );
    let res = a
        .http()
        .post(admin)
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    let erin = client_for(
        &b.endpoint,
        created["access_key"].as_str().unwrap(),
        created["secret_key"].as_str().unwrap(),
        true,
    );
    let took = time_until(Duration::from_secs(1), || async {
        let res = erin.list_objects_v2().bucket(&bucket).send().await;
        let code = res.err().and_then(|e| {
            aws_sdk_s3::error::ProvideErrorMetadata::code(&e.into_service_error())
                .map(str::to_owned)
        });
        code.as_deref() == Some("AccessDenied")
    })
    .await;
    assert!(took.is_some(), "B does not know erin's key within 1 s");
    eprintln!("key invalidation delay A -> B: {took:?}");
}

/// A TCP proxy in front of PostgreSQL that the test can cut (every
/// connection closed, new ones refused) and restore.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut proxy = Proxy {
            addr,
            upstream,
            task: None,
        };
        proxy.task = Some(tokio::spawn(Self::serve(listener, upstream)));
        proxy
    }

    async fn serve(listener: TcpListener, upstream: SocketAddr) {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            conns.spawn(async move {
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    }

    /// Closes every connection and the listener: the database is gone.
    fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            // Dropping the task drops the JoinSet, which aborts every
            // connection, and the listener.
            task.abort();
        }
    }

    /// Listens again on the same port.
    async fn restore(&mut self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        let started = Instant::now();
        loop {
            match socket.bind(self.addr) {
                Ok(()) => break,
                Err(_) if started.elapsed() < Duration::from_secs(5) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        }
        let listener = socket.listen(128).unwrap();
        self.task = Some(tokio::spawn(Self::serve(listener, self.upstream)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_503_and_the_node_recovers() {
    let Some(meta) = common::postgres::fresh_database().await else {
        return;
    };
    let url = url_of(&meta);
    let upstream: SocketAddr = format!(
        "{}:{}",
        url.host_str().unwrap().replace("localhost", "127.0.0.1"),
        url.port().unwrap_or(5432)
    )
    .parse()
    .unwrap();
    let mut proxy = Proxy::start(upstream).await;
    let mut through = url.clone();
    through.set_port(Some(proxy.addr.port())).unwrap();
    through.set_host(Some("127.0.0.1")).unwrap();
    let shared = tempfile::tempdir().unwrap();
    let server = node(through.as_str(), shared.path(), &[]);
    let s3 = server.client();
    let bucket = new_bucket(&s3, "down").await;
    let res = server
        .put_cors_xml(&bucket, &cors_xml("https://app.example"))
        .await;
    assert_eq!(res.status(), 200);
    put_object(&s3, &bucket, "k", b"before").await;
    let health = format!("http://{}/health", server.admin_addr.as_deref().unwrap());
    let res = server.http().get(&health).send().await.unwrap();
    assert_eq!(res.status(), 200);

    proxy.cut();
    // A read that needs the database: 503 ServiceUnavailable, S3 XML, with
    // the CORS headers of the bucket's cached configuration.
    let started = Instant::now();
    let res = server
        .http()
        .get(server.url(&format!("/{bucket}/k")))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    let status = res.status();
    let allow_origin = res
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = res.text().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        error_code(&body).as_deref(),
        Some("ServiceUnavailable"),
        "{body}"
    );
    assert!(body.contains("<RequestId>"), "{body}");
    assert_eq!(allow_origin.as_deref(), Some("https://app.example"));
    eprintln!("503 after {took:?}");
    // A write, signed: 503 too.
    let res = s3
        .put_object()
        .bucket(&bucket)
        .key("k2")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await;
    let status = res.unwrap_err().raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(503));
    // DeleteObjects: 503 for the whole batch (nothing deleted), which the
    // SDKs retry, not a 200 listing every key as an internal error.
    let key = |k: &str| {
        aws_sdk_s3::types::ObjectIdentifier::builder()
            .key(k)
            .build()
            .unwrap()
    };
    let res = s3
        .delete_objects()
        .bucket(&bucket)
        .delete(
            aws_sdk_s3::types::Delete::builder()
                .objects(key("k"))
                .objects(key("k2"))
                .build()
                .unwrap(),
        )
        .send()
        .await;
    let err = res.expect_err("DeleteObjects answered while the database is down");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
    // Preflights need no database: the cache answers.
    assert!(allowed(&server, &format!("/{bucket}/k"), "https://app.example").await);
    let res = server.http().get(&health).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let text = res.text().await.unwrap();
    assert!(text.contains("\"status\":\"unavailable\""), "{text}");

    proxy.restore().await;
    let recovered = time_until(Duration::from_secs(30), || async {
        let res = server.http().get(&health).send().await.unwrap();
        res.status() == 200
    })
    .await;
    assert!(
        recovered.is_some(),
        "/health stays 503 after the database is back"
    );
    let back = time_until(Duration::from_secs(30), || async {
        s3.get_object()
            .bucket(&bucket)
            .key("k")
            .send()
            .await
            .is_ok()
    })
    .await;
    assert!(back.is_some(), "reads fail after the database is back");
    put_object(&s3, &bucket, "k", b"after").await;
    assert_eq!(get_bytes(&s3, &bucket, "k").await, b"after");
    // The follower listens again: a change through a second node arrives.
    let other = node(&meta, shared.path(), &[]);
    let res = other
        .put_cors_xml(&bucket, &cors_xml("https://other.example"))
        .await;
    assert_eq!(res.status(), 200);
    let path = format!("/{bucket}/k");
    let seen = time_until(Duration::from_secs(1), || {
        allowed(&server, &path, "https://other.example")
    })
    .await;
    assert!(seen.is_some(), "the recovered node does not follow changes");
}

/// Nodes started without key flags on one database use the root
/// credentials kept in it (the first node stores generated ones), and a key
/// made with `preflight keys add --meta` reaches every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_root_credentials_and_keys_through_the_database() {
    let Some(meta) = common::postgres::fresh_database().await else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let blobs = format!("fs://{}", shared.path().display());
    let args = ["--meta", meta.as_str(), "--blobs", blobs.as_str()];
    let a = TestServer::start_without_root_flags(&args);
    let b = TestServer::start_without_root_flags(&args);
    let root = a
        .printed_root
        .clone()
        .expect("A prints its root credentials");
    assert_eq!(
        b.printed_root.as_ref(),
        Some(&root),
        "B uses A's credentials"
    );
    assert_ne!(root.0, common::ACCESS_KEY);
    let (ak, sk) = (&root.0, &root.1);
    let bucket = new_bucket(&client_for(&a.endpoint, ak, sk, true), "root").await;
    put_object(
        &client_for(&b.endpoint, ak, sk, true),
        &bucket,
        "k",
        b"by b",
    )
    .await;

    // `preflight keys add` straight into the database.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_preflight"))
        .args(["keys", "add", "frank", "--json", "--meta", meta.as_str()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (fak, fsk) = (
        created["access_key"].as_str().unwrap(),
        created["secret_key"].as_str().unwrap(),
    );
    // Known everywhere within a second: AccessDenied (no grant), not
    // InvalidAccessKeyId.
    for node in [&a, &b] {
        let frank = client_for(&node.endpoint, fak, fsk, true);
        let took = time_until(Duration::from_secs(1), || async {
            let res = frank.list_objects_v2().bucket(&bucket).send().await;
            let code = res.err().and_then(|e| {
                aws_sdk_s3::error::ProvideErrorMetadata::code(&e.into_service_error())
                    .map(str::to_owned)
            });
            code.as_deref() == Some("AccessDenied")
        })
        .await;
        assert!(
            took.is_some(),
            "{} does not know frank's key",
            node.endpoint
        );
    }
    // A node started later finds the same root credentials.
    let c = TestServer::start_without_root_flags(&args);
    assert_eq!(c.printed_root.as_ref(), Some(&root));
    assert_eq!(
        get_bytes(&client_for(&c.endpoint, ak, sk, true), &bucket, "k").await,
        b"by b"
    );
}
