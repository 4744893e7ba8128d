//! Connection and body limits: what keeps idle sockets, stalled uploads and
//! accept errors from using up the server's file descriptors.
//!
//! - [`ConnTracker`] admits a connection under `--max-connections` and
//!   `--max-connections-per-ip`, and gives back the slot when it ends.
//! - [`Activity`] counts a connection's requests in flight, so the accept
//!   loop can close it when it has sent no request (`--idle-timeout`) or has
//!   been idle between requests (`--keep-alive-timeout`), HTTP/1.1 and h2
//!   alike (h2 PINGs do not keep a connection open).
//! - [`TimedBody`] fails a request body that sends no byte for
//!   `--body-read-timeout` with [`BodyReadTimeout`], which S3 answers with
//!   400 `RequestTimeout`.
//! - [`SendTimeoutIo`] fails the connection when the client reads nothing
//!   of a response for `--send-timeout` (a download nobody reads would hold
//!   its socket and blob file forever).
//! - [`AcceptBackoff`] sleeps, growing, on accept errors (EMFILE) and logs
//!   at most once a second instead of flooding the log.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// The limits of `preflight serve`, each a flag.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// A new connection must start a request within this (`--idle-timeout`).
    pub idle_timeout: Duration,
    /// A connection idle this long between requests is closed (`--keep-alive-timeout`).
    pub keep_alive_timeout: Duration,
    /// Time to send a whole request head, HTTP/1.1 (`--header-read-timeout`).
    pub header_read_timeout: Duration,
    /// Longest wait for the next byte of a request body (`--body-read-timeout`).
    pub body_read_timeout: Duration,
    /// Longest a write to the client may make no progress (`--send-timeout`).
    pub send_timeout: Duration,
    /// Open connections, all peers (`--max-connections`).
    pub max_connections: usize,
    /// Open connections from one IP address (`--max-connections-per-ip`).
    pub max_connections_per_ip: usize,
    /// Streams open at once on one h2 connection (`--h2-max-concurrent-streams`).
    pub h2_max_concurrent_streams: u32,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(),
            max_connections_per_ip: 256,
            h2_max_concurrent_streams: 100,
        }
    }
}

/// The soft open-file limit (RLIMIT_NOFILE), read from /proc on Linux.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// `--max-connections` when not given: each connection may hold a socket
/// and a blob file, so half of the open-file limit after keeping an eighth
/// (at least 64) for the database, listeners and other files.
pub fn default_max_connections() -> usize {
    max_connections_for(open_file_limit().unwrap_or(1024))
}

fn max_connections_for(nofile: u64) -> usize {
    let nofile = nofile.min(4 * 1024 * 1024);
    let reserve = (nofile / 8).max(64);
    let budget = nofile.saturating_sub(reserve) / 2;
    usize::try_from(budget).unwrap_or(usize::MAX).max(16)
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-connections` reached.
    Total,
    /// `--max-connections-per-ip` reached for this peer.
    PerPeer,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Counts open connections, in total and per peer IP.
#[derive(Debug, Clone)]
pub struct ConnTracker {
    counts: Arc<Mutex<Counts>>,
    max_total: usize,
    max_per_ip: usize,
}

impl ConnTracker {
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            counts: Arc::default(),
            max_total,
            max_per_ip,
        }
    }

    /// A slot for a connection from `ip`, held until the permit drops.
    pub fn try_admit(&self, ip: IpAddr) -> Result<ConnPermit, Refusal> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= self.max_total {
            return Err(Refusal::Total);
        }
        let from_ip = counts.per_ip.entry(ip).or_default();
        if *from_ip >= self.max_per_ip {
            return Err(Refusal::PerPeer);
        }
        *from_ip += 1;
        counts.total += 1;
        Ok(ConnPermit {
            counts: self.counts.clone(),
            ip,
        })
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnPermit {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Lets a warning through at most once per `every`; counts the others.
#[derive(Debug)]
pub struct RateLimitedLog {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)`: log now, `n` occurrences were skipped since the last line.
    pub fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Growing sleeps after accept errors: EMFILE and friends do not go away
/// by retrying at once, and each retry would log a line.
#[derive(Debug)]
pub struct AcceptBackoff {
    delay: Duration,
    log: RateLimitedLog,
}

const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self {
            delay: BACKOFF_MIN,
            log: RateLimitedLog::new(Duration::from_secs(1)),
        }
    }
}

impl AcceptBackoff {
    /// An accept succeeded: the next error starts from the shortest sleep.
    pub fn reset(&mut self) {
        self.delay = BACKOFF_MIN;
    }

    /// Logs `e` (rate-limited) and says how long to sleep before the next
    /// accept. Errors about one aborted connection need no sleep.
    pub fn on_error(&mut self, e: &std::io::Error, open: usize) -> Duration {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
        if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
            tracing::debug!(error = %e, "accept: connection gone before accepted");
            return Duration::ZERO;
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(BACKOFF_MAX);
        if let Some(suppressed) = self.log.allow() {
            tracing::warn!(
                error = %e,
                open_connections = open,
                retry_in_ms = delay.as_millis() as u64,
                suppressed,
                "accept failed; backing off"
            );
        }
        delay
    }
}

#[derive(Debug)]
struct ActivityState {
    in_flight: usize,
    /// When the connection last became idle (accept or last response).
    idle_since: Instant,
    served: u64,
}

/// Requests in flight on one connection, for its idle timeouts.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<ActivityState>,
    /// Wakes the connection's watchdog when it becomes idle.
    became_idle: Notify,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                idle_since: Instant::now(),
                served: 0,
            }),
            became_idle: Notify::new(),
        }
    }
}

impl Activity {
    fn state(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves when the last request in flight has ended.
    pub async fn became_idle(&self) {
        self.became_idle.notified().await;
    }

    pub fn in_flight(&self) -> usize {
        self.state().in_flight
    }

    /// A request started; the connection is busy until the guard (held by
    /// the response body) drops.
    pub fn start(self: &Arc<Self>) -> RequestGuard {
        let mut s = self.state();
        s.in_flight += 1;
        s.served += 1;
        RequestGuard(self.clone())
    }

    /// When to look again: the idle deadline, or (while busy) one
    /// keep-alive period from now.
    pub fn next_check(&self, limits: &ConnLimits) -> Instant {
        let s = self.state();
        if s.in_flight > 0 {
            return Instant::now() + limits.keep_alive_timeout;
        }
        s.idle_since + Self::timeout(&s, limits)
    }

    /// Whether the connection has been idle past its timeout.
    pub fn idle_expired(&self, limits: &ConnLimits) -> bool {
        let s = self.state();
        s.in_flight == 0 && Instant::now() >= s.idle_since + Self::timeout(&s, limits)
    }

    fn timeout(s: &ActivityState, limits: &ConnLimits) -> Duration {
        if s.served == 0 {
            limits.idle_timeout
        } else {
            limits.keep_alive_timeout
        }
    }
}

/// A request in flight; dropping it (with the response body) marks the
/// connection idle when it was the last.
#[derive(Debug)]
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.in_flight -= 1;
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            drop(s);
            self.0.became_idle.notify_one();
        }
    }
}

/// A response body that keeps its request counted as in flight until it
/// has been sent (or dropped).
pub struct GuardedBody<B> {
    inner: B,
    _guard: RequestGuard,
}

impl<B> GuardedBody<B> {
    pub fn new(inner: B, guard: RequestGuard) -> Self {
        Self {
            inner,
            _guard: guard,
        }
    }
}

impl<B: HttpBody + Unpin> HttpBody for GuardedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

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

    #[test]
    fn default_cap_from_fd_limit() {
        assert_eq!(max_connections_for(1024), 448);
        assert_eq!(max_connections_for(256), 96);
        assert_eq!(max_connections_for(10), 16);
        assert!(max_connections_for(u64::MAX) < usize::MAX);
    }

    #[test]
    fn tracker_caps_total_and_per_peer() {
        let t = ConnTracker::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = t.try_admit(a).unwrap();
        let _a2 = t.try_admit(a).unwrap();
        assert_eq!(t.try_admit(a).unwrap_err(), Refusal::PerPeer);
        let _b1 = t.try_admit(b).unwrap();
        assert_eq!(t.try_admit(b).unwrap_err(), Refusal::Total);
        drop(a1);
        assert_eq!(t.open(), 2);
        assert!(t.try_admit(a).is_ok());
    }

    #[test]
    fn rate_limited_log_counts_skipped() {
        let mut log = RateLimitedLog::new(Duration::from_secs(60));
        assert_eq!(log.allow(), Some(0));
        assert_eq!(log.allow(), None);
        assert_eq!(log.allow(), None);
        log.last = Some(Instant::now() - Duration::from_secs(61));
        assert_eq!(log.allow(), Some(2));
    }

    #[test]
    fn backoff_grows_and_resets() {
        let mut b = AcceptBackoff::default();
        let emfile = std::io::Error::other("Too many open files");
        let d1 = b.on_error(&emfile, 0);
        let d2 = b.on_error(&emfile, 0);
        assert!(d2 > d1);
        for _ in 0..20 {
            b.on_error(&emfile, 0);
        }
        assert_eq!(b.on_error(&emfile, 0), BACKOFF_MAX);
        b.reset();
        assert_eq!(b.on_error(&emfile, 0), BACKOFF_MIN);
        let aborted = std::io::Error::from(std::io::ErrorKind::ConnectionAborted);
        assert_eq!(b.on_error(&aborted, 0), Duration::ZERO);
    }

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

    #[test]
    fn activity_idle_and_keep_alive() {
        let limits = ConnLimits {
            idle_timeout: Duration::ZERO,
            keep_alive_timeout: Duration::from_secs(3600),
            ..ConnLimits::default()
        };
        let a = Arc::new(Activity::default());
        assert!(a.idle_expired(&limits), "no request yet: idle timeout");
        let guard = a.start();
        assert!(!a.idle_expired(&limits));
        drop(guard);
        assert!(!a.idle_expired(&limits), "after a request: keep-alive");
    }
}
