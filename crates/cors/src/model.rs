//! The configuration model and its validation (spec §1, §2).

use crate::error::{ConfigError, ConfigErrorKind};

/// S3's namespace for the `CORSConfiguration` document.
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// The only values accepted in `AllowedMethod` (spec §1). Case-sensitive.
pub const SUPPORTED_METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];

/// At most this many `CORSRule`s (spec §1).
pub const MAX_RULES: usize = 100;

/// At most this many characters in an `ID` (spec §1).
pub const MAX_ID_CHARS: usize = 255;

/// Largest accepted document, in bytes (64 KB, spec §1). Exactly 65536 bytes is accepted.
pub const MAX_DOCUMENT_BYTES: usize = 65536;

/// A bucket's CORS configuration. Values are kept exactly as sent (case, order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorsConfig {
    /// The rules, in order: the first rule that matches answers (spec §3).
    pub rules: Vec<CorsRule>,
}

/// One `CORSRule`. An empty list means the member was not set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorsRule {
    /// `ID`: an optional name, at most 255 characters.
    pub id: Option<String>,
    /// `AllowedOrigin`: exact origins, `*`, or globs with one `*`.
    pub allowed_origins: Vec<String>,
    /// `AllowedMethod`: GET, PUT, POST, DELETE or HEAD.
    pub allowed_methods: Vec<String>,
    /// `AllowedHeader`: request header names a preflight may ask for; `*` globs allowed.
    pub allowed_headers: Vec<String>,
    /// `ExposeHeader`: response headers the page's script may read.
    pub expose_headers: Vec<String>,
    /// `MaxAgeSeconds`: how long the browser may cache the preflight answer.
    pub max_age_seconds: Option<i64>,
}

impl CorsConfig {
    /// Checks the configuration the way PutBucketCors does. `from_xml`/`from_json` call this;
    /// call it yourself for configurations built in code.
    ///
    /// Order of checks: schema-level problems of the whole document first (MalformedXML),
    /// then the rule count, then per rule, in rule order: methods, origins, allowed headers,
    /// expose headers (InvalidRequest). Each list reports its first offending value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // spec §2: no CORSRule at all → MalformedXML.
        if self.rules.is_empty() {
            return Err(ConfigError::malformed("no CORSRule"));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate_schema()
                .map_err(|d| ConfigError::malformed(format!("rule {i}: {d}")))?;
        }
        // Preflight choice (spec §11/§12): >100 rules → InvalidRequest, as Scality's
        // AWS-targeted test expects.
        if self.rules.len() > MAX_RULES {
            return Err(ConfigError::new(ConfigErrorKind::TooManyRules(
                self.rules.len(),
            )));
        }
        for rule in &self.rules {
            rule.validate_values()?;
        }
        Ok(())
    }
}

impl CorsRule {
    /// Schema-level constraints (MalformedXML).
    fn validate_schema(&self) -> Result<(), &'static str> {
        // spec §2: empty rule, rule without AllowedOrigin or AllowedMethod.
        if self.allowed_origins.is_empty() {
            return Err("rule without AllowedOrigin");
        }
        if self.allowed_methods.is_empty() {
            return Err("rule without AllowedMethod");
        }
        // Preflight choice (spec §12): ID over 255 characters is a schema (length facet)
        // violation → MalformedXML.
        if self
            .id
            .as_ref()
            .is_some_and(|id| id.chars().count() > MAX_ID_CHARS)
        {
            return Err("ID longer than 255 characters");
        }
        Ok(())
    }

    /// Value-level constraints (InvalidRequest).
    fn validate_values(&self) -> Result<(), ConfigError> {
        if let Some(m) = self
            .allowed_methods
            .iter()
            .find(|m| !SUPPORTED_METHODS.contains(&m.as_str()))
        {
            return Err(ConfigError::new(ConfigErrorKind::UnsupportedMethod(
                m.clone(),
            )));
        }
        if let Some(o) = self.allowed_origins.iter().find(|o| count_stars(o) > 1) {
            return Err(ConfigError::new(ConfigErrorKind::OriginWildcards(
                o.clone(),
            )));
        }
        if let Some(h) = self.allowed_headers.iter().find(|h| count_stars(h) > 1) {
            return Err(ConfigError::new(ConfigErrorKind::HeaderWildcards(
                h.clone(),
            )));
        }
        for h in &self.expose_headers {
            if h.contains('*') {
                return Err(ConfigError::new(ConfigErrorKind::ExposeWildcard(h.clone())));
            }
            // Preflight choice (spec §15): ExposeHeader must be an HTTP token.
            if !is_http_token(h) {
                return Err(ConfigError::new(ConfigErrorKind::ExposeInvalidChar(
                    h.clone(),
                )));
            }
        }
        Ok(())
    }
}

fn count_stars(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'*').count()
}

/// RFC 9110 `token`: one or more tchar.
pub(crate) fn is_http_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str]) -> CorsRule {
        CorsRule {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_methods: methods.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn err(c: &CorsConfig) -> (String, String) {
        let e = c.validate().unwrap_err();
        (e.code().to_owned(), e.message())
    }

    #[test]
    fn no_rules_is_malformed() {
        assert_eq!(err(&CorsConfig::default()).0, "MalformedXML");
    }

    #[test]
    fn missing_origin_or_method_is_malformed() {
        let c = CorsConfig {
            rules: vec![rule(&[], &["GET"])],
        };
        assert_eq!(err(&c).0, "MalformedXML");
        let c = CorsConfig {
            rules: vec![rule(&["*"], &[])],
        };
        assert_eq!(err(&c).0, "MalformedXML");
    }

    #[test]
    fn first_unsupported_method_is_named() {
        let c = CorsConfig {
            rules: vec![rule(&["*"], &["GET", "NOTREAL", "PATCH"])],
        };
        assert_eq!(
            err(&c),
            (
                "InvalidRequest".into(),
                "Found unsupported HTTP method in CORS config. Unsupported method is NOTREAL"
                    .into()
            )
        );
        // Lower case is not accepted (spec §2).
        let c = CorsConfig {
            rules: vec![rule(&["*"], &["get"])],
        };
        assert!(err(&c).1.ends_with("Unsupported method is get"));
        // Empty method: the template with an empty name.
        let c = CorsConfig {
            rules: vec![rule(&["*"], &[""])],
        };
        assert!(err(&c).1.ends_with("Unsupported method is "));
    }

    #[test]
    fn wildcard_limits() {
        let c = CorsConfig {
            rules: vec![rule(&["*example*.com"], &["GET"])],
        };
        assert_eq!(
            err(&c).1,
            "AllowedOrigin \"*example*.com\" can not have more than one wildcard."
        );
        let mut r = rule(&["*"], &["GET"]);
        r.allowed_headers = vec!["*-amz-*".into()];
        let c = CorsConfig { rules: vec![r] };
        assert_eq!(
            err(&c),
            (
                "InvalidRequest".into(),
                "AllowedHeader \"*-amz-*\" can not have more than one wildcard.".into()
            )
        );
        let mut r = rule(&["*"], &["GET"]);
        r.expose_headers = vec!["ETag".into(), "x-amz-meta-*".into()];
        let c = CorsConfig { rules: vec![r] };
        assert_eq!(
            err(&c).1,
            "ExposeHeader \"x-amz-meta-*\" contains wildcard. We currently do not support wildcard for ExposeHeader."
        );
    }

    #[test]
    fn star_next_to_specific_origin_and_empty_origin_are_accepted() {
        let c = CorsConfig {
            rules: vec![rule(&["*", "https://test.com", ""], &["GET"])],
        };
        assert!(c.validate().is_ok());
    }

    // §12 choices.

    #[test]
    fn choice_more_than_100_rules_is_invalid_request() {
        let c = CorsConfig {
            rules: vec![rule(&["*"], &["GET"]); 101],
        };
        assert_eq!(
            err(&c),
            (
                "InvalidRequest".into(),
                "The number of CORS rules should not exceed allowed limit of 100 rules.".into()
            )
        );
        let c = CorsConfig {
            rules: vec![rule(&["*"], &["GET"]); 100],
        };
        assert!(c.validate().is_ok());
    }

    #[test]
    fn choice_id_over_255_chars_is_malformed() {
        let mut r = rule(&["*"], &["GET"]);
        r.id = Some("é".repeat(255));
        assert!(
            CorsConfig {
                rules: vec![r.clone()]
            }
            .validate()
            .is_ok()
        );
        r.id = Some("a".repeat(256));
        assert_eq!(err(&CorsConfig { rules: vec![r] }).0, "MalformedXML");
    }

    #[test]
    fn choice_duplicate_ids_are_accepted() {
        let mut r = rule(&["*"], &["GET"]);
        r.id = Some("same".into());
        assert!(
            CorsConfig {
                rules: vec![r.clone(), r]
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn choice_expose_header_must_be_token() {
        let mut r = rule(&["*"], &["GET"]);
        r.expose_headers = vec!["test header".into()];
        assert_eq!(
            err(&CorsConfig {
                rules: vec![r.clone()]
            }),
            (
                "InvalidRequest".into(),
                "AllowedHeader \"test header\" contains invalid character.".into()
            )
        );
        r.expose_headers = vec!["x_amz.ok-1".into(), "ETag".into()];
        assert!(
            CorsConfig {
                rules: vec![r.clone()]
            }
            .validate()
            .is_ok()
        );
        // AllowedHeader values are not character-checked (spec §15).
        r.allowed_headers = vec!["any thing".into()];
        assert!(CorsConfig { rules: vec![r] }.validate().is_ok());
    }

    #[test]
    fn choice_max_age_zero_and_negative_are_accepted() {
        for v in [0, -1, i64::MAX] {
            let mut r = rule(&["*"], &["GET"]);
            r.max_age_seconds = Some(v);
            assert!(CorsConfig { rules: vec![r] }.validate().is_ok());
        }
    }

    #[test]
    fn check_order_schema_before_values() {
        // Rule 2 is schema-invalid, rule 1 has a bad method: MalformedXML wins.
        let c = CorsConfig {
            rules: vec![rule(&["*"], &["BAD"]), rule(&[], &["GET"])],
        };
        assert_eq!(err(&c).0, "MalformedXML");
        // Methods are checked before origins within a rule.
        let c = CorsConfig {
            rules: vec![rule(&["a**"], &["BAD"])],
        };
        assert!(err(&c).1.starts_with("Found unsupported"));
    }
}
