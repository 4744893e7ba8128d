//! Table-driven policy tests: documents × requests, and malformed documents.

use super::*;

const B: &str = "photos";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Owner,
    Policy,
    Acl,
    Explicit,
    BlockAcls,
    Implicit,
}

fn kind(d: &Decision) -> Want {
    match d {
        Decision::AllowOwner => Want::Owner,
        Decision::AllowPolicy(_) => Want::Policy,
        Decision::AllowAcl(_) => Want::Acl,
        Decision::DenyExplicit(_) => Want::Explicit,
        Decision::DenyBlockPublicAcls => Want::BlockAcls,
        Decision::DenyImplicit => Want::Implicit,
    }
}

struct Case {
    name: &'static str,
    policy: Option<&'static str>,
    who: Requester<'static>,
    action: &'static str,
    /// Key, or "" for the bucket itself.
    key: &'static str,
    facts: &'static [(&'static str, &'static str)],
    pab: &'static str,
    acl: Option<(&'static str, AclPermission)>,
    acl_to_set: Option<&'static str>,
    want: Want,
}

const fn case(
    name: &'static str,
    policy: Option<&'static str>,
    who: Requester<'static>,
    action: &'static str,
    key: &'static str,
    want: Want,
) -> Case {
    Case {
        name,
        policy,
        who,
        action,
        key,
        facts: &[],
        pab: "",
        acl: None,
        acl_to_set: None,
        want,
    }
}

const PUBLIC_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#;
const PUBLIC_READ_AWS_STAR: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::photos/public/*"]}}"#;
const ALICE_RW_PREFIX: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"AliceList","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::photos","Condition":{"StringLike":{"s3:prefix":["alice/*",""]}}},
  {"Sid":"AliceRW","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:user/alice"]},"Action":["s3:Get*","s3:PutObject"],"Resource":"arn:aws:s3:::photos/alice/*"}]}"#;
const DENY_OVERRIDES: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"All","Effect":"Allow","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*"]},
  {"Sid":"NoSecrets","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::photos/secret/*"}]}"#;
const NOT_ACTION: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"ReadOnly","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"NotAction":["s3:Get*","s3:List*"],"Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*"]},
  {"Sid":"BobAll","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"s3:*","Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*"]}]}"#;
const SOURCE_IP: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"Office","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"IpAddress":{"aws:SourceIp":["192.0.2.0/24","2001:db8::/32"]}}}]}"#;
const NOT_IP_DENY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"OnlyOffice","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::photos/*","Condition":{"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}}}]}"#;
const REFERER: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"Hotlink","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringLike":{"aws:Referer":["https://app.example/*","https://*.app.example/*"]}}}]}"#;
const DENY_NO_REFERER: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"},
  {"Sid":"BadReferer","Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringNotLike":{"aws:Referer":"https://app.example/*"}}}]}"#;
const SECURE: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"TLSOnly","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*"],"Condition":{"Bool":{"aws:SecureTransport":false}}}]}"#;
const MAX_KEYS: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::photos","Condition":{"NumericLessThan":{"s3:max-keys":10},"StringEquals":{"s3:delimiter":"/"}}}]}"#;
const TIME_WINDOW: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2026-12-31T00:00:00Z"}}}]}"#;
const ACL_CONDITION: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/carol"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEquals":{"s3:x-amz-acl":"private"}}}]}"#;
const USER_AGENT: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::photos/*","Condition":{"StringLike":{"aws:UserAgent":"*curl*"}}}]}"#;
const NUMERIC_GT: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::photos","Condition":{"NumericGreaterThan":{"s3:max-keys":"5"}}}]}"#;
const NOT_RESOURCE: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/dave"},"Action":"s3:GetObject","NotResource":"arn:aws:s3:::photos/private/*"}]}"#;
const ROOT_DENY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"LockDown","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*"]}]}"#;
const NOT_PRINCIPAL: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::000000000000:user/erin"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::photos/*"}]}"#;
const NULL_AND_IFEXISTS: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"NeedsUA","Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"Null":{"aws:UserAgent":"true"}}},
  {"Sid":"RefIfAny","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEqualsIfExists":{"aws:Referer":"https://ok.example/"}}}]}"#;
const IGNORE_CASE: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Principal":"*","Action":"S3:getobject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEqualsIgnoreCase":{"AWS:REFERER":"HTTPS://A.EXAMPLE/"}}}]}"#;
const STRING_NOT_EQUALS: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::photos","Condition":{"StringNotEquals":{"s3:prefix":["private/","admin/"]}}}]}"#;

use AclPermission::{Read, Write};
use Requester::{Anonymous, Root, User};
use Want::*;

fn cases() -> Vec<Case> {
    vec![
        // no policy: owner, ACLs, implicit deny
        case(
            "root owns everything",
            None,
            Root,
            "s3:PutBucketPolicy",
            "",
            Owner,
        ),
        case(
            "anonymous without grants",
            None,
            Anonymous,
            "s3:GetObject",
            "a.jpg",
            Implicit,
        ),
        case(
            "user without grants",
            None,
            User("alice"),
            "s3:GetObject",
            "a.jpg",
            Implicit,
        ),
        Case {
            acl: Some(("public-read", Read)),
            ..case(
                "public-read ACL",
                None,
                Anonymous,
                "s3:GetObject",
                "a.jpg",
                Acl,
            )
        },
        Case {
            acl: Some(("public-read", Write)),
            ..case(
                "public-read no write",
                None,
                Anonymous,
                "s3:PutObject",
                "a.jpg",
                Implicit,
            )
        },
        Case {
            acl: Some(("public-read-write", Write)),
            ..case(
                "public-read-write write",
                None,
                Anonymous,
                "s3:PutObject",
                "a.jpg",
                Acl,
            )
        },
        Case {
            acl: Some(("authenticated-read", Read)),
            ..case(
                "authenticated-read anon",
                None,
                Anonymous,
                "s3:GetObject",
                "a",
                Implicit,
            )
        },
        Case {
            acl: Some(("authenticated-read", Read)),
            ..case(
                "authenticated-read user",
                None,
                User("alice"),
                "s3:GetObject",
                "a",
                Acl,
            )
        },
        Case {
            acl: Some(("private", Read)),
            ..case(
                "private ACL",
                None,
                User("alice"),
                "s3:GetObject",
                "a",
                Implicit,
            )
        },
        // public read policy
        case(
            "public read: anon get",
            Some(PUBLIC_READ),
            Anonymous,
            "s3:GetObject",
            "cat.png",
            Policy,
        ),
        case(
            "public read: user get",
            Some(PUBLIC_READ),
            User("bob"),
            "s3:GetObject",
            "x/y",
            Policy,
        ),
        case(
            "public read: anon put",
            Some(PUBLIC_READ),
            Anonymous,
            "s3:PutObject",
            "cat.png",
            Implicit,
        ),
        case(
            "public read: anon list",
            Some(PUBLIC_READ),
            Anonymous,
            "s3:ListBucket",
            "",
            Implicit,
        ),
        case(
            "public read: root put",
            Some(PUBLIC_READ),
            Root,
            "s3:PutObject",
            "cat.png",
            Owner,
        ),
        case(
            "AWS star: in prefix",
            Some(PUBLIC_READ_AWS_STAR),
            Anonymous,
            "s3:GetObject",
            "public/a",
            Policy,
        ),
        case(
            "AWS star: outside prefix",
            Some(PUBLIC_READ_AWS_STAR),
            Anonymous,
            "s3:GetObject",
            "private/a",
            Implicit,
        ),
        // a user limited to a prefix
        Case {
            facts: &[("s3:prefix", "alice/")],
            ..case(
                "alice lists her prefix",
                Some(ALICE_RW_PREFIX),
                User("alice"),
                "s3:ListBucket",
                "",
                Policy,
            )
        },
        Case {
            facts: &[("s3:prefix", "")],
            ..case(
                "alice lists root with empty prefix",
                Some(ALICE_RW_PREFIX),
                User("alice"),
                "s3:ListBucket",
                "",
                Policy,
            )
        },
        Case {
            facts: &[("s3:prefix", "bob/")],
            ..case(
                "alice lists bob",
                Some(ALICE_RW_PREFIX),
                User("alice"),
                "s3:ListBucket",
                "",
                Implicit,
            )
        },
        case(
            "alice lists without prefix",
            Some(ALICE_RW_PREFIX),
            User("alice"),
            "s3:ListBucket",
            "",
            Implicit,
        ),
        case(
            "alice gets hers (Get*)",
            Some(ALICE_RW_PREFIX),
            User("alice"),
            "s3:GetObject",
            "alice/1",
            Policy,
        ),
        case(
            "alice gets acl (Get*)",
            Some(ALICE_RW_PREFIX),
            User("alice"),
            "s3:GetObjectAcl",
            "alice/1",
            Policy,
        ),
        case(
            "alice puts hers",
            Some(ALICE_RW_PREFIX),
            User("alice"),
            "s3:PutObject",
            "alice/2",
            Policy,
        ),
        case(
            "alice deletes hers",
            Some(ALICE_RW_PREFIX),
            User("alice"),
            "s3:DeleteObject",
            "alice/2",
            Implicit,
        ),
        case(
            "alice puts bob's",
            Some(ALICE_RW_PREFIX),
            User("alice"),
            "s3:PutObject",
            "bob/2",
            Implicit,
        ),
        case(
            "bob not named",
            Some(ALICE_RW_PREFIX),
            User("bob"),
            "s3:GetObject",
            "alice/1",
            Implicit,
        ),
        case(
            "anon not named",
            Some(ALICE_RW_PREFIX),
            Anonymous,
            "s3:GetObject",
            "alice/1",
            Implicit,
        ),
        // explicit deny wins
        case(
            "deny overrides: allowed area",
            Some(DENY_OVERRIDES),
            Anonymous,
            "s3:GetObject",
            "pub/a",
            Policy,
        ),
        case(
            "deny overrides: secret",
            Some(DENY_OVERRIDES),
            Anonymous,
            "s3:GetObject",
            "secret/a",
            Explicit,
        ),
        case(
            "deny overrides: user secret",
            Some(DENY_OVERRIDES),
            User("alice"),
            "s3:PutObject",
            "secret/a",
            Explicit,
        ),
        case(
            "deny applies to root data ops",
            Some(DENY_OVERRIDES),
            Root,
            "s3:GetObject",
            "secret/a",
            Explicit,
        ),
        Case {
            acl: Some(("public-read", Read)),
            ..case(
                "deny beats ACL",
                Some(DENY_OVERRIDES),
                Anonymous,
                "s3:GetObject",
                "secret/a",
                Explicit,
            )
        },
        case(
            "root keeps policy management",
            Some(ROOT_DENY),
            Root,
            "s3:DeleteBucketPolicy",
            "",
            Owner,
        ),
        case(
            "root keeps GetBucketPolicy",
            Some(ROOT_DENY),
            Root,
            "s3:GetBucketPolicy",
            "",
            Owner,
        ),
        case(
            "root loses data under lockdown",
            Some(ROOT_DENY),
            Root,
            "s3:GetObject",
            "a",
            Explicit,
        ),
        // NotAction
        case(
            "NotAction: bob reads",
            Some(NOT_ACTION),
            User("bob"),
            "s3:GetObject",
            "a",
            Policy,
        ),
        case(
            "NotAction: bob lists",
            Some(NOT_ACTION),
            User("bob"),
            "s3:ListBucket",
            "",
            Policy,
        ),
        case(
            "NotAction: bob puts",
            Some(NOT_ACTION),
            User("bob"),
            "s3:PutObject",
            "a",
            Explicit,
        ),
        case(
            "NotAction: bob deletes",
            Some(NOT_ACTION),
            User("bob"),
            "s3:DeleteObject",
            "a",
            Explicit,
        ),
        case(
            "NotAction: alice unaffected",
            Some(NOT_ACTION),
            User("alice"),
            "s3:PutObject",
            "a",
            Implicit,
        ),
        // NotResource / NotPrincipal
        case(
            "NotResource: dave public",
            Some(NOT_RESOURCE),
            User("dave"),
            "s3:GetObject",
            "pub/a",
            Policy,
        ),
        case(
            "NotResource: dave private",
            Some(NOT_RESOURCE),
            User("dave"),
            "s3:GetObject",
            "private/a",
            Implicit,
        ),
        case(
            "NotPrincipal: erin may put",
            Some(NOT_PRINCIPAL),
            User("erin"),
            "s3:PutObject",
            "a",
            Implicit,
        ),
        case(
            "NotPrincipal: others denied",
            Some(NOT_PRINCIPAL),
            User("frank"),
            "s3:PutObject",
            "a",
            Explicit,
        ),
        case(
            "NotPrincipal: anon denied",
            Some(NOT_PRINCIPAL),
            Anonymous,
            "s3:PutObject",
            "a",
            Explicit,
        ),
        // source IP
        Case {
            facts: &[("aws:SourceIp", "192.0.2.17")],
            ..case(
                "ip in range",
                Some(SOURCE_IP),
                Anonymous,
                "s3:GetObject",
                "a",
                Policy,
            )
        },
        Case {
            facts: &[("aws:SourceIp", "198.51.100.1")],
            ..case(
                "ip out of range",
                Some(SOURCE_IP),
                Anonymous,
                "s3:GetObject",
                "a",
                Implicit,
            )
        },
        Case {
            facts: &[("aws:SourceIp", "2001:db8:1::5")],
            ..case(
                "ipv6 in range",
                Some(SOURCE_IP),
                Anonymous,
                "s3:GetObject",
                "a",
                Policy,
            )
        },
        Case {
            facts: &[("aws:SourceIp", "::ffff:192.0.2.9")],
            ..case(
                "v4-mapped v6 in range",
                Some(SOURCE_IP),
                Anonymous,
                "s3:GetObject",
                "a",
                Policy,
            )
        },
        case(
            "ip missing",
            Some(SOURCE_IP),
            Anonymous,
            "s3:GetObject",
            "a",
            Implicit,
        ),
        Case {
            facts: &[("aws:SourceIp", "127.0.0.1")],
            ..case(
                "NotIpAddress denies outsiders",
                Some(NOT_IP_DENY),
                Root,
                "s3:GetObject",
                "a",
                Explicit,
            )
        },
        Case {
            facts: &[("aws:SourceIp", "192.0.2.1")],
            ..case(
                "NotIpAddress lets office",
                Some(NOT_IP_DENY),
                Root,
                "s3:GetObject",
                "a",
                Owner,
            )
        },
        // Referer
        Case {
            facts: &[("aws:Referer", "https://app.example/page")],
            ..case(
                "referer ok",
                Some(REFERER),
                Anonymous,
                "s3:GetObject",
                "a",
                Policy,
            )
        },
        Case {
            facts: &[("aws:Referer", "https://cdn.app.example/x")],
            ..case(
                "referer subdomain",
                Some(REFERER),
                Anonymous,
                "s3:GetObject",
                "a",
                Policy,
            )
        },
        Case {
            facts: &[("aws:Referer", "https://evil.example/")],
            ..case(
                "referer bad",
                Some(REFERER),
                Anonymous,
                "s3:GetObject",
                "a",
                Implicit,
            )
        },
        case(
            "referer missing",
            Some(REFERER),
            Anonymous,
            "s3:GetObject",
            "a",
            Implicit,
        ),
        Case {
            facts: &[("aws:Referer", "https://app.example/p")],
            ..case(
                "StringNotLike deny: good referer",
                Some(DENY_NO_REFERER),
                Anonymous,
                "s3:GetObject",
                "a",
                Policy,
            )
        },
        Case {
            facts: &[("aws:Referer", "https://evil.example/")],
            ..case(
                "StringNotLike deny: bad referer",
                Some(DENY_NO_REFERER),
                Anonymous,
                "s3:GetObject",
                "a",
                Explicit,
            )
        },
        case(
            "StringNotLike deny: missing referer",
            Some(DENY_NO_REFERER),
            Anonymous,
            "s3:GetObject",
            "a",
            Explicit,
        ),
        Case {
            facts: &[("aws:Referer", "https://a.example/")],
            ..case(
                "ignore case",
                Some(IGNORE_CASE),
                Anonymous,
                "s3:GetObject",
                "a",
                Policy,
            )
        },
        // Bool, numeric, date, x-amz-acl, user agent
        Case {
            facts: &[("aws:SecureTransport", "false")],
            ..case(
                "plain HTTP denied",
                Some(SECURE),
                Root,
                "s3:GetObject",
                "a",
                Explicit,
            )
        },
        Case {
            facts: &[("aws:SecureTransport", "true")],
            ..case(
                "TLS allowed",
                Some(SECURE),
                Root,
                "s3:GetObject",
                "a",
                Owner,
            )
        },
        Case {
            facts: &[("s3:max-keys", "5"), ("s3:delimiter", "/")],
            ..case(
                "max-keys under",
                Some(MAX_KEYS),
                Anonymous,
                "s3:ListBucket",
                "",
                Policy,
            )
        },
        Case {
            facts: &[("s3:max-keys", "1000"), ("s3:delimiter", "/")],
            ..case(
                "max-keys over",
                Some(MAX_KEYS),
                Anonymous,
                "s3:ListBucket",
                "",
                Implicit,
            )
        },
        Case {
            facts: &[("s3:max-keys", "5")],
            ..case(
                "delimiter missing",
                Some(MAX_KEYS),
                Anonymous,
                "s3:ListBucket",
                "",
                Implicit,
            )
        },
        Case {
            facts: &[("s3:max-keys", "6")],
            ..case(
                "numeric greater",
                Some(NUMERIC_GT),
                Anonymous,
                "s3:ListBucket",
                "",
                Policy,
            )
        },
        Case {
            facts: &[("s3:max-keys", "abc")],
            ..case(
                "numeric unparsable",
                Some(NUMERIC_GT),
                Anonymous,
                "s3:ListBucket",
                "",
                Implicit,
            )
        },
        Case {
            facts: &[("aws:CurrentTime", "2026-06-01T12:00:00Z")],
            ..case(
                "inside time window",
                Some(TIME_WINDOW),
                Anonymous,
                "s3:GetObject",
                "a",
                Policy,
            )
        },
        Case {
            facts: &[("aws:CurrentTime", "2027-06-01T12:00:00Z")],
            ..case(
                "after time window",
                Some(TIME_WINDOW),
                Anonymous,
                "s3:GetObject",
                "a",
                Implicit,
            )
        },
        Case {
            facts: &[("s3:x-amz-acl", "private")],
            ..case(
                "x-amz-acl private",
                Some(ACL_CONDITION),
                User("carol"),
                "s3:PutObject",
                "a",
                Policy,
            )
        },
        Case {
            facts: &[("s3:x-amz-acl", "public-read")],
            ..case(
                "x-amz-acl public",
                Some(ACL_CONDITION),
                User("carol"),
                "s3:PutObject",
                "a",
                Implicit,
            )
        },
        case(
            "x-amz-acl absent",
            Some(ACL_CONDITION),
            User("carol"),
            "s3:PutObject",
            "a",
            Implicit,
        ),
        Case {
            facts: &[("aws:UserAgent", "curl/8.0")],
            ..case(
                "user agent denied",
                Some(USER_AGENT),
                Root,
                "s3:GetObject",
                "a",
                Explicit,
            )
        },
        Case {
            facts: &[("aws:UserAgent", "aws-sdk-rust")],
            ..case(
                "user agent fine",
                Some(USER_AGENT),
                Root,
                "s3:GetObject",
                "a",
                Owner,
            )
        },
        case(
            "Null: missing UA denied",
            Some(NULL_AND_IFEXISTS),
            Anonymous,
            "s3:GetObject",
            "a",
            Explicit,
        ),
        Case {
            facts: &[("aws:UserAgent", "x")],
            ..case(
                "IfExists: no referer ok",
                Some(NULL_AND_IFEXISTS),
                Anonymous,
                "s3:GetObject",
                "a",
                Policy,
            )
        },
        Case {
            facts: &[("aws:UserAgent", "x"), ("aws:Referer", "https://bad/")],
            ..case(
                "IfExists: wrong referer",
                Some(NULL_AND_IFEXISTS),
                Anonymous,
                "s3:GetObject",
                "a",
                Implicit,
            )
        },
        Case {
            facts: &[("s3:prefix", "photos/")],
            ..case(
                "StringNotEquals passes",
                Some(STRING_NOT_EQUALS),
                Anonymous,
                "s3:ListBucket",
                "",
                Policy,
            )
        },
        Case {
            facts: &[("s3:prefix", "admin/")],
            ..case(
                "StringNotEquals blocks",
                Some(STRING_NOT_EQUALS),
                Anonymous,
                "s3:ListBucket",
                "",
                Implicit,
            )
        },
        case(
            "StringNotEquals missing key is true",
            Some(STRING_NOT_EQUALS),
            Anonymous,
            "s3:ListBucket",
            "",
            Policy,
        ),
        // public access block
        Case {
            pab: "RestrictPublicBuckets",
            ..case(
                "restrict: anon loses public policy",
                Some(PUBLIC_READ),
                Anonymous,
                "s3:GetObject",
                "a",
                Implicit,
            )
        },
        Case {
            pab: "RestrictPublicBuckets",
            ..case(
                "restrict: users keep it",
                Some(PUBLIC_READ),
                User("bob"),
                "s3:GetObject",
                "a",
                Policy,
            )
        },
        Case {
            pab: "RestrictPublicBuckets",
            facts: &[("aws:SourceIp", "192.0.2.1")],
            ..case(
                "restrict: ip-limited policy is not public",
                Some(SOURCE_IP),
                Anonymous,
                "s3:GetObject",
                "a",
                Policy,
            )
        },
        Case {
            pab: "RestrictPublicBuckets",
            ..case(
                "restrict: explicit deny still applies",
                Some(DENY_OVERRIDES),
                Anonymous,
                "s3:GetObject",
                "secret/x",
                Explicit,
            )
        },
        Case {
            pab: "IgnorePublicAcls",
            acl: Some(("public-read", Read)),
            ..case(
                "ignore public ACL",
                None,
                Anonymous,
                "s3:GetObject",
                "a",
                Implicit,
            )
        },
        Case {
            pab: "IgnorePublicAcls",
            acl: Some(("authenticated-read", Read)),
            ..case(
                "ignore authenticated-read",
                None,
                User("x"),
                "s3:GetObject",
                "a",
                Implicit,
            )
        },
        Case {
            pab: "IgnorePublicAcls",
            ..case(
                "ignore ACLs keeps policy",
                Some(PUBLIC_READ),
                Anonymous,
                "s3:GetObject",
                "a",
                Policy,
            )
        },
        Case {
            pab: "BlockPublicAcls",
            acl_to_set: Some("public-read"),
            ..case(
                "block setting public ACL (root)",
                None,
                Root,
                "s3:PutObject",
                "a",
                BlockAcls,
            )
        },
        Case {
            pab: "BlockPublicAcls",
            acl_to_set: Some("private"),
            ..case(
                "private ACL is fine",
                None,
                Root,
                "s3:PutObject",
                "a",
                Owner,
            )
        },
        Case {
            acl_to_set: Some("public-read"),
            ..case(
                "no block: public ACL is fine",
                None,
                Root,
                "s3:PutBucketAcl",
                "",
                Owner,
            )
        },
        Case {
            pab: "BlockPublicAcls",
            acl_to_set: Some("public-read-write"),
            ..case(
                "explicit deny comes first",
                Some(ROOT_DENY),
                Root,
                "s3:PutObject",
                "a",
                Explicit,
            )
        },
    ]
}

fn pab_of(s: &str) -> PublicAccessBlock {
    PublicAccessBlock {
        block_public_acls: s.contains("BlockPublicAcls"),
        ignore_public_acls: s.contains("IgnorePublicAcls"),
        block_public_policy: s.contains("BlockPublicPolicy"),
        restrict_public_buckets: s.contains("RestrictPublicBuckets"),
    }
}

#[test]
fn decision_table() {
    let mut failures = Vec::new();
    let all = cases();
    for c in &all {
        let policy = c
            .policy
            .map(|p| BucketPolicy::parse(p, B).unwrap_or_else(|e| panic!("{}: {e}", c.name)));
        let mut facts = Facts::default();
        for (k, v) in c.facts {
            facts.insert(k, *v);
        }
        let resource = if c.key.is_empty() {
            format!("arn:aws:s3:::{B}")
        } else {
            format!("arn:aws:s3:::{B}/{}", c.key)
        };
        let req = AccessRequest {
            requester: c.who,
            action: c.action,
            resource: &resource,
            context: &facts,
            policy: policy.as_ref(),
            public_access_block: pab_of(c.pab),
            acl: c.acl.map(|(acl, permission)| AclCheck { acl, permission }),
            acl_to_set: c.acl_to_set,
        };
        let got = decide(&req);
        if kind(&got) != c.want {
            failures.push(format!("{}: want {:?}, got {got}", c.name, c.want));
        }
    }
    assert!(all.len() >= 80, "{} cases", all.len());
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn decisions_print_the_statement() {
    let policy = BucketPolicy::parse(DENY_OVERRIDES, B).unwrap();
    let facts = Facts::default();
    let d = decide(&AccessRequest {
        requester: Anonymous,
        action: "s3:GetObject",
        resource: "arn:aws:s3:::photos/secret/x",
        context: &facts,
        policy: Some(&policy),
        public_access_block: PublicAccessBlock::default(),
        acl: None,
        acl_to_set: None,
    });
    assert_eq!(
        d.to_string(),
        "denied: bucket policy statement 1 (Sid \"NoSecrets\") (explicit Deny)"
    );
}

#[test]
fn public_policies() {
    let public = |p: &str| BucketPolicy::parse(p, B).unwrap().is_public();
    assert!(public(PUBLIC_READ));
    assert!(public(PUBLIC_READ_AWS_STAR));
    assert!(public(REFERER), "Referer does not make a policy non-public");
    assert!(!public(SOURCE_IP));
    assert!(!public(ALICE_RW_PREFIX));
    assert!(!public(ROOT_DENY), "a Deny is never public");
    assert!(public(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}}]}"#
    ));
    assert!(!public(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEquals":{"aws:SourceAccount":"111122223333"}}}]}"#
    ));
}

/// (document, expected kind, part of the message)
const MALFORMED: &[(&str, bool, &str)] = &[
    ("", true, "valid JSON"),
    ("not json", true, "valid JSON"),
    ("[1,2]", true, "first byte must be '{'"),
    (
        r#"{"Version":"2012-10-17"}"#,
        true,
        "Missing required field Statement",
    ),
    (
        r#"{"Version":"2012-10-17","Statement":[]}"#,
        true,
        "Statement is empty",
    ),
    (
        r#"{"Version":"2020-01-01","Statement":[]}"#,
        true,
        "valid version string",
    ),
    (r#"{"Statement":[],"Extra":1}"#, true, "Unknown field Extra"),
    (
        r#"{"Statement":[{"Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
        true,
        "Missing required field Effect",
    ),
    (
        r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
        true,
        "Invalid effect: Maybe",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
        true,
        "Missing required field Principal",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Resource":"arn:aws:s3:::photos/*"}]}"#,
        true,
        "Missing required field Action",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#,
        true,
        "Missing required field Resource",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
        true,
        "both Action and NotAction",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"iam:CreateUser","Resource":"arn:aws:s3:::photos/*"}]}"#,
        true,
        "Policy has invalid action",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:Get Object","Resource":"arn:aws:s3:::photos/*"}]}"#,
        true,
        "Policy has invalid action",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#,
        true,
        "Policy has invalid resource",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"photos/*"}]}"#,
        true,
        "Policy has invalid resource",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos"}]}"#,
        true,
        "Action does not apply to any resource(s) in statement",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::photos/*"}]}"#,
        true,
        "Action does not apply to any resource(s) in statement",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
        true,
        "Invalid principal in policy",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"someone","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
        true,
        "Invalid principal in policy",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":{"Bogus":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
        true,
        "Invalid principal in policy",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEqualz":{"aws:Referer":"x"}}}]}"#,
        true,
        "Invalid Condition type : StringEqualz",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"IpAddress":{"aws:SourceIp":"300.1.1.1/8"}}}]}"#,
        true,
        "Invalid IP address",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}]}"#,
        true,
        "Invalid value \"tomorrow\"",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEquals":{"Referer":"x"}}}]}"#,
        true,
        "invalid condition key",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEquals":["x"]}}]}"#,
        true,
        "Condition must map",
    ),
    (
        r#"{"Statement":[{"Sid":"a","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"},{"Sid":"a","Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
        true,
        "must be unique",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::photos/*"}]}"#,
        false,
        "Principal type Service",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEquals":{"s3:ExistingObjectTag/team":"x"}}}]}"#,
        false,
        "no object tagging",
    ),
    (
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"BinaryEquals":{"aws:Referer":"eA=="}}}]}"#,
        false,
        "BinaryEquals",
    ),
];

#[test]
fn malformed_policies() {
    let mut failures = Vec::new();
    for (doc, malformed, part) in MALFORMED {
        match BucketPolicy::parse(doc, B) {
            Ok(_) => failures.push(format!("accepted: {doc}")),
            Err(e) => {
                let kind_ok = matches!(
                    (&e, malformed),
                    (PolicyError::Malformed(_), true) | (PolicyError::NotImplemented(_), false)
                );
                if !kind_ok || !e.to_string().contains(part) {
                    failures.push(format!("{doc}\n  want {part:?}, got {e:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn too_large_policy() {
    let big = format!(
        r#"{{"Statement":[{{"Sid":"{}","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}]}}"#,
        "x".repeat(document::MAX_POLICY_BYTES)
    );
    assert!(matches!(
        BucketPolicy::parse(&big, B),
        Err(PolicyError::Malformed(_))
    ));
}

#[test]
fn accepted_forms() {
    for doc in [
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"*","Resource":"*"}}"#,
        r#"{"Id":"x","Statement":[{"Effect":"Deny","Principal":{"AWS":"000000000000"},"Action":"s3:*","Resource":"arn:aws:s3:::photos*"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":["s3:ListBucket","s3:GetObject"],"Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*"],"Condition":{"ForAnyValue:StringLike":{"s3:prefix":"a*"},"NumericLessThanEquals":{"s3:max-keys":["10",20]}}}]}"#,
    ] {
        if let Err(e) = BucketPolicy::parse(doc, B) {
            panic!("{doc}: {e}");
        }
    }
}

#[test]
fn cidr_matching() {
    use condition::Cidr;
    let c = Cidr::parse("10.1.0.0/16").unwrap();
    assert!(c.contains("10.1.200.3".parse().unwrap()));
    assert!(!c.contains("10.2.0.1".parse().unwrap()));
    assert!(Cidr::parse("0.0.0.0/0").unwrap().is_everything());
    assert!(
        Cidr::parse("1.2.3.4")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap())
    );
    assert!(Cidr::parse("1.2.3.4/33").is_none());
    assert!(
        Cidr::parse("::1/128")
            .unwrap()
            .contains("::1".parse().unwrap())
    );
}
