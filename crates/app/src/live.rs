//! Live state (message counts, lag) read from the clusters, shared by every query and
//! subscription for a time-to-live.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsc_domain::stream::ServiceError;
use jsc_fleet::admin::{ConsumerInfo, StreamState};
use tokio::sync::Mutex;

use crate::adapters::ManagedClusters;

/// A cluster's state as read at once (a list of streams, or of a stream's consumers), by
/// name, and when it was read.
pub struct Sampled<T> {
    /// When the list was read from the cluster.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Each item behind its own `Arc`: putting one changed item into a copy of the map
    /// copies pointers, not every item's state.
    items: HashMap<String, Arc<T>>,
}

impl<T> std::ops::Deref for Sampled<T> {
    type Target = HashMap<String, Arc<T>>;

    fn deref(&self) -> &Self::Target {
        &self.items
    }
}

impl<T> Sampled<T> {
    fn now(list: Vec<(String, T)>) -> Arc<Self> {
        Arc::new(Self {
            at: chrono::Utc::now(),
            items: list.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        })
    }
}

/// One key's map: the last one read, when, and whether a refresh is under way.
struct Slot<T> {
    state: std::sync::Mutex<SlotState<T>>,
    /// Held by whoever reads while queries wait (no map yet, or one too old to answer):
    /// concurrent readers wait for one read.
    fetching: Mutex<()>,
}

struct SlotState<T> {
    last: Option<(Instant, Arc<Sampled<T>>)>,
    refreshing: bool,
    /// Bumped by each change put in or forgotten: a read that began before one is not kept.
    generation: u64,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            state: std::sync::Mutex::new(SlotState {
                last: None,
                refreshing: false,
                generation: 0,
            }),
            fetching: Mutex::new(()),
        }
    }
}

/// Maps read on demand and kept for a time-to-live. A map older than that is still
/// answered at once while one refresh runs in the background (up to `STALE_FOR`), so a
/// query never waits for a cluster-wide list it does not need fresh; a reader waits only
/// when there is no map yet (or it was forgotten). A change the console makes is put into
/// the map as it is ([`TtlCache::patch`]), so the next reader sees it (read-your-writes).
struct TtlCache<K, T> {
    ttl: Duration,
    slots: std::sync::Mutex<HashMap<K, Arc<Slot<T>>>>,
}

/// How old a map may be and still be answered while a refresh runs; older (a cluster that
/// stopped answering), a reader waits for the read and gets its error.
const STALE_FOR: Duration = Duration::from_secs(30);

impl<K: std::hash::Hash + Eq + Clone, T: Send + Sync + 'static> TtlCache<K, T> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Default::default(),
        }
    }

    async fn get<F, Fut>(&self, key: K, fetch: F) -> Result<Arc<Sampled<T>>, ServiceError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(String, T)>, ServiceError>> + Send + 'static,
    {
        let slot = self.slots.lock().expect("cache lock").entry(key).or_default().clone();
        let refresh = {
            let mut state = slot.state.lock().expect("slot lock");
            match &state.last {
                Some((at, map)) if at.elapsed() < self.ttl => return Ok(map.clone()),
                Some((at, map)) if at.elapsed() < STALE_FOR => {
                    let map = map.clone();
                    let start = !state.refreshing;
                    state.refreshing = true;
                    Some((map, start, state.generation))
                }
                _ => None,
            }
        };
        if let Some((map, start, generation)) = refresh {
            if start {
                let (slot, read) = (slot.clone(), fetch());
                tokio::spawn(async move {
                    let result = read.await;
                    let mut state = slot.state.lock().expect("slot lock");
                    state.refreshing = false;
                    match result {
                        Ok(list) if state.generation == generation => {
                            state.last = Some((Instant::now(), Sampled::now(list)));
                        }
                        Ok(_) => {}
                        Err(e) => tracing::debug!(error = %e, "refreshing live state failed; the last one is answered"),
                    }
                });
            }
            return Ok(map);
        }
        let _one = slot.fetching.lock().await;
        let generation = {
            let state = slot.state.lock().expect("slot lock");
            if let Some((at, map)) = &state.last
                && at.elapsed() < self.ttl
            {
                return Ok(map.clone());
            }
            state.generation
        };
        let map = Sampled::now(fetch().await?);
        let mut state = slot.state.lock().expect("slot lock");
        if state.generation == generation {
            state.last = Some((Instant::now(), map.clone()));
        }
        Ok(map)
    }

    /// Puts one item's state read now (`None`: it is gone) into the key's map, if there is
    /// one, instead of dropping the map: the next reader sees the change without a read of
    /// every item. A refresh begun before is discarded (it may predate the change).
    fn patch(&self, key: &K, name: &str, item: Option<T>) {
        let Some(slot) = self.slots.lock().expect("cache lock").get(key).cloned() else {
            return;
        };
        let mut state = slot.state.lock().expect("slot lock");
        state.generation += 1;
        if let Some((at, map)) = &state.last {
            let mut items = map.items.clone();
            match item {
                Some(item) => items.insert(name.to_string(), Arc::new(item)),
                None => items.remove(name),
            };
            state.last = Some((*at, Arc::new(Sampled { at: map.at, items })));
        }
    }

    /// Marks a change to the key's items: a read begun before it is not kept. Whether the
    /// key has a map to put the change into.
    fn changed(&self, key: &K) -> bool {
        let slot = self.slots.lock().expect("cache lock").get(key).cloned();
        slot.is_some_and(|s| {
            let mut state = s.state.lock().expect("slot lock");
            state.generation += 1;
            state.last.is_some()
        })
    }

    /// Forgets one key's map.
    fn forget(&self, key: &K) {
        if let Some(slot) = self.slots.lock().expect("cache lock").get(key).cloned() {
            Self::clear(&slot);
        }
    }

    fn clear(slot: &Slot<T>) {
        let mut state = slot.state.lock().expect("slot lock");
        state.last = None;
        state.generation += 1;
    }

    /// Forgets the maps of the keys `pred` accepts: their next reader waits for a read.
    fn invalidate_where(&self, mut pred: impl FnMut(&K) -> bool) {
        let slots: Vec<Arc<Slot<T>>> = self
            .slots
            .lock()
            .expect("cache lock")
            .iter()
            .filter(|(k, _)| pred(k))
            .map(|(_, s)| s.clone())
            .collect();
        for slot in slots {
            Self::clear(&slot);
        }
    }
}

/// Live state (message counts, lag) read from the clusters, shared by every query and
/// subscription for a time-to-live: a list of thousands of streams costs one request per
/// 256 streams per refresh, not one per stream per query.
pub struct LiveState {
    managed: Arc<ManagedClusters>,
    /// Lists of a cluster's streams in the order of a figure of their state, with the
    /// sample and the view version they were made from (see `Console::sorted_streams`).
    #[allow(clippy::type_complexity)]
    pub(crate) orders: std::sync::Mutex<
        HashMap<
            (String, jsc_metrics::Metric, bool),
            (crate::resources::StateSource, u64, Arc<Vec<crate::resources::StateKey>>),
        >,
    >,
    /// Each stream's state alone: its configuration is the streams view's (a second copy
    /// of every stream's would cost as much again).
    streams: TtlCache<String, StreamState>,
    /// Each consumer's state, kept only for the streams someone looks at.
    consumers: TtlCache<(String, String), ConsumerInfo>,
}

impl LiveState {
    pub fn new(managed: Arc<ManagedClusters>, ttl: Duration) -> Self {
        Self {
            managed,
            orders: Default::default(),
            streams: TtlCache::new(ttl),
            consumers: TtlCache::new(ttl),
        }
    }

    pub fn managed(&self) -> &Arc<ManagedClusters> {
        &self.managed
    }

    /// The state of every stream of a cluster, by name.
    pub async fn streams(&self, cluster_id: &str) -> Result<Arc<Sampled<StreamState>>, ServiceError> {
        let (managed, cluster) = (self.managed.clone(), cluster_id.to_string());
        self.streams
            .get(cluster_id.to_string(), || async move {
                let admin = managed.admin(&cluster).await?;
                let list = admin.map_streams(|i| (i.config.name, i.state)).await?;
                Ok(list.into_iter().collect())
            })
            .await
    }

    /// Every consumer of a stream with its state, by name.
    pub async fn consumers(&self, cluster_id: &str, stream: &str) -> Result<Arc<Sampled<ConsumerInfo>>, ServiceError> {
        let (managed, cluster, stream) = (self.managed.clone(), cluster_id.to_string(), stream.to_string());
        self.consumers
            .get((cluster.clone(), stream.clone()), || async move {
                let list = match managed.admin(&cluster).await?.list_consumers(&stream).await {
                    Err(ServiceError::NotFound(_)) => Vec::new(),
                    other => other?,
                };
                Ok(list.into_iter().map(|i| (i.name.clone(), i)).collect())
            })
            .await
    }

    /// After the console changed a stream (or one of its consumers): that stream's state
    /// read again on its own and put into the cluster's list (the rest of the list as it
    /// was), and its consumers read again when next asked. Falls back to forgetting the
    /// cluster's state when the stream cannot be read.
    pub async fn stream_changed(&self, cluster_id: &str, stream: &str) {
        let key = (cluster_id.to_string(), stream.to_string());
        self.consumers.forget(&key);
        // No list of the cluster to put the change into (no one asked lately): no read.
        if !self.streams.changed(&key.0) {
            return;
        }
        let info = match self.managed.admin(cluster_id).await {
            Ok(admin) => match admin.stream_info(stream).await {
                Ok(info) => Ok(Some(info.state)),
                Err(ServiceError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match info {
            Ok(info) => self.streams.patch(&key.0, stream, info),
            Err(e) => {
                tracing::debug!(error = %e, cluster_id, stream, "reading a changed stream failed; forgetting the cluster's state");
                self.invalidate(cluster_id);
            }
        }
    }

    /// Forgets a cluster's cached state (a changed stream that could not be read).
    fn invalidate(&self, cluster_id: &str) {
        self.streams.invalidate_where(|c| c == cluster_id);
        self.consumers.invalidate_where(|(c, _)| c == cluster_id);
    }
}
