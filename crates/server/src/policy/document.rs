//! Bucket policy documents: validation with messages that name the problem
//! (as S3's MalformedPolicy does), then the s3s-policy model, then a form
//! compiled for evaluation (patterns and condition values parsed once).

use s3s_policy::model::{
    ActionRule, ConditionRule, Effect, OneOrMore, Principal, PrincipalRule, ResourceRule,
    Statement as ModelStatement, WildcardOneOrMore,
};
use serde_json::{Map, Value as Json};

use super::condition::{Condition, Glob};
use super::{ACCOUNT_ID, PolicyError};

/// S3 limits a bucket policy to 20 KB.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

const NOT_JSON: &str = "Policies must be valid JSON and the first byte must be '{'";

/// A validated bucket policy, ready to evaluate.
#[derive(Debug)]
pub struct BucketPolicy {
    /// The document as it was put (GetBucketPolicy returns it).
    pub text: String,
    pub statements: Vec<Statement>,
}

#[derive(Debug)]
pub struct Statement {
    pub sid: Option<String>,
    pub allow: bool,
    pub principal: PrincipalSpec,
    pub actions: Match,
    pub resources: Match,
    pub conditions: Vec<Condition>,
}

/// Who a statement is about.
#[derive(Debug)]
pub struct PrincipalSpec {
    /// `NotPrincipal`.
    pub negated: bool,
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous included.
    pub everyone: bool,
    /// The account root (`arn:aws:iam::000000000000:root` or the bare id).
    pub account: bool,
    /// Names of Preflight users (`arn:aws:iam::000000000000:user/NAME`).
    pub users: Vec<String>,
}

/// `Action`/`NotAction` or `Resource`/`NotResource`.
#[derive(Debug)]
pub struct Match {
    pub negated: bool,
    /// `None`: the `"*"` wildcard.
    pub patterns: Option<Vec<Glob>>,
}

impl Match {
    /// `input` must already be lower case for actions.
    pub fn matches(&self, input: &str) -> bool {
        let hit = match &self.patterns {
            None => true,
            Some(globs) => globs.iter().any(|g| g.is_match(input)),
        };
        hit != self.negated
    }
}

impl BucketPolicy {
    /// Parses and validates a policy put on `bucket`.
    pub fn parse(text: &str, bucket: &str) -> Result<BucketPolicy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(malformed(
                "Policies must be less than 20 KB; this one is larger",
            ));
        }
        let doc: Json = serde_json::from_str(text).map_err(|_| malformed(NOT_JSON))?;
        let Json::Object(top) = doc else {
            return Err(malformed(NOT_JSON));
        };
        for key in top.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(malformed(&format!("Unknown field {key}")));
            }
        }
        match top.get("Version") {
            None => {}
            Some(Json::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(_) => {
                return Err(malformed(
                    "The policy must contain a valid version string (2012-10-17 or 2008-10-17)",
                ));
            }
        }
        let raw_statements = match top.get("Statement") {
            None => return Err(malformed("Missing required field Statement")),
            Some(Json::Array(list)) => list.clone(),
            Some(one @ Json::Object(_)) => vec![one.clone()],
            Some(_) => {
                return Err(malformed(
                    "Statement must be an object or a list of objects",
                ));
            }
        };
        if raw_statements.is_empty() {
            return Err(malformed("Could not parse the policy: Statement is empty!"));
        }
        let mut statements = Vec::with_capacity(raw_statements.len());
        let mut sids = std::collections::HashSet::new();
        for raw in raw_statements {
            let st = parse_statement(raw, bucket)?;
            if let Some(sid) = &st.sid
                && !sids.insert(sid.clone())
            {
                return Err(malformed(&format!(
                    "Statement IDs (SID) in a single policy must be unique: {sid}"
                )));
            }
            statements.push(st);
        }
        Ok(BucketPolicy {
            text: text.to_owned(),
            statements,
        })
    }

    /// Whether the policy grants public access (S3 User Guide, "The
    /// meaning of public"): an Allow to everyone not narrowed by a condition
    /// on fixed values of a source or principal key.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(Statement::is_public)
    }
}

impl Statement {
    pub fn is_public(&self) -> bool {
        self.allow
            && (self.principal.everyone || self.principal.negated)
            && !self
                .conditions
                .iter()
                .any(Condition::restricts_to_fixed_values)
    }
}

fn malformed(msg: &str) -> PolicyError {
    PolicyError::Malformed(msg.to_owned())
}

const STATEMENT_FIELDS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

fn parse_statement(raw: Json, bucket: &str) -> Result<Statement, PolicyError> {
    let Json::Object(mut obj) = raw else {
        return Err(malformed("Each Statement must be a JSON object"));
    };
    for key in obj.keys() {
        if !STATEMENT_FIELDS.contains(&key.as_str()) {
            return Err(malformed(&format!("Unknown field {key}")));
        }
    }
    require_one(&obj, "Principal", "NotPrincipal")?;
    require_one(&obj, "Action", "NotAction")?;
    require_one(&obj, "Resource", "NotResource")?;
    match obj.get("Effect") {
        None => return Err(malformed("Missing required field Effect")),
        Some(Json::String(e)) if e == "Allow" || e == "Deny" => {}
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            return Err(malformed(&format!("Invalid effect: {shown}")));
        }
    }
    for field in ["Principal", "NotPrincipal"] {
        match obj.get(field) {
            None | Some(Json::Object(_)) => {}
            Some(Json::String(s)) if s == "*" => {}
            Some(_) => return Err(malformed("Invalid principal in policy")),
        }
    }
    if let Some(Json::String(_)) | None = obj.get("Sid") {
    } else {
        return Err(malformed("Sid must be a string"));
    }
    check_string_list(&obj, &["Action", "NotAction"], "Policy has invalid action")?;
    check_string_list(
        &obj,
        &["Resource", "NotResource"],
        "Policy has invalid resource",
    )?;
    if let Some(cond) = obj.get_mut("Condition") {
        normalize_condition(cond)?;
    }
    let model: ModelStatement = serde_json::from_value(Json::Object(obj))
        .map_err(|e| malformed(&format!("Could not parse the policy statement: {e}")))?;
    compile(model, bucket)
}

fn require_one(obj: &Map<String, Json>, a: &str, not_a: &str) -> Result<(), PolicyError> {
    match (obj.contains_key(a), obj.contains_key(not_a)) {
        (false, false) => Err(malformed(&format!("Missing required field {a}"))),
        (true, true) => Err(malformed(&format!(
            "A statement can not have both {a} and {not_a}"
        ))),
        _ => Ok(()),
    }
}

/// Action and Resource are a string or a non-empty list of strings.
fn check_string_list(
    obj: &Map<String, Json>,
    fields: &[&str],
    message: &str,
) -> Result<(), PolicyError> {
    for field in fields {
        match obj.get(*field) {
            None | Some(Json::String(_)) => {}
            Some(Json::Array(items)) if !items.is_empty() && items.iter().all(Json::is_string) => {}
            Some(_) => return Err(malformed(message)),
        }
    }
    Ok(())
}

/// Condition values may be written as JSON numbers or booleans; the
/// s3s-policy model (and IAM) treat them as strings.
fn normalize_condition(cond: &mut Json) -> Result<(), PolicyError> {
    let bad = || malformed("Condition must map operators to objects of keys and values");
    let Json::Object(ops) = cond else {
        return Err(bad());
    };
    for keys in ops.values_mut() {
        let Json::Object(keys) = keys else {
            return Err(bad());
        };
        for values in keys.values_mut() {
            match values {
                Json::Array(items) => {
                    for item in items.iter_mut() {
                        *item = scalar_to_string(item).ok_or_else(bad)?;
                    }
                }
                other => *other = scalar_to_string(other).ok_or_else(bad)?,
            }
        }
    }
    Ok(())
}

fn scalar_to_string(v: &Json) -> Option<Json> {
    match v {
        Json::String(_) => Some(v.clone()),
        Json::Number(n) => Some(Json::String(n.to_string())),
        Json::Bool(b) => Some(Json::String(b.to_string())),
        _ => None,
    }
}

fn compile(st: ModelStatement, bucket: &str) -> Result<Statement, PolicyError> {
    let principal = match st.principal {
        Some(PrincipalRule::Principal(p)) => compile_principal(p, false)?,
        Some(PrincipalRule::NotPrincipal(p)) => compile_principal(p, true)?,
        None => return Err(malformed("Missing required field Principal")),
    };
    let actions = match st.action {
        ActionRule::Action(a) => compile_actions(a, false)?,
        ActionRule::NotAction(a) => compile_actions(a, true)?,
    };
    let resources = match st.resource {
        ResourceRule::Resource(r) => compile_resources(r, false, bucket)?,
        ResourceRule::NotResource(r) => compile_resources(r, true, bucket)?,
    };
    check_actions_apply(&actions, &resources)?;
    let conditions = match st.condition {
        Some(rule) => compile_conditions(rule)?,
        None => Vec::new(),
    };
    Ok(Statement {
        sid: st.sid,
        allow: st.effect == Effect::Allow,
        principal,
        actions,
        resources,
        conditions,
    })
}

fn compile_principal(p: Principal, negated: bool) -> Result<PrincipalSpec, PolicyError> {
    let mut spec = PrincipalSpec {
        negated,
        everyone: false,
        account: false,
        users: Vec::new(),
    };
    let map = match p {
        Principal::Wildcard => {
            spec.everyone = true;
            return Ok(spec);
        }
        Principal::Map(map) => map,
    };
    if map.is_empty() {
        return Err(malformed("Invalid principal in policy"));
    }
    for (kind, values) in map {
        match kind.as_str() {
            "AWS" => {
                for v in values.as_slice() {
                    add_aws_principal(&mut spec, v)?;
                }
            }
            "CanonicalUser" | "Service" | "Federated" => {
                return Err(PolicyError::NotImplemented(format!(
                    "Principal type {kind} is not supported by Preflight; use \"*\" or {{\"AWS\": \"arn:aws:iam::{ACCOUNT_ID}:user/NAME\"}}"
                )));
            }
            _ => return Err(malformed("Invalid principal in policy")),
        }
    }
    Ok(spec)
}

fn add_aws_principal(spec: &mut PrincipalSpec, v: &str) -> Result<(), PolicyError> {
    let root_arn = format!("arn:aws:iam::{ACCOUNT_ID}:root");
    let user_prefix = format!("arn:aws:iam::{ACCOUNT_ID}:user/");
    if v == "*" {
        spec.everyone = true;
    } else if v == ACCOUNT_ID || v == root_arn {
        spec.account = true;
    } else if let Some(name) = v.strip_prefix(&user_prefix)
        && super::valid_user_name(name)
    {
        spec.users.push(name.to_owned());
    } else {
        return Err(malformed(&format!("Invalid principal in policy: {v}")));
    }
    Ok(())
}

fn compile_actions(a: WildcardOneOrMore<String>, negated: bool) -> Result<Match, PolicyError> {
    let Some(list) = a.as_slice() else {
        return Ok(Match {
            negated,
            patterns: None,
        });
    };
    let mut globs = Vec::with_capacity(list.len());
    for action in list {
        let lower = action.to_ascii_lowercase();
        let valid = lower == "*"
            || lower.strip_prefix("s3:").is_some_and(|n| {
                !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
            });
        if !valid {
            return Err(malformed(&format!("Policy has invalid action: {action}")));
        }
        globs.push(Glob::new(&lower));
    }
    Ok(Match {
        negated,
        patterns: Some(globs),
    })
}

fn compile_resources(
    r: WildcardOneOrMore<String>,
    negated: bool,
    bucket: &str,
) -> Result<Match, PolicyError> {
    let Some(list) = r.as_slice() else {
        return Ok(Match {
            negated,
            patterns: None,
        });
    };
    let mut globs = Vec::with_capacity(list.len());
    for resource in list {
        // A bucket policy can only be about its own bucket and its objects.
        let names_bucket = resource
            .strip_prefix("arn:aws:s3:::")
            .map(|rest| rest.split_once('/').map_or(rest, |(b, _)| b))
            .is_some_and(|b| Glob::new(b).is_match(bucket));
        if resource != "*" && !names_bucket {
            return Err(malformed(&format!(
                "Policy has invalid resource: {resource} (a policy of bucket {bucket} can only name arn:aws:s3:::{bucket} and arn:aws:s3:::{bucket}/...)"
            )));
        }
        globs.push(Glob::new(resource));
    }
    Ok(Match {
        negated,
        patterns: Some(globs),
    })
}

/// S3 refuses a statement whose action can never apply to its resources,
/// e.g. `s3:GetObject` on the bucket ARN alone.
fn check_actions_apply(actions: &Match, resources: &Match) -> Result<(), PolicyError> {
    let (Some(acts), Some(res)) = (&actions.patterns, &resources.patterns) else {
        return Ok(());
    };
    if actions.negated || resources.negated {
        return Ok(());
    }
    // `arn:aws:s3:::b*` can name objects too: `*` crosses `/`.
    let any_object = res
        .iter()
        .any(|g| g.text().contains('/') || g.text().ends_with('*'));
    let any_bucket = res.iter().any(|g| !g.text().contains('/'));
    for a in acts {
        if a.has_wildcard() {
            continue;
        }
        let applies = if super::is_object_action(a.text()) {
            any_object
        } else {
            any_bucket
        };
        if !applies {
            return Err(malformed(
                "Action does not apply to any resource(s) in statement",
            ));
        }
    }
    Ok(())
}

fn compile_conditions(rule: ConditionRule) -> Result<Vec<Condition>, PolicyError> {
    let mut out = Vec::new();
    for (op, keys) in rule.0 {
        for (key, values) in keys.0 {
            let values: Vec<String> = match values {
                OneOrMore::One(v) => vec![v],
                OneOrMore::More(vs) => vs,
            };
            out.push(Condition::new(&op, &key, &values)?);
        }
    }
    Ok(out)
}
