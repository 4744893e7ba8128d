//! The timeouts that act on bytes: a request body that stops coming
//! ([`TimedBody`]) and a response the client stops reading
//! ([`SendTimeoutIo`]).

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The error of a request body that sent nothing for the body read
/// timeout. S3: 400 `RequestTimeout`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no request body data for {0:?}")]
pub struct BodyReadTimeout(pub Duration);

/// S3's message for `RequestTimeout`.
pub const REQUEST_TIMEOUT_MESSAGE: &str = "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.";

/// Whether `e`, or an error it wraps, is a [`BodyReadTimeout`].
pub fn is_body_timeout(e: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(e) = current {
        if e.is::<BodyReadTimeout>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Set when a request's body timed out, for the request's consumers that
/// wrap body errors opaquely (s3s's chunked-signature and payload-hash
/// streams, its XML body reader).
#[derive(Debug, Clone, Default)]
pub struct TimeoutFlag(Arc<AtomicBool>);

impl TimeoutFlag {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A request body that fails with [`BodyReadTimeout`] when no frame comes
/// for `timeout`. The clock runs only while the consumer waits for the
/// client, never while the server itself is slow (disk, hashing).
pub struct TimedBody<B> {
    inner: B,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    armed: bool,
    flag: TimeoutFlag,
}

impl<B> TimedBody<B> {
    pub fn new(inner: B, timeout: Duration) -> (Self, TimeoutFlag) {
        let flag = TimeoutFlag::default();
        let body = Self {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
            flag: flag.clone(),
        };
        (body, flag)
    }
}

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.flag.is_set() {
            // Timed out before: never look like a body that ended.
            return Poll::Ready(Some(Err(Box::new(BodyReadTimeout(this.timeout)))));
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.armed = false;
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        if !this.armed {
            this.armed = true;
            let deadline = Instant::now() + this.timeout;
            this.sleep.as_mut().reset(deadline);
        }
        ready!(this.sleep.as_mut().poll(cx));
        this.flag.0.store(true, Ordering::Relaxed);
        tracing::debug!(timeout = ?this.timeout, "request body read timed out");
        Poll::Ready(Some(Err(Box::new(BodyReadTimeout(this.timeout)))))
    }

    fn is_end_stream(&self) -> bool {
        !self.flag.is_set() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's IO whose writes fail with `TimedOut` when they make no
/// progress for `timeout` (the client's receive window stays closed).
/// Reads pass through: request bodies have their own timeout, idle
/// connections the idle timeouts.
pub struct SendTimeoutIo<I> {
    io: I,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    armed: bool,
}

impl<I> SendTimeoutIo<I> {
    pub fn new(io: I, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
        }
    }

    /// The write is pending: start the clock if it is not running, and
    /// fail once it runs out.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if !self.armed {
            self.armed = true;
            let deadline = Instant::now() + self.timeout;
            self.sleep.as_mut().reset(deadline);
        }
        ready!(self.sleep.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing for the send timeout",
        )))
    }

    fn progressed<T>(
        &mut self,
        r: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => self.stalled(cx),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SendTimeoutIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for SendTimeoutIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.progressed(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.progressed(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.progressed(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_shutdown(cx);
        self.progressed(r, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test]
    async fn timed_body_fails_after_silence_only() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let (mut body, flag) = TimedBody::new(
            StreamBody::new(Box::pin(stream)),
            Duration::from_millis(300),
        );
        tx.send(Ok(Frame::data(Bytes::from_static(b"a"))))
            .await
            .unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        // 200 ms of silence, a byte, then silence: the clock restarts.
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            tx.send(Ok(Frame::data(Bytes::from_static(b"b"))))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(tx);
        });
        assert!(body.frame().await.unwrap().is_ok());
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(is_body_timeout(err.as_ref()));
        assert!(flag.is_set());
        assert!(body.frame().await.unwrap().is_err());
        sender.abort();
    }
}
