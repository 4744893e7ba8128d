//! nginx on loopback in front of Preflight: a caching proxy (the CDN tests)
//! or a round-robin load balancer over several nodes (the scale-out tests).

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

pub const NGINX: &str = "/usr/sbin/nginx";

/// A running nginx with its own prefix dir; stopped on drop.
pub struct Nginx {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// A caching reverse proxy to one upstream. Its cache key ignores
    /// `Origin`, as a CDN's default key does; nginx honors `Vary` when
    /// storing variants.
    pub fn caching_proxy(upstream_port: u16) -> Nginx {
        Self::start(|p, port| {
            format!(
                r#"
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
    }}"#
            )
        })
    }

    /// A round-robin load balancer over `upstream_ports`, streaming bodies
    /// both ways (no buffering, no size cap), as one would put in front of
    /// several Preflight nodes. A node that refuses connections is skipped;
    /// a request that reached a node is never retried elsewhere (S3 writes
    /// are not idempotent in general). `X-Upstream` names the node.
    pub fn round_robin(upstream_ports: &[u16]) -> Nginx {
        let servers: String = upstream_ports
            .iter()
            .map(|port| format!("        server 127.0.0.1:{port} max_fails=0;\n"))
            .collect();
        Self::start(|_, port| {
            format!(
                r#"
    upstream preflight {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location / {{
            proxy_pass http://preflight;
            proxy_set_header Host $http_host;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_next_upstream error;
            proxy_connect_timeout 2s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}"#
            )
        })
    }

    /// Starts nginx with `http_body(prefix_dir, port)` inside its `http` block.
    fn start(http_body: impl FnOnce(&str, u16) -> String) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let p = dir.path().display().to_string();
        let body = http_body(&p, port);
        let conf = format!(
            r#"
daemon off;
user root;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
{body}
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

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether nginx is installed; a missing nginx fails the test under CI.
pub fn nginx_available() -> bool {
    if Path::new(NGINX).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "nginx is required in CI ({NGINX} is missing)"
    );
    eprintln!("SKIPPED: {NGINX} is not installed (apt-get install nginx)");
    false
}
