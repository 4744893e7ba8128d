//! Runs every S3 CORS conformance case (tests/data/cors-cases.json, many
//! recorded from real AWS; tests/data/preflight-cases.json, Preflight's
//! choices where S3 is silent) against the real server. Case conventions:
//! spec §13; every case runs in its own freshly created bucket.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use common::sign::sign_request;
use common::{TestServer, xml_field};
use md5::Digest;
use serde_json::Value;

const MD5_PLACEHOLDER: &str = "<base64 MD5 of body>";

struct Ctx {
    server: TestServer,
    s3: aws_sdk_s3::Client,
    http: reqwest::Client,
}

/// Replaces whole occurrences of the case's bucket name (not touching
/// letters, digits, `-` or `_`).
fn rename(s: &str, from: &str, to: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(from) {
        out.push_str(&rest[..i]);
        let before_ok = out.chars().next_back().is_none_or(|c| !is_word(c));
        let after_ok = rest[i + from.len()..]
            .chars()
            .next()
            .is_none_or(|c| !is_word(c));
        out.push_str(if before_ok && after_ok { to } else { from });
        rest = &rest[i + from.len()..];
    }
    out.push_str(rest);
    out
}

fn content_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}

/// A raw response, headers joined per name as a browser sees them.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

async fn send(
    ctx: &Ctx,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = ctx.http.request(method, url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let res = req.body(body).send().await.expect("request sent");
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = res.text().await.unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

/// A signed PutBucketCors with Content-MD5, sending the XML unchanged.
async fn put_cors(ctx: &Ctx, bucket: &str, xml: &str) -> Reply {
    let url = ctx.server.url(&format!("/{bucket}?cors"));
    let headers = vec![("content-md5".to_owned(), content_md5(xml.as_bytes()))];
    let (url, mut signed) = sign_request("PUT", &url, &headers, xml.as_bytes(), None);
    signed.extend(headers);
    send(ctx, "PUT", &url, &signed, xml.as_bytes().to_vec()).await
}

async fn delete_cors(ctx: &Ctx, bucket: &str) -> Reply {
    let url = ctx.server.url(&format!("/{bucket}?cors"));
    let (url, signed) = sign_request("DELETE", &url, &[], b"", None);
    send(ctx, "DELETE", &url, &signed, Vec::new()).await
}

/// A history step's XML: a whole document, CORSRule elements, or the
/// members of one rule separated by commas.
fn history_xml(arg: &str) -> String {
    let arg = arg.trim();
    if arg.contains("<CORSConfiguration") {
        arg.to_owned()
    } else if arg.contains("<CORSRule") {
        format!("<CORSConfiguration>{arg}</CORSConfiguration>")
    } else {
        let members: String = arg.split(">,").collect::<Vec<_>>().join(">");
        format!("<CORSConfiguration><CORSRule>{members}</CORSRule></CORSConfiguration>")
    }
}

async fn setup(ctx: &Ctx, case: &Value, bucket: &str, from: &str) -> Result<(), String> {
    let setup = &case["setup"];
    if setup["bucket_exists"] == Value::Bool(false) {
        return Ok(());
    }
    let mut create = ctx.s3.create_bucket().bucket(bucket);
    if let Some(acl) = setup["bucket_acl"].as_str() {
        create = create.acl(acl.into());
    }
    create
        .send()
        .await
        .map_err(|e| format!("create bucket: {e:?}"))?;
    for obj in setup["objects"].as_array().into_iter().flatten() {
        let mut put = ctx
            .s3
            .put_object()
            .bucket(bucket)
            .key(obj["key"].as_str().unwrap_or_default())
            .body(ByteStream::from(
                obj["body"].as_str().unwrap_or_default().as_bytes().to_vec(),
            ));
        if let Some(acl) = obj["acl"].as_str() {
            put = put.acl(acl.into());
        }
        put.send().await.map_err(|e| format!("put object: {e:?}"))?;
    }
    for step in setup["history"].as_array().into_iter().flatten() {
        let step = rename(step.as_str().unwrap_or_default(), from, bucket);
        let (call, expect) = match step.rsplit_once("->") {
            Some((c, s)) => (c.trim().to_owned(), s.trim().parse::<u16>().ok()),
            None => (step.trim().to_owned(), None),
        };
        let reply = if let Some(arg) = call
            .strip_prefix("PutBucketCors(")
            .and_then(|r| r.strip_suffix(')'))
        {
            put_cors(ctx, bucket, &history_xml(arg)).await
        } else if call == "DeleteBucketCors" {
            delete_cors(ctx, bucket).await
        } else {
            return Err(format!("unknown history step {call}"));
        };
        if let Some(s) = expect
            && reply.status != s
        {
            return Err(format!("history {call}: status {} != {s}", reply.status));
        }
    }
    if let Some(xml) = case["cors_config"].as_str() {
        let reply = put_cors(ctx, bucket, &rename(xml, from, bucket)).await;
        if reply.status != 200 {
            return Err(format!("PutBucketCors: {} {}", reply.status, reply.body));
        }
    }
    Ok(())
}

/// Builds and sends the case's request.
async fn request(ctx: &Ctx, case: &Value, bucket: &str, from: &str) -> Reply {
    let req = &case["request"];
    let method = req["method"].as_str().expect("method");
    let path = rename(req["path"].as_str().expect("path"), from, bucket);
    let body = req["body"]
        .as_str()
        .map(|b| rename(b, from, bucket))
        .unwrap_or_default();
    let mut headers: Vec<(String, String)> = req["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let v = rename(v.as_str().unwrap_or_default(), from, bucket);
            let v = if v == MD5_PLACEHOLDER {
                content_md5(body.as_bytes())
            } else {
                v
            };
            (k.clone(), v)
        })
        .collect();
    let auth = req["auth"].as_str().unwrap_or("anonymous");
    let mut url = ctx.server.url(&path);
    if auth == "owner" {
        let (signed_url, signed) = sign_request(method, &url, &headers, body.as_bytes(), None);
        url = signed_url;
        headers.extend(signed);
    } else if let Some(rest) = auth.strip_prefix("presigned-url") {
        // Replace the placeholder query with a real presigned one.
        let for_method = rest
            .rsplit("generated for ")
            .next()
            .unwrap_or(method)
            .trim_end_matches(')')
            .trim();
        let (base, query) = path.split_once('?').unwrap_or((&path, ""));
        let expires = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("X-Amz-Expires="))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(3600);
        let (signed_url, _) = sign_request(
            for_method,
            &ctx.server.url(base),
            &[],
            b"",
            Some(Duration::from_secs(expires)),
        );
        url = signed_url;
    }
    send(ctx, method, &url, &headers, body.into_bytes()).await
}

/// The `(name, text)` children of the `<Error>` element.
fn error_children(body: &str) -> Vec<(String, String)> {
    let Some(start) = body.find("<Error>") else {
        return Vec::new();
    };
    let mut rest = &body[start + "<Error>".len()..];
    let mut out = Vec::new();
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let name = &after[..close];
        if name.starts_with('/') {
            break;
        }
        let end_tag = format!("</{name}>");
        let content = &after[close + 1..];
        let Some(end) = content.find(&end_tag) else {
            break;
        };
        out.push((name.to_owned(), unescape(&content[..end])));
        rest = &content[end + end_tag.len()..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// GetBucketCors XML in botocore's shape, parsed independently of the engine.
fn parse_rules(body: &str) -> Value {
    let mut rules = Vec::new();
    for chunk in body.split("<CORSRule>").skip(1) {
        let chunk = chunk.split("</CORSRule>").next().unwrap_or_default();
        let mut rule = serde_json::Map::new();
        let mut rest = chunk;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('>') else { break };
            let name = after[..close].to_owned();
            let end_tag = format!("</{name}>");
            let content = &after[close + 1..];
            let Some(end) = content.find(&end_tag) else {
                break;
            };
            let text = unescape(&content[..end]);
            rest = &content[end + end_tag.len()..];
            let list = match name.as_str() {
                "AllowedHeader" => "AllowedHeaders",
                "AllowedMethod" => "AllowedMethods",
                "AllowedOrigin" => "AllowedOrigins",
                "ExposeHeader" => "ExposeHeaders",
                "ID" => {
                    rule.insert("ID".into(), Value::String(text));
                    continue;
                }
                "MaxAgeSeconds" => {
                    let n: i64 = text.parse().unwrap_or(i64::MIN);
                    rule.insert("MaxAgeSeconds".into(), Value::from(n));
                    continue;
                }
                other => {
                    rule.insert(format!("unknown:{other}"), Value::String(text));
                    continue;
                }
            };
            rule.entry(list)
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .expect("array")
                .push(Value::String(text));
        }
        rules.push(Value::Object(rule));
    }
    Value::Array(rules)
}

/// Compares a reply with the expectation; returns the mismatches.
fn check(case: &Value, reply: &Reply, bucket: &str, from: &str) -> Vec<String> {
    let expect = &case["expect"];
    let mut bad = Vec::new();
    let ren = |v: &Value| rename(v.as_str().unwrap_or_default(), from, bucket);
    if let Some(status) = expect["status"].as_u64()
        && u64::from(reply.status) != status
    {
        bad.push(format!("status {} != {status}", reply.status));
    }
    for (name, want) in expect["headers"].as_object().into_iter().flatten() {
        let got = reply.header(name);
        match want {
            Value::Null if got.is_some() => bad.push(format!("{name}: {got:?} should be absent")),
            Value::Null => {}
            v => {
                let want = ren(v);
                if got.as_deref() != Some(want.as_str()) {
                    bad.push(format!("{name}: {got:?} != {want:?}"));
                }
            }
        }
    }
    let children = error_children(&reply.body);
    let child = |n: &str| {
        children
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    if let Some(code) = expect["error_code"].as_str()
        && child("Code").as_deref() != Some(code)
    {
        bad.push(format!("error code {:?} != {code:?}", child("Code")));
    }
    if !expect["error_message"].is_null() {
        let want = ren(&expect["error_message"]);
        if child("Message").as_deref() != Some(want.as_str()) {
            bad.push(format!("message {:?} != {want:?}", child("Message")));
        }
    }
    if !expect["error_message_contains"].is_null() {
        let want = ren(&expect["error_message_contains"]);
        if !child("Message").unwrap_or_default().contains(&want) {
            bad.push(format!("message {:?} lacks {want:?}", child("Message")));
        }
    }
    for (name, want) in expect["error_fields"].as_object().into_iter().flatten() {
        let want = ren(want);
        if child(name).as_deref() != Some(want.as_str()) {
            bad.push(format!("<{name}> {:?} != {want:?}", child(name)));
        }
    }
    if !expect["body"].is_null() {
        let want = ren(&expect["body"]);
        if reply.body != want {
            bad.push(format!("body {:?} != {want:?}", reply.body));
        }
    }
    if !expect["cors_rules"].is_null() {
        let got = parse_rules(&reply.body);
        let want: Value =
            serde_json::from_str(&rename(&expect["cors_rules"].to_string(), from, bucket))
                .expect("json");
        if got != want {
            bad.push(format!("cors_rules {got} != {want}"));
        }
    }
    if xml_field(&reply.body, "Error").is_some() || reply.body.contains("<Error>") {
        // Every S3 error document carries a request id.
        if child("RequestId").is_none_or(|r| r.is_empty()) {
            bad.push("error body without RequestId".to_owned());
        }
    }
    bad
}

async fn run_file(ctx: &Ctx, file: &str, min_cases: usize) {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("case file")).expect("json");
    assert!(
        cases.len() >= min_cases,
        "{file}: only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let id = case["id"].as_str().unwrap_or("?");
        let from = case["setup"]["bucket"].as_str().unwrap_or("cors-bucket");
        let bucket = format!("cc{}-{i}-{}", std::process::id(), file.len());
        if let Err(e) = setup(ctx, case, &bucket, from).await {
            failures.push(format!("{id}: setup: {e}"));
            continue;
        }
        let reply = request(ctx, case, &bucket, from).await;
        let bad = check(case, &reply, &bucket, from);
        if bad.is_empty() {
            println!("PASS {id}");
        } else {
            println!("FAIL {id}: {}", bad.join("; "));
            failures.push(format!("{id}: {}", bad.join("; ")));
        }
    }
    println!(
        "{file}: {} passed, {} failed",
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{file}: {} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn ctx() -> Ctx {
    ctx_with(&[])
}

fn ctx_with(args: &[&str]) -> Ctx {
    let server = TestServer::start_with(args);
    let s3 = server.client();
    let http = server.http();
    Ctx { server, s3, http }
}

#[tokio::test]
async fn shared_cors_cases() {
    let ctx = ctx();
    run_file(&ctx, "cors-cases.json", 76).await;
}

#[tokio::test]
async fn preflight_choice_cases() {
    let ctx = ctx();
    run_file(&ctx, "preflight-cases.json", 10).await;
}

/// The same cases against a node whose metadata is in PostgreSQL (the
/// scale-out deployment): the CORS layer reads the same cache, filled from
/// another store.
#[tokio::test]
async fn shared_cors_cases_on_postgres() {
    let Some(db) = common::postgres::fresh_database().await else {
        return;
    };
    let ctx = ctx_with(&["--meta", &db]);
    run_file(&ctx, "cors-cases.json", 76).await;
    run_file(&ctx, "preflight-cases.json", 10).await;
}

#[test]
fn rename_whole_names_only() {
    assert_eq!(rename("/cors-bucket/k", "cors-bucket", "x1"), "/x1/k");
    assert_eq!(
        rename("cors-bucket-two", "cors-bucket", "x1"),
        "cors-bucket-two"
    );
    assert_eq!(
        rename("<B>cors-bucket</B>", "cors-bucket", "x1"),
        "<B>x1</B>"
    );
}
