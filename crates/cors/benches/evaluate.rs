//! Cost of rule evaluation on the preflight hot path.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use preflight_cors::{BucketState, CorsConfig, CorsRequest, CorsRule, PreflightInput, preflight};

/// 100 rules; rule i allows `https://app{i}.example.com` with GET/PUT and two headers.
fn hundred_rules() -> CorsConfig {
    let rules = (0..100)
        .map(|i| CorsRule {
            id: Some(format!("rule-{i}")),
            allowed_origins: vec![
                format!("https://app{i}.example.com"),
                format!("https://*.tenant{i}.example.net"),
            ],
            allowed_methods: vec!["GET".into(), "PUT".into()],
            allowed_headers: vec!["content-type".into(), "x-amz-*".into()],
            expose_headers: vec!["ETag".into()],
            max_age_seconds: Some(3000),
        })
        .collect();
    let config = CorsConfig { rules };
    config.validate().expect("valid");
    config
}

fn bench(c: &mut Criterion) {
    let config = hundred_rules();
    let headers = Some("Content-Type, X-Amz-Date");
    let last = CorsRequest {
        origin: "https://app99.example.com",
        method: "PUT",
        request_headers: headers,
    };
    let first = CorsRequest {
        origin: "https://app0.example.com",
        method: "PUT",
        request_headers: headers,
    };
    assert_eq!(config.evaluate(&last).response_headers().len(), 7);

    c.bench_function("evaluate/100 rules, last matches, 2 headers", |b| {
        b.iter(|| black_box(&config).evaluate(black_box(&last)))
    });
    c.bench_function("evaluate/100 rules, first matches, 2 headers", |b| {
        b.iter(|| black_box(&config).evaluate(black_box(&first)))
    });
    c.bench_function("preflight/100 rules, last matches, 2 headers", |b| {
        b.iter(|| {
            preflight(black_box(&PreflightInput {
                origin: Some("https://app99.example.com"),
                request_method: Some("PUT"),
                request_headers: headers,
                bucket: BucketState::Config(&config),
                targets_object: true,
            }))
        })
    });
    let none = CorsRequest {
        origin: "https://evil.example.org",
        method: "PUT",
        request_headers: headers,
    };
    c.bench_function(
        "evaluate/100 rules, none matches (denied, full report)",
        |b| b.iter(|| black_box(&config).evaluate(black_box(&none))),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
