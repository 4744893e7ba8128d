//! The `Condition` block of a policy statement: operators, their values
//! (parsed once when the policy is put), and evaluation against the
//! request's context keys.
//!
//! IAM semantics (IAM User Guide, "Condition element"): operators in a block
//! are ANDed, keys under an operator are ANDed, the values of one key are
//! ORed. A key missing from the request makes a positive operator false and
//! a negated one (`StringNotEquals`, `NotIpAddress`...) true; `...IfExists`
//! makes a missing key true; `Null` tests presence.

use std::net::IpAddr;

use s3s_policy::pattern::PatternSet;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::PolicyError;

/// The comparison an operator makes on one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    ArnLike,
    Null,
}

/// How a condition treats several request values (`ForAnyValue:`,
/// `ForAllValues:`); every key Preflight knows is single-valued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    Single,
    ForAnyValue,
    ForAllValues,
}

/// A parsed condition operator such as `ForAnyValue:StringNotLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    pub comparison: Comparison,
    /// `StringNotEquals`, `NotIpAddress`, `ArnNotLike`...
    pub negated: bool,
    pub if_exists: bool,
    pub set: SetQualifier,
}

impl Operator {
    pub fn parse(name: &str) -> Result<Operator, PolicyError> {
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (SetQualifier::ForAnyValue, r)
        } else if let Some(r) = name.strip_prefix("ForAllValues:") {
            (SetQualifier::ForAllValues, r)
        } else {
            (SetQualifier::Single, name)
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(b) if b != "Null" => (true, b),
            _ => (false, rest),
        };
        use Comparison as C;
        let (comparison, negated) = match base {
            "StringEquals" => (C::StringEquals, false),
            "StringNotEquals" => (C::StringEquals, true),
            "StringEqualsIgnoreCase" => (C::StringEqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (C::StringEqualsIgnoreCase, true),
            "StringLike" => (C::StringLike, false),
            "StringNotLike" => (C::StringLike, true),
            "NumericEquals" => (C::NumericEquals, false),
            "NumericNotEquals" => (C::NumericEquals, true),
            "NumericLessThan" => (C::NumericLessThan, false),
            "NumericLessThanEquals" => (C::NumericLessThanEquals, false),
            "NumericGreaterThan" => (C::NumericGreaterThan, false),
            "NumericGreaterThanEquals" => (C::NumericGreaterThanEquals, false),
            "DateEquals" => (C::DateEquals, false),
            "DateNotEquals" => (C::DateEquals, true),
            "DateLessThan" => (C::DateLessThan, false),
            "DateLessThanEquals" => (C::DateLessThanEquals, false),
            "DateGreaterThan" => (C::DateGreaterThan, false),
            "DateGreaterThanEquals" => (C::DateGreaterThanEquals, false),
            "Bool" => (C::Bool, false),
            "IpAddress" => (C::IpAddress, false),
            "NotIpAddress" => (C::IpAddress, true),
            // ArnEquals matches with wildcards too (IAM User Guide).
            "ArnEquals" | "ArnLike" => (C::ArnLike, false),
            "ArnNotEquals" | "ArnNotLike" => (C::ArnLike, true),
            "Null" if set == SetQualifier::Single => (C::Null, false),
            "BinaryEquals" => {
                return Err(PolicyError::NotImplemented(
                    "The BinaryEquals condition operator is not supported by Preflight".into(),
                ));
            }
            _ => {
                return Err(PolicyError::Malformed(format!(
                    "Invalid Condition type : {name}"
                )));
            }
        };
        Ok(Operator {
            comparison,
            negated,
            if_exists,
            set,
        })
    }
}

/// One value of a condition, parsed for its comparison.
#[derive(Debug)]
pub enum Value {
    Text(String),
    Pattern(Glob),
    Number(f64),
    Date(OffsetDateTime),
    Bool(bool),
    Cidr(Cidr),
}

/// A wildcard pattern (`*`, `?`) matched with s3s-policy's matcher; an
/// empty pattern matches only the empty string.
pub struct Glob {
    text: String,
    set: Option<PatternSet>,
}

impl Glob {
    pub fn new(text: &str) -> Glob {
        Glob {
            text: text.to_owned(),
            set: if text.is_empty() {
                None
            } else {
                PatternSet::new([text]).ok()
            },
        }
    }

    pub fn is_match(&self, input: &str) -> bool {
        match &self.set {
            Some(p) => p.is_match(input),
            None => input == self.text,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn has_wildcard(&self) -> bool {
        self.text.contains(['*', '?'])
    }
}

impl std::fmt::Debug for Glob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Glob({:?})", self.text)
    }
}

/// One `operator: { key: values }` entry of a condition block.
#[derive(Debug)]
pub struct Condition {
    pub operator_name: String,
    pub operator: Operator,
    /// Lower case: condition keys are case-insensitive.
    pub key: String,
    pub values: Vec<Value>,
}

/// Request values of condition keys, by lower-case key name.
pub trait ConditionContext: Sync {
    fn value(&self, key: &str) -> Option<&str>;
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 peer (dual-stack listener) is its IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// `0.0.0.0/0` and `::/0` admit everyone.
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }
}

/// Dates in policies: ISO 8601 (`2026-01-01T00:00:00Z`), a plain date, or
/// seconds since the epoch.
pub fn parse_date(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    let with_time = format!("{s}T00:00:00Z");
    OffsetDateTime::parse(&with_time, &Rfc3339).ok()
}

impl Condition {
    /// Parses the values of one key for the operator.
    pub fn new(operator_name: &str, key: &str, raw: &[String]) -> Result<Condition, PolicyError> {
        let operator = Operator::parse(operator_name)?;
        let key_lower = key.to_ascii_lowercase();
        check_key(&key_lower, key)?;
        let mut values = Vec::with_capacity(raw.len());
        for v in raw {
            values.push(parse_value(operator.comparison, v, operator_name)?);
        }
        Ok(Condition {
            operator_name: operator_name.to_owned(),
            operator,
            key: key_lower,
            values,
        })
    }

    /// Whether the condition holds for the request.
    pub fn holds(&self, cx: &dyn ConditionContext) -> bool {
        let request_value = cx.value(&self.key);
        let op = self.operator;
        if op.comparison == Comparison::Null {
            let absent = request_value.is_none();
            return self
                .values
                .iter()
                .any(|v| matches!(v, Value::Bool(b) if *b == absent));
        }
        match (request_value, op.set) {
            (None, SetQualifier::ForAllValues) => true,
            (None, _) => op.if_exists || op.negated,
            (Some(v), _) => {
                let any = self.values.iter().any(|p| compare(op.comparison, v, p));
                any != op.negated
            }
        }
    }

    /// A condition that limits access to fixed values of a key that S3
    /// counts as non-public (S3 User Guide, "The meaning of public").
    pub fn restricts_to_fixed_values(&self) -> bool {
        let op = self.operator;
        if op.negated || op.if_exists || op.set == SetQualifier::ForAllValues {
            return false;
        }
        match (self.key.as_str(), op.comparison) {
            ("aws:sourceip", Comparison::IpAddress) => self
                .values
                .iter()
                .all(|v| matches!(v, Value::Cidr(c) if !c.is_everything())),
            (
                "aws:sourcearn"
                | "aws:sourcevpc"
                | "aws:sourcevpce"
                | "aws:sourceaccount"
                | "aws:sourceowner"
                | "aws:principalorgid"
                | "aws:principalaccount"
                | "aws:principalarn"
                | "aws:userid"
                | "s3:dataaccesspointarn"
                | "s3:dataaccesspointaccount",
                Comparison::StringEquals | Comparison::StringLike | Comparison::ArnLike,
            ) => self.values.iter().all(|v| match v {
                Value::Text(t) => !t.is_empty(),
                Value::Pattern(g) => !g.has_wildcard() && !g.text().is_empty(),
                _ => false,
            }),
            _ => false,
        }
    }
}

/// Condition keys Preflight refuses rather than silently never matching.
fn check_key(lower: &str, key: &str) -> Result<(), PolicyError> {
    if lower.starts_with("s3:existingobjecttag/")
        || lower.starts_with("s3:requestobjecttag")
        || lower.starts_with("aws:requesttag/")
        || lower.starts_with("aws:resourcetag/")
        || lower == "aws:tagkeys"
    {
        return Err(PolicyError::NotImplemented(format!(
            "Condition key {key} is not supported by Preflight (no object tagging)"
        )));
    }
    if !(lower.starts_with("aws:") || lower.starts_with("s3:")) || lower.len() <= 4 {
        return Err(PolicyError::Malformed(format!(
            "Policy has an invalid condition key: {key}"
        )));
    }
    Ok(())
}

fn parse_value(comparison: Comparison, v: &str, op: &str) -> Result<Value, PolicyError> {
    use Comparison as C;
    let invalid =
        || PolicyError::Malformed(format!("Invalid value \"{v}\" for condition operator {op}"));
    Ok(match comparison {
        C::StringEquals | C::StringEqualsIgnoreCase => Value::Text(v.to_owned()),
        C::StringLike | C::ArnLike => Value::Pattern(Glob::new(v)),
        C::NumericEquals
        | C::NumericLessThan
        | C::NumericLessThanEquals
        | C::NumericGreaterThan
        | C::NumericGreaterThanEquals => Value::Number(v.trim().parse().map_err(|_| invalid())?),
        C::DateEquals
        | C::DateLessThan
        | C::DateLessThanEquals
        | C::DateGreaterThan
        | C::DateGreaterThanEquals => Value::Date(parse_date(v.trim()).ok_or_else(invalid)?),
        C::Bool | C::Null => match v.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(invalid()),
        },
        C::IpAddress => Value::Cidr(Cidr::parse(v.trim()).ok_or_else(|| {
            PolicyError::Malformed(format!("Invalid IP address or CIDR block: \"{v}\""))
        })?),
    })
}

/// Compares one request value with one policy value.
fn compare(comparison: Comparison, request: &str, policy: &Value) -> bool {
    use Comparison as C;
    match (comparison, policy) {
        (C::StringEquals, Value::Text(t)) => request == t,
        (C::StringEqualsIgnoreCase, Value::Text(t)) => request.eq_ignore_ascii_case(t),
        (C::StringLike | C::ArnLike, Value::Pattern(g)) => g.is_match(request),
        (_, Value::Number(n)) => {
            let Ok(r) = request.trim().parse::<f64>() else {
                return false;
            };
            match comparison {
                C::NumericEquals => r == *n,
                C::NumericLessThan => r < *n,
                C::NumericLessThanEquals => r <= *n,
                C::NumericGreaterThan => r > *n,
                C::NumericGreaterThanEquals => r >= *n,
                _ => false,
            }
        }
        (_, Value::Date(d)) => {
            let Some(r) = parse_date(request) else {
                return false;
            };
            match comparison {
                C::DateEquals => r == *d,
                C::DateLessThan => r < *d,
                C::DateLessThanEquals => r <= *d,
                C::DateGreaterThan => r > *d,
                C::DateGreaterThanEquals => r >= *d,
                _ => false,
            }
        }
        (C::Bool, Value::Bool(b)) => {
            request.eq_ignore_ascii_case(if *b { "true" } else { "false" })
        }
        (C::IpAddress, Value::Cidr(c)) => request.parse::<IpAddr>().is_ok_and(|ip| c.contains(ip)),
        _ => false,
    }
}
