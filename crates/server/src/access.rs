//! The access layer: who may do what. It gathers the facts of a request
//! (requester, IAM action, resource, condition keys, the bucket's policy,
//! public access block and ACL) and asks `policy::decide`, which follows
//! S3's order: explicit Deny → public access block → owner → policy Allow →
//! ACL grant → implicit deny. CORS plays no part here: it never grants
//! access (spec §8).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;
use preflight_store::MetaStore;
use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::*;
use s3s::path::S3Path;
use s3s::{S3Request, S3Result};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::buckets::{BucketCache, BucketEntry};
use crate::errors::{s3_err, store_err};
use crate::front::OperationSlot;
use crate::keys::KeyStore;
use crate::policy::{
    AccessRequest, AclCheck, AclPermission, Decision, Facts, Requester, decide, user_arn,
};

/// The TCP peer of a request, put in the request extensions by the server
/// (the source of `aws:SourceIp`; never taken from `X-Forwarded-For`).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Whether the request's connection is TLS (`aws:SecureTransport`), put in
/// the request extensions next to `PeerAddr`. Missing means plain HTTP.
#[derive(Debug, Clone, Copy)]
pub struct SecureTransport(pub bool);

/// What an ACL grant is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// READ on the bucket: list objects.
    BucketRead,
    /// WRITE on the bucket: create, overwrite, delete objects.
    BucketWrite,
    /// READ on the object: GET/HEAD.
    ObjectRead,
    /// No ACL grants it: the owner, or a policy.
    Owner,
}

/// The IAM action of an s3s operation and the ACL permission that grants it.
pub fn action_of(op: &str) -> (Cow<'static, str>, Need) {
    let (action, need) = match op {
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => ("s3:ListBucket", Need::BucketRead),
        "ListMultipartUploads" => ("s3:ListBucketMultipartUploads", Need::BucketRead),
        "GetObject" | "HeadObject" => ("s3:GetObject", Need::ObjectRead),
        "PutObject"
        | "PostObject"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload" => ("s3:PutObject", Need::BucketWrite),
        "DeleteObject" | "DeleteObjects" => ("s3:DeleteObject", Need::BucketWrite),
        "AbortMultipartUpload" => ("s3:AbortMultipartUpload", Need::BucketWrite),
        "ListParts" => ("s3:ListMultipartUploadParts", Need::BucketWrite),
        "ListBuckets" => ("s3:ListAllMyBuckets", Need::Owner),
        "GetBucketCors" => ("s3:GetBucketCORS", Need::Owner),
        "PutBucketCors" | "DeleteBucketCors" => ("s3:PutBucketCORS", Need::Owner),
        "DeletePublicAccessBlock" => ("s3:PutBucketPublicAccessBlock", Need::Owner),
        "PutPublicAccessBlock" => ("s3:PutBucketPublicAccessBlock", Need::Owner),
        "GetPublicAccessBlock" => ("s3:GetBucketPublicAccessBlock", Need::Owner),
        // GetBucketAcl, PutObjectAcl, GetBucketPolicy, DeleteBucket...: the
        // IAM action has the operation's name.
        other => return (Cow::Owned(format!("s3:{other}")), Need::Owner),
    };
    (Cow::Borrowed(action), need)
}

/// One request, as the access layer needs to see it.
pub struct AccessQuery<'a> {
    /// s3s operation name, for logs.
    pub op: &'a str,
    pub access_key: Option<&'a str>,
    pub bucket: &'a str,
    pub key: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub peer: Option<SocketAddr>,
    /// The connection is TLS (`aws:SecureTransport`).
    pub secure: bool,
    /// `s3:authType`: REST-HEADER, REST-QUERY-STRING or POST.
    pub auth_type: Option<&'static str>,
    /// A canned ACL the request sets, when it sets one.
    pub acl_to_set: Option<&'a str>,
}

#[derive(Clone)]
pub struct AccessLayer {
    meta: Arc<dyn MetaStore>,
    buckets: Arc<BucketCache>,
    keys: Arc<KeyStore>,
    root_access_key: String,
}

impl AccessLayer {
    pub fn new(
        meta: Arc<dyn MetaStore>,
        buckets: Arc<BucketCache>,
        keys: Arc<KeyStore>,
        root_access_key: String,
    ) -> Self {
        Self {
            meta,
            buckets,
            keys,
            root_access_key,
        }
    }

    /// The user name behind an access key (`None` for root and anonymous).
    fn user_of(&self, access_key: Option<&str>) -> S3Result<Option<String>> {
        match access_key {
            None => Ok(None),
            Some(ak) if ak == self.root_access_key => Ok(None),
            Some(ak) => match self.keys.user_of(ak) {
                Some(name) => Ok(Some(name)),
                // The key was removed after its signature was checked.
                None => Err(s3_err(s3s::S3ErrorCode::InvalidAccessKeyId)),
            },
        }
    }

    /// Decides a request on one bucket (or object); AccessDenied when refused.
    pub async fn authorize(&self, q: &AccessQuery<'_>) -> S3Result<()> {
        let (action, need) = action_of(q.op);
        let user = self.user_of(q.access_key)?;
        let requester = match (&user, q.access_key) {
            (Some(name), _) => Requester::User(name),
            (None, Some(_)) => Requester::Root,
            (None, None) => Requester::Anonymous,
        };
        // A missing bucket is reported as NoSuchBucket by the operation,
        // except to others than the owner for operations no ACL grants.
        let Some(entry) = self.buckets.get(q.bucket) else {
            return if requester == Requester::Root || need != Need::Owner {
                Ok(())
            } else {
                Err(s3_err(s3s::S3ErrorCode::AccessDenied))
            };
        };
        // The owner with nothing that could stop it: no facts to gather.
        if requester == Requester::Root
            && entry.policy.is_none()
            && !entry.public_access_block.block_public_acls
        {
            return Ok(());
        }
        let resource = match q.key {
            Some(key) => format!("arn:aws:s3:::{}/{key}", q.bucket),
            None => format!("arn:aws:s3:::{}", q.bucket),
        };
        let facts = facts_of(q, requester, &action);
        let bucket_acl = entry.record.acl.as_str();
        let acl = match need {
            Need::BucketRead | Need::ObjectRead => Some(AclCheck {
                acl: bucket_acl,
                permission: AclPermission::Read,
            }),
            Need::BucketWrite => Some(AclCheck {
                acl: bucket_acl,
                permission: AclPermission::Write,
            }),
            Need::Owner => None,
        };
        let mut request = AccessRequest {
            requester,
            action: &action,
            resource: &resource,
            context: &facts,
            policy: entry.policy.as_deref(),
            public_access_block: entry.public_access_block,
            acl: if need == Need::ObjectRead { None } else { acl },
            acl_to_set: q.acl_to_set,
        };
        let mut decision = decide(&request);
        // Object reads are granted by the object's ACL; it is read only when
        // nothing else decided.
        let object_acl;
        if decision == Decision::DenyImplicit
            && need == Need::ObjectRead
            && let Some(key) = q.key
        {
            object_acl = self.object_acl(&entry, key).await?;
            request.acl = Some(AclCheck {
                acl: &object_acl,
                permission: AclPermission::Read,
            });
            decision = decide(&request);
        }
        tracing::debug!(
            target: "preflight::access",
            op = q.op,
            action = %action,
            resource = %resource,
            requester = ?requester,
            allowed = decision.is_allowed(),
            decision = %decision,
            "access decision"
        );
        if decision.is_allowed() {
            Ok(())
        } else {
            Err(s3_err(s3s::S3ErrorCode::AccessDenied))
        }
    }

    /// The ACL that decides an object read. Without list permission a
    /// missing key is AccessDenied, with it NoSuchKey: S3 does not reveal
    /// what it hides. So a missing object falls back to the bucket's ACL.
    async fn object_acl(&self, entry: &BucketEntry, key: &str) -> S3Result<String> {
        match self
            .meta
            .get_object(&entry.record.name, key)
            .await
            .map_err(store_err)?
        {
            Some(obj) => Ok(obj.acl),
            None => Ok(entry.record.acl.clone()),
        }
    }

    fn is_root(&self, access_key: Option<&str>) -> bool {
        access_key == Some(self.root_access_key.as_str())
    }

    /// Only the root key may list and create buckets: there are no identity
    /// policies, and a bucket policy cannot grant account-level actions.
    fn check_service(&self, access_key: Option<&str>) -> S3Result<()> {
        if self.is_root(access_key) {
            Ok(())
        } else {
            Err(s3_err(s3s::S3ErrorCode::AccessDenied))
        }
    }

    /// BlockPublicAcls on an ACL given as a grant list (PutBucketAcl,
    /// PutObjectAcl with a body).
    fn check_acl_body(&self, bucket: &str, policy: Option<&AccessControlPolicy>) -> S3Result<()> {
        let Some(policy) = policy else { return Ok(()) };
        let Some(entry) = self.buckets.get(bucket) else {
            return Ok(());
        };
        let public = policy.grants.iter().flatten().any(|g| {
            g.grantee
                .as_ref()
                .and_then(|g| g.uri.as_deref())
                .is_some_and(|uri| {
                    uri.contains("/global/AllUsers") || uri.contains("/global/AuthenticatedUsers")
                })
        });
        if public && entry.public_access_block.block_public_acls {
            return Err(s3_err(s3s::S3ErrorCode::AccessDenied));
        }
        Ok(())
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn auth_type_of(headers: &HeaderMap, query: Option<&str>) -> Option<&'static str> {
    if query.is_some_and(|q| q.contains("X-Amz-Signature=")) {
        Some("REST-QUERY-STRING")
    } else if headers.contains_key(http::header::AUTHORIZATION) {
        Some("REST-HEADER")
    } else {
        None
    }
}

/// The condition keys of a request.
fn facts_of(q: &AccessQuery<'_>, requester: Requester<'_>, action: &str) -> Facts {
    let mut f = Facts::default();
    if let Some(peer) = q.peer {
        f.insert("aws:SourceIp", peer.ip().to_string());
    }
    // Our own TLS only; a TLS terminator in front is not trusted.
    f.insert(
        "aws:SecureTransport",
        if q.secure { "true" } else { "false" },
    );
    if let Some(v) = header(q.headers, "referer") {
        f.insert("aws:Referer", v);
    }
    if let Some(v) = header(q.headers, "user-agent") {
        f.insert("aws:UserAgent", v);
    }
    let now = OffsetDateTime::now_utc();
    if let Ok(t) = now.format(&Rfc3339) {
        f.insert("aws:CurrentTime", t);
    }
    f.insert("aws:EpochTime", now.unix_timestamp().to_string());
    match requester {
        Requester::Anonymous => f.insert("aws:PrincipalType", "Anonymous"),
        Requester::Root => {
            f.insert("aws:PrincipalType", "Account");
            f.insert(
                "aws:PrincipalArn",
                format!("arn:aws:iam::{}:root", crate::policy::ACCOUNT_ID),
            );
        }
        Requester::User(name) => {
            f.insert("aws:PrincipalType", "User");
            f.insert("aws:username", name);
            f.insert("aws:userid", name);
            f.insert("aws:PrincipalArn", user_arn(name));
        }
    }
    if let Some(t) = q.auth_type.or_else(|| auth_type_of(q.headers, q.query)) {
        f.insert("s3:authType", t);
        f.insert("s3:signatureversion", "AWS4-HMAC-SHA256");
    }
    if action.eq_ignore_ascii_case("s3:ListBucket")
        && let Some(query) = q.query
    {
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            match k {
                "prefix" => f.insert("s3:prefix", v),
                "delimiter" => f.insert("s3:delimiter", v),
                "max-keys" => f.insert("s3:max-keys", v),
                _ => {}
            }
        }
    }
    for (name, value) in q.headers {
        let name = name.as_str();
        if name.starts_with("x-amz-")
            && let Ok(v) = value.to_str()
        {
            f.insert(&format!("s3:{name}"), v);
        }
    }
    if let Some(acl) = q.acl_to_set
        && header(q.headers, "x-amz-acl").is_none()
    {
        f.insert("s3:x-amz-acl", acl);
    }
    f
}

fn peer_of(cx: &mut S3AccessContext<'_>) -> Option<SocketAddr> {
    cx.extensions_mut().get::<PeerAddr>().map(|p| p.0)
}

fn peer_of_req<T>(req: &S3Request<T>) -> Option<SocketAddr> {
    req.extensions.get::<PeerAddr>().map(|p| p.0)
}

fn secure_of(cx: &mut S3AccessContext<'_>) -> bool {
    cx.extensions_mut()
        .get::<SecureTransport>()
        .is_some_and(|s| s.0)
}

fn secure_of_req<T>(req: &S3Request<T>) -> bool {
    req.extensions.get::<SecureTransport>().is_some_and(|s| s.0)
}

#[async_trait::async_trait]
impl S3Access for AccessLayer {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        // The operation name, for the request metrics.
        let op_name = cx.s3_op().name().to_owned();
        if let Some(slot) = cx.extensions_mut().get::<OperationSlot>() {
            let _ = slot.0.set(op_name);
        }
        let peer = peer_of(cx);
        let secure = secure_of(cx);
        let op = cx.s3_op().name();
        let access_key = cx.credentials().map(|c| c.access_key.clone());
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => return self.check_service(access_key.as_deref()),
            S3Path::Bucket { bucket } => (bucket.to_string(), None),
            S3Path::Object { bucket, key } => (bucket.to_string(), Some(key.to_string())),
        };
        if op == "CreateBucket" && !self.is_root(access_key.as_deref()) {
            return Err(s3_err(s3s::S3ErrorCode::AccessDenied));
        }
        // Decided per key in `delete_objects` once the body is parsed.
        if op == "DeleteObjects" {
            return Ok(());
        }
        let headers = cx.headers();
        let acl_to_set = match op {
            "PutObject"
            | "CopyObject"
            | "CreateMultipartUpload"
            | "PutBucketAcl"
            | "PutObjectAcl" => header(headers, "x-amz-acl"),
            _ => None,
        };
        self.authorize(&AccessQuery {
            op,
            access_key: access_key.as_deref(),
            bucket: &bucket,
            key: key.as_deref(),
            headers,
            query: cx.uri().query(),
            peer,
            secure,
            auth_type: None,
            acl_to_set,
        })
        .await
    }

    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        let access_key = req.credentials.as_ref().map(|c| c.access_key.clone());
        for id in &req.input.delete.objects {
            self.authorize(&AccessQuery {
                op: "DeleteObject",
                access_key: access_key.as_deref(),
                bucket: &req.input.bucket,
                key: Some(&id.key),
                headers: &req.headers,
                query: req.uri.query(),
                peer: peer_of_req(req),
                secure: secure_of_req(req),
                auth_type: None,
                acl_to_set: None,
            })
            .await?;
        }
        Ok(())
    }

    /// A copy also reads its source: s3:GetObject there.
    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.check_copy_source(req, &req.input.copy_source).await
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.check_copy_source(req, &req.input.copy_source).await
    }

    async fn put_bucket_acl(&self, req: &mut S3Request<PutBucketAclInput>) -> S3Result<()> {
        self.check_acl_body(&req.input.bucket, req.input.access_control_policy.as_ref())
    }

    async fn put_object_acl(&self, req: &mut S3Request<PutObjectAclInput>) -> S3Result<()> {
        self.check_acl_body(&req.input.bucket, req.input.access_control_policy.as_ref())
    }
}

impl AccessLayer {
    async fn check_copy_source<T>(&self, req: &S3Request<T>, source: &CopySource) -> S3Result<()> {
        let CopySource::Bucket { bucket, key, .. } = source else {
            return Ok(());
        };
        let access_key = req.credentials.as_ref().map(|c| c.access_key.as_str());
        self.authorize(&AccessQuery {
            op: "GetObject",
            access_key,
            bucket,
            key: Some(key),
            headers: &req.headers,
            query: req.uri.query(),
            peer: peer_of_req(req),
            secure: secure_of_req(req),
            auth_type: None,
            acl_to_set: None,
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_actions() {
        assert_eq!(
            action_of("GetObject"),
            ("s3:GetObject".into(), Need::ObjectRead)
        );
        assert_eq!(
            action_of("HeadBucket"),
            ("s3:ListBucket".into(), Need::BucketRead)
        );
        assert_eq!(action_of("ListObjectsV2").0, "s3:ListBucket");
        assert_eq!(
            action_of("UploadPart"),
            ("s3:PutObject".into(), Need::BucketWrite)
        );
        assert_eq!(action_of("CopyObject").0, "s3:PutObject");
        assert_eq!(action_of("PutBucketCors").0, "s3:PutBucketCORS");
        assert_eq!(
            action_of("GetBucketAcl"),
            ("s3:GetBucketAcl".into(), Need::Owner)
        );
        assert_eq!(action_of("PutBucketPolicy").0, "s3:PutBucketPolicy");
        assert_eq!(
            action_of("GetBucketPolicyStatus").0,
            "s3:GetBucketPolicyStatus"
        );
        assert_eq!(
            action_of("DeletePublicAccessBlock").0,
            "s3:PutBucketPublicAccessBlock"
        );
    }

    #[test]
    fn list_facts_come_from_the_query() {
        let headers = HeaderMap::new();
        let q = AccessQuery {
            op: "ListObjectsV2",
            access_key: None,
            bucket: "b",
            key: None,
            headers: &headers,
            query: Some("list-type=2&prefix=a%2Fb%20c&delimiter=%2F&max-keys=5"),
            peer: Some("192.0.2.1:5000".parse().unwrap()),
            secure: false,
            auth_type: None,
            acl_to_set: None,
        };
        let f = facts_of(&q, Requester::Anonymous, "s3:ListBucket");
        use crate::policy::ConditionContext;
        assert_eq!(f.value("s3:prefix"), Some("a/b c"));
        assert_eq!(f.value("s3:delimiter"), Some("/"));
        assert_eq!(f.value("s3:max-keys"), Some("5"));
        assert_eq!(f.value("aws:sourceip"), Some("192.0.2.1"));
        assert_eq!(f.value("aws:securetransport"), Some("false"));
        assert_eq!(f.value("aws:principaltype"), Some("Anonymous"));
    }
}
