//! Permissions: bucket policies, the public access block and canned-ACL
//! grants, combined in the order S3 uses. Pure logic, no I/O: the access
//! layer (`access.rs`) gathers the facts of a request and calls [`decide`].
//!
//! Decision order (S3 User Guide, "How Amazon S3 authorizes a request"):
//! 1. an explicit `Deny` in the bucket policy,
//! 2. the public access block (a public ACL being set; public policy and ACL
//!    grants filtered out),
//! 3. the owner (root key),
//! 4. an `Allow` in the bucket policy,
//! 5. an ACL grant,
//! 6. otherwise an implicit deny.
//!
//! CORS plays no part: it never grants access.

pub mod condition;
mod document;
mod pab;
#[cfg(test)]
mod tests;

use std::fmt;

pub use condition::ConditionContext;
pub use document::BucketPolicy;
pub use pab::PublicAccessBlock;

/// The one account of a Preflight server, as it appears in ARNs.
pub const ACCOUNT_ID: &str = "000000000000";

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// S3's MalformedPolicy, with a message that names the problem.
    Malformed(String),
    /// Valid IAM that Preflight does not implement.
    NotImplemented(String),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Malformed(m) | PolicyError::NotImplemented(m) => f.write_str(m),
        }
    }
}

/// Who sent the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester<'a> {
    Anonymous,
    /// The root key: the account that owns every bucket.
    Root,
    /// A Preflight user (`arn:aws:iam::000000000000:user/NAME`).
    User(&'a str),
}

/// The ARN of a Preflight user.
pub fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:user/{name}")
}

/// IAM user names: 1–64 of `A-Za-z0-9+=,.@_-`.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// Whether an IAM action (lower case) is about objects rather than buckets.
pub fn is_object_action(action: &str) -> bool {
    action.contains("object")
        || matches!(
            action,
            "s3:abortmultipartupload" | "s3:listmultipartuploadparts"
        )
}

/// A permission a canned ACL can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclPermission {
    Read,
    Write,
}

/// The canned ACL that could grant the request, and what it must grant.
#[derive(Debug, Clone, Copy)]
pub struct AclCheck<'a> {
    pub acl: &'a str,
    pub permission: AclPermission,
}

/// Whether a canned ACL grants anything to AllUsers or AuthenticatedUsers.
pub fn acl_is_public(acl: &str) -> bool {
    matches!(
        acl,
        "public-read" | "public-read-write" | "authenticated-read"
    )
}

fn acl_grants(check: AclCheck<'_>, requester: Requester<'_>) -> bool {
    let authenticated = matches!(requester, Requester::User(_));
    match (check.acl, check.permission) {
        ("public-read" | "public-read-write", AclPermission::Read) => true,
        ("public-read-write", AclPermission::Write) => true,
        ("authenticated-read", AclPermission::Read) => authenticated,
        _ => false,
    }
}

/// Everything [`decide`] needs to know about one request.
pub struct AccessRequest<'a> {
    pub requester: Requester<'a>,
    /// IAM action, e.g. `s3:GetObject` (any case).
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
    pub context: &'a dyn ConditionContext,
    pub policy: Option<&'a BucketPolicy>,
    pub public_access_block: PublicAccessBlock,
    /// The ACL whose grant would allow the request, when an ACL can.
    pub acl: Option<AclCheck<'a>>,
    /// A canned ACL the request sets (`x-amz-acl`, PutBucketAcl, form `acl`).
    pub acl_to_set: Option<&'a str>,
}

/// A policy statement, for logs: its index and Sid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    pub index: usize,
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sid {
            Some(sid) => write!(f, "statement {} (Sid {sid:?})", self.index),
            None => write!(f, "statement {}", self.index),
        }
    }
}

/// The outcome of [`decide`]: printable, so logs say why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The root key owns everything.
    AllowOwner,
    AllowPolicy(StatementRef),
    /// A canned ACL grant (the ACL's name).
    AllowAcl(String),
    DenyExplicit(StatementRef),
    /// BlockPublicAcls refused setting a public ACL.
    DenyBlockPublicAcls,
    /// Nothing allowed it.
    DenyImplicit,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(
            self,
            Decision::AllowOwner | Decision::AllowPolicy(_) | Decision::AllowAcl(_)
        )
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::AllowOwner => f.write_str("allowed: bucket owner"),
            Decision::AllowPolicy(s) => write!(f, "allowed: bucket policy {s}"),
            Decision::AllowAcl(acl) => write!(f, "allowed: ACL {acl}"),
            Decision::DenyExplicit(s) => write!(f, "denied: bucket policy {s} (explicit Deny)"),
            Decision::DenyBlockPublicAcls => {
                f.write_str("denied: public access block (BlockPublicAcls) refuses a public ACL")
            }
            Decision::DenyImplicit => f.write_str("denied: no policy statement or ACL allows it"),
        }
    }
}

/// Actions the root key keeps despite a Deny, so that an owner can always
/// repair a policy that locked everyone out (as S3's root user can).
fn is_policy_management(action: &str) -> bool {
    matches!(
        action,
        "s3:getbucketpolicy" | "s3:putbucketpolicy" | "s3:deletebucketpolicy"
    )
}

/// Decides one request in S3's order (module docs).
pub fn decide(req: &AccessRequest<'_>) -> Decision {
    let action = req.action.to_ascii_lowercase();
    let pab = req.public_access_block;
    let mut allow = None;
    if let Some(policy) = req.policy {
        // RestrictPublicBuckets: with a public policy only principals of the
        // account (root and users) keep what the policy grants.
        let restrict = pab.restrict_public_buckets
            && req.requester == Requester::Anonymous
            && policy.is_public();
        for (index, st) in policy.statements.iter().enumerate() {
            if !statement_applies(st, req, &action) {
                continue;
            }
            let at = || StatementRef {
                index,
                sid: st.sid.clone(),
            };
            if !st.allow {
                if req.requester == Requester::Root && is_policy_management(&action) {
                    continue;
                }
                return Decision::DenyExplicit(at());
            }
            if allow.is_none() && !restrict {
                allow = Some(at());
            }
        }
    }
    if pab.block_public_acls && req.acl_to_set.is_some_and(acl_is_public) {
        return Decision::DenyBlockPublicAcls;
    }
    if req.requester == Requester::Root {
        return Decision::AllowOwner;
    }
    if let Some(at) = allow {
        return Decision::AllowPolicy(at);
    }
    if let Some(check) = req.acl
        && !pab.ignore_public_acls
        && acl_grants(check, req.requester)
    {
        return Decision::AllowAcl(check.acl.to_owned());
    }
    Decision::DenyImplicit
}

fn statement_applies(st: &document::Statement, req: &AccessRequest<'_>, action: &str) -> bool {
    principal_matches(&st.principal, req.requester)
        && st.actions.matches(action)
        && st.resources.matches(req.resource)
        && st.conditions.iter().all(|c| c.holds(req.context))
}

fn principal_matches(p: &document::PrincipalSpec, who: Requester<'_>) -> bool {
    let named = p.everyone
        || match who {
            Requester::Anonymous => false,
            Requester::Root => p.account,
            Requester::User(name) => p.users.iter().any(|u| u == name),
        };
    named != p.negated
}

/// Condition-key values of one request, by lower-case key.
#[derive(Debug, Default)]
pub struct Facts {
    entries: Vec<(String, String)>,
}

impl Facts {
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.entries.push((key.to_ascii_lowercase(), value.into()));
    }
}

impl ConditionContext for Facts {
    fn value(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}
