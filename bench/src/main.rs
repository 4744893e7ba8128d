//! `preflight-bench`: end-to-end numbers for the release server binary,
//! each next to a baseline measured in the same run on the same machine.
//! See `bench/README.md` for what each row means.

mod baseline;
mod large;
mod load;
mod nginx;
mod server;
mod sign;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use base64::Engine;
use bytes::Bytes;
use clap::Parser;
use http::{HeaderMap, Method, Request};
use http_body_util::Full;
use md5::{Digest, Md5};

use crate::load::{LoadResult, MakeRequest};
use crate::server::PreflightProcess;

const BUCKET: &str = "bench";
const SMALL_SIZE: usize = 4096;
/// Keys each connection cycles through when overwriting small objects.
const PUT_KEYS_PER_CONN: u64 = 64;
const CORS_RULES: usize = 100;
/// The preflight's origin matches only the last of the CORS rules.
const PREFLIGHT_ORIGIN: &str = "https://www.app99.example.com";
/// Above this, small keep-alive requests are stalling (Nagle + delayed ACK).
const STALL_MS: f64 = 10.0;

#[derive(Parser)]
#[command(
    name = "preflight-bench",
    about = "Benchmarks the preflight server against plain baselines"
)]
struct Args {
    /// The server binary (build it with `cargo build --release --bin preflight`).
    #[arg(long, default_value = "target/release/preflight")]
    server: PathBuf,
    /// Where the data dir and the copy-baseline files go (same disk for both).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Size of the large object, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Runs of the large-object measurements (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Runs of each small-request measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    small_runs: usize,
    /// Duration of one small-request run, in seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Skip the large-object rows.
    #[arg(long)]
    skip_large: bool,
    /// Also measure nodes whose metadata is in this PostgreSQL database
    /// (`postgres://USER@HOST/DB`; blobs in the work dir): every row again
    /// for one such node, and 4 KiB GETs through nginx over two of them.
    #[arg(long)]
    meta: Option<String>,
    /// The nginx binary for the two-node row (with `--meta`).
    #[arg(long, default_value = "/usr/sbin/nginx")]
    nginx: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let work = match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    let server = PreflightProcess::start(&args.server, work.path().join("data"))?;
    eprintln!(
        "preflight {} at {} (pid {}), work dir {}",
        args.server.display(),
        server.addr,
        server.pid(),
        work.path().display()
    );
    setup(&server).await?;

    let mut report = Report::default();
    if !args.skip_large {
        large_rows(&args, &server, work.path(), EMBEDDED, &mut report).await?;
    }
    small_rows(&args, &server, EMBEDDED, &mut report).await?;
    report.server_hwm_mib = vm_hwm_mib(server.pid());
    drop(server);
    if let Some(meta) = &args.meta {
        // The rows measured so far are printed even if these fail.
        if let Err(e) = postgres_rows(&args, meta, work.path(), &mut report).await {
            eprintln!("the PostgreSQL rows failed: {e:#}");
        }
    }
    report.print(&args);
    Ok(())
}

const EMBEDDED: &str = "embedded (SQLite + fs)";
const POSTGRES: &str = "PostgreSQL + shared fs";

/// The same rows for a node on PostgreSQL, then the two-node aggregate:
/// 4 KiB GETs through nginx over two such nodes, next to the same load on
/// one of them directly, in the same run.
async fn postgres_rows(
    args: &Args,
    meta: &str,
    work: &std::path::Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let blobs = format!("fs://{}", work.join("shared-blobs").display());
    let node_args = [
        "--meta".to_owned(),
        meta.to_owned(),
        "--blobs".to_owned(),
        blobs,
    ];
    let a = PreflightProcess::start_with(&args.server, work.join("node-a"), &node_args)?;
    eprintln!("PostgreSQL-backed node at {} (pid {})", a.addr, a.pid());
    setup(&a).await?;
    if !args.skip_large {
        large_rows(args, &a, work, POSTGRES, report).await?;
    }
    small_rows(args, &a, POSTGRES, report).await?;

    let b = PreflightProcess::start_with(&args.server, work.join("node-b"), &node_args)?;
    let lb = nginx::RoundRobin::start(&args.nginx, work, &[a.addr, b.addr])?;
    eprintln!(
        "second node at {}, nginx round robin at {}",
        b.addr, lb.addr
    );
    // Node B learns of the bucket from the database.
    let resp = load::send_once(lb.addr, small_get(lb.addr)).await?;
    ensure!(resp.status() == 200, "GET through nginx: {}", resp.status());
    let duration = Duration::from_secs_f64(args.duration);
    let (mut one, mut two) = (Vec::new(), Vec::new());
    let (a_addr, lb_addr) = (a.addr, lb.addr);
    let direct: MakeRequest = Arc::new(move |_, _| small_get(a_addr));
    let balanced: MakeRequest = Arc::new(move |_, _| small_get(lb_addr));
    for run in 0..args.small_runs {
        one.push(load::run(a_addr, 16, duration, 200, direct.clone()).await?);
        two.push(load::run(lb_addr, 16, duration, 200, balanced.clone()).await?);
        eprintln!(
            "two-node run {}: one node direct {:.0}/s, two nodes via nginx {:.0}/s",
            run + 1,
            one[run].rps(),
            two[run].rps()
        );
    }
    report.aggregate = Some((one, two));
    Ok(())
}

/// Creates the public-read-write bucket with 100 CORS rules and one small
/// public-read object to GET.
async fn setup(server: &PreflightProcess) -> anyhow::Result<()> {
    let path = format!("/{BUCKET}");
    let resp = signed(
        server,
        Method::PUT,
        &path,
        "",
        &[("x-amz-acl", "public-read-write".into())],
        Bytes::new(),
    )
    .await?;
    let reused = resp.status() == 409
        && String::from_utf8_lossy(resp.body()).contains("BucketAlreadyOwnedByYou");
    ensure!(
        resp.status() == 200 || reused,
        "CreateBucket: {} {}",
        resp.status(),
        String::from_utf8_lossy(resp.body())
    );

    let cors = Bytes::from(cors_xml());
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&cors));
    let headers = [
        ("content-md5", md5),
        ("content-type", "application/xml".into()),
    ];
    let resp = signed(server, Method::PUT, &path, "cors", &headers, cors).await?;
    ensure!(
        resp.status() == 200,
        "PutBucketCors: {} {}",
        resp.status(),
        String::from_utf8_lossy(resp.body())
    );

    let resp = load::send_once(server.addr, small_put(server.addr, "small/get-4k")).await?;
    ensure!(
        resp.status() == 200,
        "PUT small object: {} {}",
        resp.status(),
        String::from_utf8_lossy(resp.body())
    );
    let resp = load::send_once(server.addr, small_get(server.addr)).await?;
    ensure!(
        resp.status() == 200 && resp.body().len() == SMALL_SIZE,
        "anonymous GET: {}",
        resp.status()
    );
    Ok(())
}

async fn signed(
    server: &PreflightProcess,
    method: Method,
    path: &str,
    query: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> anyhow::Result<http::Response<Bytes>> {
    let host = server.addr.to_string();
    let signed = sign::sign(
        &server.creds,
        method.as_str(),
        &host,
        path,
        query,
        headers,
        &body,
    )?;
    let uri = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", host);
    for (k, v) in signed {
        req = req.header(k, v);
    }
    load::send_once(server.addr, req.body(Full::new(body))?).await
}

fn cors_xml() -> String {
    let mut xml = String::from("<CORSConfiguration>");
    for i in 0..CORS_RULES {
        xml.push_str(&format!(
            "<CORSRule><ID>rule-{i}</ID><AllowedOrigin>https://*.app{i}.example.com</AllowedOrigin>\
             <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>\
             <AllowedHeader>content-type</AllowedHeader><ExposeHeader>ETag</ExposeHeader>\
             <MaxAgeSeconds>600</MaxAgeSeconds></CORSRule>"
        ));
    }
    xml.push_str("</CORSConfiguration>");
    xml
}

#[allow(clippy::expect_used)] // a constant method, path and headers: always a valid request
fn small_put(addr: SocketAddr, key: &str) -> Request<Full<Bytes>> {
    static BODY: [u8; SMALL_SIZE] = [b'x'; SMALL_SIZE];
    Request::put(format!("/{BUCKET}/{key}"))
        .header("host", addr.to_string())
        .header("content-length", SMALL_SIZE)
        .header("x-amz-acl", "public-read")
        .body(Full::new(Bytes::from_static(&BODY)))
        .expect("request")
}

#[allow(clippy::expect_used)] // a constant method, path and headers: always a valid request
fn small_get(addr: SocketAddr) -> Request<Full<Bytes>> {
    Request::get(format!("/{BUCKET}/small/get-4k"))
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .expect("request")
}

#[allow(clippy::expect_used)] // a constant method, path and headers: always a valid request
fn preflight(addr: SocketAddr) -> Request<Full<Bytes>> {
    Request::options(format!("/{BUCKET}/small/get-4k"))
        .header("host", addr.to_string())
        .header("origin", PREFLIGHT_ORIGIN)
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type")
        .body(Full::new(Bytes::new()))
        .expect("request")
}

/// Medians of each measurement, and the values they came from.
#[derive(Default)]
struct Report {
    /// (backend, operation, Preflight MiB/s, copy MiB/s)
    large: Vec<(String, String, Vec<f64>, Vec<f64>)>,
    /// (backend, operation, connections, runs)
    small: Vec<(String, String, usize, Vec<LoadResult>)>,
    /// (backend, connections, Preflight runs, baseline runs), paired by run.
    preflight: Vec<(String, usize, Vec<LoadResult>, Vec<LoadResult>)>,
    /// 4 KiB GETs, 16 connections: (one PostgreSQL node directly, two
    /// nodes through nginx), paired by run.
    aggregate: Option<(Vec<LoadResult>, Vec<LoadResult>)>,
    preflight_headers: usize,
    server_hwm_mib: Option<f64>,
}

async fn large_rows(
    args: &Args,
    server: &PreflightProcess,
    dir: &std::path::Path,
    backend: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let size = args.size_mib * 1024 * 1024;
    let src = dir.join("source.bin");
    let dst = dir.join("copy.bin");
    eprintln!("writing the {} MiB source file...", args.size_mib);
    large::make_source(&src, size)?;
    let mib = args.size_mib as f64;
    let (mut put, mut get, mut copy) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..args.runs {
        let c = large::copy_baseline(&src, &dst)?;
        let p = large::put_file(server.addr, &format!("/{BUCKET}/large"), &src).await?;
        let g = large::get_file(server.addr, &format!("/{BUCKET}/large"), size).await?;
        eprintln!(
            "large run {}: copy+fsync {:.2} s, PUT {:.2} s, GET {:.2} s",
            run + 1,
            c.as_secs_f64(),
            p.as_secs_f64(),
            g.as_secs_f64()
        );
        copy.push(mib / c.as_secs_f64());
        put.push(mib / p.as_secs_f64());
        get.push(mib / g.as_secs_f64());
    }
    std::fs::remove_file(&src)?;
    report
        .large
        .push((backend.into(), "PUT".into(), put, copy.clone()));
    report.large.push((backend.into(), "GET".into(), get, copy));
    Ok(())
}

async fn small_rows(
    args: &Args,
    server: &PreflightProcess,
    backend: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs_f64(args.duration);
    let addr = server.addr;
    let get: MakeRequest = Arc::new(move |_, _| small_get(addr));
    let put: MakeRequest = Arc::new(move |conn, seq| {
        small_put(
            addr,
            &format!("small/put-{conn}-{}", seq % PUT_KEYS_PER_CONN),
        )
    });

    // The baseline answers with exactly the headers Preflight sends.
    let sample = load::send_once(addr, preflight(addr)).await?;
    ensure!(
        sample.status() == 200,
        "preflight: {} {}",
        sample.status(),
        String::from_utf8_lossy(sample.body())
    );
    ensure!(
        sample
            .headers()
            .get("access-control-allow-origin")
            .is_some(),
        "preflight did not match the last CORS rule: {:?}",
        sample.headers()
    );
    let mut headers: HeaderMap = sample.headers().clone();
    headers.remove("date");
    headers.remove("content-length");
    report.preflight_headers = sample.headers().len();
    let base_addr = baseline::start(headers).context("baseline server")?;
    let pf: MakeRequest = Arc::new(move |_, _| preflight(addr));
    let base: MakeRequest = Arc::new(move |_, _| preflight(base_addr));
    let check = load::send_once(base_addr, preflight(base_addr)).await?;
    ensure!(
        check.headers().len() == sample.headers().len(),
        "baseline sends {} headers, Preflight {}",
        check.headers().len(),
        sample.headers().len()
    );

    for conns in [1, 16] {
        let (mut g, mut p, mut o, mut b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for run in 0..args.small_runs {
            g.push(load::run(addr, conns, duration, 200, get.clone()).await?);
            p.push(load::run(addr, conns, duration, 200, put.clone()).await?);
            o.push(load::run(addr, conns, duration, 200, pf.clone()).await?);
            b.push(load::run(base_addr, conns, duration, 200, base.clone()).await?);
            eprintln!(
                "{conns} conn run {}: GET {:.0}/s, PUT {:.0}/s, OPTIONS {:.0}/s, baseline {:.0}/s",
                run + 1,
                g[run].rps(),
                p[run].rps(),
                o[run].rps(),
                b[run].rps()
            );
        }
        report
            .small
            .push((backend.into(), "GET 4 KiB".into(), conns, g));
        report
            .small
            .push((backend.into(), "PUT 4 KiB".into(), conns, p));
        report.preflight.push((backend.into(), conns, o, b));
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn vm_hwm_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    fn print(&self, args: &Args) {
        println!();
        if !self.large.is_empty() {
            println!(
                "### Large object ({} MiB), median of {} runs",
                args.size_mib, args.runs
            );
            println!();
            println!(
                "| Backend | Operation | Preflight MiB/s | copy+fsync MiB/s | Preflight / copy | runs (Preflight) | runs (copy) |"
            );
            println!("|---|---|---:|---:|---:|---|---|");
            for (backend, op, ours, copy) in &self.large {
                let ratios: Vec<f64> = ours.iter().zip(copy).map(|(a, b)| a / b).collect();
                println!(
                    "| {backend} | {op} | {:.0} | {:.0} | {:.2} | {} | {} |",
                    median(ours.clone()),
                    median(copy.clone()),
                    median(ratios),
                    list(ours),
                    list(copy)
                );
            }
            println!();
        }
        println!(
            "### Small requests ({} B objects, keep-alive), median of {} runs of {} s",
            SMALL_SIZE, args.small_runs, args.duration
        );
        println!();
        println!(
            "| Backend | Operation | Connections | req/s | mean latency (ms) | runs (req/s) |"
        );
        println!("|---|---|---:|---:|---:|---|");
        let mut warnings = Vec::new();
        for (backend, op, conns, runs) in &self.small {
            let rps: Vec<f64> = runs.iter().map(LoadResult::rps).collect();
            let lat = median(runs.iter().map(LoadResult::mean_latency_ms).collect());
            println!(
                "| {backend} | {op} | {conns} | {:.0} | {lat:.2} | {} |",
                median(rps.clone()),
                list(&rps)
            );
            if *conns == 1 && op.starts_with("GET") && lat > STALL_MS {
                warnings.push(format!(
                    "WARNING: {op} on 1 connection averages {lat:.1} ms: responses stall (TCP_NODELAY missing?)"
                ));
            }
        }
        println!();
        println!(
            "### CORS preflight (OPTIONS matching rule {CORS_RULES} of {CORS_RULES}) vs a minimal hyper server \
             sending the same {} headers, median of {} paired runs of {} s",
            self.preflight_headers, args.small_runs, args.duration
        );
        println!();
        println!(
            "| Backend | Connections | Preflight req/s | hyper baseline req/s | Preflight / baseline | Preflight mean latency (ms) | baseline mean latency (ms) |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (backend, conns, ours, base) in &self.preflight {
            let o: Vec<f64> = ours.iter().map(LoadResult::rps).collect();
            let b: Vec<f64> = base.iter().map(LoadResult::rps).collect();
            let ratios: Vec<f64> = o.iter().zip(&b).map(|(a, b)| a / b).collect();
            let ol = median(ours.iter().map(LoadResult::mean_latency_ms).collect());
            let bl = median(base.iter().map(LoadResult::mean_latency_ms).collect());
            println!(
                "| {backend} | {conns} | {:.0} | {:.0} | {:.2} | {ol:.3} | {bl:.3} |",
                median(o),
                median(b),
                median(ratios)
            );
            if *conns == 1 && ol > STALL_MS {
                warnings.push(format!(
                    "WARNING: preflight on 1 connection averages {ol:.1} ms: responses stall"
                ));
            }
        }
        println!();
        if let Some((one, two)) = &self.aggregate {
            let o: Vec<f64> = one.iter().map(LoadResult::rps).collect();
            let t: Vec<f64> = two.iter().map(LoadResult::rps).collect();
            let ratios: Vec<f64> = t.iter().zip(&o).map(|(a, b)| a / b).collect();
            println!(
                "### Two PostgreSQL-backed nodes through nginx (round robin), 4 KiB GET, 16 connections, median of {} paired runs",
                args.small_runs
            );
            println!();
            println!(
                "| one node directly req/s | two nodes via nginx req/s | two / one | runs (one) | runs (two) |"
            );
            println!("|---:|---:|---:|---|---|");
            println!(
                "| {:.0} | {:.0} | {:.2} | {} | {} |",
                median(o.clone()),
                median(t.clone()),
                median(ratios),
                list(&o),
                list(&t)
            );
            println!();
        }
        if let Some(hwm) = self.server_hwm_mib {
            println!("Server peak RSS (VmHWM) over the whole bench: {hwm:.1} MiB");
        }
        for w in warnings {
            println!("{w}");
        }
    }
}
