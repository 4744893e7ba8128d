//! The policy of a browser form upload (POST Object): `expiration` and
//! `conditions`, checked against the form fields as S3 does (S3 API
//! reference, "Creating a POST policy"). Pure logic: parsing, matching and
//! S3's error messages.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value as Json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Form fields no condition needs to cover.
fn exempt(field: &str) -> bool {
    let f = field.to_ascii_lowercase();
    matches!(
        f.as_str(),
        "policy" | "x-amz-signature" | "file" | "awsaccesskeyid" | "signature"
    ) || f.starts_with("x-ignore-")
}

#[derive(Debug, Clone, PartialEq)]
pub enum PostCondition {
    /// `{"field": "value"}` or `["eq", "$field", "value"]`.
    Eq { field: String, value: String },
    /// `["starts-with", "$field", "prefix"]`.
    StartsWith { field: String, prefix: String },
    /// `["content-length-range", min, max]`.
    LengthRange { min: u64, max: u64 },
}

impl PostCondition {
    /// As S3 prints it in "Policy Condition failed: ...".
    pub fn describe(&self) -> String {
        match self {
            PostCondition::Eq { field, value } => {
                format!("[\"eq\", \"${field}\", {}]", json_str(value))
            }
            PostCondition::StartsWith { field, prefix } => {
                format!("[\"starts-with\", \"${field}\", {}]", json_str(prefix))
            }
            PostCondition::LengthRange { min, max } => {
                format!("[\"content-length-range\", {min}, {max}]")
            }
        }
    }
}

fn json_str(s: &str) -> String {
    Json::String(s.to_owned()).to_string()
}

#[derive(Debug)]
pub struct PostPolicy {
    pub expiration: OffsetDateTime,
    pub conditions: Vec<PostCondition>,
}

/// Why a form was refused: (S3 code, message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostPolicyError {
    pub code: &'static str,
    pub message: String,
}

fn invalid(message: impl Into<String>) -> PostPolicyError {
    PostPolicyError {
        code: "InvalidPolicyDocument",
        message: format!("Invalid Policy: {}", message.into()),
    }
}

fn denied(message: impl Into<String>) -> PostPolicyError {
    PostPolicyError {
        code: "AccessDenied",
        message: format!("Invalid according to Policy: {}", message.into()),
    }
}

impl PostPolicy {
    /// Decodes the base64 `policy` field.
    pub fn from_base64(b64: &str) -> Result<PostPolicy, PostPolicyError> {
        let bytes = B64
            .decode(b64.trim())
            .map_err(|_| invalid("Invalid Base64 encoding."))?;
        let doc: Json = serde_json::from_slice(&bytes).map_err(|_| invalid("Invalid JSON."))?;
        let Json::Object(doc) = doc else {
            return Err(invalid("Invalid JSON."));
        };
        let expiration = match doc.get("expiration") {
            Some(Json::String(s)) => OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|_| invalid(format!("Invalid 'expiration' value: '{s}'")))?,
            Some(_) => return Err(invalid("Invalid 'expiration' value: must be a string.")),
            None => return Err(invalid("Policy missing expiration.")),
        };
        let conditions = match doc.get("conditions") {
            Some(Json::Array(list)) => list
                .iter()
                .map(parse_condition)
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(invalid("Invalid 'conditions' value: must be a List.")),
            None => return Err(invalid("Policy missing conditions.")),
        };
        Ok(PostPolicy {
            expiration,
            conditions,
        })
    }

    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expiration
    }

    /// The `content-length-range` bounds, when the policy has them.
    pub fn length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().find_map(|c| match c {
            PostCondition::LengthRange { min, max } => Some((*min, *max)),
            _ => None,
        })
    }

    /// Checks every field condition against the form (field names are
    /// case-insensitive; `bucket` is the bucket of the URL), then that every
    /// form field is covered by a condition.
    pub fn check_fields(
        &self,
        fields: &[(String, String)],
        bucket: &str,
    ) -> Result<(), PostPolicyError> {
        let value_of = |name: &str| -> Option<&str> {
            if name.eq_ignore_ascii_case("bucket") {
                return Some(bucket);
            }
            fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        for c in &self.conditions {
            let ok = match c {
                PostCondition::Eq { field, value } => value_of(field).unwrap_or("") == value,
                PostCondition::StartsWith { field, prefix } => match value_of(field) {
                    // Content-Type may list several values, each must match.
                    Some(v) if field.eq_ignore_ascii_case("content-type") => v
                        .split(',')
                        .all(|part| part.trim_start().starts_with(prefix.as_str())),
                    Some(v) => v.starts_with(prefix.as_str()),
                    None => prefix.is_empty(),
                },
                PostCondition::LengthRange { .. } => true,
            };
            if !ok {
                return Err(denied(format!("Policy Condition failed: {}", c.describe())));
            }
        }
        let covered = |name: &str| {
            self.conditions.iter().any(|c| match c {
                PostCondition::Eq { field, .. } | PostCondition::StartsWith { field, .. } => {
                    field.eq_ignore_ascii_case(name)
                }
                PostCondition::LengthRange { .. } => false,
            })
        };
        let extra: Vec<&str> = fields
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !exempt(n) && !covered(n))
            .collect();
        if !extra.is_empty() {
            return Err(denied(format!("Extra input fields: {}", extra.join(", "))));
        }
        Ok(())
    }
}

fn as_u64(v: &Json) -> Option<u64> {
    match v {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn field_name(v: &Json) -> Result<String, PostPolicyError> {
    match v {
        Json::String(s) => Ok(s.strip_prefix('$').unwrap_or(s).to_owned()),
        _ => Err(invalid("Invalid Condition: field names must be strings.")),
    }
}

fn parse_condition(v: &Json) -> Result<PostCondition, PostPolicyError> {
    match v {
        Json::Object(map) => {
            if map.len() != 1 {
                return Err(invalid(
                    "Invalid Condition: an object condition must have exactly one field.",
                ));
            }
            let (field, value) = map
                .iter()
                .next()
                .ok_or_else(|| invalid("Invalid Condition."))?;
            let value = match value {
                Json::String(s) => s.clone(),
                Json::Number(n) => n.to_string(),
                _ => {
                    return Err(invalid(format!(
                        "Invalid Condition: the value of {field} must be a string."
                    )));
                }
            };
            Ok(PostCondition::Eq {
                field: field.strip_prefix('$').unwrap_or(field).to_owned(),
                value,
            })
        }
        Json::Array(items) => {
            let op = items.first().and_then(Json::as_str).unwrap_or("");
            match (op.to_ascii_lowercase().as_str(), items.len()) {
                ("eq", 3) | ("starts-with", 3) => {
                    let field = field_name(&items[1])?;
                    let value = match &items[2] {
                        Json::String(s) => s.clone(),
                        Json::Number(n) => n.to_string(),
                        _ => {
                            return Err(invalid(format!(
                                "Invalid Condition: the value for {field} must be a string."
                            )));
                        }
                    };
                    Ok(if op.eq_ignore_ascii_case("eq") {
                        PostCondition::Eq { field, value }
                    } else {
                        PostCondition::StartsWith {
                            field,
                            prefix: value,
                        }
                    })
                }
                ("content-length-range", 3) => {
                    let (Some(min), Some(max)) = (as_u64(&items[1]), as_u64(&items[2])) else {
                        return Err(invalid(
                            "Invalid Condition: content-length-range bounds must be non-negative integers.",
                        ));
                    };
                    if min > max {
                        return Err(invalid(
                            "Invalid Condition: content-length-range minimum is larger than maximum.",
                        ));
                    }
                    Ok(PostCondition::LengthRange { min, max })
                }
                _ => Err(invalid(format!("Invalid Condition: {v}"))),
            }
        }
        _ => Err(invalid(format!("Invalid Condition: {v}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(conditions: &str) -> PostPolicy {
        let doc =
            format!(r#"{{"expiration":"2099-01-01T00:00:00.000Z","conditions":{conditions}}}"#);
        PostPolicy::from_base64(&B64.encode(doc)).unwrap()
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn conditions_table() {
        let base =
            r#"{"x-amz-algorithm":"AWS4-HMAC-SHA256"},{"x-amz-credential":"c"},{"x-amz-date":"d"}"#;
        let sig = [
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-credential", "c"),
            ("x-amz-date", "d"),
            ("policy", "p"),
            ("x-amz-signature", "s"),
        ];
        // (conditions, extra fields, expected failure text or "")
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (
                r#"{"bucket":"b"},["starts-with","$key","up/"]"#,
                &[("key", "up/a.png")],
                "",
            ),
            (
                r#"{"bucket":"other"},["starts-with","$key",""]"#,
                &[("key", "a")],
                r#"["eq", "$bucket", "other"]"#,
            ),
            (r#"["starts-with","$key",""]"#, &[("key", "anything")], ""),
            (
                r#"["starts-with","$key","up/"]"#,
                &[("key", "down/a")],
                r#"["starts-with", "$key", "up/"]"#,
            ),
            (r#"{"key":"exact.txt"}"#, &[("key", "exact.txt")], ""),
            (
                r#"{"key":"exact.txt"}"#,
                &[("key", "other.txt")],
                r#"["eq", "$key", "exact.txt"]"#,
            ),
            (
                r#"["eq","$key","k"],["eq","$acl","public-read"]"#,
                &[("key", "k"), ("acl", "private")],
                r#"["eq", "$acl", "public-read"]"#,
            ),
            (
                r#"["eq","$key","k"],["starts-with","$Content-Type","image/"]"#,
                &[("key", "k"), ("content-type", "image/png")],
                "",
            ),
            (
                r#"["eq","$key","k"],["starts-with","$Content-Type","image/"]"#,
                &[("key", "k"), ("Content-Type", "text/html")],
                r#"["starts-with", "$Content-Type", "image/"]"#,
            ),
            (
                r#"["eq","$key","k"],["starts-with","$Content-Type","image/"]"#,
                &[("key", "k"), ("Content-Type", "image/png, image/jpeg")],
                "",
            ),
            (
                r#"["eq","$key","k"]"#,
                &[("key", "k"), ("x-amz-meta-tag", "v")],
                "Extra input fields: x-amz-meta-tag",
            ),
            (
                r#"["eq","$key","k"]"#,
                &[("key", "k"), ("x-ignore-me", "v")],
                "",
            ),
            (
                r#"["eq","$key","k"],["starts-with","$x-amz-meta-tag",""]"#,
                &[("key", "k"), ("x-amz-meta-tag", "v")],
                "",
            ),
            (
                r#"["eq","$key","k"],{"success_action_status":"201"}"#,
                &[("key", "k"), ("success_action_status", "201")],
                "",
            ),
            (
                r#"["eq","$key","k"],["content-length-range",0,10]"#,
                &[("key", "k")],
                "",
            ),
            (
                r#"["eq","$key","k"],{"Cache-Control":"max-age=60"}"#,
                &[("key", "k"), ("cache-control", "max-age=60")],
                "",
            ),
        ];
        for (conds, extra, want) in cases {
            let p = policy(&format!("[{base},{conds}]"));
            let mut f = fields(&sig);
            f.extend(fields(extra));
            match p.check_fields(&f, "b") {
                Ok(()) => assert_eq!(*want, "", "{conds}"),
                Err(e) => {
                    assert_eq!(e.code, "AccessDenied");
                    assert!(
                        !want.is_empty() && e.message.contains(want),
                        "{conds}: {}",
                        e.message
                    );
                    assert!(e.message.starts_with("Invalid according to Policy: "));
                }
            }
        }
    }

    #[test]
    fn invalid_documents() {
        for (doc, want) in [("!!!", "Invalid Base64"), ("bm90IGpzb24=", "Invalid JSON")] {
            let e = PostPolicy::from_base64(doc).unwrap_err();
            assert_eq!(e.code, "InvalidPolicyDocument");
            assert!(e.message.contains(want), "{}", e.message);
        }
        for (doc, want) in [
            (r#"{"conditions":[]}"#, "missing expiration"),
            (
                r#"{"expiration":"soon","conditions":[]}"#,
                "Invalid 'expiration'",
            ),
            (
                r#"{"expiration":"2099-01-01T00:00:00Z","conditions":{}}"#,
                "must be a List",
            ),
            (
                r#"{"expiration":"2099-01-01T00:00:00Z","conditions":[["matches","$key","x"]]}"#,
                "Invalid Condition",
            ),
            (
                r#"{"expiration":"2099-01-01T00:00:00Z","conditions":[["content-length-range",10,1]]}"#,
                "minimum is larger",
            ),
        ] {
            let e = PostPolicy::from_base64(&B64.encode(doc)).unwrap_err();
            assert!(e.message.contains(want), "{doc}: {}", e.message);
        }
    }

    #[test]
    fn expiry_and_range() {
        let p = policy(r#"[["content-length-range", "1", 1048576]]"#);
        assert_eq!(p.length_range(), Some((1, 1_048_576)));
        assert!(!p.is_expired(OffsetDateTime::now_utc()));
        assert!(p.is_expired(p.expiration));
    }
}
