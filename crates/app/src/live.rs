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
    /// Which content this is: new for every read and every change put in, so that what was
    /// made from one (a sorted list) can tell it is still current.
    pub id: u64,
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
            id: next_id(),
            items: list.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        })
    }
}

/// A copy for a change while a reader holds the map (the items' state is shared).
impl<T> Clone for Sampled<T> {
    fn clone(&self) -> Self {
        Self {
            at: self.at,
            id: self.id,
            items: self.items.clone(),
        }
    }
}

fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
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
    /// How long the last read of the whole map took (see [`TtlCache::fresh_for`]).
    took: Duration,
    refreshing: bool,
    /// Bumped by each change put in or forgotten: a read that began before one is not kept.
    generation: u64,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            state: std::sync::Mutex::new(SlotState {
                last: None,
                took: Duration::ZERO,
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

/// A map stays fresh for at least this many times as long as its last read took: reads of
/// a big cluster (a quarter of a second of CPU for 10,000 streams, on the console and on the
/// server) then take at most a twentieth of the time, so they do not crowd out the queries.
const READS_SPACED: u32 = 20;

impl<K: std::hash::Hash + Eq + Clone, T: Send + Sync + 'static> TtlCache<K, T> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Default::default(),
        }
    }

    /// How long a map whose read took `took` is answered without a refresh: the time to
    /// live, or [`READS_SPACED`] times the read when that is longer (up to half of
    /// [`STALE_FOR`]). Its age is in the answer (`sampledAt`).
    fn fresh_for(&self, took: Duration) -> Duration {
        self.ttl.max((took * READS_SPACED).min(STALE_FOR / 2))
    }

    async fn get<F, Fut>(&self, key: K, fetch: F) -> Result<Arc<Sampled<T>>, ServiceError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(String, T)>, ServiceError>> + Send + 'static,
    {
        let slot = self.slots.lock().expect("cache lock").entry(key).or_default().clone();
        let refresh = {
            let mut state = slot.state.lock().expect("slot lock");
            let fresh = self.fresh_for(state.took);
            match &state.last {
                Some((at, map)) if at.elapsed() < fresh => return Ok(map.clone()),
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
                    let began = Instant::now();
                    let result = read.await;
                    let mut state = slot.state.lock().expect("slot lock");
                    state.refreshing = false;
                    match result {
                        Ok(list) if state.generation == generation => {
                            state.took = began.elapsed();
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
                && at.elapsed() < self.fresh_for(state.took)
            {
                return Ok(map.clone());
            }
            state.generation
        };
        let began = Instant::now();
        let map = Sampled::now(fetch().await?);
        let mut state = slot.state.lock().expect("slot lock");
        if state.generation == generation {
            state.took = began.elapsed();
            state.last = Some((Instant::now(), map.clone()));
        }
        Ok(map)
    }

    /// Puts one item's state read now (`None`: it is gone) into the key's map, if there is
    /// one, instead of dropping the map: the next reader sees the change without a read of
    /// every item. A refresh begun before is discarded (it may predate the change). The
    /// map is changed in place when no reader holds it (a burst of outside changes costs a
    /// change each, not a copy of the cluster's map each); a reader holding it keeps its
    /// own.
    fn patch(&self, key: &K, name: &str, item: Option<T>) {
        let Some(slot) = self.slots.lock().expect("cache lock").get(key).cloned() else {
            return;
        };
        let mut state = slot.state.lock().expect("slot lock");
        state.generation += 1;
        if let Some((_, map)) = &mut state.last {
            let map = Arc::make_mut(map);
            map.id = next_id();
            match item {
                Some(item) => map.items.insert(name.to_string(), Arc::new(item)),
                None => map.items.remove(name),
            };
        }
    }

    /// Marks a change to the key's items: a read begun before it is not kept. Whether the
    /// key has a map to put the change into: one that is still answered. A map too old to
    /// be answered (no one asked for [`STALE_FOR`]) is dropped instead, so changes to a
    /// cluster no one looks at cost nothing; its next reader reads it again.
    fn changed(&self, key: &K) -> bool {
        let slot = self.slots.lock().expect("cache lock").get(key).cloned();
        slot.is_some_and(|s| {
            let mut state = s.state.lock().expect("slot lock");
            state.generation += 1;
            if state.last.as_ref().is_some_and(|(at, _)| at.elapsed() >= STALE_FOR) {
                state.last = None;
            }
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
            (crate::resources::SourceKey, u64, Arc<Vec<crate::resources::StateKey>>),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_with(items: &[(&str, u32)]) -> TtlCache<&'static str, u32> {
        let cache = TtlCache::new(Duration::from_secs(2));
        let slot: Arc<Slot<u32>> = Default::default();
        let list = items.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        slot.state.lock().unwrap().last = Some((Instant::now(), Sampled::now(list)));
        cache.slots.lock().unwrap().insert("c", slot);
        cache
    }

    fn current(cache: &TtlCache<&'static str, u32>) -> Arc<Sampled<u32>> {
        let slot = cache.slots.lock().unwrap().get("c").cloned().unwrap();
        let state = slot.state.lock().unwrap();
        state.last.as_ref().unwrap().1.clone()
    }

    #[test]
    fn a_slow_read_is_spaced_out_in_proportion_and_a_quick_one_at_the_time_to_live() {
        let cache: TtlCache<&str, u32> = TtlCache::new(Duration::from_secs(2));
        assert_eq!(cache.fresh_for(Duration::from_millis(10)), Duration::from_secs(2));
        assert_eq!(cache.fresh_for(Duration::from_millis(250)), Duration::from_secs(5));
        assert_eq!(cache.fresh_for(Duration::from_secs(5)), STALE_FOR / 2);
    }

    #[test]
    fn a_change_goes_into_the_map_in_place_unless_a_reader_holds_it() {
        let cache = cache_with(&[("a", 1), ("b", 2)]);
        let before = current(&cache);
        let (first_id, first_ptr) = (before.id, Arc::as_ptr(&before));
        // A reader holds the map: it keeps what it read; the cache gets a changed copy.
        assert!(cache.changed(&"c"));
        cache.patch(&"c", "a", Some(10));
        let after = current(&cache);
        assert_eq!((*before["a"], *after["a"], *after["b"]), (1, 10, 2));
        assert_ne!(Arc::as_ptr(&after), first_ptr);
        assert_ne!(after.id, first_id);
        // No reader: the same map, changed, with a new id.
        let (second_id, second_ptr) = (after.id, Arc::as_ptr(&after));
        drop((before, after));
        cache.patch(&"c", "b", None);
        cache.patch(&"c", "d", Some(4));
        let last = current(&cache);
        assert_eq!(Arc::as_ptr(&last), second_ptr);
        assert_ne!(last.id, second_id);
        let mut names: Vec<_> = last.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["a", "d"]);
    }

    #[test]
    fn a_map_too_old_to_be_answered_is_dropped_rather_than_changed() {
        let cache = cache_with(&[("a", 1)]);
        let slot = cache.slots.lock().unwrap().get("c").cloned().unwrap();
        let old = Instant::now().checked_sub(STALE_FOR).expect("a clock past 30 s");
        slot.state.lock().unwrap().last.as_mut().unwrap().0 = old;
        assert!(
            !cache.changed(&"c"),
            "an unanswerable map is not worth a read of the changed stream"
        );
        assert!(slot.state.lock().unwrap().last.is_none());
        // No map: nothing to put a change into, and no error.
        cache.patch(&"c", "a", Some(2));
        assert!(slot.state.lock().unwrap().last.is_none());
    }
}
