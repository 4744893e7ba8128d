//! Stored bucket settings that no longer parse fail closed: each is logged
//! and enforced as its most restrictive value, never as "off". The rows are
//! corrupted in the database while the server is stopped, as a bad
//! migration, a manual edit or a disk fault would leave them.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, bucket_name};
use http::StatusCode;

const ORIGIN: &str = "https://app.example";

fn cors_json() -> aws_sdk_s3::types::CorsConfiguration {
    use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
    CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .allowed_origins(ORIGIN)
                .allowed_methods("GET")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn public_get_policy(bucket: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"),
        }],
    })
    .to_string()
}

/// Runs `sql` with `bucket` bound as `$1` on the stopped server's database.
async fn corrupt(server: &TestServer, sql: &str, bucket: &str) {
    use sqlx::Connection;
    let path = server.data_dir.join("meta.sqlite");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the database");
    let done = sqlx::query(sql)
        .bind(bucket)
        .execute(&mut conn)
        .await
        .expect("corrupt the row");
    assert_eq!(done.rows_affected(), 1, "{sql}");
    conn.close().await.expect("close");
}

async fn anonymous_get(server: &TestServer, path: &str) -> StatusCode {
    server
        .http()
        .get(server.url(path))
        .send()
        .await
        .unwrap()
        .status()
}

async fn preflight(server: &TestServer, bucket: &str) -> StatusCode {
    server
        .http()
        .request(
            reqwest::Method::OPTIONS,
            server.url(&format!("/{bucket}/k")),
        )
        .header("origin", ORIGIN)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn unreadable_settings_are_enforced_as_their_most_restrictive_value() {
    let mut server = TestServer::start();
    let s3 = server.client();
    let [cors, policy, acl, pab, object_acl] =
        ["fc-cors", "fc-policy", "fc-acl", "fc-pab", "fc-objacl"].map(bucket_name);

    // CORS: a rule that allows the origin.
    s3.create_bucket().bucket(&cors).send().await.unwrap();
    s3.put_bucket_cors()
        .bucket(&cors)
        .cors_configuration(cors_json())
        .send()
        .await
        .unwrap();
    // Policy: anonymous GetObject on a private bucket and object.
    s3.create_bucket().bucket(&policy).send().await.unwrap();
    s3.put_bucket_policy()
        .bucket(&policy)
        .policy(public_get_policy(&policy))
        .send()
        .await
        .unwrap();
    // ACL: a public-read bucket anyone may list.
    s3.create_bucket()
        .bucket(&acl)
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    // Public access block: off, with a public-read object.
    s3.create_bucket().bucket(&pab).send().await.unwrap();
    s3.put_public_access_block()
        .bucket(&pab)
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(false)
                .ignore_public_acls(false)
                .block_public_policy(false)
                .restrict_public_buckets(false)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // Object ACL: a public-read object.
    s3.create_bucket().bucket(&object_acl).send().await.unwrap();
    for bucket in [&cors, &policy, &acl, &pab, &object_acl] {
        let mut put = s3
            .put_object()
            .bucket(bucket)
            .key("k")
            .body(b"secret".to_vec().into());
        if bucket == &pab || bucket == &object_acl {
            put = put.acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead);
        }
        put.send().await.unwrap();
    }

    // Before: each setting opens something up.
    assert_eq!(preflight(&server, &cors).await, StatusCode::OK);
    assert_eq!(
        anonymous_get(&server, &format!("/{policy}/k")).await,
        StatusCode::OK
    );
    assert_eq!(
        anonymous_get(&server, &format!("/{acl}")).await,
        StatusCode::OK
    );
    assert_eq!(
        anonymous_get(&server, &format!("/{pab}/k")).await,
        StatusCode::OK
    );
    assert_eq!(
        anonymous_get(&server, &format!("/{object_acl}/k")).await,
        StatusCode::OK
    );

    server.terminate();
    corrupt(
        &server,
        "UPDATE buckets SET cors = '<CORSConfiguration><CORSRule>' WHERE name = $1",
        &cors,
    )
    .await;
    corrupt(
        &server,
        "UPDATE buckets SET policy = '{\"Statement\": 7' WHERE name = $1",
        &policy,
    )
    .await;
    corrupt(
        &server,
        "UPDATE buckets SET acl = 'public-read-everything' WHERE name = $1",
        &acl,
    )
    .await;
    corrupt(
        &server,
        "UPDATE buckets SET public_access_block = 'off' WHERE name = $1",
        &pab,
    )
    .await;
    corrupt(
        &server,
        "UPDATE objects SET acl = 'public-read-everything' WHERE bucket = $1 AND key = 'k'",
        &object_acl,
    )
    .await;
    server.restart();
    let s3 = server.client();

    // After: the broken CORS config allows no origin.
    assert_eq!(preflight(&server, &cors).await, StatusCode::FORBIDDEN);
    let actual = server
        .http()
        .get(server.url(&format!("/{cors}/k")))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert!(
        actual
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // The broken policy denies everyone, the owner included, except that the
    // owner may still repair it.
    assert_eq!(
        anonymous_get(&server, &format!("/{policy}/k")).await,
        StatusCode::FORBIDDEN
    );
    let owner_get = s3.get_object().bucket(&policy).key("k").send().await;
    assert!(owner_get.is_err(), "the owner is denied too: {owner_get:?}");
    s3.delete_bucket_policy()
        .bucket(&policy)
        .send()
        .await
        .unwrap();
    s3.get_object()
        .bucket(&policy)
        .key("k")
        .send()
        .await
        .unwrap();

    // The broken bucket ACL grants nothing; GetBucketAcl says private.
    assert_eq!(
        anonymous_get(&server, &format!("/{acl}")).await,
        StatusCode::FORBIDDEN
    );
    let grants = s3.get_bucket_acl().bucket(&acl).send().await.unwrap();
    assert_eq!(grants.grants().len(), 1, "only the owner: {grants:?}");

    // The broken public access block is all on: public ACLs are ignored and
    // new public ACLs refused.
    assert_eq!(
        anonymous_get(&server, &format!("/{pab}/k")).await,
        StatusCode::FORBIDDEN
    );
    let block = s3
        .get_public_access_block()
        .bucket(&pab)
        .send()
        .await
        .unwrap();
    let c = block.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            c.block_public_acls(),
            c.ignore_public_acls(),
            c.block_public_policy(),
            c.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );

    // The broken object ACL grants nothing.
    assert_eq!(
        anonymous_get(&server, &format!("/{object_acl}/k")).await,
        StatusCode::FORBIDDEN
    );

    let log = server.log();
    for setting in ["cors", "policy", "acl", "public access block"] {
        let logged = log.lines().any(|line| {
            line.contains("ERROR")
                && line.contains("does not parse")
                && line.contains(&format!("\"{setting}\""))
        });
        assert!(logged, "no error logged for {setting}:\n{log}");
    }
}
