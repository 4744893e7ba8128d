//! nginx as a round-robin load balancer over Preflight nodes (the two-node
//! row of `--meta`), configured as `docs/scale-out.md` recommends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, bail};

pub struct RoundRobin {
    child: Child,
    pub addr: SocketAddr,
}

impl RoundRobin {
    pub fn start(nginx: &Path, work: &Path, nodes: &[SocketAddr]) -> anyhow::Result<Self> {
        if !nginx.exists() {
            bail!(
                "{} not found: the two-node row needs nginx (apt-get install nginx-light)",
                nginx.display()
            );
        }
        let dir: PathBuf = work.join("nginx");
        std::fs::create_dir_all(&dir)?;
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let p = dir.display();
        let servers: String = nodes
            .iter()
            .map(|n| format!("        server {n} max_fails=0;\n"))
            .collect();
        let conf = format!(
            r#"daemon off;
user root;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    # The load generator keeps its connections for the whole run; nginx's
    # default closes one after 1000 requests.
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    upstream preflight {{
{servers}        keepalive 64;
        keepalive_requests 100000000;
    }}
    server {{
        listen {addr};
        client_max_body_size 0;
        location / {{
            proxy_pass http://preflight;
            proxy_set_header Host $http_host;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(nginx)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(&dir)
            .spawn()
            .with_context(|| format!("cannot start {}", nginx.display()))?;
        let lb = RoundRobin { child, addr };
        for _ in 0..100 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Ok(lb);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("nginx did not start listening on {addr}")
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers too.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
