//! Property tests of the engine's invariants.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use preflight_cors::{
    BucketState, CorsConfig, CorsDecision, CorsRequest, CorsRule, PreflightInput, preflight,
};
use proptest::prelude::*;

const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];

fn method() -> impl Strategy<Value = String> {
    prop::sample::select(&METHODS[..]).prop_map(str::to_owned)
}

/// Strings with at most one `*`, over a small alphabet so that matches happen.
fn one_star(prefix: &'static str) -> impl Strategy<Value = String> {
    (prefix, prop::bool::ANY, "[a-c.]{0,4}").prop_map(|(a, star, b)| {
        if star {
            format!("{a}*{b}")
        } else {
            format!("{a}{b}")
        }
    })
}

fn valid_rule() -> impl Strategy<Value = CorsRule> {
    (
        prop::option::of("[^<>&]{0,20}|[ -~]{0,20}"),
        prop::collection::vec(
            prop_oneof![Just("*".to_owned()), one_star("[a-c:/.]{0,6}")],
            1..4,
        ),
        prop::collection::vec(method(), 1..4),
        prop::collection::vec(one_star("[a-cA-C-]{0,5}"), 0..4),
        prop::collection::vec("[A-Za-z0-9-]{1,10}", 0..3),
        prop::option::of(any::<i64>()),
    )
        .prop_map(
            |(
                id,
                allowed_origins,
                allowed_methods,
                allowed_headers,
                expose_headers,
                max_age_seconds,
            )| {
                CorsRule {
                    id,
                    allowed_origins,
                    allowed_methods,
                    allowed_headers,
                    expose_headers,
                    max_age_seconds,
                }
            },
        )
}

fn valid_config() -> impl Strategy<Value = CorsConfig> {
    prop::collection::vec(valid_rule(), 1..6).prop_map(|rules| CorsConfig { rules })
}

/// Anything at all, including multi-star patterns and invalid methods.
fn any_config() -> impl Strategy<Value = CorsConfig> {
    let s = || prop::collection::vec(".{0,12}", 0..4);
    prop::collection::vec(
        (
            prop::option::of(".*"),
            s(),
            s(),
            s(),
            s(),
            prop::option::of(any::<i64>()),
        )
            .prop_map(
                |(
                    id,
                    allowed_origins,
                    allowed_methods,
                    allowed_headers,
                    expose_headers,
                    max_age_seconds,
                )| CorsRule {
                    id,
                    allowed_origins,
                    allowed_methods,
                    allowed_headers,
                    expose_headers,
                    max_age_seconds,
                },
            ),
        0..5,
    )
    .prop_map(|rules| CorsConfig { rules })
}

fn small_origin() -> impl Strategy<Value = String> {
    "[a-c:/.]{0,8}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn star_rule_matches_every_origin(origin in ".*", m in method()) {
        let c = CorsConfig { rules: vec![CorsRule {
            allowed_origins: vec!["*".into()],
            allowed_methods: vec![m.clone()],
            ..Default::default()
        }] };
        let d = c.evaluate(&CorsRequest { origin: &origin, method: &m, request_headers: None });
        prop_assert!(d.is_allowed());
        prop_assert_eq!(&d.response_headers()[0], &("Access-Control-Allow-Origin", "*".to_owned()));
    }

    #[test]
    fn appending_rules_never_changes_a_match(
        c in valid_config(),
        extra in prop::collection::vec(valid_rule(), 1..4),
        origin in small_origin(),
        m in method(),
        headers in prop::option::of("[a-cA-C, -]{0,12}"),
    ) {
        let req = CorsRequest { origin: &origin, method: &m, request_headers: headers.as_deref() };
        let before = c.evaluate(&req);
        let mut longer = c.clone();
        longer.rules.extend(extra);
        let after = longer.evaluate(&req);
        if before.is_allowed() {
            prop_assert_eq!(before, after);
        } else if let CorsDecision::Denied { rules } = &after {
            // A denial stays a denial with the old rules' mismatches unchanged.
            let CorsDecision::Denied { rules: old } = &before else { unreachable!() };
            prop_assert_eq!(&rules[..old.len()], &old[..]);
        }
    }

    #[test]
    fn first_match_is_the_first_rule_that_matches_alone(
        c in valid_config(), origin in small_origin(), m in method(),
    ) {
        let req = CorsRequest { origin: &origin, method: &m, request_headers: None };
        let alone: Vec<bool> = c.rules.iter()
            .map(|r| CorsConfig { rules: vec![r.clone()] }.evaluate(&req).is_allowed())
            .collect();
        match c.evaluate(&req) {
            CorsDecision::Allowed(hit) => {
                prop_assert_eq!(alone.iter().position(|&a| a), Some(hit.rule_index));
            }
            CorsDecision::Denied { rules } => {
                prop_assert!(alone.iter().all(|&a| !a));
                prop_assert_eq!(rules.len(), c.rules.len());
            }
        }
    }

    #[test]
    fn xml_round_trip(c in valid_config()) {
        prop_assert!(c.validate().is_ok());
        let xml = c.to_xml();
        prop_assert_eq!(CorsConfig::from_xml(xml.as_bytes()), Ok(c));
    }

    #[test]
    fn json_round_trip(c in valid_config()) {
        prop_assert_eq!(CorsConfig::from_json(&c.to_json()), Ok(c));
    }

    #[test]
    fn evaluate_and_preflight_never_panic(
        c in any_config(),
        origin in prop::option::of(".*"),
        m in prop::option::of(".*"),
        headers in prop::option::of(".*"),
        targets_object in any::<bool>(),
    ) {
        let d = c.evaluate(&CorsRequest {
            origin: origin.as_deref().unwrap_or(""),
            method: m.as_deref().unwrap_or(""),
            request_headers: headers.as_deref(),
        });
        let _ = (d.reason_code(), d.to_string(), d.response_headers().len());
        let out = preflight(&PreflightInput {
            origin: origin.as_deref(),
            request_method: m.as_deref(),
            request_headers: headers.as_deref(),
            bucket: BucketState::Config(&c),
            targets_object,
        });
        prop_assert!(matches!(out.status, 200 | 400 | 403));
        prop_assert_eq!(out.status == 200, out.error.is_none());
        let _ = (c.to_xml(), c.to_json(), c.validate());
    }

    #[test]
    fn from_xml_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(c) = CorsConfig::from_xml(&bytes) {
            prop_assert_eq!(CorsConfig::from_xml(c.to_xml().as_bytes()), Ok(c));
        }
    }
}
