//! ListObjects (v1) and ListObjectsV2: prefix, delimiter, max-keys,
//! markers and continuation tokens, `encoding-type=url`. Keys come in UTF-8
//! byte order from the store.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use preflight_store::ObjectRecord;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::read::etag_of;
use super::{PreflightS3, saturating_i32, saturating_i64};
use crate::errors::store_err;

const DEFAULT_MAX_KEYS: usize = 1000;
/// How many rows one store query fetches while grouping prefixes.
const PAGE: usize = 1000;

/// One listing page: objects and common prefixes, interleaved in key order
/// but reported separately, as S3 does.
struct Page {
    objects: Vec<ObjectRecord>,
    prefixes: Vec<String>,
    truncated: bool,
    /// The last key or prefix returned (the next marker).
    last: Option<String>,
}

/// The smallest string greater than every string that starts with `prefix`
/// is not expressible, but `prefix + U+10FFFF` is greater than every key
/// that starts with `prefix` and is otherwise listed under it.
fn after_prefix(prefix: &str) -> String {
    let mut s = prefix.to_owned();
    s.push(char::MAX);
    s
}

async fn list_page(
    s3: &PreflightS3,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    start_after: Option<String>,
    max_keys: usize,
) -> S3Result<Page> {
    let mut page = Page {
        objects: Vec::new(),
        prefixes: Vec::new(),
        truncated: false,
        last: None,
    };
    let mut after = start_after;
    // A marker that is itself a common prefix resumes after that prefix.
    if let (Some(d), Some(a)) = (delimiter, after.as_ref())
        && a.starts_with(prefix)
        && a.ends_with(d)
        && a[prefix.len()..].find(d) == Some(a.len() - prefix.len() - d.len())
    {
        after = Some(after_prefix(a));
    }
    if max_keys == 0 {
        return Ok(page);
    }
    loop {
        let rows = s3
            .meta
            .list_objects(bucket, prefix, after.as_deref(), PAGE)
            .await
            .map_err(store_err)?;
        let fetched = rows.len();
        let mut jumped = false;
        for obj in rows {
            if page.objects.len() + page.prefixes.len() == max_keys {
                page.truncated = true;
                return Ok(page);
            }
            let rest = &obj.key[prefix.len()..];
            match delimiter.and_then(|d| rest.find(d).map(|i| i + d.len())) {
                Some(end) => {
                    let cp = obj.key[..prefix.len() + end].to_owned();
                    after = Some(after_prefix(&cp));
                    page.last = Some(cp.clone());
                    page.prefixes.push(cp);
                    // Skip the rest of this prefix with a fresh query.
                    jumped = true;
                    break;
                }
                None => {
                    after = Some(obj.key.clone());
                    page.last = Some(obj.key.clone());
                    page.objects.push(obj);
                }
            }
        }
        if !jumped && fetched < PAGE {
            return Ok(page);
        }
    }
}

/// `encoding-type=url`: percent-encode like S3 (unreserved and `/` kept).
fn url_encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

fn check_encoding(encoding: Option<&EncodingType>) -> S3Result<bool> {
    match encoding.map(|e| e.as_str()) {
        None => Ok(false),
        Some("url") => Ok(true),
        Some(_) => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Invalid Encoding Method specified in Request",
        )),
    }
}

fn check_max_keys(max_keys: Option<i32>) -> S3Result<usize> {
    match max_keys {
        None => Ok(DEFAULT_MAX_KEYS),
        Some(n) => usize::try_from(n)
            .map(|n| n.min(DEFAULT_MAX_KEYS))
            .map_err(|_| {
                S3Error::with_message(S3ErrorCode::InvalidArgument, "max-keys cannot be negative")
            }),
    }
}

fn contents(objects: Vec<ObjectRecord>, encode: bool, owner: Option<&Owner>) -> Vec<Object> {
    objects
        .into_iter()
        .map(|o| Object {
            key: Some(if encode { url_encode(&o.key) } else { o.key }),
            e_tag: Some(etag_of(&o.etag)),
            last_modified: Some(Timestamp::from(o.last_modified)),
            size: Some(saturating_i64(o.size)),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            owner: owner.cloned(),
            ..Default::default()
        })
        .collect()
}

fn common_prefixes(prefixes: Vec<String>, encode: bool) -> Vec<CommonPrefix> {
    prefixes
        .into_iter()
        .map(|p| CommonPrefix {
            prefix: Some(if encode { url_encode(&p) } else { p }),
        })
        .collect()
}

pub async fn list_objects_v2(
    s3: &PreflightS3,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let input = req.input;
    s3.bucket(&input.bucket)?;
    let encode = check_encoding(input.encoding_type.as_ref())?;
    let max_keys = check_max_keys(input.max_keys)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
    let after = match &input.continuation_token {
        Some(token) => Some(decode_token(token)?),
        None => input.start_after.clone().filter(|s| !s.is_empty()),
    };
    let page = list_page(
        s3,
        &input.bucket,
        &prefix,
        delimiter.as_deref(),
        after,
        max_keys,
    )
    .await?;
    let key_count = saturating_i32(page.objects.len() + page.prefixes.len());
    let next = page
        .truncated
        .then(|| page.last.as_deref().map(encode_token))
        .flatten();
    let enc = |s: String| if encode { url_encode(&s) } else { s };
    let owner = input.fetch_owner.unwrap_or(false).then_some(&s3.owner);
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: Some(enc(prefix)),
        delimiter: delimiter.map(enc),
        max_keys: Some(saturating_i32(max_keys)),
        key_count: Some(key_count),
        is_truncated: Some(page.truncated),
        continuation_token: input.continuation_token,
        next_continuation_token: next,
        start_after: input.start_after.map(enc),
        encoding_type: input.encoding_type,
        contents: Some(contents(page.objects, encode, owner)),
        common_prefixes: Some(common_prefixes(page.prefixes, encode)),
        ..Default::default()
    }))
}

pub async fn list_objects(
    s3: &PreflightS3,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let input = req.input;
    s3.bucket(&input.bucket)?;
    let encode = check_encoding(input.encoding_type.as_ref())?;
    let max_keys = check_max_keys(input.max_keys)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
    let marker = input.marker.clone().filter(|m| !m.is_empty());
    let page = list_page(
        s3,
        &input.bucket,
        &prefix,
        delimiter.as_deref(),
        marker,
        max_keys,
    )
    .await?;
    let enc = |s: String| if encode { url_encode(&s) } else { s };
    // S3 returns NextMarker only when a delimiter was given.
    let next_marker = (page.truncated && delimiter.is_some())
        .then(|| page.last.clone().map(enc))
        .flatten();
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(input.bucket),
        // ListObjects (v1) sends its top-level Prefix as given even with
        // `encoding-type=url` (the SDKs decode only Delimiter, Marker and
        // NextMarker there); V2 encodes it.
        prefix: Some(prefix),
        delimiter: delimiter.map(enc),
        marker: Some(input.marker.map(enc).unwrap_or_default()),
        max_keys: Some(saturating_i32(max_keys)),
        is_truncated: Some(page.truncated),
        next_marker,
        encoding_type: input.encoding_type,
        contents: Some(contents(page.objects, encode, Some(&s3.owner))),
        common_prefixes: Some(common_prefixes(page.prefixes, encode)),
        ..Default::default()
    }))
}

pub(super) fn encode_token(last: &str) -> String {
    B64.encode(last.as_bytes())
}

pub(super) fn decode_token(token: &str) -> S3Result<String> {
    B64.decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "The continuation token provided is incorrect",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_slash() {
        assert_eq!(url_encode("a b/c+d/é"), "a%20b/c%2Bd/%C3%A9");
    }

    #[test]
    fn tokens_round_trip() {
        let t = encode_token("photos/2024/");
        assert_eq!(decode_token(&t).unwrap(), "photos/2024/");
        assert!(decode_token("!!!").is_err());
    }
}
