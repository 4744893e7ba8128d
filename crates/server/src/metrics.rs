//! Prometheus metrics, served on the admin listener's `/metrics`.
//!
//! - `preflight_requests_total{operation,status}`
//! - `preflight_request_duration_seconds{operation}` (histogram; time to
//!   response headers)
//! - `preflight_received_bytes_total`, `preflight_sent_bytes_total`
//!   (declared `Content-Length` of requests and responses)
//! - `preflight_cors_decisions_total{result,reason}`

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::request::Operation;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets in seconds: sub-millisecond preflights to multi-second
/// transfers.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Installs the process-wide recorder once; later calls reuse it.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        "preflight_requests_total",
        "S3 requests by operation and status"
    );
    metrics::describe_histogram!(
        "preflight_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from request to response headers, by operation"
    );
    metrics::describe_counter!(
        "preflight_received_bytes_total",
        metrics::Unit::Bytes,
        "Request body bytes (declared Content-Length)"
    );
    metrics::describe_counter!(
        "preflight_sent_bytes_total",
        metrics::Unit::Bytes,
        "Response body bytes (declared Content-Length)"
    );
    metrics::describe_counter!(
        "preflight_cors_decisions_total",
        "CORS decisions (preflights, and actual requests with Origin) by result and reason"
    );
}

/// Renders the Prometheus text format.
pub fn render() -> Option<String> {
    HANDLE.get().and_then(|h| h.as_ref()).map(|h| h.render())
}

pub fn record_request(
    operation: Operation,
    status: u16,
    elapsed: Duration,
    received: u64,
    sent: u64,
) {
    let operation = metrics::SharedString::const_str(operation.as_str());
    metrics::counter!("preflight_requests_total", "operation" => operation.clone(), "status" => status_label(status))
        .increment(1);
    metrics::histogram!("preflight_request_duration_seconds", "operation" => operation)
        .record(elapsed.as_secs_f64());
    if received > 0 {
        metrics::counter!("preflight_received_bytes_total").increment(received);
    }
    if sent > 0 {
        metrics::counter!("preflight_sent_bytes_total").increment(sent);
    }
}

/// The status label without formatting a number for the common codes.
fn status_label(status: u16) -> metrics::SharedString {
    let fixed = match status {
        200 => "200",
        204 => "204",
        206 => "206",
        304 => "304",
        400 => "400",
        403 => "403",
        404 => "404",
        409 => "409",
        412 => "412",
        416 => "416",
        500 => "500",
        _ => return metrics::SharedString::from(status.to_string()),
    };
    metrics::SharedString::const_str(fixed)
}

/// Metric label values for the reasons the engine reports (`header:NAME`
/// is counted as `header` so that label values stay few).
fn reason_label(reason: Option<&str>) -> metrics::SharedString {
    let fixed = match reason {
        None => "none",
        Some(r) if r.starts_with("header") => "header",
        Some("no-origin") => "no-origin",
        Some("no-bucket") => "no-bucket",
        Some("no-config") => "no-config",
        Some("no-method") => "no-method",
        Some("no-rules") => "no-rules",
        Some("origin") => "origin",
        Some("method") => "method",
        Some(other) => return metrics::SharedString::from(other.to_owned()),
    };
    metrics::SharedString::const_str(fixed)
}

/// `reason` is the engine's short code; `header:NAME` is counted as
/// `header` so that label values stay few.
pub fn record_cors(allowed: bool, reason: Option<&str>) {
    let result = if allowed { "allowed" } else { "denied" };
    metrics::counter!("preflight_cors_decisions_total", "result" => result, "reason" => reason_label(reason))
        .increment(1);
}
