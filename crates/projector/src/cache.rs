//! A view held in memory from a KV watch: what the API answers queries and subscriptions
//! from, without scanning keys per request.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use jsc_domain::shared::Shared;

use crate::runtime::ensure_bucket;
use crate::{CHECKPOINT_KEY, Error, Versioned};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    Put,
    Delete,
}

/// One change to a view, as seen by this replica. The entries are shared with the view,
/// not copied: the channel of recent changes holds pointers only.
#[derive(Debug)]
pub struct ViewChange<V> {
    pub key: String,
    pub op: ChangeOp,
    /// The entry after the change (`None` when deleted).
    pub value: Option<Arc<Versioned<V>>>,
    /// The entry before the change, when this replica had it.
    pub previous: Option<Arc<Versioned<V>>>,
}

impl<V> Clone for ViewChange<V> {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            op: self.op,
            value: self.value.clone(),
            previous: self.previous.clone(),
        }
    }
}

/// Where a view's entry is listed: its group (a cluster, a stream...) and its place in the
/// group (a name). `None`: not listed. The group is [`Shared`]: every entry of a group
/// names it.
pub type OrderKey<V> = fn(&V) -> Option<(Shared, String)>;

/// The entries, and the order index the lists walk: per group, entries by their place,
/// with a count per group. One lock for both, so a list never sees one without the other.
struct Entries<V> {
    map: BTreeMap<String, Arc<Versioned<V>>>,
    order: Option<OrderKey<V>>,
    index: BTreeMap<(Shared, String), Arc<Versioned<V>>>,
    groups: HashMap<Shared, usize>,
}

impl<V> Entries<V> {
    fn insert(&mut self, key: String, value: Arc<Versioned<V>>) -> Option<Arc<Versioned<V>>> {
        if let Some(order) = self.order
            && let Some(at) = order(&value.view)
            && self.index.insert(at.clone(), value.clone()).is_none()
        {
            *self.groups.entry(at.0).or_default() += 1;
        }
        let previous = self.map.insert(key, value.clone());
        if let Some(p) = &previous {
            self.unindex(p, Some(&value));
        }
        previous
    }

    fn remove(&mut self, key: &str) -> Option<Arc<Versioned<V>>> {
        let previous = self.map.remove(key);
        if let Some(p) = &previous {
            self.unindex(p, None);
        }
        previous
    }

    /// Takes a replaced or removed entry out of the index (unless its successor sits at
    /// the same place).
    fn unindex(&mut self, old: &Versioned<V>, new: Option<&Arc<Versioned<V>>>) {
        let Some(order) = self.order else { return };
        let Some(at) = order(&old.view) else { return };
        if new.and_then(|n| order(&n.view)).as_ref() == Some(&at) {
            return;
        }
        if self.index.remove(&at).is_some()
            && let Some(n) = self.groups.get_mut(&at.0)
        {
            *n -= 1;
            if *n == 0 {
                self.groups.remove(&at.0);
            }
        }
    }
}

struct Inner<V> {
    entries: RwLock<Entries<V>>,
    /// Bumped by every change to the entries: what a list derived from them was made at.
    version: std::sync::atomic::AtomicU64,
    /// The checkpoint of the projection as last seen: every event up to it is reflected.
    watermark: watch::Sender<u64>,
    changes: broadcast::Sender<ViewChange<V>>,
}

/// An in-memory copy of one view bucket, kept current by a watch. Cheap to clone.
pub struct ViewCache<V> {
    inner: Arc<Inner<V>>,
}

impl<V> Clone for ViewCache<V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<V> ViewCache<V>
where
    V: DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Opens (or creates) `bucket`, loads its current entries, and keeps following it
    /// until `shutdown`. Returns once the initial entries are loaded.
    pub async fn start(
        js: jetstream::Context,
        bucket: &str,
        replicas: usize,
        shutdown: CancellationToken,
    ) -> Result<Self, Error> {
        Self::start_ordered(js, bucket, replicas, None, None, shutdown).await
    }

    /// [`Self::start`], with the entries also kept in the order `order` gives them, for
    /// lists that page through one group without a scan of the view ([`Self::walk`]), and
    /// the watch made again on each of the home connection's `reconnects`.
    pub async fn start_ordered(
        js: jetstream::Context,
        bucket: &str,
        replicas: usize,
        order: Option<OrderKey<V>>,
        reconnects: Option<crate::Reconnects>,
        shutdown: CancellationToken,
    ) -> Result<Self, Error> {
        let kv = ensure_bucket(&js, bucket, replicas).await?;
        let (watermark, _) = watch::channel(0);
        let (changes, _) = broadcast::channel(1024);
        let cache = Self {
            inner: Arc::new(Inner {
                entries: RwLock::new(Entries {
                    map: BTreeMap::new(),
                    order,
                    index: BTreeMap::new(),
                    groups: HashMap::new(),
                }),
                version: Default::default(),
                watermark,
                changes,
            }),
        };
        let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel();
        let follower = cache.clone();
        let bucket_name = bucket.to_string();
        tokio::spawn(async move {
            follower.follow(kv, bucket_name, loaded_tx, reconnects, shutdown).await;
        });
        match tokio::time::timeout(Duration::from_secs(30), loaded_rx).await {
            Ok(Ok(())) => Ok(cache),
            Ok(Err(_)) => Err(Error::nats(format!("the watch on {bucket} stopped before it loaded"))),
            Err(_) => Err(Error::nats(format!("loading the view {bucket} took longer than 30s"))),
        }
    }

    async fn follow(
        &self,
        kv: kv::Store,
        bucket: String,
        loaded: tokio::sync::oneshot::Sender<()>,
        reconnects: Option<crate::Reconnects>,
        shutdown: CancellationToken,
    ) {
        let mut loaded = Some(loaded);
        let mut backoff = crate::reconnects::Backoff::new(reconnects.as_ref(), &format!("KV_{bucket}"));
        // A restarted watch reads the bucket again without dropping what it does not
        // send: a restarted server, or a stream's new leader on a cluster, can answer
        // before every entry is there, and readers must not see sessions or clusters
        // vanish meanwhile. Nothing is lost by it: views are deleted with markers, which
        // the re-read sends.
        loop {
            let mut reconnected = reconnects.as_ref().map(|r| r.subscribe(format!("KV_{bucket}")));
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.watch_once(&kv, &mut loaded) => r,
                _ = crate::reconnects::next(&mut reconnected) => Err(Error::nats("the home NATS reconnected")),
            };
            if let Err(e) = result {
                tracing::warn!(%bucket, error = %e, "view watch interrupted; restarting");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = backoff.wait() => {}
            }
        }
    }

    /// Follows the bucket from its current state (the first time, says when it is loaded).
    /// Nothing cached is dropped for not being re-sent: a deleted view's marker is.
    async fn watch_once(
        &self,
        kv: &kv::Store,
        loaded: &mut Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<(), Error> {
        let signal = |loaded: &mut Option<tokio::sync::oneshot::Sender<()>>| {
            if let Some(tx) = loaded.take() {
                let _ = tx.send(());
            }
        };
        if kv.status().await.map_err(Error::nats)?.values() == 0 {
            signal(loaded);
        }
        let mut watch = kv.watch_with_history(">").await.map_err(Error::nats)?;
        while let Some(entry) = watch.next().await {
            let entry = entry.map_err(Error::nats)?;
            let last_of_initial = entry.delta == 0;
            self.apply_entry(entry);
            if last_of_initial {
                signal(loaded);
            }
        }
        Err(Error::nats("the watch ended"))
    }

    fn apply_entry(&self, entry: kv::Entry) {
        if entry.key == CHECKPOINT_KEY {
            if let Some(seq) = std::str::from_utf8(&entry.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
            {
                self.inner.watermark.send_if_modified(|w| {
                    let advance = seq > *w;
                    if advance {
                        *w = seq;
                    }
                    advance
                });
            }
            return;
        }
        match entry.operation {
            kv::Operation::Put => match serde_json::from_slice::<Versioned<V>>(&entry.value) {
                Ok(value) => {
                    let value = Arc::new(value);
                    let previous = {
                        let mut entries = self.inner.entries.write().expect("view lock");
                        // A writer that is behind (another replica's projector) must not
                        // move a view back in time.
                        if entries
                            .map
                            .get(&entry.key)
                            .is_some_and(|v| v.last_sequence > value.last_sequence)
                        {
                            return;
                        }
                        entries.insert(entry.key.clone(), value.clone())
                    };
                    self.bumped();
                    let _ = self.inner.changes.send(ViewChange {
                        key: entry.key,
                        op: ChangeOp::Put,
                        value: Some(value),
                        previous,
                    });
                }
                Err(e) => tracing::error!(key = %entry.key, error = %e, "unreadable view entry ignored"),
            },
            kv::Operation::Delete | kv::Operation::Purge => {
                let previous = self.inner.entries.write().expect("view lock").remove(&entry.key);
                if previous.is_some() {
                    self.bumped();
                    let _ = self.inner.changes.send(ViewChange {
                        key: entry.key,
                        op: ChangeOp::Delete,
                        value: None,
                        previous,
                    });
                }
            }
        }
    }

    fn bumped(&self) {
        self.inner.version.fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// A number that changes whenever an entry does: what something derived from the
    /// entries (a sorted list) can be checked against.
    pub fn version(&self) -> u64 {
        self.inner.version.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn get(&self, key: &str) -> Option<Versioned<V>> {
        self.inner
            .entries
            .read()
            .expect("view lock")
            .map
            .get(key)
            .map(|v| (**v).clone())
    }

    /// Whether the view holds `key`, without a copy of it.
    pub fn contains(&self, key: &str) -> bool {
        self.inner.entries.read().expect("view lock").map.contains_key(key)
    }

    /// Every entry, in key order.
    pub fn list(&self) -> Vec<Versioned<V>> {
        self.inner
            .entries
            .read()
            .expect("view lock")
            .map
            .values()
            .map(|v| (**v).clone())
            .collect()
    }

    /// Entries for which `f` holds, in key order, without cloning the others.
    pub fn filter(&self, mut f: impl FnMut(&V) -> bool) -> Vec<Versioned<V>> {
        self.inner
            .entries
            .read()
            .expect("view lock")
            .map
            .values()
            .filter(|v| f(&v.view))
            .map(|v| (**v).clone())
            .collect()
    }

    /// Entries whose key starts with `prefix` (keys are `.`-separated tokens: a cluster's
    /// streams, a stream's consumers), in key order: one range of the view, not a scan.
    pub fn with_prefix(&self, prefix: &str) -> Vec<Versioned<V>> {
        let entries = self.inner.entries.read().expect("view lock");
        entries
            .map
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| (**v).clone())
            .collect()
    }

    /// How many entries the order index holds in `group`.
    pub fn group_len(&self, group: &str) -> usize {
        let entries = self.inner.entries.read().expect("view lock");
        entries.groups.get(group).copied().unwrap_or(0)
    }

    /// Walks the entries of `group` in the order index by their place, from `from`
    /// (ascending, or descending when `reverse`), giving each to `f` until it returns
    /// false. Nothing is cloned that `f` does not clone; the view is read-locked meanwhile,
    /// so `f` must be quick.
    pub fn walk(&self, group: &str, from: Bound<&str>, reverse: bool, mut f: impl FnMut(&str, &Versioned<V>) -> bool) {
        let entries = self.inner.entries.read().expect("view lock");
        // Bounds only: not put in the table of shared strings.
        let key = |place: &str| (Shared::unshared(group), place.to_string());
        let from = match from {
            Bound::Included(p) => Bound::Included(key(p)),
            Bound::Excluded(p) => Bound::Excluded(key(p)),
            Bound::Unbounded => Bound::Unbounded,
        };
        // Every place of the group sits in [(group, ""), (group + NUL, "")).
        let (first, past) = (
            Bound::Included(key("")),
            Bound::Excluded((Shared::unshared(&format!("{group}\0")), String::new())),
        );
        let mut go = |(k, v): (&(Shared, String), &Arc<Versioned<V>>)| f(&k.1, v);
        if reverse {
            let end = if matches!(from, Bound::Unbounded) { past } else { from };
            for item in entries.index.range((first, end)).rev() {
                if !go(item) {
                    return;
                }
            }
        } else {
            let start = if matches!(from, Bound::Unbounded) { first } else { from };
            for item in entries.index.range((start, past)) {
                if !go(item) {
                    return;
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.entries.read().expect("view lock").map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ViewChange<V>> {
        self.inner.changes.subscribe()
    }

    /// The last stream sequence this replica's copy reflects.
    pub fn watermark(&self) -> u64 {
        *self.inner.watermark.borrow()
    }

    /// Waits until the view reflects stream sequence `seq` (read-your-writes after a
    /// command). Returns false if that did not happen within `timeout`.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> bool {
        let mut rx = self.inner.watermark.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|w| *w >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}
