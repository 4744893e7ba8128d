//! Matching primitives (spec §5): origin patterns, request-header lists.
//! Nothing here allocates.

/// Glob match where `*` matches any run of bytes, including the empty run; anchored at both
/// ends. Validated configurations have at most one `*`, but any number is handled (the
/// evaluator must not panic on hand-built configurations). `fold` compares ASCII letters
/// case-insensitively.
pub(crate) fn glob_match(pattern: &str, value: &str, fold: bool) -> bool {
    let (p, v) = (pattern.as_bytes(), value.as_bytes());
    let same = |a: &[u8], b: &[u8]| {
        if fold {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    // Fast paths for what validated configurations contain: no `*`, or exactly one.
    match p.iter().position(|&b| b == b'*') {
        None => same(p, v),
        Some(star) if !p[star + 1..].contains(&b'*') => {
            let (prefix, suffix) = (&p[..star], &p[star + 1..]);
            v.len() >= prefix.len() + suffix.len()
                && same(prefix, &v[..prefix.len()])
                && same(suffix, &v[v.len() - suffix.len()..])
        }
        Some(_) => glob_match_general(p, v, fold),
    }
}

/// Any number of stars: iterative matcher with backtracking to the last star,
/// O(|p|·|v|) worst case.
fn glob_match_general(p: &[u8], v: &[u8], fold: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if fold {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, vi));
            pi += 1;
        } else if pi < p.len() && eq(p[pi], v[vi]) {
            pi += 1;
            vi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// How an `AllowedOrigin` value matched (spec §5.1, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OriginMatch {
    /// Exactly `*`: Allow-Origin `*`, no credentials.
    Any,
    /// A specific value or a glob: echo the Origin.
    Specific,
}

/// spec §5.1: `*` matches anything; otherwise a byte-exact (case-sensitive, §12 choice) glob.
pub(crate) fn origin_match(allowed: &str, origin: &str) -> Option<OriginMatch> {
    if allowed == "*" {
        Some(OriginMatch::Any)
    } else if glob_match(allowed, origin, false) {
        Some(OriginMatch::Specific)
    } else {
        None
    }
}

/// The names of an `Access-Control-Request-Headers` value: split on `,`, trimmed, empty items
/// dropped (spec §5.3).
pub(crate) fn request_header_names(value: &str) -> impl Iterator<Item = &str> + Clone {
    value
        .split(',')
        .map(|s| s.trim_matches(|c| c == ' ' || c == '\t'))
        .filter(|s| !s.is_empty())
}

/// spec §5.3: a requested name is allowed when some AllowedHeader glob matches it,
/// ignoring case.
pub(crate) fn header_allowed(allowed_headers: &[String], name: &str) -> bool {
    allowed_headers.iter().any(|a| glob_match(a, name, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_alone_matches_anything() {
        for o in [
            "",
            "localhost:4566",
            "example.origin",
            "null",
            "http://a.b:1/",
        ] {
            assert_eq!(origin_match("*", o), Some(OriginMatch::Any));
        }
    }

    #[test]
    fn glob_is_anchored_and_star_matches_empty() {
        // spec §5.1 ceph examples
        assert!(glob_match("*suffix", "foo.suffix", false));
        assert!(!glob_match("*suffix", "foo.suffix.get", false));
        for ok in ["startend", "start1end", "start12end"] {
            assert!(glob_match("start*end", ok, false));
        }
        assert!(!glob_match("start*end", "0start12end", false));
        assert!(glob_match("prefix*", "prefix", false));
        assert!(glob_match("prefix*", "prefix.suffix", false));
        assert!(!glob_match("prefix*", "bla.prefix", false));
        // Scality / LS examples
        assert!(glob_match(
            "*.allowedorigin.com",
            ".allowedorigin.com",
            false
        ));
        assert!(!glob_match(
            "*.allowedorigin.com",
            ".allowedorigin.comtest",
            false
        ));
        assert!(glob_match(
            "http://www.allowedorigin.*",
            "http://www.allowedorigin.",
            false
        ));
        assert!(glob_match(
            "http://*.origin.com",
            "http://test.origin.com",
            false
        ));
        assert!(!glob_match(
            "http://*.origin.com",
            "http://test.origin.com/",
            false
        ));
        // `*` spans dots and several labels.
        assert!(glob_match(
            "http://*.origin.com",
            "http://a.b.origin.com",
            false
        ));
    }

    #[test]
    fn exact_origin_needs_scheme_host_port() {
        assert!(origin_match("https://localhost:4200", "https://localhost:4200").is_some());
        assert!(origin_match("https://localhost:4200", "http://localhost:4200").is_none());
        assert!(origin_match("http://test.com:80", "http://test.com").is_none());
    }

    #[test]
    fn choice_origin_is_case_sensitive() {
        assert!(origin_match("https://Example.com", "https://example.com").is_none());
        assert!(origin_match("https://*.example.com", "https://A.EXAMPLE.COM").is_none());
    }

    #[test]
    fn empty_allowed_origin_matches_only_empty_origin() {
        assert_eq!(origin_match("", ""), Some(OriginMatch::Specific));
        assert!(origin_match("", "x").is_none());
    }

    #[test]
    fn fast_paths_agree_with_the_general_matcher() {
        let patterns = ["", "*", "ab", "ab*", "*ba", "ab*ba", "A*b", "*.c", "a*a"];
        let values = [
            "", "a", "ab", "aba", "abba", "AB", "ab.c", ".c", "aXa", "aa",
        ];
        for p in patterns {
            for v in values {
                for fold in [false, true] {
                    assert_eq!(
                        glob_match(p, v, fold),
                        glob_match_general(p.as_bytes(), v.as_bytes(), fold),
                        "{p:?} {v:?} {fold}"
                    );
                }
            }
        }
    }

    #[test]
    fn multi_star_patterns_do_not_panic() {
        assert!(glob_match("a*b*c", "aXbYc", false));
        assert!(glob_match("**", "", false));
        assert!(!glob_match("a*b*c", "aXbY", false));
        assert!(glob_match("*a*", "bab", false));
    }

    #[test]
    fn header_list_parsing() {
        let v: Vec<_> = request_header_names("content-type,,expires").collect();
        assert_eq!(v, ["content-type", "expires"]);
        let v: Vec<_> = request_header_names(" a ,b,\t, ").collect();
        assert_eq!(v, ["a", "b"]);
        assert_eq!(request_header_names("").count(), 0);
    }

    #[test]
    fn header_match_ignores_case_and_globs() {
        let allowed = vec![
            "x-AMZ-server-SIDE-encryption".to_string(),
            "amz-*".to_string(),
        ];
        assert!(header_allowed(&allowed, "x-amz-server-side-encryption"));
        assert!(header_allowed(&allowed, "AMZ-meta-header-test"));
        assert!(!header_allowed(&allowed, "content-type"));
        let allowed = vec!["x-amz-expected-bucket-owner".to_string()];
        assert!(header_allowed(&allowed, "x-AMZ-expected-BUCKET-owner"));
        assert!(header_allowed(&["*".to_string()], "puppies"));
        assert!(!header_allowed(&[], "puppies"));
    }
}
