//! The baseline for preflights: a minimal hyper server that answers every
//! request with 200 and a fixed copy of the headers Preflight sent for the
//! same preflight. It runs on its own 2-thread runtime, like Preflight runs
//! in its own process, so both compete with the load generator alike.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Starts the server on a free loopback port; it lives until the process ends.
pub fn start(headers: HeaderMap) -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let headers = Arc::new(headers);
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = TcpListener::from_std(listener) else {
                return;
            };
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let headers = headers.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_req| {
                        let mut resp = Response::new(Full::new(Bytes::new()));
                        *resp.headers_mut() = (*headers).clone();
                        async move { Ok::<_, Infallible>(resp) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Ok(addr)
}
