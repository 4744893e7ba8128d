//! The human form of an [`Explanation`].

use std::fmt;

use super::{Check, Explanation, RequestMode, RuleOutcome};

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_request(f)?;
        self.fmt_rules(f)?;
        writeln!(f, "Decision: {}", self.decision.summary)?;
        self.fmt_response(f)?;
        writeln!(f, "Browser: {}", self.browser.reason)?;
        if !self.warnings.is_empty() {
            writeln!(f, "Warnings:")?;
            for w in &self.warnings {
                writeln!(f, "  [{}] {}", w.code, w.message)?;
            }
        }
        Ok(())
    }
}

impl Explanation {
    fn fmt_request(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.request;
        let origin = r
            .origin
            .as_deref()
            .map_or("no Origin header".to_owned(), |o| format!("from {o}"));
        let method = r.method.as_deref().unwrap_or("(none)");
        match r.mode {
            RequestMode::Preflight => writeln!(
                f,
                "Request: preflight OPTIONS {origin}, Access-Control-Request-Method: {method}"
            )?,
            RequestMode::Actual => writeln!(f, "Request: actual {method} {origin}")?,
        }
        if let Some(h) = &r.request_headers {
            writeln!(f, "         Access-Control-Request-Headers: {h}")?;
        }
        if r.credentials {
            writeln!(
                f,
                "         with credentials (cookies / credentials: 'include')"
            )?;
        }
        let bucket = match self.bucket {
            "no-bucket" => "does not exist".to_owned(),
            "no-config" => "has no CORS configuration".to_owned(),
            _ => format!("has {} CORS rule(s)", self.rules.len().max(1)),
        };
        writeln!(f, "Bucket: {bucket}")?;
        writeln!(f)
    }

    fn fmt_rules(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for rule in &self.rules {
            write!(f, "Rule #{}", rule.index + 1)?;
            if let Some(id) = &rule.id {
                write!(f, " (ID {id:?})")?;
            }
            let outcome = match rule.outcome {
                RuleOutcome::Wins => "MATCH, this rule answers",
                RuleOutcome::AlsoMatches => "would match, but an earlier rule answers first",
                RuleOutcome::NoMatch => "no match",
            };
            writeln!(f, ": {outcome}")?;
            check(f, "origin", &rule.origin)?;
            check(f, "method", &rule.method)?;
            check(f, "headers", &rule.headers)?;
        }
        if !self.rules.is_empty() {
            writeln!(f)?;
        }
        Ok(())
    }

    fn fmt_response(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.response;
        match r.status {
            Some(status) => {
                writeln!(f, "Response S3 sends:")?;
                match &r.error {
                    Some(e) => {
                        writeln!(f, "  HTTP {status} {}", e.code)?;
                        writeln!(f, "  Message: {}", e.message)?;
                        if let Some(m) = &e.method {
                            writeln!(f, "  <Method>{m}</Method>")?;
                        }
                        if let Some(t) = &e.resource_type {
                            writeln!(f, "  <ResourceType>{t}</ResourceType>")?;
                        }
                    }
                    None => writeln!(f, "  HTTP {status}, empty body")?,
                }
            }
            None => writeln!(
                f,
                "Response S3 sends: the operation's own status and body (CORS never changes them), with these CORS headers:"
            )?,
        }
        for h in &r.headers {
            writeln!(f, "  {}: {}", h.name, h.value)?;
        }
        if r.headers.is_empty() {
            writeln!(f, "  (no Access-Control-* headers, no Vary)")?;
        }
        if let Some(reason) = &r.preflight_reason_header {
            writeln!(
                f,
                "  (Preflight also sends x-preflight-cors-reason: {reason})"
            )?;
        }
        Ok(())
    }
}

fn check(f: &mut fmt::Formatter<'_>, name: &str, c: &Check) -> fmt::Result {
    let mark = if c.ok { "ok  " } else { "FAIL" };
    writeln!(f, "  {name:<8} {mark} {}", c.reason)
}
