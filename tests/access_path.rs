//! One access path: the CORS configuration API is decided by the same
//! bucket policy as every other operation. `s3:PutBucketCORS` grants
//! PutBucketCors and DeleteBucketCors, `s3:GetBucketCORS` GetBucketCors, to
//! a user as S3 does; an explicit Deny on them applies to users and to the
//! root key alike (root keeps only the policy-management actions).

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod s3_util;

use std::process::Command;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use common::{SECRET_KEY, TestServer, bucket_name, client_for};
use s3_util::sdk_err;

fn preflight(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_preflight"))
        .args(args)
        .env_remove("PREFLIGHT_ACCESS_KEY")
        .env_remove("PREFLIGHT_SECRET_KEY")
        .output()
        .expect("run preflight")
}

/// A server with an admin listener, a bucket, and a client for user `alice`.
async fn server_with_alice(tag: &str) -> (TestServer, Client, Client, String) {
    let server = TestServer::start_with(&["--admin-addr", "127.0.0.1:0"]);
    let admin = format!(
        "http://{}",
        server.admin_addr.clone().expect("admin listener")
    );
    let root = server.client();
    let bucket = bucket_name(tag);
    root.create_bucket().bucket(&bucket).send().await.unwrap();
    let out = preflight(&[
        "keys",
        "add",
        "alice",
        "--admin-url",
        &admin,
        "--secret-key",
        SECRET_KEY,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ak = created["access_key"].as_str().unwrap();
    let sk = created["secret_key"].as_str().unwrap();
    let alice = client_for(&server.endpoint, ak, sk, true);
    (server, root, alice, bucket)
}

async fn set_policy(s3: &Client, bucket: &str, statements: &str) {
    let policy = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put policy: {e:?}"));
}

fn cors_config() -> CorsConfiguration {
    CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .allowed_origins("https://app.example.com")
                .allowed_methods("GET")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// Put, Get and Delete of the bucket's CORS configuration, in that order:
/// each call's status and error code, `(0, "")` when it succeeded.
async fn cors_calls(s3: &Client, bucket: &str) -> [(u16, String); 3] {
    let put = s3
        .put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(cors_config())
        .send()
        .await
        .map(|_| ());
    let get = s3.get_bucket_cors().bucket(bucket).send().await.map(|_| ());
    let delete = s3
        .delete_bucket_cors()
        .bucket(bucket)
        .send()
        .await
        .map(|_| ());
    [outcome(put), outcome(get), outcome(delete)]
}

fn outcome<E>(res: Result<(), SdkError<E, HttpResponse>>) -> (u16, String)
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    match res {
        Ok(()) => (0, String::new()),
        Err(e) => sdk_err::<E, ()>(Err(e)),
    }
}

fn ok() -> (u16, String) {
    (0, String::new())
}

fn denied() -> (u16, String) {
    (403, "AccessDenied".into())
}

/// The front and s3s named every request's operation alike.
fn same_operation_everywhere(server: &TestServer) {
    let log = server.log();
    assert!(!log.contains("disagree on the operation"), "{log}");
}

const ALICE: &str = r#"{"AWS":"arn:aws:iam::000000000000:user/alice"}"#;

#[tokio::test]
async fn a_bucket_policy_grants_the_cors_api_to_a_user() {
    let (server, root, alice, bucket) = server_with_alice("ap-grant").await;
    // Without a policy a user may do nothing with the CORS configuration.
    assert_eq!(
        cors_calls(&alice, &bucket).await,
        [denied(), denied(), denied()]
    );

    // s3:GetBucketCORS only: reading works, writing and deleting do not. The
    // configuration root sets is what alice reads.
    set_policy(
        &root,
        &bucket,
        &format!(
            r#"{{"Effect":"Allow","Principal":{ALICE},"Action":"s3:GetBucketCORS","Resource":"arn:aws:s3:::{bucket}"}}"#
        ),
    )
    .await;
    root.put_bucket_cors()
        .bucket(&bucket)
        .cors_configuration(cors_config())
        .send()
        .await
        .unwrap();
    let got = alice
        .get_bucket_cors()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(got.cors_rules().len(), 1);
    let put = alice
        .put_bucket_cors()
        .bucket(&bucket)
        .cors_configuration(cors_config())
        .send()
        .await;
    assert_eq!(sdk_err(put), denied());
    let delete = alice.delete_bucket_cors().bucket(&bucket).send().await;
    assert_eq!(sdk_err(delete), denied());

    // s3:PutBucketCORS covers PutBucketCors and DeleteBucketCors.
    set_policy(
        &root,
        &bucket,
        &format!(
            r#"{{"Effect":"Allow","Principal":{ALICE},"Action":["s3:PutBucketCORS","s3:GetBucketCORS"],"Resource":"arn:aws:s3:::{bucket}"}}"#
        ),
    )
    .await;
    assert_eq!(cors_calls(&alice, &bucket).await, [ok(), ok(), ok()]);
    let gone = alice.get_bucket_cors().bucket(&bucket).send().await;
    assert_eq!(sdk_err(gone), (404, "NoSuchCORSConfiguration".into()));

    // A grant on another bucket's ARN grants nothing here.
    set_policy(
        &root,
        &bucket,
        &format!(
            r#"{{"Effect":"Allow","Principal":{ALICE},"Action":"s3:*","Resource":"arn:aws:s3:::{bucket}/*"}}"#
        ),
    )
    .await;
    assert_eq!(
        cors_calls(&alice, &bucket).await,
        [denied(), denied(), denied()]
    );
    same_operation_everywhere(&server);
}

#[tokio::test]
async fn an_explicit_deny_on_the_cors_api_applies_to_users_and_root() {
    let (server, root, alice, bucket) = server_with_alice("ap-deny").await;
    // Alice may do everything on the bucket but change its CORS configuration.
    set_policy(
        &root,
        &bucket,
        &format!(
            r#"{{"Effect":"Allow","Principal":{ALICE},"Action":"s3:*","Resource":"arn:aws:s3:::{bucket}"}},
            {{"Effect":"Deny","Principal":{ALICE},"Action":"s3:PutBucketCORS","Resource":"arn:aws:s3:::{bucket}"}}"#
        ),
    )
    .await;
    root.put_bucket_cors()
        .bucket(&bucket)
        .cors_configuration(cors_config())
        .send()
        .await
        .unwrap();
    assert_eq!(
        cors_calls(&alice, &bucket).await,
        [denied(), ok(), denied()]
    );
    // Root is not named by that Deny.
    assert_eq!(cors_calls(&root, &bucket).await, [ok(), ok(), ok()]);

    // A Deny for everyone binds the root key too: CORS actions are not among
    // the policy-management actions the owner keeps.
    set_policy(
        &root,
        &bucket,
        &format!(
            r#"{{"Effect":"Deny","Principal":"*","Action":["s3:PutBucketCORS","s3:GetBucketCORS"],"Resource":"arn:aws:s3:::{bucket}"}}"#
        ),
    )
    .await;
    assert_eq!(
        cors_calls(&root, &bucket).await,
        [denied(), denied(), denied()]
    );
    assert_eq!(
        cors_calls(&alice, &bucket).await,
        [denied(), denied(), denied()]
    );
    // The owner can still lift the Deny, and then manage CORS again.
    root.delete_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(cors_calls(&root, &bucket).await, [ok(), ok(), ok()]);
    same_operation_everywhere(&server);
}
