//! The load generator: N keep-alive HTTP/1.1 connections, each sending
//! requests one after the other for a fixed time. The same code drives
//! Preflight and the baseline server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Builds request number `seq` of connection `conn`.
pub type MakeRequest = Arc<dyn Fn(usize, u64) -> Request<Full<Bytes>> + Send + Sync>;

/// What one load run achieved.
#[derive(Debug, Clone, Copy)]
pub struct LoadResult {
    pub requests: u64,
    pub elapsed: Duration,
    /// Sum of per-request latencies (send to last body byte).
    pub latency_sum: Duration,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn mean_latency_ms(&self) -> f64 {
        self.latency_sum.as_secs_f64() * 1000.0 / self.requests.max(1) as f64
    }
}

/// A keep-alive client connection with `TCP_NODELAY`, so the client side
/// never adds Nagle delays of its own.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole response.
pub async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> anyhow::Result<Response<Bytes>> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, body))
}

/// One request on a fresh connection (setup and checks).
pub async fn send_once(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> anyhow::Result<Response<Bytes>> {
    let mut sender = connect(addr).await?;
    send(&mut sender, req).await
}

/// Runs `conns` connections for `duration`; every response must have
/// status `expect`, else the run fails (a fast error is not a result).
pub async fn run(
    addr: SocketAddr,
    conns: usize,
    duration: Duration,
    expect: u16,
    make: MakeRequest,
) -> anyhow::Result<LoadResult> {
    let mut senders = Vec::with_capacity(conns);
    for _ in 0..conns {
        senders.push(connect(addr).await?);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(conns);
    for (conn, mut sender) in senders.into_iter().enumerate() {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut requests = 0u64;
            let mut latency_sum = Duration::ZERO;
            while Instant::now() < deadline {
                let req = make(conn, requests);
                let sent = Instant::now();
                let resp = send(&mut sender, req).await?;
                latency_sum += sent.elapsed();
                if resp.status().as_u16() != expect {
                    bail!(
                        "expected status {expect}, got {}: {}",
                        resp.status(),
                        String::from_utf8_lossy(resp.body())
                    );
                }
                requests += 1;
            }
            anyhow::Ok((requests, latency_sum))
        }));
    }
    let mut total = LoadResult {
        requests: 0,
        elapsed: Duration::ZERO,
        latency_sum: Duration::ZERO,
    };
    for task in tasks {
        let (requests, latency_sum) = task.await??;
        total.requests += requests;
        total.latency_sum += latency_sum;
    }
    total.elapsed = start.elapsed();
    Ok(total)
}
