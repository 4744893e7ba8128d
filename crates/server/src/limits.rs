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

mod timeouts;

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;

pub use timeouts::{REQUEST_TIMEOUT_MESSAGE, SendTimeoutIo, TimedBody, is_body_timeout};

/// The limits of `preflight serve`, each a flag.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// A new connection must start a request within this (`--idle-timeout`).
    pub idle_timeout: Duration,
    /// A connection idle this long between requests is closed (`--keep-alive-timeout`).
    pub keep_alive_timeout: Duration,
    /// Time to send a whole request head, HTTP/1.1 (`--header-read-timeout`).
    /// hyper starts it as soon as it waits for a head, so it also bounds an
    /// HTTP/1.1 connection idle between requests.
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
            keep_alive_timeout: Duration::from_secs(30),
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
        let ip = peer_key(ip);
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

/// Whom the per-peer cap counts: the IPv4 address, or the /64 of an IPv6
/// address (one host usually holds a whole /64 and could pick a fresh
/// address for each connection).
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
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
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn ipv6_peers_are_counted_by_their_64() {
        let t = ConnTracker::new(10, 1);
        let _a = t.try_admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        let same_64 = t.try_admit("2001:db8:1:2:ffff::9".parse().unwrap());
        assert_eq!(same_64.unwrap_err(), Refusal::PerPeer);
        assert!(t.try_admit("2001:db8:1:3::1".parse().unwrap()).is_ok());
        let _v4 = t.try_admit("192.0.2.1".parse().unwrap()).unwrap();
        let mapped = t.try_admit("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(mapped.unwrap_err(), Refusal::PerPeer);
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
