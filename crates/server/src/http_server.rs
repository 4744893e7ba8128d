//! Binding, the accept loop and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body::Body as _;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use preflight_store::{
    BlobLocation, BlobStore, MetaLocation, MetaOptions, MetaStore, StoreError, open_blob_store,
    open_meta_store,
};
use s3s::service::S3ServiceBuilder;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::access::AccessLayer;
use crate::admin::{self, AdminContext};
use crate::auth::KeyAuth;
use crate::buckets::BucketDirectory;
use crate::config::VaryMode;
use crate::config::{RootChoice, RootCredentials, RootSource};
use crate::errors;
use crate::front::Front;
use crate::host::PreflightHost;
use crate::keys::KeyStore;
use crate::limits::{
    AcceptBackoff, Activity, ConnLimits, ConnPermit, ConnTracker, GuardedBody,
    REQUEST_TIMEOUT_MESSAGE, RateLimitedLog, Refusal, SendTimeoutIo, TimedBody,
};
use crate::request::{PeerAddr, SecureTransport};
use crate::s3::PreflightS3;
use crate::s3::cors_api::CorsRoute;
use crate::s3::post_object::PostObjectHandler;
use crate::tls::{self, CertResolver, TlsFiles};

/// Largest XML body s3s will read (DeleteObjects with 1000 long keys fits).
const XML_MAX_BODY: usize = 2 * 1024 * 1024;
/// Largest request head hyper will buffer.
const MAX_HEAD_BYTES: u32 = 256 * 1024;
/// h2 keep-alive PING: how often, and how long to wait for the answer.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a connection closed for idleness may take to go by itself.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long shutdown waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub region: String,
    pub domain: Option<String>,
    /// Metadata: `meta.sqlite` in the data dir by default, or PostgreSQL.
    pub meta: MetaLocation,
    /// Blobs: the data dir by default, or a shared directory or bucket.
    pub blobs: BlobLocation,
    /// Pool size and release grace of the metadata store.
    pub meta_options: MetaOptions,
    /// The blob garbage collector's periods and graces.
    pub gc: preflight_store::GcOptions,
    pub root: RootChoice,
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
    /// Timeouts and caps on connections and request bodies.
    pub limits: ConnLimits,
}

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("cannot open metadata {location}: {source}")]
    OpenMeta {
        location: String,
        source: StoreError,
    },
    #[error("cannot open blobs {location}: {source}")]
    OpenBlobs {
        location: String,
        source: StoreError,
    },
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
    /// Where `listener` is bound (read once: `:0` picks the port).
    local_addr: SocketAddr,
    front: Arc<Front>,
    limits: ConnLimits,
    admin: Option<(TcpListener, Arc<AdminContext>)>,
    /// Both listeners speak TLS when set.
    tls: Option<TlsAcceptor>,
    root: RootCredentials,
    root_source: RootSource,
}

/// Opens the metadata store, naming it in the error.
pub async fn open_meta(
    location: &MetaLocation,
    options: &MetaOptions,
) -> Result<Arc<dyn MetaStore>, ServerError> {
    open_meta_store(location, options)
        .await
        .map_err(|source| ServerError::OpenMeta {
            location: location.display(),
            source,
        })
}

/// Opens the blob store, naming it in the error.
pub async fn open_blobs(location: &BlobLocation) -> Result<Arc<dyn BlobStore>, ServerError> {
    open_blob_store(location)
        .await
        .map_err(|source| ServerError::OpenBlobs {
            location: location.display(),
            source,
        })
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
        let meta = open_meta(&config.meta, &config.meta_options).await?;
        let blobs = open_blobs(&config.blobs).await?;
        tracing::info!(
            meta = %config.meta.display(),
            blobs = %config.blobs.display(),
            "stores open"
        );
        let (root, root_source) = match &config.root {
            RootChoice::Given(root) => (root.clone(), RootSource::Given),
            RootChoice::Shared { candidate } => {
                let (stored, stored_now) = meta
                    .root_credentials(&preflight_store::RootKeyRecord {
                        access_key: candidate.access_key.clone(),
                        secret_key: candidate.secret_key.clone(),
                    })
                    .await?;
                let source = if stored_now {
                    RootSource::SharedStored
                } else {
                    RootSource::SharedLoaded
                };
                let root = RootCredentials {
                    access_key: stored.access_key,
                    secret_key: stored.secret_key,
                };
                (root, source)
            }
        };
        if matches!(config.meta, MetaLocation::Sqlite(_)) {
            crate::keys::import_keys_file(meta.as_ref(), &config.data_dir)
                .await
                .map_err(|e| ServerError::Config(format!("importing keys.json: {e}")))?;
        }
        // The embedded default serves its data dir alone: nothing else can
        // be reading or writing, so before the first request the blobs
        // released before a restart are deleted without waiting out their
        // grace (no GET still holds their record) and a crash's leftovers
        // are swept whatever their age, as before the store was shared.
        if matches!(config.meta, MetaLocation::Sqlite(_))
            && matches!(config.blobs, BlobLocation::Fs(_))
        {
            let later = time::OffsetDateTime::now_utc()
                + config.meta_options.release_grace
                + Duration::from_secs(1);
            loop {
                let reaped = preflight_store::reap_released(
                    meta.as_ref(),
                    blobs.as_ref(),
                    later,
                    Duration::from_secs(60),
                    10_000,
                )
                .await?;
                if reaped == 0 {
                    break;
                }
            }
            let swept =
                preflight_store::sweep_orphans(meta.as_ref(), blobs.as_ref(), Duration::ZERO)
                    .await?;
            tracing::info!(?swept, "startup sweep done");
        }
        // Blob GC runs in the store, on every node: due release rows are
        // reaped, and blobs no row references are swept once they are older
        // than a grace (another node may be about to commit a younger one).
        preflight_store::spawn_gc(meta.clone(), blobs.clone(), config.gc.clone());
        let buckets = Arc::new(BucketDirectory::load(meta.clone()).await?);

        let host = PreflightHost::new(config.domain.clone());
        let s3 = PreflightS3::new(
            meta.clone(),
            blobs,
            buckets.clone(),
            config.region.clone(),
            &root,
        );
        if let Some(age) = config.abort_incomplete_uploads_after {
            s3.spawn_upload_expiry(age);
        }
        let s3_for_forms = s3.clone();
        let mut builder = S3ServiceBuilder::new(s3);
        builder.set_host(host.clone());
        let keys = Arc::new(KeyStore::load(meta.clone()).await.map_err(|e| match e {
            crate::keys::KeyError::Store(e) => ServerError::Store(e),
            other => ServerError::Config(other.to_string()),
        })?);
        crate::follow::spawn(meta.clone(), buckets.clone(), keys.clone());
        let access = AccessLayer::new(
            meta.clone(),
            buckets.clone(),
            keys.clone(),
            root.access_key.clone(),
        );
        builder.set_auth(KeyAuth::new(root.clone(), keys.clone()));
        let post = Arc::new(PostObjectHandler::new(
            s3_for_forms,
            access.clone(),
            KeyAuth::new(root.clone(), keys.clone()),
            config.post_max_size,
        ));
        builder.set_access(access.clone());
        builder.set_route(CorsRoute::new(buckets.clone(), access.clone()));
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
                        meta: meta.clone(),
                        root_secret: root.secret_key.clone(),
                    }),
                ))
            }
            None => None,
        };
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.addr,
            source,
        })?;
        Ok(Server {
            listener,
            local_addr,
            front,
            limits: config.limits,
            admin,
            tls,
            root,
            root_source,
        })
    }

    /// The root credentials in use.
    pub fn root(&self) -> &RootCredentials {
        &self.root
    }

    /// Where [`Server::root`] came from.
    pub fn root_source(&self) -> RootSource {
        self.root_source
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
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
        let limits = Arc::new(self.limits);
        let builder = Arc::new(http_builder(&limits));
        let tracker = ConnTracker::new(limits.max_connections, limits.max_connections_per_ip);
        let mut backoff = AcceptBackoff::default();
        let mut refusals = RateLimitedLog::new(Duration::from_secs(1));
        // Each connection task holds a receiver: `closed()` on the sender
        // tells when the last one has ended.
        let (stop, _) = watch::channel(false);
        let admin_task = self.admin.map(|(listener, ctx)| {
            tokio::spawn(serve_admin(listener, ctx, limits.clone(), self.tls.clone()))
        });
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => {
                            backoff.reset();
                            a
                        }
                        Err(e) => {
                            let pause = backoff.on_error(&e, tracker.open());
                            tokio::select! {
                                () = tokio::time::sleep(pause) => continue,
                                () = &mut shutdown => break,
                            }
                        }
                    };
                    let permit = match tracker.try_admit(peer.ip()) {
                        Ok(p) => p,
                        Err(refusal) => {
                            refuse(stream, peer, refusal, &limits, &mut refusals, self.tls.is_none());
                            continue;
                        }
                    };
                    // Headers and body go out in separate writes; without
                    // NODELAY, Nagle + delayed ACK stall small responses ~40 ms.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::warn!(error = %e, "TCP_NODELAY failed");
                    }
                    let tls = self.tls.clone();
                    let builder = builder.clone();
                    let front = self.front.clone();
                    let limits = limits.clone();
                    let stop = stop.subscribe();
                    tokio::spawn(async move {
                        // The TLS handshake runs here, off the accept loop,
                        // under its own timeout; the permit is held through it.
                        let Some((io, secure)) = tls::accept(tls.as_ref(), stream, peer).await else {
                            return;
                        };
                        let io = SendTimeoutIo::new(io, limits.send_timeout);
                        let remote = Remote { addr: peer, secure };
                        serve_connection(builder, io, remote, front, limits, permit, stop).await;
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
        stop.send_replace(true);
        if tokio::time::timeout(SHUTDOWN_GRACE, stop.closed())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
}

/// The HTTP/1.1 + h2 settings, limits included.
fn http_builder(limits: &ConnLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES as usize);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES)
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        // Finds peers that vanished with streams open; idle connections
        // are closed by the keep-alive timeout, PINGs or not.
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    builder
}

/// Closes a connection over a cap at once, with a 503 when the socket
/// takes it (HTTP/1.1 clients see why; others see a close).
fn refuse(
    stream: TcpStream,
    peer: SocketAddr,
    refusal: Refusal,
    limits: &ConnLimits,
    log: &mut RateLimitedLog,
    plain: bool,
) {
    // A TLS client would read plain text as a broken handshake: just close.
    if plain {
        let _ = stream.try_write(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n",
        );
    }
    drop(stream);
    if let Some(suppressed) = log.allow() {
        match refusal {
            Refusal::Total => tracing::warn!(
                %peer,
                max_connections = limits.max_connections,
                refused_since_last_line = suppressed,
                "connection limit reached (--max-connections); refusing new connections"
            ),
            Refusal::PerPeer => tracing::warn!(
                %peer,
                max_connections_per_ip = limits.max_connections_per_ip,
                refused_since_last_line = suppressed,
                "per-peer connection limit reached (--max-connections-per-ip); refusing"
            ),
        }
    }
}

/// The far end of a connection, as the access layer's condition keys see it.
#[derive(Debug, Clone, Copy)]
struct Remote {
    addr: SocketAddr,
    /// Over Preflight's own TLS.
    secure: bool,
}

/// Serves one admitted connection until it ends, closing it when idle past
/// the idle or keep-alive timeout, or gracefully at shutdown. Generic over
/// the IO so a TLS stream can be served the same way.
async fn serve_connection<I>(
    builder: Arc<auto::Builder<TokioExecutor>>,
    io: I,
    remote: Remote,
    front: Arc<Front>,
    limits: Arc<ConnLimits>,
    permit: ConnPermit,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let service = {
        let activity = activity.clone();
        let body_timeout = limits.body_read_timeout;
        service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let front = front.clone();
            let guard = activity.start();
            async move {
                let res = handle(&front, req, remote, body_timeout).await;
                Ok::<_, Infallible>(res.map(|b| GuardedBody::new(b, guard)))
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = false;
    // Set once closed for idleness: when to drop the connection if it has
    // not ended by itself (an h2 peer that never answers the GOAWAY PING).
    let mut hard_close: Option<tokio::time::Instant> = None;
    loop {
        let next_check = activity.next_check(&limits);
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(peer = %remote.addr, error = %e, "connection ended with error");
                }
                break;
            }
            () = activity.became_idle(), if !closing => {}
            () = tokio::time::sleep_until(next_check), if !closing => {
                if activity.idle_expired(&limits) {
                    tracing::debug!(peer = %remote.addr, "closing idle connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    hard_close = Some(tokio::time::Instant::now() + IDLE_CLOSE_GRACE);
                }
            }
            () = sleep_until_some(hard_close) => {
                if activity.in_flight() == 0 {
                    tracing::debug!(peer = %remote.addr, "idle connection did not close; dropping it");
                    break;
                }
                // A request came in as we closed: let it finish.
                hard_close = Some(tokio::time::Instant::now() + IDLE_CLOSE_GRACE);
            }
            _ = stop.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
    drop(permit);
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One request: the body under the read timeout, the peer address for
/// `aws:SourceIp`, and a stalled body answered as S3 does.
async fn handle(
    front: &Front,
    req: http::Request<hyper::body::Incoming>,
    remote: Remote,
    body_timeout: Duration,
) -> http::Response<s3s::Body> {
    let (mut parts, body) = req.into_parts();
    // aws:SourceIp is the TCP peer, never a forwarded header; likewise
    // aws:SecureTransport is Preflight's own TLS, never a proxy's.
    parts.extensions.insert(PeerAddr(remote.addr));
    parts.extensions.insert(SecureTransport(remote.secure));
    if body.is_end_stream() {
        // No body (GET, HEAD...): no timer to set.
        let req = http::Request::from_parts(parts, s3s::Body::from(body));
        return front.handle(req).await;
    }
    let (body, timed_out) = TimedBody::new(body, body_timeout);
    let req = http::Request::from_parts(parts, s3s::Body::http_body(body));
    let res = front.handle(req).await;
    if timed_out.is_set() && !res.status().is_success() {
        // Whatever error the consumer made of it (s3s wraps body errors in
        // its own), the cause is the stalled body.
        return request_timeout(res);
    }
    res
}

/// 400 RequestTimeout, keeping the headers the front layer set (request
/// id, CORS).
fn request_timeout(res: http::Response<s3s::Body>) -> http::Response<s3s::Body> {
    let (mut parts, _) = res.into_parts();
    let request_id = parts
        .headers
        .get("x-amz-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let doc = errors::ErrorDoc::new(
        http::StatusCode::BAD_REQUEST,
        "RequestTimeout",
        REQUEST_TIMEOUT_MESSAGE,
    )
    .request_id(&request_id);
    let xml = doc.to_xml();
    parts.status = doc.status;
    parts.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    parts.headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(xml.len()),
    );
    // The rest of the body will not be read: tell HTTP/1.1 clients.
    parts.headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    http::Response::from_parts(parts, s3s::Body::from(xml))
}

/// The admin accept loop: small, no graceful drain needed. HTTP/1.1 and h2
/// (by ALPN over TLS, by prior knowledge in plain text). hyper's header read
/// timeout runs from the moment it waits for a request head, so it also
/// closes idle HTTP/1.1 admin connections.
async fn serve_admin(
    listener: TcpListener,
    ctx: Arc<AdminContext>,
    limits: Arc<ConnLimits>,
    tls: Option<TlsAcceptor>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    let builder = Arc::new(builder);
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let tls = tls.clone();
        let builder = builder.clone();
        let first_byte_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            // The auto builder reads the first bytes to tell HTTP/1.1 from
            // h2 before any of hyper's timers run: bound that wait here.
            let mut first = [0u8; 1];
            match tokio::time::timeout(first_byte_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let Some((io, _secure)) = tls::accept(tls.as_ref(), stream, peer).await else {
                return;
            };
            let service = service_fn(move |req| admin::handle(ctx.clone(), req));
            let _ = builder.serve_connection(TokioIo::new(io), service).await;
        });
    }
}
