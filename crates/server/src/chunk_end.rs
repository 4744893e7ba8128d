//! An `aws-chunked` body must end with its zero-length chunk (signed, for
//! the signed modes). s3s 0.14.1's chunk decoder treats the end of the
//! stream between chunks as a normal end, so a body cut after any whole
//! chunk is stored as if complete. This wrapper follows the chunk framing
//! of the raw body and turns an end before the final chunk into an error,
//! which the body path answers as `IncompleteBody` and nothing is stored.
//! (Chunk signatures and trailers stay s3s's to verify.)

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame};
use s3s::Body;

/// The longest chunk header line followed; past it the framing is left to
/// s3s, which refuses it.
const MAX_HEADER_LINE: usize = 4096;

#[derive(Debug, thiserror::Error)]
#[error("the aws-chunked body ended before its final zero-length chunk")]
pub struct MissingFinalChunk;

/// Wraps the body of an `aws-chunked` request (`x-amz-content-sha256:
/// STREAMING-*`); other bodies are returned as they are.
pub fn require_final_chunk(headers: &HeaderMap, body: Body) -> Body {
    let streaming = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("STREAMING-"));
    if !streaming {
        return body;
    }
    Body::http_body(FinalChunkBody {
        inner: body,
        framing: Framing::default(),
    })
}

struct FinalChunkBody {
    inner: Body,
    framing: Framing,
}

impl HttpBody for FinalChunkBody {
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.framing.feed(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) if !this.framing.is_done() => {
                // Report once; the stream ends after the error.
                this.framing = Framing::Done;
                Poll::Ready(Some(Err(Box::new(MissingFinalChunk))))
            }
            other => other,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Where the framing of `size[;ext]\r\n data \r\n ... 0[;ext]\r\n` is.
#[derive(Debug)]
enum Framing {
    /// Reading a chunk header line (the bytes so far).
    Header(Vec<u8>),
    /// Skipping this many bytes of chunk data and its CRLF.
    Data(u64),
    /// The final chunk was seen (trailers may follow), or the framing is
    /// not one this follows.
    Done,
}

impl Default for Framing {
    fn default() -> Self {
        Framing::Header(Vec::new())
    }
}

impl Framing {
    fn is_done(&self) -> bool {
        matches!(self, Framing::Done)
    }

    #[allow(clippy::cast_possible_truncation)] // TODO(lints): n as usize when slicing data
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match self {
                Framing::Done => return,
                Framing::Data(left) => {
                    let n = (*left).min(data.len() as u64);
                    *left -= n;
                    data = &data[n as usize..];
                    if *left == 0 {
                        *self = Framing::default();
                    }
                }
                Framing::Header(line) => match data.iter().position(|&b| b == b'\n') {
                    None => {
                        line.extend_from_slice(data);
                        if line.len() > MAX_HEADER_LINE {
                            *self = Framing::Done;
                        }
                        return;
                    }
                    Some(at) => {
                        line.extend_from_slice(&data[..at]);
                        data = &data[at + 1..];
                        *self = match chunk_size(line) {
                            Some(0) | None => Framing::Done,
                            Some(size) => Framing::Data(size + 2),
                        };
                    }
                },
            }
        }
    }
}

/// The size of a chunk header line `hex[;extensions]\r`.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let hex = line.split(|&b| b == b';').next()?;
    let hex = std::str::from_utf8(hex).ok()?.trim();
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done_after(parts: &[&[u8]]) -> bool {
        let mut f = Framing::default();
        for p in parts {
            f.feed(p);
        }
        f.is_done()
    }

    #[test]
    fn follows_chunks_to_the_final_one() {
        let sig = "a".repeat(64);
        let one = format!("5;chunk-signature={sig}\r\nhello\r\n");
        let last = format!("0;chunk-signature={sig}\r\n\r\n");
        assert!(!done_after(&[one.as_bytes()]));
        assert!(done_after(&[one.as_bytes(), last.as_bytes()]));
        // Split anywhere.
        let all = format!("{one}{last}");
        for at in 0..all.len() {
            let (a, b) = all.as_bytes().split_at(at);
            assert!(done_after(&[a, b]), "split at {at}");
            assert!(!done_after(&[&all.as_bytes()[..at]]) || at >= one.len() + 3);
        }
        assert!(done_after(&[
            b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"
        ]));
        assert!(!done_after(&[b"5\r\nhello\r\n"]));
        assert!(!done_after(&[b""]));
    }
}
