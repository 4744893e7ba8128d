//! Binding, the accept loop and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use preflight_store::{FsBlobStore, SqliteMetaStore, StoreError};
use s3s::service::S3ServiceBuilder;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::RootCredentials;
use crate::access::{AccessLayer, PeerAddr, SecureTransport};
use crate::admin::{self, AdminContext};
use crate::auth::KeyAuth;
use crate::buckets::BucketCache;
use crate::front::{Front, VaryMode};
use crate::host::PreflightHost;
use crate::keys::KeyStore;
use crate::s3::PreflightS3;
use crate::s3::cors_api::CorsRoute;
use crate::s3::post_object::PostObjectHandler;
use crate::tls::{self, CertResolver, TlsFiles};

/// Largest XML body s3s will read (DeleteObjects with 1000 long keys fits).
const XML_MAX_BODY: usize = 2 * 1024 * 1024;
/// Largest request head hyper will buffer.
const MAX_HEAD_BYTES: usize = 256 * 1024;
/// How long a client may take to send request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub region: String,
    pub domain: Option<String>,
    pub root: RootCredentials,
    pub cors_vary: VaryMode,
    /// Where to serve `/health` (and the other admin endpoints), if at all.
    pub admin_addr: Option<SocketAddr>,
    /// Largest file a browser form upload (POST Object) may send; the file
    /// is streamed to disk, never held in memory.
    pub post_max_size: u64,
    /// Serve HTTPS (S3 and admin listeners) with this certificate and key,
    /// reloaded from the same files on SIGHUP.
    pub tls: Option<TlsFiles>,
    /// Abort multipart uploads initiated longer ago than this, releasing
    /// their parts (`None`: keep them until completed or aborted).
    pub abort_incomplete_uploads_after: Option<Duration>,
}

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
}

/// A bound server, ready to serve.
pub struct Server {
    listener: TcpListener,
    front: Arc<Front>,
    admin: Option<(TcpListener, Arc<AdminContext>)>,
    /// Both listeners speak TLS when set.
    tls: Option<TlsAcceptor>,
}

impl Server {
    /// Opens the data dir (sweeping leftovers of interrupted writes) and binds.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        // A certificate that does not load fails the start before the store opens.
        let tls = match &config.tls {
            Some(files) => {
                let resolver = Arc::new(CertResolver::load(files.clone(), tls::provider())?);
                tls::reload_on_sighup(resolver.clone())
                    .map_err(|e| ServerError::Config(format!("cannot handle SIGHUP: {e}")))?;
                Some(tls::acceptor(resolver)?)
            }
            None => None,
        };
        std::fs::create_dir_all(&config.data_dir).map_err(StoreError::Io)?;
        crate::metrics::install();
        let meta = Arc::new(SqliteMetaStore::open(config.data_dir.join("meta.sqlite")).await?);
        let blobs = Arc::new(FsBlobStore::open(&config.data_dir).await?);
        let swept = preflight_store::sweep_orphans(meta.as_ref(), blobs.as_ref()).await?;
        tracing::info!(?swept, "startup sweep done");
        let buckets = Arc::new(BucketCache::load(meta.as_ref()).await?);

        let host = PreflightHost::new(config.domain.clone());
        let s3 = PreflightS3::new(
            meta.clone(),
            blobs,
            buckets.clone(),
            config.region.clone(),
            &config.root,
        );
        if let Some(age) = config.abort_incomplete_uploads_after {
            s3.spawn_upload_expiry(age);
        }
        let s3_for_forms = s3.clone();
        let mut builder = S3ServiceBuilder::new(s3);
        builder.set_host(host.clone());
        let keys = Arc::new(
            KeyStore::open(&config.data_dir).map_err(|e| ServerError::Config(e.to_string()))?,
        );
        let access = AccessLayer::new(
            meta.clone(),
            buckets.clone(),
            keys.clone(),
            config.root.access_key.clone(),
        );
        builder.set_auth(KeyAuth::new(config.root.clone(), keys.clone()));
        let post = Arc::new(PostObjectHandler::new(
            s3_for_forms,
            access.clone(),
            KeyAuth::new(config.root.clone(), keys.clone()),
            config.post_max_size,
        ));
        builder.set_access(access.clone());
        builder.set_route(CorsRoute::new(
            meta,
            buckets.clone(),
            host.clone(),
            config.root.access_key.clone(),
        ));
        let mut s3_config = s3s::config::S3Config::default();
        s3_config.xml_max_body_size = XML_MAX_BODY;
        s3_config.post_object_max_file_size = 64 * 1024 * 1024;
        builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
            s3_config,
        ))));
        let front = Arc::new(Front {
            s3: builder.build(),
            post,
            buckets,
            host,
            vary: config.cors_vary,
            region: config.region.clone(),
        });

        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let admin = match config.admin_addr {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?;
                Some((
                    l,
                    Arc::new(AdminContext {
                        keys: keys.clone(),
                        root_secret: config.root.secret_key.clone(),
                    }),
                ))
            }
            None => None,
        };
        Ok(Server {
            listener,
            front,
            admin,
            tls,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The admin listener's address, when one was configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// `https` when the listeners speak TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEAD_BYTES);
        builder.http2().max_header_list_size(MAX_HEAD_BYTES as u32);
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        let admin_task = self
            .admin
            .map(|(listener, ctx)| tokio::spawn(serve_admin(listener, ctx, self.tls.clone())));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    // Headers and body go out in separate writes; without
                    // NODELAY, Nagle + delayed ACK stall small responses ~40 ms.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::warn!(error = %e, "TCP_NODELAY failed");
                    }
                    let front = self.front.clone();
                    let tls = self.tls.clone();
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        // The TLS handshake runs here, off the accept loop.
                        let Some((io, secure)) = tls::accept(tls.as_ref(), stream, peer).await else {
                            return;
                        };
                        let service = service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                            let front = front.clone();
                            // aws:SourceIp is the TCP peer, never a forwarded header.
                            req.extensions_mut().insert(PeerAddr(peer));
                            req.extensions_mut().insert(SecureTransport(secure));
                            async move { Ok::<_, Infallible>(front.handle(req).await) }
                        });
                        let conn = builder.serve_connection(TokioIo::new(io), service).into_owned();
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!(%peer, error = %e, "connection ended with error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(self.listener);
        if let Some(task) = admin_task {
            task.abort();
        }
        tracing::info!("shutting down: waiting for in-flight requests");
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
}

/// The admin accept loop: small, no graceful drain needed. HTTP/1.1 and h2
/// (by ALPN over TLS, by prior knowledge in plain text).
async fn serve_admin(listener: TcpListener, ctx: Arc<AdminContext>, tls: Option<TlsAcceptor>) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let tls = tls.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let Some((io, _secure)) = tls::accept(tls.as_ref(), stream, peer).await else {
                return;
            };
            let service = service_fn(move |req| admin::handle(ctx.clone(), req));
            let _ = builder.serve_connection(TokioIo::new(io), service).await;
        });
    }
}
