//! Following the other nodes: the background task that keeps this node's
//! caches (bucket settings, users' keys) in step with the shared store.
//!
//! Every change to the cached state moves the store's settings generation
//! in the same transaction. The follower listens for it (PostgreSQL
//! `LISTEN`, through [`MetaStore::watch_settings`]) and also polls it every
//! [`POLL_INTERVAL`], as a fallback for a lost notification channel and as
//! the only way on SQLite (another `preflight` process on the same file,
//! e.g. `preflight keys add --data-dir`). When the generation moved past
//! what this node has loaded, it reloads every bucket and every key and
//! swaps the caches. A change through another node is thus seen here within
//! the poll interval, usually at once.
//!
//! While the store cannot be reached, the caches keep serving what they
//! hold (reads go on; writes fail with 503 by themselves); after
//! [`STALE_AFTER`] that is logged once, and again when the store is back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use preflight_store::{MetaStore, StoreResult};

use crate::buckets::BucketDirectory;
use crate::keys::KeyStore;

/// How often the generation is read when no notification came.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long one round trip of the follower may take.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the store may stay unreachable before it is logged.
const STALE_AFTER: Duration = Duration::from_secs(2);

/// Starts the follower of `buckets` and `keys`.
pub fn spawn(
    meta: Arc<dyn MetaStore>,
    buckets: Arc<BucketDirectory>,
    keys: Arc<KeyStore>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(follow(meta, buckets, keys))
}

async fn follow(meta: Arc<dyn MetaStore>, buckets: Arc<BucketDirectory>, keys: Arc<KeyStore>) {
    let mut watch: Option<BoxStream<'static, StoreResult<i64>>> = None;
    // Cleared when the backend has no notification channel (SQLite).
    let mut can_watch = true;
    let mut last_ok = Instant::now();
    let mut stale_logged = false;
    loop {
        if watch.is_none() && can_watch {
            match tokio::time::timeout(STORE_TIMEOUT, meta.watch_settings()).await {
                Ok(Ok(Some(stream))) => {
                    tracing::debug!("listening for settings changes");
                    watch = Some(stream);
                }
                Ok(Ok(None)) => can_watch = false,
                Ok(Err(e)) => tracing::debug!(error = %e, "cannot listen for settings changes"),
                Err(_) => tracing::debug!("no answer to listen for settings changes"),
            }
        }
        if let Some(stream) = watch.as_mut() {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "settings notifications lost; resubscribing");
                        watch = None;
                    }
                    None => watch = None,
                },
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        } else {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        let synced = tokio::time::timeout(STORE_TIMEOUT, sync(meta.as_ref(), &buckets, &keys))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {STORE_TIMEOUT:?}")));
        match synced {
            Ok(()) => {
                if stale_logged {
                    tracing::info!("metadata store reachable again; settings caches in step");
                }
                last_ok = Instant::now();
                stale_logged = false;
            }
            Err(error) => {
                if !stale_logged && last_ok.elapsed() > STALE_AFTER {
                    tracing::warn!(
                        %error,
                        "cannot reach the metadata store: serving cached bucket settings and keys, \
                         which changes made through other nodes may have outdated"
                    );
                    stale_logged = true;
                }
            }
        }
    }
}

/// Reloads the caches when the store's generation moved past theirs.
async fn sync(
    meta: &dyn MetaStore,
    buckets: &BucketDirectory,
    keys: &KeyStore,
) -> Result<(), String> {
    let generation = meta
        .settings_generation()
        .await
        .map_err(|e| e.to_string())?;
    if generation <= buckets.loaded_generation() {
        return Ok(());
    }
    // Keys first: the buckets' generation is the one remembered, so a
    // failure half way reloads both next time.
    keys.reload().await.map_err(|e| e.to_string())?;
    buckets
        .reload_if_behind(generation)
        .await
        .map_err(|e| e.to_string())?;
    tracing::debug!(generation, "settings caches reloaded");
    Ok(())
}
