//! Arbitrary configuration + request: evaluation and preflight never panic, and the decision
//! is the first rule that matches on its own (first-match property).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use preflight_cors::{
    BucketState, CorsConfig, CorsDecision, CorsRequest, CorsRule, PreflightInput, preflight,
};

#[derive(Arbitrary, Debug)]
struct Rule {
    id: Option<String>,
    origins: Vec<String>,
    methods: Vec<String>,
    headers: Vec<String>,
    expose: Vec<String>,
    max_age: Option<i64>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    rules: Vec<Rule>,
    origin: Option<String>,
    method: Option<String>,
    request_headers: Option<String>,
    targets_object: bool,
}

fuzz_target!(|input: Input| {
    let config = CorsConfig {
        rules: input
            .rules
            .into_iter()
            .take(16)
            .map(|r| CorsRule {
                id: r.id,
                allowed_origins: r.origins,
                allowed_methods: r.methods,
                allowed_headers: r.headers,
                expose_headers: r.expose,
                max_age_seconds: r.max_age,
            })
            .collect(),
    };
    let req = CorsRequest {
        origin: input.origin.as_deref().unwrap_or(""),
        method: input.method.as_deref().unwrap_or(""),
        request_headers: input.request_headers.as_deref(),
    };
    let decision = config.evaluate(&req);
    let _ = (decision.reason_code(), decision.to_string());

    // First match: the winner is the first rule that matches on its own.
    let first_alone = config
        .rules
        .iter()
        .position(|r| CorsConfig { rules: vec![r.clone()] }.evaluate(&req).is_allowed());
    match &decision {
        CorsDecision::Allowed(m) => assert_eq!(first_alone, Some(m.rule_index)),
        CorsDecision::Denied { rules } => {
            assert_eq!(first_alone, None);
            assert_eq!(rules.len(), config.rules.len());
        }
    }

    let out = preflight(&PreflightInput {
        origin: input.origin.as_deref(),
        request_method: input.method.as_deref(),
        request_headers: input.request_headers.as_deref(),
        bucket: BucketState::Config(&config),
        targets_object: input.targets_object,
    });
    assert!(matches!(out.status, 200 | 400 | 403));
    assert_eq!(out.status == 200, out.error.is_none());

    // A valid configuration survives serialization.
    if config.validate().is_ok() {
        assert_eq!(CorsConfig::from_xml(config.to_xml().as_bytes()).as_ref(), Ok(&config));
    }
});
