//! The access layer: who may do what. It gathers the facts of a request
//! (requester, IAM action, resource, condition keys, the bucket's policy,
//! public access block and ACL) and asks `policy::decide`, which follows
//! S3's order: explicit Deny → public access block → owner → policy Allow →
//! ACL grant → implicit deny. CORS plays no part here: it never grants
//! access (spec §8).

use std::sync::Arc;

use http::HeaderMap;
use preflight_store::MetaStore;
use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::*;
use s3s::path::S3Path;
use s3s::{S3Request, S3Result};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::buckets::{BucketDirectory, BucketEntry};
use crate::errors::{s3_err, store_err};
use crate::keys::KeyStore;
use crate::policy::{
    AccessRequest, AclCheck, AclPermission, Decision, Facts, Requester, decide, user_arn,
};
use crate::request::{Operation, RequestContext};

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

/// The IAM action of an operation and the ACL permission that grants it;
/// `None` for operations no policy can grant (the root key only).
pub fn action_of(op: Operation) -> Option<(&'static str, Need)> {
    use Operation::*;
    Some(match op {
        ListObjects | ListObjectsV2 | HeadBucket => ("s3:ListBucket", Need::BucketRead),
        ListMultipartUploads => ("s3:ListBucketMultipartUploads", Need::BucketRead),
        GetObject | HeadObject => ("s3:GetObject", Need::ObjectRead),
        PutObject
        | PostObject
        | CopyObject
        | CreateMultipartUpload
        | UploadPart
        | UploadPartCopy
        | CompleteMultipartUpload => ("s3:PutObject", Need::BucketWrite),
        DeleteObject | DeleteObjects => ("s3:DeleteObject", Need::BucketWrite),
        AbortMultipartUpload => ("s3:AbortMultipartUpload", Need::BucketWrite),
        ListParts => ("s3:ListMultipartUploadParts", Need::BucketWrite),
        ListBuckets => ("s3:ListAllMyBuckets", Need::Owner),
        CreateBucket => ("s3:CreateBucket", Need::Owner),
        DeleteBucket => ("s3:DeleteBucket", Need::Owner),
        GetBucketLocation => ("s3:GetBucketLocation", Need::Owner),
        GetBucketAcl => ("s3:GetBucketAcl", Need::Owner),
        PutBucketAcl => ("s3:PutBucketAcl", Need::Owner),
        GetObjectAcl => ("s3:GetObjectAcl", Need::Owner),
        PutObjectAcl => ("s3:PutObjectAcl", Need::Owner),
        GetBucketPolicy => ("s3:GetBucketPolicy", Need::Owner),
        PutBucketPolicy => ("s3:PutBucketPolicy", Need::Owner),
        DeleteBucketPolicy => ("s3:DeleteBucketPolicy", Need::Owner),
        GetBucketPolicyStatus => ("s3:GetBucketPolicyStatus", Need::Owner),
        GetBucketCors => ("s3:GetBucketCORS", Need::Owner),
        PutBucketCors | DeleteBucketCors => ("s3:PutBucketCORS", Need::Owner),
        PutPublicAccessBlock | DeletePublicAccessBlock => {
            ("s3:PutBucketPublicAccessBlock", Need::Owner)
        }
        GetPublicAccessBlock => ("s3:GetBucketPublicAccessBlock", Need::Owner),
        GetBucketEncryption => ("s3:GetEncryptionConfiguration", Need::Owner),
        GetBucketWebsite => ("s3:GetBucketWebsite", Need::Owner),
        GetBucketLogging => ("s3:GetBucketLogging", Need::Owner),
        GetBucketReplication => ("s3:GetReplicationConfiguration", Need::Owner),
        GetObjectLockConfiguration => ("s3:GetBucketObjectLockConfiguration", Need::Owner),
        GetBucketOwnershipControls => ("s3:GetBucketOwnershipControls", Need::Owner),
        GetBucketRequestPayment => ("s3:GetBucketRequestPayment", Need::Owner),
        GetBucketAccelerateConfiguration => ("s3:GetAccelerateConfiguration", Need::Owner),
        GetBucketNotificationConfiguration => ("s3:GetBucketNotification", Need::Owner),
        GetBucketVersioning => ("s3:GetBucketVersioning", Need::Owner),
        GetBucketTagging => ("s3:GetBucketTagging", Need::Owner),
        GetBucketLifecycleConfiguration => ("s3:GetLifecycleConfiguration", Need::Owner),
        GetObjectTagging => ("s3:GetObjectTagging", Need::Owner),
        GetObjectAttributes => ("s3:GetObjectAttributes", Need::ObjectRead),
        Preflight | Unknown => return None,
    })
}

/// One request, as the access layer needs to see it.
pub struct AccessQuery<'a> {
    /// The operation decided: the request's, or one it implies (a copy's
    /// GetObject on its source, a DeleteObjects' DeleteObject per key).
    pub operation: Operation,
    pub access_key: Option<&'a str>,
    pub bucket: &'a str,
    pub key: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    /// `s3:authType`: REST-HEADER, REST-QUERY-STRING or POST.
    pub auth_type: Option<&'static str>,
    /// A canned ACL the request sets, when it sets one.
    pub acl_to_set: Option<&'a str>,
}

#[derive(Clone)]
pub struct AccessLayer {
    meta: Arc<dyn MetaStore>,
    buckets: Arc<BucketDirectory>,
    keys: Arc<KeyStore>,
    root_access_key: String,
}

impl AccessLayer {
    pub fn new(
        meta: Arc<dyn MetaStore>,
        buckets: Arc<BucketDirectory>,
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
    /// The one access path: s3s operations, the CORS configuration API and
    /// form uploads all come here.
    pub async fn authorize(&self, ctx: &RequestContext, q: &AccessQuery<'_>) -> S3Result<()> {
        let user = self.user_of(q.access_key)?;
        let requester = match (&user, q.access_key) {
            (Some(name), _) => Requester::User(name),
            (None, Some(_)) => Requester::Root,
            (None, None) => Requester::Anonymous,
        };
        let Some((action, need)) = action_of(q.operation) else {
            // Nothing a policy could grant: only the owner gets to the
            // operation (which answers NotImplemented or an error).
            return if requester == Requester::Root {
                Ok(())
            } else {
                Err(s3_err(s3s::S3ErrorCode::AccessDenied))
            };
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
        let facts = facts_of(ctx, q, requester, action);
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
            action,
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
            request_id = %ctx.id,
            operation = %q.operation,
            action,
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
fn facts_of(
    ctx: &RequestContext,
    q: &AccessQuery<'_>,
    requester: Requester<'_>,
    action: &str,
) -> Facts {
    let mut f = Facts::default();
    if let Some(peer) = ctx.peer {
        f.insert("aws:SourceIp", peer.ip().to_string());
    }
    // Our own TLS only; a TLS terminator in front is not trusted.
    f.insert(
        "aws:SecureTransport",
        if ctx.secure { "true" } else { "false" },
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

/// The context the front put in the request extensions. Every request
/// passes the front, so a missing one is a bug: refuse rather than guess.
fn context_of(extensions: &http::Extensions) -> S3Result<RequestContext> {
    extensions.get::<RequestContext>().cloned().ok_or_else(|| {
        tracing::error!(target: "preflight::access", "request without a context");
        s3_err(s3s::S3ErrorCode::InternalError)
    })
}

/// The operation s3s routed to, checked against the one the front derived.
/// s3s's is the one that runs, so it is the one decided; a disagreement is
/// a bug in `Operation::of` (metrics and logs would name the wrong one).
fn checked_operation(ctx: &RequestContext, s3s_name: &str) -> Operation {
    let routed = Operation::from_s3s_name(s3s_name);
    if routed != ctx.operation {
        tracing::warn!(
            target: "preflight::access",
            request_id = %ctx.id,
            derived = %ctx.operation,
            routed = s3s_name,
            "the front and s3s disagree on the operation"
        );
    }
    routed
}

#[async_trait::async_trait]
impl S3Access for AccessLayer {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let ctx = context_of(cx.extensions_mut())?;
        let operation = checked_operation(&ctx, cx.s3_op().name());
        let access_key = cx.credentials().map(|c| c.access_key.clone());
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => return self.check_service(access_key.as_deref()),
            S3Path::Bucket { bucket } => (bucket.to_string(), None),
            S3Path::Object { bucket, key } => (bucket.to_string(), Some(key.to_string())),
        };
        if operation == Operation::CreateBucket && !self.is_root(access_key.as_deref()) {
            return Err(s3_err(s3s::S3ErrorCode::AccessDenied));
        }
        // Decided per key in `delete_objects` once the body is parsed.
        if operation == Operation::DeleteObjects {
            return Ok(());
        }
        let headers = cx.headers();
        let acl_to_set = match operation {
            Operation::PutObject
            | Operation::CopyObject
            | Operation::CreateMultipartUpload
            | Operation::PutBucketAcl
            | Operation::PutObjectAcl => header(headers, "x-amz-acl"),
            _ => None,
        };
        self.authorize(
            &ctx,
            &AccessQuery {
                operation,
                access_key: access_key.as_deref(),
                bucket: &bucket,
                key: key.as_deref(),
                headers,
                query: cx.uri().query(),
                auth_type: None,
                acl_to_set,
            },
        )
        .await
    }

    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        let ctx = context_of(&req.extensions)?;
        let access_key = req.credentials.as_ref().map(|c| c.access_key.clone());
        for id in &req.input.delete.objects {
            self.authorize(
                &ctx,
                &AccessQuery {
                    operation: Operation::DeleteObject,
                    access_key: access_key.as_deref(),
                    bucket: &req.input.bucket,
                    key: Some(&id.key),
                    headers: &req.headers,
                    query: req.uri.query(),
                    auth_type: None,
                    acl_to_set: None,
                },
            )
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
        let ctx = context_of(&req.extensions)?;
        let access_key = req.credentials.as_ref().map(|c| c.access_key.as_str());
        self.authorize(
            &ctx,
            &AccessQuery {
                operation: Operation::GetObject,
                access_key,
                bucket,
                key: Some(key),
                headers: &req.headers,
                query: req.uri.query(),
                auth_type: None,
                acl_to_set: None,
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Target;

    #[test]
    fn operations_map_to_actions() {
        use Operation::*;
        assert_eq!(
            action_of(GetObject),
            Some(("s3:GetObject", Need::ObjectRead))
        );
        assert_eq!(
            action_of(HeadBucket),
            Some(("s3:ListBucket", Need::BucketRead))
        );
        assert_eq!(action_of(ListObjectsV2).unwrap().0, "s3:ListBucket");
        assert_eq!(
            action_of(UploadPart),
            Some(("s3:PutObject", Need::BucketWrite))
        );
        assert_eq!(
            action_of(PostObject),
            Some(("s3:PutObject", Need::BucketWrite))
        );
        assert_eq!(action_of(CopyObject).unwrap().0, "s3:PutObject");
        assert_eq!(action_of(PutBucketCors).unwrap().0, "s3:PutBucketCORS");
        assert_eq!(action_of(DeleteBucketCors).unwrap().0, "s3:PutBucketCORS");
        assert_eq!(action_of(GetBucketCors).unwrap().0, "s3:GetBucketCORS");
        assert_eq!(
            action_of(GetBucketAcl),
            Some(("s3:GetBucketAcl", Need::Owner))
        );
        assert_eq!(action_of(PutBucketPolicy).unwrap().0, "s3:PutBucketPolicy");
        assert_eq!(
            action_of(GetBucketPolicyStatus).unwrap().0,
            "s3:GetBucketPolicyStatus"
        );
        assert_eq!(
            action_of(DeletePublicAccessBlock).unwrap().0,
            "s3:PutBucketPublicAccessBlock"
        );
        // IAM's names for the configuration reads that differ from the API's.
        for (op, action) in [
            (GetBucketEncryption, "s3:GetEncryptionConfiguration"),
            (GetBucketReplication, "s3:GetReplicationConfiguration"),
            (
                GetObjectLockConfiguration,
                "s3:GetBucketObjectLockConfiguration",
            ),
            (
                GetBucketAccelerateConfiguration,
                "s3:GetAccelerateConfiguration",
            ),
            (
                GetBucketNotificationConfiguration,
                "s3:GetBucketNotification",
            ),
            (
                GetBucketLifecycleConfiguration,
                "s3:GetLifecycleConfiguration",
            ),
        ] {
            assert_eq!(action_of(op).unwrap().0, action);
        }
        assert_eq!(action_of(Preflight), None);
        assert_eq!(action_of(Unknown), None);
        // Every other operation's action is its own name, as in IAM.
        for op in Operation::ALL {
            if let Some((action, Need::Owner)) = action_of(*op)
                && !matches!(
                    op,
                    ListBuckets
                        | GetBucketCors
                        | PutBucketCors
                        | DeleteBucketCors
                        | PutPublicAccessBlock
                        | DeletePublicAccessBlock
                        | GetPublicAccessBlock
                        | GetBucketEncryption
                        | GetBucketReplication
                        | GetObjectLockConfiguration
                        | GetBucketAccelerateConfiguration
                        | GetBucketNotificationConfiguration
                        | GetBucketLifecycleConfiguration
                )
            {
                assert_eq!(action, format!("s3:{op}"));
            }
        }
    }

    #[test]
    fn list_facts_come_from_the_query() {
        let headers = HeaderMap::new();
        let mut ext = http::Extensions::new();
        ext.insert(crate::request::PeerAddr("192.0.2.1:5000".parse().unwrap()));
        let query = Some("list-type=2&prefix=a%2Fb%20c&delimiter=%2F&max-keys=5");
        let ctx = RequestContext::new(
            "ID".into(),
            Target::Bucket("b".into()),
            &http::Method::GET,
            query,
            &headers,
            &ext,
        );
        let q = AccessQuery {
            operation: ctx.operation,
            access_key: None,
            bucket: "b",
            key: None,
            headers: &headers,
            query,
            auth_type: None,
            acl_to_set: None,
        };
        let f = facts_of(&ctx, &q, Requester::Anonymous, "s3:ListBucket");
        use crate::policy::ConditionContext;
        assert_eq!(f.value("s3:prefix"), Some("a/b c"));
        assert_eq!(f.value("s3:delimiter"), Some("/"));
        assert_eq!(f.value("s3:max-keys"), Some("5"));
        assert_eq!(f.value("aws:sourceip"), Some("192.0.2.1"));
        assert_eq!(f.value("aws:securetransport"), Some("false"));
        assert_eq!(f.value("aws:principaltype"), Some("Anonymous"));
    }
}
