//! `preflight cors explain|lint|preset`: the CORS engine's explanations, lint and presets on
//! the command line. All the logic is in `preflight-cors`; this module reads input, prints
//! and picks the exit status.

mod fetch;

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use preflight_cors::explain::{ExplainRequest, RequestMode, explain};
use preflight_cors::lint::{LintOptions, Severity, lint_with};
use preflight_cors::{BucketState, CorsConfig, preset};

/// Exit status when the input could not be read or understood.
const EXIT_BAD_INPUT: u8 = 2;

#[derive(Args)]
pub struct CorsArgs {
    #[command(subcommand)]
    command: CorsCommand,
}

#[derive(Subcommand)]
enum CorsCommand {
    /// Why a request is allowed or refused: every rule, the decision, S3's exact response.
    /// Exit status: 0 the browser allows it, 1 it is refused, 2 bad input.
    Explain(ExplainArgs),
    /// Mistakes in a CORS configuration, with fixes.
    /// Exit status: 0 clean, 1 warnings (only with --strict), 2 errors or bad input.
    Lint(LintArgs),
    /// Print a correct configuration for a common browser flow.
    Preset(PresetArgs),
}

/// Where the configuration comes from: a file, or a live bucket (GetBucketCors).
#[derive(Args)]
struct Source {
    /// Configuration file: S3 XML or the aws CLI JSON (`{"CORSRules": [...]}`); `-` reads stdin.
    #[arg(long, required_unless_present = "bucket", conflicts_with = "bucket")]
    config: Option<PathBuf>,
    /// S3 endpoint (http://HOST:PORT) to fetch the bucket's configuration from.
    #[arg(long, requires = "bucket")]
    endpoint: Option<String>,
    /// Bucket whose configuration to fetch (needs --endpoint).
    #[arg(long, requires = "endpoint")]
    bucket: Option<String>,
    /// Access key (else PREFLIGHT_ACCESS_KEY, else AWS_ACCESS_KEY_ID).
    #[arg(long, env = "PREFLIGHT_ACCESS_KEY")]
    access_key: Option<String>,
    /// Secret key (else PREFLIGHT_SECRET_KEY, else AWS_SECRET_ACCESS_KEY).
    #[arg(long, env = "PREFLIGHT_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Region of the signature.
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

#[derive(Args)]
struct ExplainArgs {
    #[command(flatten)]
    source: Source,
    /// The Origin the browser sends, e.g. https://app.example.com.
    #[arg(long)]
    origin: String,
    /// The method of the request the page makes (for a preflight: the one it asks about).
    #[arg(long)]
    method: String,
    /// A request header the page sets (repeat, or separate with commas).
    #[arg(long = "header", value_name = "NAME")]
    headers: Vec<String>,
    /// Explain the preflight (OPTIONS). Default: what the browser sends first.
    #[arg(long, conflicts_with = "actual")]
    preflight: bool,
    /// Explain the actual request. Default: what the browser sends first.
    #[arg(long)]
    actual: bool,
    /// The request is made with credentials (cookies, `credentials: 'include'`).
    #[arg(long)]
    credentials: bool,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LintArgs {
    #[command(flatten)]
    source: Source,
    /// Exit 1 on warnings too.
    #[arg(long)]
    strict: bool,
    /// Requests are made with credentials: a `*` origin is then an error.
    #[arg(long)]
    credentials: bool,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PresetArgs {
    /// spa-read, browser-put-presigned, browser-post-form, browser-multipart or media-range-read.
    name: String,
    /// An origin of the web app, exactly as the browser sends it (repeat for several).
    #[arg(long = "origin", value_name = "URL", required = true)]
    origins: Vec<String>,
    /// Print the aws CLI JSON form instead of XML.
    #[arg(long)]
    json: bool,
}

/// Runs a `cors` command. A non-zero status (see each command) ends the process here, so that
/// `main`'s error path (exit 1) never blurs "lint found warnings" with "bad input".
pub fn run(args: CorsArgs) -> anyhow::Result<()> {
    let result = match args.command {
        CorsCommand::Explain(a) => run_explain(a),
        CorsCommand::Lint(a) => run_lint(a),
        CorsCommand::Preset(a) => run_preset(a),
    };
    let code = result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        EXIT_BAD_INPUT
    });
    std::io::stdout().flush()?;
    if code != 0 {
        std::process::exit(i32::from(code));
    }
    Ok(())
}

/// A configuration as read, or what the bucket said instead.
enum Loaded {
    Config(CorsConfig),
    NoConfig,
    NoBucket,
}

impl Loaded {
    fn bucket_state(&self) -> BucketState<'_> {
        match self {
            Loaded::Config(c) => BucketState::Config(c),
            Loaded::NoConfig => BucketState::NoConfig,
            Loaded::NoBucket => BucketState::Missing,
        }
    }
}

fn load(source: &Source) -> anyhow::Result<Loaded> {
    if let Some(path) = &source.config {
        let text = if path.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the configuration from stdin")?;
            s
        } else {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?
        };
        return parse_config(&text).map(Loaded::Config);
    }
    let (Some(endpoint), Some(bucket)) = (&source.endpoint, &source.bucket) else {
        bail!("give --config FILE, or --endpoint URL and --bucket NAME");
    };
    let access_key = source
        .access_key
        .clone()
        .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok());
    let secret_key = source
        .secret_key
        .clone()
        .or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok());
    let (Some(access_key), Some(secret_key)) = (access_key, secret_key) else {
        bail!(
            "fetching from a bucket needs credentials: --access-key/--secret-key, PREFLIGHT_ACCESS_KEY/PREFLIGHT_SECRET_KEY or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        );
    };
    let fetched = fetch::get_bucket_cors(&fetch::Target {
        endpoint,
        bucket,
        region: &source.region,
        access_key: &access_key,
        secret_key: &secret_key,
        session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
    })?;
    Ok(match fetched {
        fetch::Fetched::Config(xml) => Loaded::Config(parse_config(&xml)?),
        fetch::Fetched::NoConfig => Loaded::NoConfig,
        fetch::Fetched::NoBucket => Loaded::NoBucket,
    })
}

/// XML (leading `<`) or the aws CLI JSON (leading `{`), parsed without S3's validation so that
/// lint and explain can describe documents S3 would reject.
fn parse_config(text: &str) -> anyhow::Result<CorsConfig> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let parsed = match trimmed.as_bytes().first() {
        Some(b'<') => CorsConfig::from_xml_unchecked(trimmed.as_bytes()),
        Some(b'{') => CorsConfig::from_json_unchecked(trimmed),
        _ => {
            bail!("the configuration is neither XML (starting with <) nor JSON (starting with {{)")
        }
    };
    parsed.map_err(|e| {
        let detail = e.detail().unwrap_or("");
        anyhow::anyhow!("the configuration cannot be read: {detail}")
    })
}

fn run_explain(a: ExplainArgs) -> anyhow::Result<u8> {
    let loaded = load(&a.source)?;
    let headers: Vec<String> = a
        .headers
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect();
    let mode = if a.preflight {
        RequestMode::Preflight
    } else if a.actual {
        RequestMode::Actual
    } else {
        ExplainRequest::browser_mode(&a.method, &headers).0
    };
    let mut req = ExplainRequest::new(mode, &a.origin, &a.method, &[]);
    req.headers = headers;
    req.credentials = a.credentials;
    let e = explain(loaded.bucket_state(), &req);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        print!("{e}");
    }
    Ok(if e.browser.allowed { 0 } else { 1 })
}

fn run_lint(a: LintArgs) -> anyhow::Result<u8> {
    let config = match load(&a.source)? {
        Loaded::Config(c) => c,
        Loaded::NoConfig => bail!("the bucket has no CORS configuration: nothing to lint"),
        Loaded::NoBucket => bail!("the bucket does not exist"),
    };
    let findings = lint_with(
        &config,
        &LintOptions {
            credentials: a.credentials,
        },
    );
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let (errors, warnings, infos) = (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
    );
    let code = if errors > 0 {
        2
    } else if a.strict && warnings > 0 {
        1
    } else {
        0
    };
    if a.json {
        let out = serde_json::json!({
            "findings": findings,
            "errors": errors,
            "warnings": warnings,
            "infos": infos,
            "exit_status": code,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if findings.is_empty() {
        println!("No findings: {} rule(s), clean.", config.rules.len());
    } else {
        for f in &findings {
            println!("{f}");
        }
        println!("{errors} error(s), {warnings} warning(s), {infos} info");
    }
    Ok(code)
}

fn run_preset(a: PresetArgs) -> anyhow::Result<u8> {
    let config = preset(&a.name, &a.origins)?;
    if a.json {
        let value: serde_json::Value = serde_json::from_str(&config.to_json())?;
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", config.to_xml_pretty());
    }
    Ok(0)
}
