// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use super::*;

fn location(value: &str) -> BlobLocation {
    BlobLocation::parse(value).unwrap()
}

fn keys() -> HashMap<String, String> {
    [("AWS_ACCESS_KEY_ID", "AK"), ("AWS_SECRET_ACCESS_KEY", "SK")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn short() -> OpenDalOptions {
    OpenDalOptions {
        timeout: Duration::from_millis(500),
        io_timeout: Duration::from_millis(500),
        retries: 1,
    }
}

/// A loopback port that nobody listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn errors_name_the_location_and_the_reason() {
    let denied = failure(
        "s3",
        "s3://bucket/prefix",
        opendal::Error::new(ErrorKind::PermissionDenied, "SignatureDoesNotMatch"),
    );
    assert!(!denied.is_unavailable());
    assert_eq!(
        denied.to_string(),
        "s3: s3://bucket/prefix: access denied (credentials refused)"
    );

    let refused = failure(
        "gcs",
        "gcs://b",
        opendal::Error::new(ErrorKind::Unexpected, "send http request")
            .set_source(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"))
            .set_temporary(),
    );
    assert!(refused.is_unavailable());
    assert_eq!(refused.to_string(), "gcs: gcs://b: unreachable (refused)");

    // What the retry layer returns once it gives up.
    let retried = failure(
        "azblob",
        "azblob://c/p",
        opendal::Error::new(ErrorKind::Unexpected, "send http request").set_persistent(),
    );
    assert!(retried.is_unavailable());

    // Retried, then given up: a permission error stays one.
    let denied = failure(
        "s3",
        "s3://b",
        opendal::Error::new(ErrorKind::PermissionDenied, "AccessDenied").set_persistent(),
    );
    assert!(!denied.is_unavailable(), "{denied}");

    // Answers: 5xx is unavailable, other statuses are not, retried or not.
    let answer = |status: u16| {
        // What OpenDAL's `with_error_response_context` records.
        let (parts, ()) = http::Response::builder()
            .status(status)
            .body(())
            .unwrap()
            .into_parts();
        opendal::Error::new(ErrorKind::Unexpected, "<Error/>")
            .with_context("response", format!("{parts:?}"))
            .set_persistent()
    };
    let busy = failure("s3", "s3://b", answer(503));
    assert!(busy.is_unavailable(), "{busy}");
    assert_eq!(
        busy.to_string(),
        "s3: s3://b: unavailable (it answered HTTP 503)"
    );
    let odd = failure("s3", "s3://b", answer(400));
    assert!(!odd.is_unavailable(), "{odd}");
    assert!(
        odd.to_string()
            .starts_with("s3: s3://b: refused (HTTP 400)"),
        "{odd}"
    );

    let other = failure(
        "s3",
        "s3://b",
        opendal::Error::new(ErrorKind::Unexpected, "the server said something odd"),
    );
    assert!(!other.is_unavailable());
    assert!(other.to_string().contains("something odd"), "{other}");
}

#[test]
fn opening_needs_an_opendal_location() {
    let err = OpenDalBlobStore::from_location_with(
        &location("fs:///tmp/x"),
        &keys(),
        &OpenDalOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not an OpenDAL location"), "{err}");
    let err = OpenDalBlobStore::from_location_with(
        &location("azblob://container/p"),
        &HashMap::new(),
        &OpenDalOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("AZURE_STORAGE_ACCOUNT"), "{err}");
    // `BlobLocation::parse` already refuses what the store cannot use.
    let err = BlobLocation::parse("s3://b/p?regoin=x").unwrap_err();
    assert!(err.contains("unknown parameter"), "{err}");
}

#[tokio::test]
async fn malformed_ids_never_reach_the_backend() {
    let port = closed_port();
    let store = OpenDalBlobStore::from_location_with(
        &location(&format!("s3://b/p?endpoint=http://127.0.0.1:{port}")),
        &keys(),
        &short(),
    )
    .unwrap();
    let bad = BlobId("../../etc/passwd".to_owned());
    assert!(matches!(
        store.read(&bad, 0, 1).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.delete(&bad).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn check_fails_fast_on_a_refused_connection() {
    let port = closed_port();
    let store = OpenDalBlobStore::from_location_with(
        &location(&format!(
            "s3://bucket/prefix?endpoint=http://127.0.0.1:{port}"
        )),
        &keys(),
        &short(),
    )
    .unwrap();
    let started = Instant::now();
    let err = store.check().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.is_unavailable(), "{err}");
    let line = err.to_string();
    assert!(
        line.starts_with("s3: s3://bucket/prefix: unreachable ("),
        "{line}"
    );
    assert!(!line.contains('\n'), "{line}");
}

#[tokio::test]
async fn check_times_out_on_a_server_that_never_answers() {
    // Accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let store = OpenDalBlobStore::from_location_with(
        &location(&format!("s3://bucket?endpoint=http://127.0.0.1:{port}")),
        &keys(),
        &short(),
    )
    .unwrap();
    let started = Instant::now();
    let err = store.check().await.unwrap_err();
    let took = started.elapsed();
    silent.abort();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(err.is_unavailable(), "{err}");
    assert!(
        err.to_string()
            .starts_with("s3: s3://bucket: unreachable ("),
        "{err}"
    );
}

#[tokio::test]
async fn a_short_body_is_an_error() {
    let body = stream::iter([Ok(Bytes::from_static(b"abc"))]).boxed();
    let got: Vec<io::Result<Bytes>> = Exact {
        inner: body,
        remaining: 5,
    }
    .collect()
    .await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].as_ref().unwrap().as_ref(), b"abc");
    assert_eq!(
        got[1].as_ref().unwrap_err().kind(),
        io::ErrorKind::UnexpectedEof
    );

    let body = stream::iter([Ok(Bytes::from_static(b"abc"))]).boxed();
    let got: Vec<io::Result<Bytes>> = Exact {
        inner: body,
        remaining: 3,
    }
    .collect()
    .await;
    assert_eq!(got.len(), 1);
}
