//! Validation errors of PutBucketCors (spec §2). Every one is an HTTP 400.

use std::fmt;

/// The fixed MalformedXML text S3 returns for any schema violation (spec §2).
pub const MALFORMED_XML_MESSAGE: &str =
    "The XML you provided was not well-formed or did not validate against our published schema";

/// A rejected CORS configuration: always HTTP 400, with an S3 error code and the exact S3 text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
}

/// What was wrong with the configuration. `code()`/`message()` on [`ConfigError`] render it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// Not well-formed, not valid against the schema (missing/unknown elements, empty rule,
    /// non-numeric `MaxAgeSeconds`, `ID` over 255 characters, document over 64 KB).
    /// The string is an internal detail for logs; S3's message does not carry it.
    Malformed(String),
    /// An `AllowedMethod` outside GET, PUT, HEAD, POST, DELETE (the first offending one).
    UnsupportedMethod(String),
    /// An `AllowedOrigin` with more than one `*`.
    OriginWildcards(String),
    /// An `AllowedHeader` with more than one `*`.
    HeaderWildcards(String),
    /// An `ExposeHeader` with a `*`.
    ExposeWildcard(String),
    /// An `ExposeHeader` that is not an HTTP token (Preflight choice, spec §15).
    ExposeInvalidChar(String),
    /// More than 100 rules (Preflight choice: InvalidRequest, spec §11/§12).
    TooManyRules(usize),
}

impl ConfigError {
    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ConfigErrorKind::Malformed(detail.into()))
    }

    /// An error of the given kind, with the message S3 sends for it.
    pub fn new(kind: ConfigErrorKind) -> Self {
        Self { kind }
    }

    /// What is wrong, as a value.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.kind
    }

    /// HTTP status: always 400.
    pub fn status(&self) -> u16 {
        400
    }

    /// S3 error code: `MalformedXML` or `InvalidRequest`.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ConfigErrorKind::Malformed(_) => "MalformedXML",
            _ => "InvalidRequest",
        }
    }

    /// The exact S3 error message.
    pub fn message(&self) -> String {
        match &self.kind {
            ConfigErrorKind::Malformed(_) => MALFORMED_XML_MESSAGE.to_owned(),
            ConfigErrorKind::UnsupportedMethod(m) => {
                format!("Found unsupported HTTP method in CORS config. Unsupported method is {m}")
            }
            ConfigErrorKind::OriginWildcards(o) => {
                format!("AllowedOrigin \"{o}\" can not have more than one wildcard.")
            }
            ConfigErrorKind::HeaderWildcards(h) => {
                format!("AllowedHeader \"{h}\" can not have more than one wildcard.")
            }
            ConfigErrorKind::ExposeWildcard(h) => format!(
                "ExposeHeader \"{h}\" contains wildcard. We currently do not support wildcard for ExposeHeader."
            ),
            // AWS reportedly names the wrong element here (spec §15); reproduced on purpose.
            ConfigErrorKind::ExposeInvalidChar(h) => {
                format!("AllowedHeader \"{h}\" contains invalid character.")
            }
            ConfigErrorKind::TooManyRules(_) => {
                "The number of CORS rules should not exceed allowed limit of 100 rules.".to_owned()
            }
        }
    }

    /// The internal detail of a MalformedXML error (for logs), if any.
    pub fn detail(&self) -> Option<&str> {
        match &self.kind {
            ConfigErrorKind::Malformed(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())?;
        if let Some(d) = self.detail() {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_are_s3_text() {
        let e = ConfigError::malformed("x");
        assert_eq!(e.code(), "MalformedXML");
        assert_eq!(e.message(), MALFORMED_XML_MESSAGE);
        assert_eq!(e.status(), 400);
        let e = ConfigError::new(ConfigErrorKind::UnsupportedMethod("MYMETHOD".into()));
        assert_eq!(e.code(), "InvalidRequest");
        assert_eq!(
            e.message(),
            "Found unsupported HTTP method in CORS config. Unsupported method is MYMETHOD"
        );
        let e = ConfigError::new(ConfigErrorKind::OriginWildcards("*example*.com".into()));
        assert_eq!(
            e.message(),
            "AllowedOrigin \"*example*.com\" can not have more than one wildcard."
        );
        let e = ConfigError::new(ConfigErrorKind::ExposeWildcard("x-amz-meta-*".into()));
        assert_eq!(
            e.message(),
            "ExposeHeader \"x-amz-meta-*\" contains wildcard. We currently do not support wildcard for ExposeHeader."
        );
        assert!(e.to_string().starts_with("InvalidRequest: ExposeHeader"));
    }
}
