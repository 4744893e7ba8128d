//! The `preflight` command line: `preflight serve` runs the S3 server,
//! `preflight keys` manages users' access keys, `preflight presign` signs
//! URLs and browser form uploads.

mod cors_cmd;
mod credentials;
mod keys_cmd;
mod presign;
mod units;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use preflight_server::tls::TlsFiles;
use preflight_server::{
    BlobLocation, ConnLimits, GcOptions, MetaLocation, MetaOptions, RootChoice, RootCredentials,
    RootSource, Server, ServerConfig, VaryMode,
};
use tracing_subscriber::EnvFilter;

/// Many small short-lived allocations per request on several threads:
/// glibc's malloc contends on its arena locks there, mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "preflight",
    version,
    about = "An S3-compatible object server with S3-exact bucket CORS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the S3 server.
    Serve(ServeArgs),
    /// Users' access keys: add, list, remove.
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// Presigned URLs (get, put) and browser form uploads (post).
    #[command(subcommand)]
    Presign(presign::PresignCommand),
    /// Bucket CORS tools: explain a request, lint a configuration, print a preset.
    Cors(cors_cmd::CorsArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum CorsVary {
    /// Exactly as Amazon S3: Vary only when a CORS rule matched.
    Aws,
    /// Vary on every response from a bucket with a CORS config (CDN-safe).
    Always,
}

#[derive(Parser)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: SocketAddr,
    /// Where metadata, blobs and generated credentials live (by default;
    /// see --meta and --blobs).
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// Metadata store: `sqlite` (meta.sqlite in --data-dir),
    /// `sqlite:///FILE`, or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`
    /// shared by every node.
    #[arg(
        long,
        env = "PREFLIGHT_META",
        default_value = "sqlite",
        hide_env_values = true
    )]
    meta: String,
    /// Blob store: the data dir by default, or `fs:///DIR`,
    /// `s3://BUCKET/PREFIX?endpoint=URL&region=R`, `gcs://BUCKET/PREFIX`,
    /// `azblob://CONTAINER/PREFIX?endpoint=URL`.
    #[arg(long, env = "PREFLIGHT_BLOBS")]
    blobs: Option<String>,
    /// Connections in the metadata store's pool (PostgreSQL).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    meta_pool_size: u32,
    /// How long the blobs of a replaced or deleted object stay readable
    /// before the garbage collector deletes them (tests shorten it).
    #[arg(long, env = "PREFLIGHT_GC_GRACE", default_value = "60s", value_parser = units::parse_duration, hide = true)]
    gc_grace: Duration,
    /// The region this server reports.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Base domain for virtual-hosted-style requests (`bucket.DOMAIN`).
    #[arg(long)]
    domain: Option<String>,
    /// Root access key (else generated once and kept in the data dir).
    #[arg(long, env = "PREFLIGHT_ACCESS_KEY", requires = "secret_key")]
    access_key: Option<String>,
    /// Root secret key.
    #[arg(
        long,
        env = "PREFLIGHT_SECRET_KEY",
        requires = "access_key",
        hide_env_values = true
    )]
    secret_key: Option<String>,
    /// Log format (filter with RUST_LOG).
    #[arg(long, value_enum, default_value = "pretty")]
    log_format: LogFormat,
    /// Separate listener for `/health` and other admin endpoints.
    #[arg(long)]
    admin_addr: Option<SocketAddr>,
    /// How `Vary` is sent on responses of buckets with a CORS config.
    #[arg(long, value_enum, default_value = "aws")]
    cors_vary: CorsVary,
    /// Largest file of a browser form upload (POST Object); the file is
    /// streamed to disk, so memory stays bounded whatever the size.
    #[arg(long, default_value = "5GiB", value_parser = units::parse_size)]
    post_max_size: u64,
    /// Serve HTTPS (and HTTP/2 by ALPN) with this PEM certificate chain;
    /// reloaded with the key on SIGHUP.
    #[arg(long, requires = "tls_key", conflicts_with = "tls_self_signed")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate for localhost and the
    /// listen address, kept in DATA_DIR/tls/ (for local development).
    #[arg(long)]
    tls_self_signed: bool,
    /// Abort multipart uploads initiated longer ago than this (`7d`, `24h`,
    /// `30m`, `90s`) and delete their parts. Off by default.
    #[arg(long, value_parser = parse_upload_age)]
    abort_incomplete_uploads_after: Option<std::time::Duration>,
    /// Close a new connection that has not started a request within this.
    #[arg(long, default_value = "10s", value_parser = units::parse_duration)]
    idle_timeout: Duration,
    /// Close a connection idle this long between requests (HTTP/1.1 and h2).
    #[arg(long, default_value = "30s", value_parser = units::parse_duration)]
    keep_alive_timeout: Duration,
    /// Time a client has to send a whole request head (HTTP/1.1).
    #[arg(long, default_value = "30s", value_parser = units::parse_duration)]
    header_read_timeout: Duration,
    /// Answer 400 RequestTimeout when a request body sends nothing this long.
    #[arg(long, default_value = "30s", value_parser = units::parse_duration)]
    body_read_timeout: Duration,
    /// Close a connection whose client reads nothing of a response this long.
    #[arg(long, default_value = "60s", value_parser = units::parse_duration)]
    send_timeout: Duration,
    /// Open connections at most [default: from the open-file limit, about
    /// half of it].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,
    /// Open connections from one IP address at most.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections_per_ip: u64,
    /// Streams open at once on one HTTP/2 connection.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    h2_max_concurrent_streams: u32,
}

impl ServeArgs {
    fn limits(&self) -> ConnLimits {
        let max_connections = self
            .max_connections
            .map_or_else(preflight_server::default_max_connections, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            });
        ConnLimits {
            idle_timeout: self.idle_timeout,
            keep_alive_timeout: self.keep_alive_timeout,
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            send_timeout: self.send_timeout,
            max_connections,
            max_connections_per_ip: usize::try_from(self.max_connections_per_ip)
                .unwrap_or(usize::MAX),
            h2_max_concurrent_streams: self.h2_max_concurrent_streams,
        }
    }
}

fn parse_upload_age(s: &str) -> Result<std::time::Duration, String> {
    let age = units::parse_duration(s)?;
    if age.is_zero() {
        return Err("use a duration above zero, e.g. 7d".to_owned());
    }
    Ok(age)
}

fn init_logging(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // s3s logs every error it answers at ERROR, a client's bad bucket name
    // or signature included; the front logs each answer at the level its
    // status deserves (4xx debug, 5xx error). Unless RUST_LOG asks for s3s.
    if !std::env::var("RUST_LOG").is_ok_and(|v| v.contains("s3s"))
        && let Ok(quiet) = "s3s::ops=off".parse()
    {
        filter = filter.add_directive(quiet);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

/// A failure that stops `preflight serve` at start: printed as one line.
struct StartError(String);

async fn serve(args: ServeArgs) -> Result<(), StartError> {
    init_logging(args.log_format);
    let start = |e: anyhow::Error| StartError(format!("{e:#}"));
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))
        .map_err(start)?;
    let meta = MetaLocation::parse(&args.meta, &args.data_dir)
        .map_err(|e| StartError(format!("invalid --meta: {e}")))?;
    let blobs = match &args.blobs {
        None => BlobLocation::Fs(args.data_dir.clone()),
        Some(value) => {
            BlobLocation::parse(value).map_err(|e| StartError(format!("invalid --blobs: {e}")))?
        }
    };
    let meta_options = MetaOptions {
        pool_size: args.meta_pool_size,
        release_grace: args.gc_grace,
    };
    let limits = args.limits();
    tracing::info!(
        max_connections = limits.max_connections,
        max_connections_per_ip = limits.max_connections_per_ip,
        open_file_limit = preflight_server::open_file_limit(),
        "connection limits"
    );
    let shared = matches!(meta, MetaLocation::Postgres(_));
    let stores_line = format!("Metadata: {}; blobs: {}", meta.display(), blobs.display());
    let (root, mut source) = match (args.access_key, args.secret_key) {
        (Some(access_key), Some(secret_key)) => (
            RootChoice::Given(RootCredentials {
                access_key,
                secret_key,
            }),
            credentials::Source::Given,
        ),
        // Every node of a shared store uses the credentials kept in it.
        _ if shared => (
            RootChoice::Shared {
                candidate: credentials::generate(),
            },
            credentials::Source::Shared,
        ),
        _ => {
            let (root, source) = credentials::load_or_generate(&args.data_dir).map_err(start)?;
            (RootChoice::Given(root), source)
        }
    };
    let self_signed = if args.tls_self_signed {
        Some(
            preflight_server::tls::self_signed(&args.data_dir, args.addr.ip())
                .map_err(|e| start(e.into()))?,
        )
    } else {
        None
    };
    let tls = match (&self_signed, args.tls_cert, args.tls_key) {
        (Some(made), _, _) => Some(made.files.clone()),
        (None, Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    let config = ServerConfig {
        addr: args.addr,
        data_dir: args.data_dir.clone(),
        region: args.region,
        domain: args.domain,
        meta,
        blobs,
        meta_options,
        gc: GcOptions::default(),
        root,
        admin_addr: args.admin_addr,
        post_max_size: args.post_max_size,
        tls,
        abort_incomplete_uploads_after: args.abort_incomplete_uploads_after,
        limits,
        cors_vary: match args.cors_vary {
            CorsVary::Aws => VaryMode::Aws,
            CorsVary::Always => VaryMode::Always,
        },
    };
    let server = Server::bind(config)
        .await
        .map_err(|e| StartError(e.to_string()))?;
    let root = server.root().clone();
    if server.root_source() == RootSource::SharedStored {
        source = credentials::Source::SharedStored;
    }
    let scheme = server.scheme();
    let endpoint = format!("{scheme}://{}", server.local_addr());
    println!("Preflight is serving S3 at {endpoint}");
    if let Some(admin) = server.admin_addr() {
        println!("Admin endpoint at {scheme}://{admin} (/health, /metrics, /admin/keys)");
    }
    let mut ca_bundle = String::new();
    if let Some(made) = &self_signed {
        let cert = made.files.cert.display();
        println!(
            "TLS: self-signed certificate for {} ({}): {cert}",
            made.names.join(", "),
            if made.generated {
                "generated"
            } else {
                "reused"
            },
        );
        println!(
            "Trust it: curl --cacert {cert} {endpoint}/BUCKET/KEY, AWS_CA_BUNDLE={cert} for the aws CLI and SDKs, or import it into the browser's trust store"
        );
        ca_bundle = format!("AWS_CA_BUNDLE={cert} ");
    }
    println!("{stores_line}");
    println!("Data directory: {}", args.data_dir.display());
    println!("Credentials: {}", source.describe(&args.data_dir));
    let secret = match source {
        credentials::Source::Given => "$PREFLIGHT_SECRET_KEY".to_owned(),
        _ => root.secret_key.clone(),
    };
    println!(
        "Try: {ca_bundle}AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} aws --endpoint-url {endpoint} s3 ls",
        root.access_key, secret
    );
    server.serve(shutdown_signal()).await;
    println!("Preflight stopped.");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve(args) => {
            if let Err(StartError(line)) = runtime.block_on(serve(args)) {
                // One line naming what failed, no backtrace.
                eprintln!("preflight: {line}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Keys(cmd) => runtime.block_on(keys_cmd::run(cmd)),
        Command::Presign(cmd) => presign::run(cmd),
        Command::Cors(args) => cors_cmd::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn upload_ages() {
        assert_eq!(parse_upload_age("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_upload_age("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_upload_age("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_upload_age("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_upload_age("0s").is_err());
        assert!(parse_upload_age("soon").is_err());
    }

    #[test]
    fn the_flag_is_off_by_default() {
        let cli = Cli::try_parse_from(["preflight", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve");
        };
        assert_eq!(args.abort_incomplete_uploads_after, None);
        let cli = Cli::try_parse_from([
            "preflight",
            "serve",
            "--abort-incomplete-uploads-after",
            "2s",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve");
        };
        assert_eq!(
            args.abort_incomplete_uploads_after,
            Some(Duration::from_secs(2))
        );
    }
}
