//! The aws CLI / SDK JSON shape of a CORS configuration:
//! `{"CORSRules":[{"AllowedOrigins":[..],"AllowedMethods":[..],...}]}`.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::model::{CorsConfig, CorsRule};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonConfig {
    #[serde(rename = "CORSRules")]
    cors_rules: Vec<JsonRule>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct JsonRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allowed_origins: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allowed_methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allowed_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    expose_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age_seconds: Option<i64>,
    #[serde(rename = "ID", default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
}

impl CorsConfig {
    /// Parses the aws CLI JSON shape and validates it exactly like [`CorsConfig::from_xml`].
    /// JSON that does not fit the shape (syntax, unknown or duplicate keys, wrong types) is
    /// reported as MalformedXML, the code PutBucketCors uses for schema violations.
    pub fn from_json(s: &str) -> Result<CorsConfig, ConfigError> {
        let config = Self::from_json_unchecked(s)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses the JSON shape without validating (see [`CorsConfig::from_xml_unchecked`]).
    pub fn from_json_unchecked(s: &str) -> Result<CorsConfig, ConfigError> {
        let parsed: JsonConfig =
            serde_json::from_str(s).map_err(|e| ConfigError::malformed(format!("JSON: {e}")))?;
        Ok(CorsConfig {
            rules: parsed
                .cors_rules
                .into_iter()
                .map(|r| CorsRule {
                    id: r.id,
                    allowed_origins: r.allowed_origins,
                    allowed_methods: r.allowed_methods,
                    allowed_headers: r.allowed_headers,
                    expose_headers: r.expose_headers,
                    max_age_seconds: r.max_age_seconds,
                })
                .collect(),
        })
    }

    /// Serializes to the aws CLI JSON shape, set members only, in the order
    /// AllowedOrigins, AllowedMethods, AllowedHeaders, ExposeHeaders, MaxAgeSeconds, ID.
    pub fn to_json(&self) -> String {
        let wire = JsonConfig {
            cors_rules: self
                .rules
                .iter()
                .map(|r| JsonRule {
                    allowed_origins: r.allowed_origins.clone(),
                    allowed_methods: r.allowed_methods.clone(),
                    allowed_headers: r.allowed_headers.clone(),
                    expose_headers: r.expose_headers.clone(),
                    max_age_seconds: r.max_age_seconds,
                    id: r.id.clone(),
                })
                .collect(),
        };
        // Serializing strings, vectors and integers cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_and_round_trip() {
        let s = r#"{"CORSRules":[{"AllowedOrigins":["*"],"AllowedMethods":["GET","PUT"],"AllowedHeaders":["*"],"ExposeHeaders":["ETag"],"MaxAgeSeconds":3000,"ID":"r1"}]}"#;
        let c = CorsConfig::from_json(s).unwrap();
        assert_eq!(c.rules[0].id.as_deref(), Some("r1"));
        assert_eq!(c.to_json(), s);
        let minimal = r#"{"CORSRules":[{"AllowedOrigins":["*"],"AllowedMethods":["GET"]}]}"#;
        assert_eq!(CorsConfig::from_json(minimal).unwrap().to_json(), minimal);
    }

    #[test]
    fn json_is_validated_like_xml() {
        let e = CorsConfig::from_json(
            r#"{"CORSRules":[{"AllowedOrigins":["*"],"AllowedMethods":["PATCH"]}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), "InvalidRequest");
        for bad in [
            "",
            "{}",
            r#"{"CORSRules":[]}"#,
            r#"{"CORSRules":[{"AllowedMethods":["GET"]}]}"#,
            r#"{"CORSRules":[{"AllowedOrigins":["*"],"AllowedMethods":["GET"],"MaxAgeSeconds":"10"}]}"#,
            r#"{"CORSRules":[{"AllowedOrigins":["*"],"AllowedMethods":["GET"],"Bogus":1}]}"#,
        ] {
            assert_eq!(
                CorsConfig::from_json(bad).unwrap_err().code(),
                "MalformedXML",
                "{bad}"
            );
        }
    }

    #[test]
    fn xml_and_json_agree() {
        let c = CorsConfig::from_xml(b"<CORSConfiguration><CORSRule><ID>x</ID><AllowedOrigin>https://a</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>5</MaxAgeSeconds></CORSRule></CORSConfiguration>").unwrap();
        assert_eq!(CorsConfig::from_json(&c.to_json()).unwrap(), c);
    }
}
