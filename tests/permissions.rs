//! Bucket policies, the public access block and users' access keys against
//! the real server: anonymous access granted by a policy and taken away by a
//! public access block, a user's key limited by a policy, conditions on the
//! source IP and Referer, and `preflight keys` on a data dir and through the
//! admin listener.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod s3_util;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ObjectCannedAcl, PublicAccessBlockConfiguration};
use common::fixtures::{new_bucket, preflight, put_object};
use common::{ACCESS_KEY, SECRET_KEY, TestServer, bucket_name, client_for};
use s3_util::{expect_error, sdk_err};

async fn put(s3: &Client, bucket: &str, key: &str) {
    put_object(s3, bucket, key, b"data").await;
}

async fn set_policy(s3: &Client, bucket: &str, policy: &str) {
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put policy: {e:?}"));
}

fn pab(acls: bool, ignore: bool, policy: bool, restrict: bool) -> PublicAccessBlockConfiguration {
    PublicAccessBlockConfiguration::builder()
        .block_public_acls(acls)
        .ignore_public_acls(ignore)
        .block_public_policy(policy)
        .restrict_public_buckets(restrict)
        .build()
}

async fn set_pab(s3: &Client, bucket: &str, config: PublicAccessBlockConfiguration) {
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(config)
        .send()
        .await
        .unwrap();
}

/// The status of an anonymous GET.
async fn anon_get(server: &TestServer, path: &str) -> reqwest::StatusCode {
    server.anon_get(path).await.status()
}

/// `preflight keys SUBCOMMAND...` through the admin listener at `admin`.
fn keys_admin(admin: &str, secret: &str, sub: &[&str]) -> std::process::Output {
    let mut args = vec!["keys"];
    args.extend_from_slice(sub);
    args.extend_from_slice(&["--admin-url", admin, "--secret-key", secret]);
    preflight(&args)
}

#[tokio::test]
async fn policy_api_round_trip_and_errors() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "pol-api").await;

    let missing = s3.get_bucket_policy().bucket(&bucket).send().await;
    assert_eq!(sdk_err(missing), (404, "NoSuchBucketPolicy".into()));
    let status = s3.get_bucket_policy_status().bucket(&bucket).send().await;
    assert_eq!(sdk_err(status), (404, "NoSuchBucketPolicy".into()));

    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Pub","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    );
    set_policy(&s3, &bucket, &policy).await;
    let got = s3.get_bucket_policy().bucket(&bucket).send().await.unwrap();
    assert_eq!(got.policy(), Some(policy.as_str()));
    let status = s3
        .get_bucket_policy_status()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.policy_status().and_then(|s| s.is_public()),
        Some(true)
    );

    // Malformed documents: 400 MalformedPolicy naming the problem.
    for (doc, message) in [
        ("{not json", "Policies must be valid JSON"),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#,
            "Missing required field Resource",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::someone-else/*"}]}"#,
            "Policy has invalid resource",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::B/*","Condition":{"StringEqualz":{"aws:Referer":"x"}}}]}"#,
            "Invalid Condition type : StringEqualz",
        ),
    ] {
        let doc = doc.replace("arn:aws:s3:::B/", &format!("arn:aws:s3:::{bucket}/"));
        let res = s3
            .put_bucket_policy()
            .bucket(&bucket)
            .policy(doc)
            .send()
            .await;
        let err = res.unwrap_err();
        let e = err.as_service_error().expect("service error");
        assert_eq!(e.meta().code(), Some("MalformedPolicy"), "{message}");
        assert!(
            e.meta().message().unwrap_or("").contains(message),
            "{:?}",
            e.meta().message()
        );
    }
    // Valid IAM that Preflight does not implement.
    let service = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"Service":"logging.s3.amazonaws.com"}},"Action":"s3:PutObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    );
    let res = s3
        .put_bucket_policy()
        .bucket(&bucket)
        .policy(service)
        .send()
        .await;
    assert_eq!(sdk_err(res), (501, "NotImplemented".into()));
    // The failed puts left the policy as it was.
    let got = s3.get_bucket_policy().bucket(&bucket).send().await.unwrap();
    assert_eq!(got.policy(), Some(policy.as_str()));

    s3.delete_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let missing = s3.get_bucket_policy().bucket(&bucket).send().await;
    assert_eq!(sdk_err(missing), (404, "NoSuchBucketPolicy".into()));

    // Policies survive a restart (stored, re-parsed into the cache).
    set_policy(&s3, &bucket, &policy).await;
    let mut server = server;
    server.restart();
    let s3 = server.client();
    let got = s3.get_bucket_policy().bucket(&bucket).send().await.unwrap();
    assert_eq!(got.policy(), Some(policy.as_str()));
}

#[tokio::test]
async fn anonymous_access_by_policy_and_public_access_block() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "pol-anon").await;
    put(&s3, &bucket, "public/cat.png").await;
    put(&s3, &bucket, "private/diary.txt").await;
    let cat = format!("/{bucket}/public/cat.png");
    let diary = format!("/{bucket}/private/diary.txt");
    assert_eq!(anon_get(&server, &cat).await, 403);

    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"*"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/public/*"}}]}}"#
    );
    set_policy(&s3, &bucket, &policy).await;
    assert_eq!(anon_get(&server, &cat).await, 200);
    assert_eq!(anon_get(&server, &diary).await, 403);
    assert_eq!(
        anon_get(&server, &format!("/{bucket}?list-type=2")).await,
        403
    );
    let res = server.anon_put(&format!("/{bucket}/public/new"), "x").await;
    expect_error(res, 403, "AccessDenied").await;

    // RestrictPublicBuckets: the public policy no longer serves anonymous users.
    set_pab(&s3, &bucket, pab(false, false, false, true)).await;
    let res = server.anon_get(&cat).await;
    expect_error(res, 403, "AccessDenied").await;
    // The owner is unaffected.
    s3.get_object()
        .bucket(&bucket)
        .key("public/cat.png")
        .send()
        .await
        .unwrap();
    let got = s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let c = got.public_access_block_configuration().unwrap();
    assert_eq!(c.restrict_public_buckets(), Some(true));
    assert_eq!(c.block_public_acls(), Some(false));

    // BlockPublicPolicy: a public policy is refused, a non-public one is not.
    set_pab(&s3, &bucket, pab(true, true, true, false)).await;
    let res = s3
        .put_bucket_policy()
        .bucket(&bucket)
        .policy(&policy)
        .send()
        .await;
    assert_eq!(sdk_err(res), (403, "AccessDenied".into()));
    let ip_limited = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/public/*","Condition":{{"IpAddress":{{"aws:SourceIp":"127.0.0.0/8"}}}}}}]}}"#
    );
    set_policy(&s3, &bucket, &ip_limited).await;
    assert_eq!(
        anon_get(&server, &cat).await,
        200,
        "loopback is in 127.0.0.0/8"
    );

    // BlockPublicAcls: setting a public ACL is refused, a private one is not.
    let put_acl_txt = |acl: ObjectCannedAcl| {
        s3.put_object()
            .bucket(&bucket)
            .key("acl.txt")
            .acl(acl)
            .body(ByteStream::from_static(b"x"))
            .send()
    };
    let make_public = || {
        s3.put_object_acl()
            .bucket(&bucket)
            .key("acl.txt")
            .acl(ObjectCannedAcl::PublicRead)
            .send()
    };
    let res = put_acl_txt(ObjectCannedAcl::PublicRead).await;
    assert_eq!(sdk_err(res), (403, "AccessDenied".into()));
    put_acl_txt(ObjectCannedAcl::Private).await.unwrap();
    assert_eq!(sdk_err(make_public().await), (403, "AccessDenied".into()));

    // IgnorePublicAcls: an object made public earlier is not readable.
    s3.delete_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let missing = s3.get_public_access_block().bucket(&bucket).send().await;
    assert_eq!(
        sdk_err(missing),
        (404, "NoSuchPublicAccessBlockConfiguration".into())
    );
    make_public().await.unwrap();
    assert_eq!(anon_get(&server, &format!("/{bucket}/acl.txt")).await, 200);
    set_pab(&s3, &bucket, pab(false, true, false, false)).await;
    assert_eq!(anon_get(&server, &format!("/{bucket}/acl.txt")).await, 403);
}

#[tokio::test]
async fn conditions_on_source_ip_and_referer() {
    let server = TestServer::start();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "pol-cond").await;
    put(&s3, &bucket, "a.txt").await;
    let path = format!("/{bucket}/a.txt");

    // aws:SourceIp is the TCP peer; X-Forwarded-For does not change it.
    let office = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*","Condition":{{"IpAddress":{{"aws:SourceIp":"192.0.2.0/24"}}}}}}]}}"#
    );
    set_policy(&s3, &bucket, &office).await;
    assert_eq!(anon_get(&server, &path).await, 403);
    let forged = server
        .http()
        .get(server.url(&path))
        .header("x-forwarded-for", "192.0.2.7")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // Referer: allowed from the app, not from elsewhere, not without.
    let referer = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*","Condition":{{"StringLike":{{"aws:Referer":"https://app.example/*"}}}}}}]}}"#
    );
    set_policy(&s3, &bucket, &referer).await;
    let get = |r: Option<&'static str>| {
        let mut req = server.http().get(server.url(&path));
        if let Some(r) = r {
            req = req.header("referer", r);
        }
        req.send()
    };
    assert_eq!(
        get(Some("https://app.example/page"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get(Some("https://evil.example/")).await.unwrap().status(),
        403
    );
    assert_eq!(get(None).await.unwrap().status(), 403);

    // Explicit Deny wins over the bucket's public-read-write ACL.
    let pub_bucket = bucket_name("pol-deny");
    s3.create_bucket()
        .bucket(&pub_bucket)
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicReadWrite)
        .send()
        .await
        .unwrap();
    let deny = format!(
        r#"{{"Statement":[{{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::{pub_bucket}/locked/*"}}]}}"#
    );
    set_policy(&s3, &pub_bucket, &deny).await;
    let open = server.anon_put(&format!("/{pub_bucket}/open/x"), "x").await;
    assert_eq!(open.status(), 200);
    let locked = server
        .anon_put(&format!("/{pub_bucket}/locked/x"), "x")
        .await;
    expect_error(locked, 403, "AccessDenied").await;
    // The Deny names everyone: the owner too, except for repairing the policy.
    let res = s3
        .put_object()
        .bucket(&pub_bucket)
        .key("locked/y")
        .body(ByteStream::from_static(b"y"))
        .send()
        .await;
    assert_eq!(sdk_err(res), (403, "AccessDenied".into()));
    s3.delete_bucket_policy()
        .bucket(&pub_bucket)
        .send()
        .await
        .unwrap();
    put(&s3, &pub_bucket, "locked/y").await;
}

#[tokio::test]
async fn user_key_limited_by_policy() {
    let server = TestServer::start_with(&["--admin-addr", "127.0.0.1:0"]);
    let admin = format!(
        "http://{}",
        server.admin_addr.clone().expect("admin listener")
    );
    let s3 = server.client();
    let bucket = new_bucket(&s3, "pol-user").await;
    put(&s3, &bucket, "alice/notes.txt").await;
    put(&s3, &bucket, "bob/notes.txt").await;

    let out = keys_admin(&admin, SECRET_KEY, &["add", "alice", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["arn"], "arn:aws:iam::000000000000:user/alice");
    let ak = created["access_key"].as_str().unwrap().to_owned();
    let sk = created["secret_key"].as_str().unwrap().to_owned();
    let alice = client_for(&server.endpoint, &ak, &sk, true);

    // No policy: a user's key can do nothing.
    let res = alice
        .get_object()
        .bucket(&bucket)
        .key("alice/notes.txt")
        .send()
        .await;
    assert_eq!(sdk_err(res), (403, "AccessDenied".into()));
    let res = alice.list_buckets().send().await;
    assert_eq!(sdk_err(res), (403, "AccessDenied".into()));
    let res = alice
        .create_bucket()
        .bucket(bucket_name("alice-own"))
        .send()
        .await;
    assert_eq!(sdk_err(res), (403, "AccessDenied".into()));

    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Sid":"List","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::000000000000:user/alice"}},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::{bucket}","Condition":{{"StringLike":{{"s3:prefix":"alice/*"}}}}}},
        {{"Sid":"RW","Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::000000000000:user/alice"]}},"Action":["s3:Get*","s3:PutObject"],"Resource":"arn:aws:s3:::{bucket}/alice/*"}},
        {{"Sid":"NoSecrets","Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::000000000000:user/alice"}},"Action":"s3:*","Resource":"arn:aws:s3:::{bucket}/alice/secret*"}}]}}"#
    );
    set_policy(&s3, &bucket, &policy).await;
    alice
        .get_object()
        .bucket(&bucket)
        .key("alice/notes.txt")
        .send()
        .await
        .unwrap();
    alice
        .put_object()
        .bucket(&bucket)
        .key("alice/new.txt")
        .body(ByteStream::from_static(b"hi"))
        .send()
        .await
        .unwrap();
    let list = alice
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("alice/")
        .send()
        .await
        .unwrap();
    assert_eq!(list.key_count(), Some(2));
    for res in [
        sdk_err(alice.list_objects_v2().bucket(&bucket).send().await),
        sdk_err(
            alice
                .get_object()
                .bucket(&bucket)
                .key("bob/notes.txt")
                .send()
                .await,
        ),
        sdk_err(
            alice
                .delete_object()
                .bucket(&bucket)
                .key("alice/new.txt")
                .send()
                .await,
        ),
        sdk_err(
            alice
                .put_object()
                .bucket(&bucket)
                .key("alice/secret.txt")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        ),
        sdk_err(alice.get_bucket_policy().bucket(&bucket).send().await),
    ] {
        assert_eq!(res, (403, "AccessDenied".into()));
    }

    // The CLI lists users without secrets; removing the user revokes the key.
    let out = keys_admin(&admin, SECRET_KEY, &["list"]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listing.contains("alice") && listing.contains(&ak),
        "{listing}"
    );
    assert!(!listing.contains(&sk));
    let wrong = keys_admin(&admin, "wrong", &["list"]);
    assert!(!wrong.status.success());
    let out = keys_admin(&admin, SECRET_KEY, &["remove", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res = alice
        .get_object()
        .bucket(&bucket)
        .key("alice/notes.txt")
        .send()
        .await;
    assert_eq!(sdk_err(res), (403, "InvalidAccessKeyId".into()));

    // Secrets live in the metadata store (no keys.json) and are never logged.
    assert!(!server.data_dir.join("keys.json").exists());
    assert!(!server.log().contains(&sk));
    let _ = ACCESS_KEY;
}

#[tokio::test]
async fn keys_on_a_data_dir_survive_a_restart() {
    let mut server = TestServer::start();
    server.kill9();
    let dir = server.data_dir.to_str().unwrap().to_owned();
    let out = preflight(&["keys", "add", "carol", "--data-dir", &dir, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = preflight(&["keys", "add", "carol", "--data-dir", &dir]);
    assert!(!out.status.success(), "a second carol is refused");
    let out = preflight(&["keys", "add", "no spaces", "--data-dir", &dir]);
    assert!(!out.status.success());
    let out = preflight(&["keys", "list", "--data-dir", &dir, "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["users"][0]["name"], "carol");
    assert!(list["users"][0].get("secret_key").is_none());

    server.restart();
    let s3 = server.client();
    let bucket = new_bucket(&s3, "pol-carol").await;
    let policy = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::000000000000:user/carol"}},"Action":"s3:PutObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    );
    set_policy(&s3, &bucket, &policy).await;
    let carol = client_for(
        &server.endpoint,
        created["access_key"].as_str().unwrap(),
        created["secret_key"].as_str().unwrap(),
        true,
    );
    carol
        .put_object()
        .bucket(&bucket)
        .key("from-carol")
        .body(ByteStream::from_static(b"c"))
        .send()
        .await
        .unwrap();
    let res = carol
        .get_object()
        .bucket(&bucket)
        .key("from-carol")
        .send()
        .await;
    assert_eq!(sdk_err(res), (403, "AccessDenied".into()));

    server.kill9();
    let out = preflight(&["keys", "remove", "carol", "--data-dir", &dir]);
    assert!(out.status.success());
    let out = preflight(&["keys", "list", "--data-dir", &dir]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("No users"));
}
