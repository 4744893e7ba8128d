//! `cors preset`: correct configurations for the common browser flows. Each one lints clean
//! (see the tests) and is exercised against the server in `tests/cors_presets.rs`.

use std::fmt;

use crate::lint::{Finding, Severity, lint};
use crate::model::{CorsConfig, CorsRule};

/// Preflight cache time of every preset: under Chromium's 7200 s cap.
const MAX_AGE: i64 = 3600;

/// Name and one-line description of every preset.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "spa-read",
        "a single-page app reads objects with fetch (GET/HEAD)",
    ),
    (
        "browser-put-presigned",
        "the browser uploads with PUT to a presigned URL (fetch or an AWS SDK)",
    ),
    (
        "browser-post-form",
        "the browser uploads with a presigned POST form (multipart/form-data)",
    ),
    (
        "browser-multipart",
        "the browser runs a multipart upload (create, upload parts, complete, abort) and reads each part's ETag",
    ),
    (
        "media-range-read",
        "<video>/<audio> or fetch read byte ranges (Range → 206 with Content-Range)",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
/// Why a preset could not be made.
pub enum PresetError {
    /// No preset has this name; the value is the name asked for.
    UnknownName(String),
    /// The preset needs at least one origin and none was given.
    NoOrigin,
    /// An origin that would never match (trailing slash, no scheme, …).
    BadOrigin(Vec<Finding>),
}

impl fmt::Display for PresetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresetError::UnknownName(n) => {
                let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                write!(
                    f,
                    "unknown preset {n:?}; the presets are {}",
                    names.join(", ")
                )
            }
            PresetError::NoOrigin => write!(
                f,
                "give at least one --origin (e.g. https://app.example.com)"
            ),
            PresetError::BadOrigin(found) => {
                write!(f, "the origins would not work:")?;
                for x in found {
                    write!(f, "\n  {}; fix: {}", x.message, x.fix)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PresetError {}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

/// The configuration of preset `name` for `origins` (each exactly as the browser sends it,
/// or `*`).
pub fn preset(name: &str, origins: &[String]) -> Result<CorsConfig, PresetError> {
    if origins.is_empty() {
        return Err(PresetError::NoOrigin);
    }
    let (methods, headers, expose): (&[&str], &[&str], &[&str]) = match name {
        "spa-read" => (&["GET", "HEAD"], &["*"], &["ETag", "x-amz-version-id"]),
        // A presigned PUT sends the headers that were signed with it: the content type,
        // checksums, metadata; the SDKs add their own.
        "browser-put-presigned" => (
            &["PUT"],
            &[
                "content-type",
                "content-md5",
                "x-amz-checksum-*",
                "x-amz-sdk-checksum-algorithm",
                "x-amz-meta-*",
                "amz-sdk-*",
            ],
            &["ETag", "x-amz-version-id"],
        ),
        // The form POST itself is a simple request; the headers cover fetch with FormData
        // and libraries that set content-type explicitly.
        "browser-post-form" => (
            &["POST"],
            &["content-type"],
            &["ETag", "Location", "x-amz-version-id"],
        ),
        // Create (POST ?uploads), UploadPart (PUT), Complete (POST), Abort (DELETE),
        // ListParts (GET); signed in the header (SDK) or presigned per part.
        "browser-multipart" => (
            &["GET", "PUT", "POST", "DELETE"],
            &[
                "authorization",
                "content-type",
                "content-md5",
                "x-amz-*",
                "amz-sdk-*",
            ],
            &["ETag", "x-amz-version-id"],
        ),
        "media-range-read" => (
            &["GET", "HEAD"],
            &["range", "if-range", "if-match", "if-none-match"],
            &["Content-Range", "Accept-Ranges", "Content-Length", "ETag"],
        ),
        other => return Err(PresetError::UnknownName(other.to_owned())),
    };
    let config = CorsConfig {
        rules: vec![CorsRule {
            id: Some(name.to_owned()),
            allowed_origins: origins.to_vec(),
            allowed_methods: strings(methods),
            allowed_headers: strings(headers),
            expose_headers: strings(expose),
            max_age_seconds: Some(MAX_AGE),
        }],
    };
    let bad: Vec<Finding> = lint(&config)
        .into_iter()
        .filter(|f| f.severity >= Severity::Warning)
        .collect();
    if bad.is_empty() {
        Ok(config)
    } else {
        Err(PresetError::BadOrigin(bad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> Vec<String> {
        vec![
            "https://app.example.com".into(),
            "http://localhost:5173".into(),
        ]
    }

    #[test]
    fn every_preset_lints_clean_and_is_valid() {
        for (name, _) in PRESETS {
            let c = preset(name, &origins()).unwrap();
            assert_eq!(lint(&c), [], "{name}");
            c.validate().unwrap();
            // Survives both wire forms.
            assert_eq!(CorsConfig::from_xml(c.to_xml().as_bytes()).unwrap(), c);
            assert_eq!(CorsConfig::from_json(&c.to_json()).unwrap(), c);
            // `*` works too.
            assert_eq!(lint(&preset(name, &["*".into()]).unwrap()), [], "{name}");
        }
    }

    #[test]
    fn presets_allow_their_flows() {
        use crate::evaluate::CorsRequest;
        let o = "https://app.example.com";
        let ok = |name: &str, method: &str, headers: Option<&str>| {
            preset(name, &origins())
                .unwrap()
                .evaluate(&CorsRequest {
                    origin: o,
                    method,
                    request_headers: headers,
                })
                .is_allowed()
        };
        assert!(ok("spa-read", "GET", Some("if-none-match")));
        assert!(ok(
            "browser-put-presigned",
            "PUT",
            Some("content-type,x-amz-checksum-crc32,x-amz-sdk-checksum-algorithm,x-amz-meta-owner")
        ));
        assert!(ok("browser-post-form", "POST", Some("content-type")));
        for m in ["PUT", "POST", "DELETE", "GET"] {
            assert!(ok(
                "browser-multipart",
                m,
                Some("authorization,x-amz-date,x-amz-content-sha256,amz-sdk-invocation-id")
            ));
        }
        assert!(ok("media-range-read", "GET", Some("range")));
        assert!(!ok("media-range-read", "PUT", None));
    }

    #[test]
    fn bad_input_is_refused_with_a_fix() {
        assert!(matches!(
            preset("nope", &origins()),
            Err(PresetError::UnknownName(_))
        ));
        assert_eq!(preset("spa-read", &[]), Err(PresetError::NoOrigin));
        let e = preset("spa-read", &["https://app.example.com/".into()]).unwrap_err();
        assert!(
            e.to_string().contains("write \"https://app.example.com\""),
            "{e}"
        );
    }
}
