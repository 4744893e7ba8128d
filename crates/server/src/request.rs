//! What a request is, learned once by the front and read by every layer
//! below it: its id, what it addresses, where it comes from, and the S3
//! operation it asks for.
//!
//! This module is at the bottom: it imports only `host`, so the front, the
//! CORS layer, the access layer and the handlers can all depend on it.

use std::fmt;
use std::net::SocketAddr;

use http::{HeaderMap, Method, header};

use crate::host::Target;

/// The TCP peer of a request, put in the request extensions by the server
/// (the source of `aws:SourceIp`; never taken from `X-Forwarded-For`). The
/// front folds it into the [`RequestContext`].
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Whether the request's connection is TLS (`aws:SecureTransport`), put in
/// the request extensions next to `PeerAddr`. Missing means plain HTTP.
#[derive(Debug, Clone, Copy)]
pub struct SecureTransport(pub bool);

/// One request as the layers below the front see it; in the request
/// extensions (s3s hands them to the access layer and to custom routes).
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The `x-amz-request-id` of the response.
    pub id: String,
    pub target: Target,
    pub peer: Option<SocketAddr>,
    /// The connection is Preflight's own TLS (`aws:SecureTransport`).
    pub secure: bool,
    pub operation: Operation,
}

impl RequestContext {
    /// The context of a request, from its parts and what the server put in
    /// its extensions.
    pub fn new(
        id: String,
        target: Target,
        method: &Method,
        query: Option<&str>,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> Self {
        let operation = Operation::of(method, &target, query, headers);
        Self {
            id,
            target,
            peer: extensions.get::<PeerAddr>().map(|p| p.0),
            secure: extensions.get::<SecureTransport>().is_some_and(|s| s.0),
            operation,
        }
    }
}

/// Every S3 operation Preflight serves, plus the two it answers before s3s
/// (`Preflight`, `PostObject`) and `Unknown` for anything else (operations
/// s3s knows but Preflight does not implement, and malformed requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketAcl,
    PutBucketAcl,
    GetObjectAcl,
    PutObjectAcl,
    PutObject,
    GetObject,
    HeadObject,
    DeleteObject,
    DeleteObjects,
    CopyObject,
    ListObjects,
    ListObjectsV2,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    ListMultipartUploads,
    PutBucketPolicy,
    GetBucketPolicy,
    DeleteBucketPolicy,
    GetBucketPolicyStatus,
    PutPublicAccessBlock,
    GetPublicAccessBlock,
    DeletePublicAccessBlock,
    PutBucketCors,
    GetBucketCors,
    DeleteBucketCors,
    GetBucketEncryption,
    GetBucketWebsite,
    GetBucketReplication,
    GetObjectLockConfiguration,
    GetBucketOwnershipControls,
    GetBucketTagging,
    GetBucketLifecycleConfiguration,
    GetBucketLogging,
    GetBucketRequestPayment,
    GetBucketAccelerateConfiguration,
    GetBucketNotificationConfiguration,
    GetBucketVersioning,
    GetObjectTagging,
    GetObjectAttributes,
    /// A CORS preflight (`OPTIONS`), answered by the CORS layer.
    Preflight,
    /// A browser form upload (`POST` multipart/form-data to the bucket).
    PostObject,
    Unknown,
}

/// Subresources of S3 operations Preflight does not serve: a request that
/// names one is `Unknown`, never the plain operation on the same path.
const UNSERVED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "analytics",
    "attributes",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "logging",
    "metadataTable",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "session",
    "tagging",
    "torrent",
    "versioning",
    "versions",
    "website",
];

/// The configuration reads of features Preflight does not have, answered
/// as S3 answers a bucket without them (`s3/probes.rs`), by subresource.
const BUCKET_PROBES: &[(&str, Operation)] = &[
    ("accelerate", Operation::GetBucketAccelerateConfiguration),
    ("encryption", Operation::GetBucketEncryption),
    ("lifecycle", Operation::GetBucketLifecycleConfiguration),
    ("logging", Operation::GetBucketLogging),
    (
        "notification",
        Operation::GetBucketNotificationConfiguration,
    ),
    ("object-lock", Operation::GetObjectLockConfiguration),
    ("ownershipControls", Operation::GetBucketOwnershipControls),
    ("replication", Operation::GetBucketReplication),
    ("requestPayment", Operation::GetBucketRequestPayment),
    ("tagging", Operation::GetBucketTagging),
    ("versioning", Operation::GetBucketVersioning),
    ("website", Operation::GetBucketWebsite),
];

/// The probe a bucket GET names, when it names exactly one subresource
/// that is one.
fn bucket_probe(q: &Query<'_>) -> Option<Operation> {
    let mut found = q
        .pairs()
        .filter(|(k, _)| UNSERVED_SUBRESOURCES.contains(k))
        .map(|(k, _)| {
            BUCKET_PROBES
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, op)| *op)
        });
    match (found.next(), found.next()) {
        (Some(Some(op)), None) => Some(op),
        _ => None,
    }
}

/// The query of a request, as s3s's router reads it: keys and values.
struct Query<'a>(Option<&'a str>);

impl Query<'_> {
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|kv| !kv.is_empty())
            .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
    }

    fn has(&self, key: &str) -> bool {
        self.pairs().any(|(k, _)| k == key)
    }

    fn is(&self, key: &str, value: &str) -> bool {
        self.pairs().any(|(k, v)| k == key && v == value)
    }

    fn names_unserved(&self) -> bool {
        self.pairs()
            .any(|(k, _)| UNSERVED_SUBRESOURCES.contains(&k))
    }
}

impl Operation {
    /// Every operation, for tests and for matching s3s's names.
    pub const ALL: &'static [Operation] = &[
        Self::ListBuckets,
        Self::CreateBucket,
        Self::HeadBucket,
        Self::DeleteBucket,
        Self::GetBucketLocation,
        Self::GetBucketAcl,
        Self::PutBucketAcl,
        Self::GetObjectAcl,
        Self::PutObjectAcl,
        Self::PutObject,
        Self::GetObject,
        Self::HeadObject,
        Self::DeleteObject,
        Self::DeleteObjects,
        Self::CopyObject,
        Self::ListObjects,
        Self::ListObjectsV2,
        Self::CreateMultipartUpload,
        Self::UploadPart,
        Self::UploadPartCopy,
        Self::CompleteMultipartUpload,
        Self::AbortMultipartUpload,
        Self::ListParts,
        Self::ListMultipartUploads,
        Self::PutBucketPolicy,
        Self::GetBucketPolicy,
        Self::DeleteBucketPolicy,
        Self::GetBucketPolicyStatus,
        Self::PutPublicAccessBlock,
        Self::GetPublicAccessBlock,
        Self::DeletePublicAccessBlock,
        Self::PutBucketCors,
        Self::GetBucketCors,
        Self::DeleteBucketCors,
        Self::GetBucketEncryption,
        Self::GetBucketWebsite,
        Self::GetBucketReplication,
        Self::GetObjectLockConfiguration,
        Self::GetBucketOwnershipControls,
        Self::GetBucketTagging,
        Self::GetBucketLifecycleConfiguration,
        Self::GetBucketLogging,
        Self::GetBucketRequestPayment,
        Self::GetBucketAccelerateConfiguration,
        Self::GetBucketNotificationConfiguration,
        Self::GetBucketVersioning,
        Self::GetObjectTagging,
        Self::GetObjectAttributes,
        Self::Preflight,
        Self::PostObject,
        Self::Unknown,
    ];

    /// The operation of a request, following s3s's router (`ops/generated.rs`
    /// `resolve_route`) for the operations Preflight serves. A form upload is
    /// recognised by its content type before any subresource, as the front
    /// has always answered it.
    pub fn of(method: &Method, target: &Target, query: Option<&str>, headers: &HeaderMap) -> Self {
        use Operation::*;
        let q = Query(query);
        if *method == Method::OPTIONS {
            return Preflight;
        }
        if *method == Method::GET
            && matches!(target, Target::Bucket(_))
            && let Some(probe) = bucket_probe(&q)
        {
            return probe;
        }
        let copy = headers.contains_key("x-amz-copy-source");
        match (method, target) {
            (&Method::GET, Target::Service) if q.is("x-id", "ListDirectoryBuckets") => Unknown,
            (&Method::GET, Target::Service) => ListBuckets,
            (_, Target::Service) => Unknown,
            (&Method::POST, Target::Bucket(_)) if is_form_upload(method, headers) => PostObject,
            (&Method::GET, Target::Object(..)) if q.has("tagging") => GetObjectTagging,
            (&Method::GET, Target::Object(..)) if q.has("attributes") => GetObjectAttributes,
            (_, _) if q.names_unserved() => Unknown,

            (&Method::HEAD, Target::Bucket(_)) => HeadBucket,
            (&Method::GET, Target::Bucket(_)) => match () {
                _ if q.has("acl") => GetBucketAcl,
                _ if q.has("cors") => GetBucketCors,
                _ if q.has("location") => GetBucketLocation,
                _ if q.has("policy") => GetBucketPolicy,
                _ if q.has("policyStatus") => GetBucketPolicyStatus,
                _ if q.has("publicAccessBlock") => GetPublicAccessBlock,
                _ if q.has("uploads") => ListMultipartUploads,
                _ if q.is("list-type", "2") => ListObjectsV2,
                _ => ListObjects,
            },
            (&Method::PUT, Target::Bucket(_)) => match () {
                _ if q.has("acl") => PutBucketAcl,
                _ if q.has("cors") => PutBucketCors,
                _ if q.has("policy") => PutBucketPolicy,
                _ if q.has("publicAccessBlock") => PutPublicAccessBlock,
                _ => CreateBucket,
            },
            (&Method::DELETE, Target::Bucket(_)) => match () {
                _ if q.has("cors") => DeleteBucketCors,
                _ if q.has("policy") => DeleteBucketPolicy,
                _ if q.has("publicAccessBlock") => DeletePublicAccessBlock,
                _ => DeleteBucket,
            },
            (&Method::POST, Target::Bucket(_)) if q.has("delete") => DeleteObjects,

            (&Method::HEAD, Target::Object(..)) => HeadObject,
            (&Method::GET, Target::Object(..)) => match () {
                _ if q.has("acl") => GetObjectAcl,
                _ if q.has("uploadId") => ListParts,
                _ => GetObject,
            },
            (&Method::PUT, Target::Object(..)) => match () {
                _ if q.has("acl") => PutObjectAcl,
                _ if q.has("partNumber") && q.has("uploadId") && copy => UploadPartCopy,
                _ if q.has("partNumber") && q.has("uploadId") => UploadPart,
                _ if copy => CopyObject,
                _ => PutObject,
            },
            (&Method::POST, Target::Object(..)) => match () {
                _ if q.has("uploads") => CreateMultipartUpload,
                _ if q.has("uploadId") => CompleteMultipartUpload,
                _ => Unknown,
            },
            (&Method::DELETE, Target::Object(..)) => match () {
                _ if q.has("uploadId") => AbortMultipartUpload,
                _ => DeleteObject,
            },
            _ => Unknown,
        }
    }

    /// The operation s3s names (`S3Operation::name`): `Unknown` for the
    /// ones Preflight does not serve.
    pub fn from_s3s_name(name: &str) -> Self {
        Self::ALL
            .iter()
            .copied()
            .find(|op| op.as_str() == name)
            .unwrap_or(Self::Unknown)
    }

    /// The name S3 (and s3s) gives the operation; the metric label and log
    /// field.
    pub fn as_str(self) -> &'static str {
        use Operation::*;
        match self {
            ListBuckets => "ListBuckets",
            CreateBucket => "CreateBucket",
            HeadBucket => "HeadBucket",
            DeleteBucket => "DeleteBucket",
            GetBucketLocation => "GetBucketLocation",
            GetBucketAcl => "GetBucketAcl",
            PutBucketAcl => "PutBucketAcl",
            GetObjectAcl => "GetObjectAcl",
            PutObjectAcl => "PutObjectAcl",
            PutObject => "PutObject",
            GetObject => "GetObject",
            HeadObject => "HeadObject",
            DeleteObject => "DeleteObject",
            DeleteObjects => "DeleteObjects",
            CopyObject => "CopyObject",
            ListObjects => "ListObjects",
            ListObjectsV2 => "ListObjectsV2",
            CreateMultipartUpload => "CreateMultipartUpload",
            UploadPart => "UploadPart",
            UploadPartCopy => "UploadPartCopy",
            CompleteMultipartUpload => "CompleteMultipartUpload",
            AbortMultipartUpload => "AbortMultipartUpload",
            ListParts => "ListParts",
            ListMultipartUploads => "ListMultipartUploads",
            PutBucketPolicy => "PutBucketPolicy",
            GetBucketPolicy => "GetBucketPolicy",
            DeleteBucketPolicy => "DeleteBucketPolicy",
            GetBucketPolicyStatus => "GetBucketPolicyStatus",
            PutPublicAccessBlock => "PutPublicAccessBlock",
            GetPublicAccessBlock => "GetPublicAccessBlock",
            DeletePublicAccessBlock => "DeletePublicAccessBlock",
            PutBucketCors => "PutBucketCors",
            GetBucketCors => "GetBucketCors",
            DeleteBucketCors => "DeleteBucketCors",
            GetBucketEncryption => "GetBucketEncryption",
            GetBucketWebsite => "GetBucketWebsite",
            GetBucketReplication => "GetBucketReplication",
            GetObjectLockConfiguration => "GetObjectLockConfiguration",
            GetBucketOwnershipControls => "GetBucketOwnershipControls",
            GetBucketTagging => "GetBucketTagging",
            GetBucketLifecycleConfiguration => "GetBucketLifecycleConfiguration",
            GetBucketLogging => "GetBucketLogging",
            GetBucketRequestPayment => "GetBucketRequestPayment",
            GetBucketAccelerateConfiguration => "GetBucketAccelerateConfiguration",
            GetBucketNotificationConfiguration => "GetBucketNotificationConfiguration",
            GetBucketVersioning => "GetBucketVersioning",
            GetObjectTagging => "GetObjectTagging",
            GetObjectAttributes => "GetObjectAttributes",
            Preflight => "Preflight",
            PostObject => "PostObject",
            Unknown => "Unknown",
        }
    }

    /// Served by the CORS configuration route rather than by s3s's handlers.
    pub fn is_cors_api(self) -> bool {
        matches!(
            self,
            Self::PutBucketCors | Self::GetBucketCors | Self::DeleteBucketCors
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A browser form upload: `POST` with a `multipart/form-data` body.
pub fn is_form_upload(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::POST
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            })
}

#[cfg(test)]
mod tests {
    use super::Operation::*;
    use super::*;

    fn op(method: &str, path: &str, query: &str, headers: &[(&str, &str)]) -> Operation {
        let target = crate::host::resolve_target(&Default::default(), None, path);
        let mut h = HeaderMap::new();
        for (name, value) in headers {
            h.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let query = (!query.is_empty()).then_some(query);
        Operation::of(&method.parse().unwrap(), &target, query, &h)
    }

    /// method, path, query, headers → the operation.
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        Operation,
    );

    const COPY: &[(&str, &str)] = &[("x-amz-copy-source", "/src/k")];
    const FORM: &[(&str, &str)] = &[("content-type", "multipart/form-data; boundary=x")];

    #[rustfmt::skip]
    const TABLE: &[Case<'static>] = &[
        ("GET", "/", "", &[], ListBuckets),
        ("GET", "/", "x-id=ListDirectoryBuckets", &[], Unknown),
        // The AWS SDKs name the operation in `x-id`; only this one routes by it.
        ("GET", "/", "x-id=ListBuckets", &[], ListBuckets),
        ("GET", "/bkt/k", "x-id=GetObject", &[], GetObject),
        ("PUT", "/bkt/k", "x-id=PutObject", &[], PutObject),
        ("PUT", "/", "", &[], Unknown),
        ("HEAD", "/", "", &[], Unknown),
        ("PUT", "/bkt", "", &[], CreateBucket),
        ("HEAD", "/bkt", "", &[], HeadBucket),
        ("DELETE", "/bkt", "", &[], DeleteBucket),
        ("GET", "/bkt", "", &[], ListObjects),
        ("GET", "/bkt/", "prefix=a", &[], ListObjects),
        ("GET", "/bkt", "list-type=2", &[], ListObjectsV2),
        ("GET", "/bkt", "list-type=2&prefix=a&delimiter=%2F", &[], ListObjectsV2),
        ("GET", "/bkt", "list-type=1", &[], ListObjects),
        ("GET", "/bkt", "location", &[], GetBucketLocation),
        ("GET", "/bkt", "acl", &[], GetBucketAcl),
        ("PUT", "/bkt", "acl", &[], PutBucketAcl),
        ("GET", "/bkt", "uploads", &[], ListMultipartUploads),
        ("GET", "/bkt", "uploads&prefix=a", &[], ListMultipartUploads),
        ("GET", "/bkt", "policy", &[], GetBucketPolicy),
        ("PUT", "/bkt", "policy", &[], PutBucketPolicy),
        ("DELETE", "/bkt", "policy", &[], DeleteBucketPolicy),
        ("GET", "/bkt", "policyStatus", &[], GetBucketPolicyStatus),
        ("GET", "/bkt", "publicAccessBlock", &[], GetPublicAccessBlock),
        ("PUT", "/bkt", "publicAccessBlock", &[], PutPublicAccessBlock),
        ("DELETE", "/bkt", "publicAccessBlock", &[], DeletePublicAccessBlock),
        ("GET", "/bkt", "cors", &[], GetBucketCors),
        ("PUT", "/bkt", "cors", &[], PutBucketCors),
        ("PUT", "/bkt", "cors=", &[], PutBucketCors),
        ("DELETE", "/bkt", "cors", &[], DeleteBucketCors),
        ("GET", "/bkt", "corsx", &[], ListObjects),
        ("POST", "/bkt", "delete", &[], DeleteObjects),
        ("POST", "/bkt", "delete=", &[], DeleteObjects),
        ("POST", "/bkt", "", FORM, PostObject),
        ("POST", "/bkt", "", &[], Unknown),
        ("GET", "/bkt", "tagging", &[], GetBucketTagging),
        ("PUT", "/bkt", "tagging", &[], Unknown),
        ("GET", "/bkt", "versioning", &[], GetBucketVersioning),
        ("GET", "/bkt", "encryption", &[], GetBucketEncryption),
        ("GET", "/bkt", "website", &[], GetBucketWebsite),
        ("GET", "/bkt", "logging", &[], GetBucketLogging),
        ("GET", "/bkt", "replication", &[], GetBucketReplication),
        ("GET", "/bkt", "object-lock", &[], GetObjectLockConfiguration),
        ("GET", "/bkt", "ownershipControls", &[], GetBucketOwnershipControls),
        ("GET", "/bkt", "requestPayment", &[], GetBucketRequestPayment),
        ("GET", "/bkt", "accelerate", &[], GetBucketAccelerateConfiguration),
        ("GET", "/bkt", "notification", &[], GetBucketNotificationConfiguration),
        ("GET", "/bkt", "lifecycle", &[], GetBucketLifecycleConfiguration),
        ("GET", "/bkt", "analytics", &[], Unknown),
        ("DELETE", "/bkt", "encryption", &[], Unknown),
        ("PUT", "/bkt", "versioning", &[], Unknown),
        ("GET", "/bkt", "versions", &[], Unknown),
        ("PUT", "/bkt/k", "", &[], PutObject),
        ("PUT", "/bkt/a/b%20c", "", &[], PutObject),
        ("GET", "/bkt/k", "", &[], GetObject),
        ("GET", "/bkt/k", "versionId=null", &[], GetObject),
        ("HEAD", "/bkt/k", "", &[], HeadObject),
        ("DELETE", "/bkt/k", "", &[], DeleteObject),
        ("PUT", "/bkt/k", "", COPY, CopyObject),
        ("GET", "/bkt/k", "acl", &[], GetObjectAcl),
        ("PUT", "/bkt/k", "acl", &[], PutObjectAcl),
        ("POST", "/bkt/k", "uploads", &[], CreateMultipartUpload),
        ("POST", "/bkt/k", "uploadId=u1", &[], CompleteMultipartUpload),
        ("PUT", "/bkt/k", "partNumber=1&uploadId=u1", &[], UploadPart),
        ("PUT", "/bkt/k", "uploadId=u1&partNumber=2", &[], UploadPart),
        ("PUT", "/bkt/k", "partNumber=1&uploadId=u1", COPY, UploadPartCopy),
        ("GET", "/bkt/k", "uploadId=u1", &[], ListParts),
        ("GET", "/bkt/k", "uploadId=u1&max-parts=2", &[], ListParts),
        ("DELETE", "/bkt/k", "uploadId=u1", &[], AbortMultipartUpload),
        ("POST", "/bkt/k", "", &[], Unknown),
        ("GET", "/bkt/k", "tagging", &[], GetObjectTagging),
        ("PUT", "/bkt/k", "tagging", &[], Unknown),
        ("GET", "/bkt/k", "attributes", &[], GetObjectAttributes),
        ("PUT", "/bkt/k", "retention", &[], Unknown),
        ("OPTIONS", "/bkt/k", "", &[], Preflight),
        ("OPTIONS", "/", "", &[], Preflight),
        ("PATCH", "/bkt/k", "", &[], Unknown),
    ];

    /// method + path + query → operation, as s3s routes them.
    #[test]
    fn operations_are_derived_as_s3s_routes_them() {
        for (method, path, query, headers, want) in TABLE {
            assert_eq!(
                op(method, path, query, headers),
                *want,
                "{method} {path}?{query} {headers:?}"
            );
        }
    }

    /// Records the operation s3s's router picked, and refuses it.
    #[derive(Clone, Default)]
    struct RecordRoute(std::sync::Arc<std::sync::Mutex<Option<String>>>);

    #[async_trait::async_trait]
    impl s3s::access::S3Access for RecordRoute {
        async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> s3s::S3Result<()> {
            *self.0.lock().unwrap() = Some(cx.s3_op().name().to_owned());
            Err(s3s::s3_error!(AccessDenied))
        }
    }

    struct NoS3;

    #[async_trait::async_trait]
    impl s3s::S3 for NoS3 {}

    /// The derivation against s3s itself: each request of the table goes
    /// through an s3s service whose access check records the routed name
    /// (no name: s3s routes it nowhere, `Unknown`). The two the front
    /// answers before s3s are left out.
    #[tokio::test]
    async fn operations_agree_with_the_s3s_router() {
        let seen = RecordRoute::default();
        let mut builder = s3s::service::S3ServiceBuilder::new(NoS3);
        builder.set_auth(s3s::auth::SimpleAuth::from_single("AK", "SK"));
        builder.set_access(seen.clone());
        let service = builder.build();
        for (method, path, query, headers, want) in TABLE {
            if matches!(want, Preflight | PostObject) {
                continue;
            }
            let uri = if query.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{query}")
            };
            let mut req = http::Request::builder()
                .method(*method)
                .uri(uri)
                .header("host", "127.0.0.1:9000");
            for (name, value) in *headers {
                req = req.header(*name, *value);
            }
            *seen.0.lock().unwrap() = None;
            // Refused (or not routed) either way; only the routing matters.
            let _ = service.call(req.body(s3s::Body::empty()).unwrap()).await;
            let routed = seen.0.lock().unwrap().take();
            let routed = routed.as_deref().map_or(Unknown, Operation::from_s3s_name);
            assert_eq!(routed, *want, "{method} {path}?{query} {headers:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_s3s_name(&op.to_string()), *op);
        }
        assert_eq!(Operation::from_s3s_name("PutBucketTagging"), Unknown);
    }

    #[test]
    fn the_context_takes_peer_and_transport_from_the_server() {
        let mut ext = http::Extensions::new();
        ext.insert(PeerAddr("192.0.2.7:4000".parse().unwrap()));
        ext.insert(SecureTransport(true));
        let ctx = RequestContext::new(
            "ID".into(),
            Target::Object("b".into(), "k".into()),
            &Method::GET,
            None,
            &HeaderMap::new(),
            &ext,
        );
        assert_eq!(ctx.operation, GetObject);
        assert_eq!(ctx.peer.map(|p| p.port()), Some(4000));
        assert!(ctx.secure);
        let bare = RequestContext::new(
            "ID".into(),
            Target::Service,
            &Method::GET,
            None,
            &HeaderMap::new(),
            &http::Extensions::new(),
        );
        assert!(bare.peer.is_none() && !bare.secure);
    }
}
