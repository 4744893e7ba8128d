//! HTTPS: the certificate resolver (reloaded from its files on SIGHUP), the
//! per-connection handshake that tells a TLS ClientHello from a plain HTTP
//! request on the same port, and self-signed certificates for development.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to send its ClientHello and finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS records start with a content type; a handshake record is 22.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// A self-signed certificate is valid this long.
const SELF_SIGNED_DAYS: i64 = 365;
/// A self-signed certificate this close to expiry is replaced at start.
const SELF_SIGNED_RENEW_BEFORE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The PEM files of a certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no usable PEM private key ({reason})")]
    Key { path: PathBuf, reason: String },
    #[error("the key in {key} does not belong to the certificate in {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The crypto provider of every TLS object here: ring, named explicitly so
/// builds that also compile aws-lc-rs (the test dependencies) agree.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a certificate chain and its key, and checks that they match.
fn load_certified_key(
    files: &TlsFiles,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert_pem = std::fs::read(&files.cert).map_err(|source| TlsError::Read {
        path: files.cert.clone(),
        source,
    })?;
    let key_pem = std::fs::read(&files.key).map_err(|source| TlsError::Read {
        path: files.key.clone(),
        source,
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Key {
            path: files.key.clone(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason: e.to_string(),
    })?;
    Ok(certified)
}

/// Hands every new handshake the current certificate; `reload` swaps it
/// without touching established connections.
#[derive(Debug)]
pub struct CertResolver {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
}

impl CertResolver {
    pub fn load(files: TlsFiles, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let key = load_certified_key(&files, &provider)?;
        Ok(CertResolver {
            files,
            provider,
            current: ArcSwap::from_pointee(key),
        })
    }

    /// Reads the files again; on any error the current certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load_certified_key(&self.files, &self.provider)?;
        self.current.store(Arc::new(key));
        Ok(())
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The TLS side of a listener: TLS 1.2 and 1.3 with rustls' default
/// (safe) cipher suites, ALPN `h2` then `http/1.1`.
pub fn acceptor(resolver: Arc<CertResolver>) -> Result<TlsAcceptor, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(resolver.provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reloads the certificate whenever the process gets SIGHUP. The handler is
/// installed before this returns, so a SIGHUP right after start is not fatal.
pub fn reload_on_sighup(resolver: Arc<CertResolver>) -> io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let cert = resolver.files().cert.display().to_string();
                match resolver.reload() {
                    Ok(()) => tracing::info!(%cert, "TLS certificate reloaded"),
                    Err(e) => tracing::error!(
                        %cert,
                        error = %e,
                        "TLS certificate reload failed; keeping the previous certificate"
                    ),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = resolver;
    Ok(())
}

/// An accepted connection as hyper serves it: plain TCP or TLS over TCP.
pub enum ServerIo {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ServerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ServerIo::Plain(s) => s.is_write_vectored(),
            ServerIo::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_flush(cx),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ServerIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Turns an accepted TCP connection into what hyper serves, and whether it
/// is secure (the `aws:SecureTransport` of its requests). Without a TLS
/// acceptor this is the stream itself. With one, it runs the handshake; a
/// plain HTTP request gets a short `400` saying to use https://, and `None`
/// (as does a failed or too slow handshake).
pub async fn accept(
    tls: Option<&TlsAcceptor>,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<(ServerIo, bool)> {
    let Some(acceptor) = tls else {
        return Some((ServerIo::Plain(stream), false));
    };
    let handshake = async move {
        let mut first = [0u8; 1];
        let n = stream.peek(&mut first).await?;
        if n == 1 && first[0] != TLS_HANDSHAKE_RECORD && first[0].is_ascii_alphabetic() {
            return Ok(Err(stream));
        }
        acceptor.accept(stream).await.map(Ok)
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(Ok(tls))) => Some((ServerIo::Tls(Box::new(tls)), true)),
        Ok(Ok(Err(plain))) => {
            tracing::warn!(%peer, "plain HTTP request on the HTTPS port; answered 400");
            refuse_plain_http(plain).await;
            None
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Answers a plain HTTP request on the TLS port, then closes. The request
/// head is read first: closing with unread bytes would reset the connection
/// and the client might never see the answer.
async fn refuse_plain_http(mut stream: TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read_head = async {
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), read_head).await;
    let body = plain_http_message(&head);
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        // Drain what is left until the client closes, briefly.
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// The body of the `400` for plain HTTP: the https:// URL to use instead,
/// when the request head names one.
fn plain_http_message(head: &[u8]) -> String {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .filter(|p| p.starts_with('/'));
    let host = lines
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("host")
                .then(|| value.trim())
        })
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
    match (host, path) {
        (Some(host), Some(path)) => {
            let path: String = path.chars().take(200).collect();
            format!("This port serves HTTPS only. Use https://{host}{path} instead of http://.\n")
        }
        _ => "This port serves HTTPS only. Use https:// instead of http://.\n".to_owned(),
    }
}

/// A certificate made by `--tls-self-signed`.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    pub files: TlsFiles,
    /// The names it is valid for.
    pub names: Vec<String>,
    /// False when a valid certificate from an earlier start was reused.
    pub generated: bool,
}

/// The names a development certificate covers: `localhost`, the loopback
/// addresses, and the listen address when it is a specific one.
fn self_signed_names(listen: IpAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        Ipv4Addr::LOCALHOST.to_string(),
        Ipv6Addr::LOCALHOST.to_string(),
    ];
    let listen = listen.to_string();
    if !listen.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) && !names.contains(&listen) {
        names.push(listen);
    }
    names
}

/// The self-signed certificate in `data_dir/tls/`: reused when it is still
/// valid (for a week more at least) for every name, else generated afresh.
pub fn self_signed(data_dir: &Path, listen: IpAddr) -> Result<SelfSigned, TlsError> {
    let dir = data_dir.join("tls");
    let files = TlsFiles {
        cert: dir.join("self-signed-cert.pem"),
        key: dir.join("self-signed-key.pem"),
    };
    let names = self_signed_names(listen);
    if files.cert.exists() && files.key.exists() {
        match reusable(&files, &names) {
            Ok(()) => {
                return Ok(SelfSigned {
                    files,
                    names,
                    generated: false,
                });
            }
            Err(reason) => {
                tracing::info!(cert = %files.cert.display(), %reason, "replacing the self-signed certificate");
            }
        }
    }
    let (cert_pem, key_pem) = generate_self_signed(&names)?;
    std::fs::create_dir_all(&dir).map_err(|source| TlsError::Write {
        path: dir.clone(),
        source,
    })?;
    write_private(&files.key, key_pem.as_bytes())?;
    std::fs::write(&files.cert, cert_pem).map_err(|source| TlsError::Write {
        path: files.cert.clone(),
        source,
    })?;
    Ok(SelfSigned {
        files,
        names,
        generated: true,
    })
}

/// Why a stored certificate can not be reused, checked the way a rustls
/// client that trusts it would check it, a week from now.
fn reusable(files: &TlsFiles, names: &[String]) -> Result<(), String> {
    let provider = provider();
    let key = load_certified_key(files, &provider).map_err(|e| e.to_string())?;
    let end_entity = key.end_entity_cert().map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(end_entity.clone()).map_err(|e| e.to_string())?;
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
    let later = std::time::SystemTime::now() + SELF_SIGNED_RENEW_BEFORE;
    let later = UnixTime::since_unix_epoch(
        later
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    for name in names {
        let server_name = ServerName::try_from(name.as_str()).map_err(|e| e.to_string())?;
        verifier
            .verify_server_cert(end_entity, &[], &server_name, &[], later)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// A fresh ECDSA P-256 key and a certificate for `names`, valid for a year.
fn generate_self_signed(names: &[String]) -> Result<(String, String), TlsError> {
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "Preflight development certificate",
    );
    params
        .extended_key_usages
        .push(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(SELF_SIGNED_DAYS);
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes a secret file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let err = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(err)?;
    std::io::Write::write_all(&mut file, bytes).map_err(err)?;
    file.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_loopback_and_a_specific_listen_address() {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        assert_eq!(self_signed_names(any), ["localhost", "127.0.0.1", "::1"]);
        let lan: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            self_signed_names(lan),
            ["localhost", "127.0.0.1", "::1", "192.0.2.7"]
        );
    }

    #[test]
    fn self_signed_is_reused_while_valid_and_replaced_for_new_names() {
        let dir = tempfile::tempdir().unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let first = self_signed(dir.path(), ip).unwrap();
        assert!(first.generated);
        let pem = std::fs::read_to_string(&first.files.cert).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.files.key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = self_signed(dir.path(), ip).unwrap();
        assert!(!again.generated);
        assert_eq!(std::fs::read_to_string(&again.files.cert).unwrap(), pem);
        // Another listen address: the old certificate does not name it.
        let other = self_signed(dir.path(), "192.0.2.7".parse().unwrap()).unwrap();
        assert!(other.generated);
        assert_ne!(std::fs::read_to_string(&other.files.cert).unwrap(), pem);
    }

    #[test]
    fn a_failed_reload_keeps_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let made = self_signed(dir.path(), "127.0.0.1".parse().unwrap()).unwrap();
        let resolver = CertResolver::load(made.files.clone(), provider()).unwrap();
        let before = resolver.current.load_full();
        std::fs::write(&made.files.cert, "not a certificate").unwrap();
        assert!(matches!(
            resolver.reload(),
            Err(TlsError::NoCertificate { .. })
        ));
        assert!(Arc::ptr_eq(&before, &resolver.current.load_full()));
    }

    #[test]
    fn plain_http_message_names_the_https_url() {
        let head = b"GET /photos/a.jpg HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n\r\n";
        assert_eq!(
            plain_http_message(head),
            "This port serves HTTPS only. Use https://127.0.0.1:9000/photos/a.jpg instead of http://.\n"
        );
        let odd = b"GET / HTTP/1.1\r\nHost: <script>\r\n\r\n";
        assert_eq!(
            plain_http_message(odd),
            "This port serves HTTPS only. Use https:// instead of http://.\n"
        );
    }
}
