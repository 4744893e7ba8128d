//! Setup the S3 tests share: buckets and objects made through the SDK,
//! presigned URLs, raw anonymous requests, listings read back as key lists,
//! and multipart uploads of a few parts.

use std::process::Command;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CommonPrefix, CompletedMultipartUpload, CompletedPart, Delete, Object, ObjectIdentifier,
};

use base64::Engine;
use md5::Digest;

use super::sign::sign_request;
use super::{TestServer, bucket_name};

/// Creates a bucket with a unique name built from `tag`.
pub async fn new_bucket(s3: &Client, tag: &str) -> String {
    let bucket = bucket_name(tag);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    bucket
}

/// Creates a bucket and puts every key in it, each with its own name as body.
pub async fn bucket_with_keys(s3: &Client, tag: &str, keys: &[&str]) -> String {
    let bucket = new_bucket(s3, tag).await;
    for key in keys {
        put_object(s3, &bucket, key, key.as_bytes()).await;
    }
    bucket
}

/// PutObject of `body`; returns the ETag.
pub async fn put_object(s3: &Client, bucket: &str, key: &str, body: &[u8]) -> String {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap();
    out.e_tag().unwrap().to_owned()
}

/// GetObject, the whole body.
pub async fn get_bytes(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    get_bytes_and_etag(s3, bucket, key).await.0
}

/// GetObject: the whole body and the ETag (empty when there is none).
pub async fn get_bytes_and_etag(s3: &Client, bucket: &str, key: &str) -> (Vec<u8>, String) {
    let got = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {key}: {e:?}"));
    let etag = got.e_tag().unwrap_or_default().to_owned();
    (
        got.body.collect().await.unwrap().into_bytes().to_vec(),
        etag,
    )
}

/// DeleteObjects of `keys`; `quiet` as the request's Quiet element, absent
/// when `None`.
pub async fn delete_keys(
    s3: &Client,
    bucket: &str,
    keys: &[&str],
    quiet: Option<bool>,
) -> DeleteObjectsOutput {
    let objects = keys
        .iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
        .collect();
    let delete = Delete::builder()
        .set_objects(Some(objects))
        .set_quiet(quiet)
        .build()
        .unwrap();
    s3.delete_objects()
        .bucket(bucket)
        .delete(delete)
        .send()
        .await
        .unwrap()
}

/// A presigning config valid for `secs` seconds.
pub fn presign_for(secs: u64) -> PresigningConfig {
    PresigningConfig::expires_in(Duration::from_secs(secs)).unwrap()
}

/// A presigned GetObject URL, valid for five minutes.
pub async fn presigned_get(s3: &Client, bucket: &str, key: &str) -> String {
    let req = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(presign_for(300))
        .await
        .unwrap();
    req.uri().to_owned()
}

/// The keys of a listing, in order.
pub fn keys(contents: &[Object]) -> Vec<&str> {
    contents.iter().filter_map(|o| o.key()).collect()
}

/// The common prefixes of a listing, in order.
pub fn prefixes(common: &[CommonPrefix]) -> Vec<&str> {
    common.iter().filter_map(|p| p.prefix()).collect()
}

/// CreateMultipartUpload; returns the upload id.
pub async fn create_upload(s3: &Client, bucket: &str, key: &str) -> String {
    let out = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    out.upload_id().unwrap().to_owned()
}

/// UploadPart `n` of `upload`; returns the part's ETag.
pub async fn upload_part(
    s3: &Client,
    bucket: &str,
    key: &str,
    upload: &str,
    n: i32,
    body: &[u8],
) -> String {
    let out = s3
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(upload)
        .part_number(n)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap();
    out.e_tag().unwrap().to_owned()
}

/// The CompleteMultipartUpload document for (part number, ETag) pairs.
pub fn completed(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, etag)| {
                    CompletedPart::builder()
                        .part_number(*n)
                        .e_tag(*etag)
                        .build()
                })
                .collect(),
        ))
        .build()
}

/// Uploads `parts` (numbered from 1) into an upload made elsewhere and
/// completes it; returns the object's ETag.
pub async fn upload_and_complete(
    s3: &Client,
    bucket: &str,
    key: &str,
    upload: &str,
    parts: &[&[u8]],
) -> String {
    let mut etags = Vec::new();
    for (i, body) in parts.iter().enumerate() {
        let n = i32::try_from(i + 1).expect("part number");
        etags.push((n, upload_part(s3, bucket, key, upload, n, body).await));
    }
    let refs: Vec<(i32, &str)> = etags.iter().map(|(n, e)| (*n, e.as_str())).collect();
    let out = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload)
        .multipart_upload(completed(&refs))
        .send()
        .await
        .unwrap();
    out.e_tag().unwrap().to_owned()
}

/// A whole multipart upload of `parts`; returns the object's ETag.
pub async fn multipart_put(s3: &Client, bucket: &str, key: &str, parts: &[&[u8]]) -> String {
    let upload = create_upload(s3, bucket, key).await;
    upload_and_complete(s3, bucket, key, &upload, parts).await
}

/// Runs the `preflight` binary with `args`, without the key variables of the
/// environment.
pub fn preflight(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_preflight"))
        .args(args)
        .env_remove("PREFLIGHT_ACCESS_KEY")
        .env_remove("PREFLIGHT_SECRET_KEY")
        .output()
        .expect("run preflight")
}

impl TestServer {
    /// A request for `path` signed with the root key, `headers` signed along
    /// and sent as given, `body` hashed as the payload; not sent yet, and
    /// without a body: the caller adds the same bytes with `.body(...)`.
    pub fn signed(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let extra: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (url, mut all) = sign_request(method, &self.url(path), &extra, body, None);
        all.extend(extra);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http().request(method, url);
        for (k, v) in all {
            req = req.header(k, v);
        }
        req
    }

    /// PutBucketCors of a raw XML document, signed, with its Content-MD5.
    pub async fn put_cors_xml(&self, bucket: &str, xml: &str) -> reqwest::Response {
        let md5 =
            base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(xml.as_bytes()));
        self.signed(
            "PUT",
            &format!("/{bucket}?cors"),
            &[("content-md5", &md5)],
            xml.as_bytes(),
        )
        .body(xml.to_owned())
        .send()
        .await
        .unwrap()
    }

    /// An unsigned CORS preflight (OPTIONS) of `path` from `origin`, asking
    /// for `method`; not sent yet.
    pub fn cors_preflight(
        &self,
        path: &str,
        origin: &str,
        method: &str,
    ) -> reqwest::RequestBuilder {
        self.http()
            .request(reqwest::Method::OPTIONS, self.url(path))
            .header("origin", origin)
            .header("access-control-request-method", method)
    }

    /// An unsigned request for `path` (with its query), as anyone may send it.
    pub async fn anon(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.http()
            .request(method, self.url(path))
            .send()
            .await
            .unwrap()
    }

    /// An unsigned PUT of `body` to `path`.
    pub async fn anon_put(&self, path: &str, body: &'static str) -> reqwest::Response {
        self.http()
            .put(self.url(path))
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// An unsigned GET of `path`.
    pub async fn anon_get(&self, path: &str) -> reqwest::Response {
        self.anon(reqwest::Method::GET, path).await
    }
}
