//! Live state (message counts, lag) read from the clusters, shared by every query and
//! subscription for a time-to-live.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsc_domain::stream::ServiceError;
use jsc_fleet::admin::{ConsumerInfo, StreamInfo};
use tokio::sync::Mutex;

use crate::adapters::ManagedClusters;

type Slot<T> = Arc<Mutex<Option<(Instant, Arc<HashMap<String, T>>)>>>;

/// Maps fetched on demand and kept for a time-to-live; concurrent readers of a stale
/// entry wait for a single refresh.
struct TtlCache<K, T> {
    ttl: Duration,
    slots: std::sync::Mutex<HashMap<K, Slot<T>>>,
}

impl<K: std::hash::Hash + Eq + Clone, T> TtlCache<K, T> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Default::default(),
        }
    }

    async fn get<F, Fut>(&self, key: K, fetch: F) -> Result<Arc<HashMap<String, T>>, ServiceError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(String, T)>, ServiceError>>,
    {
        let slot = self.slots.lock().expect("cache lock").entry(key).or_default().clone();
        let mut guard = slot.lock().await;
        if let Some((at, v)) = guard.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(v.clone());
        }
        let map: Arc<HashMap<String, T>> = Arc::new(fetch().await?.into_iter().collect());
        *guard = Some((Instant::now(), map.clone()));
        Ok(map)
    }

    async fn invalidate_where(&self, mut pred: impl FnMut(&K) -> bool) {
        let slots: Vec<Slot<T>> = self
            .slots
            .lock()
            .expect("cache lock")
            .iter()
            .filter(|(k, _)| pred(k))
            .map(|(_, s)| s.clone())
            .collect();
        for slot in slots {
            *slot.lock().await = None;
        }
    }
}

/// Live state (message counts, lag) read from the clusters, shared by every query and
/// subscription for a time-to-live: a list of thousands of streams costs one request per
/// 256 streams per refresh, not one per stream per query.
pub struct LiveState {
    managed: Arc<ManagedClusters>,
    streams: TtlCache<String, StreamInfo>,
    consumers: TtlCache<(String, String), ConsumerInfo>,
}

impl LiveState {
    pub fn new(managed: Arc<ManagedClusters>, ttl: Duration) -> Self {
        Self {
            managed,
            streams: TtlCache::new(ttl),
            consumers: TtlCache::new(ttl),
        }
    }

    pub fn managed(&self) -> &Arc<ManagedClusters> {
        &self.managed
    }

    /// Every stream of a cluster with its state, by name.
    pub async fn streams(&self, cluster_id: &str) -> Result<Arc<HashMap<String, StreamInfo>>, ServiceError> {
        self.streams
            .get(cluster_id.to_string(), || async {
                let list = self.managed.admin(cluster_id).await?.list_streams().await?;
                Ok(list.into_iter().map(|i| (i.config.name.clone(), i)).collect())
            })
            .await
    }

    /// Every consumer of a stream with its state, by name.
    pub async fn consumers(
        &self,
        cluster_id: &str,
        stream: &str,
    ) -> Result<Arc<HashMap<String, ConsumerInfo>>, ServiceError> {
        self.consumers
            .get((cluster_id.to_string(), stream.to_string()), || async {
                let list = match self.managed.admin(cluster_id).await?.list_consumers(stream).await {
                    Err(ServiceError::NotFound(_)) => Vec::new(),
                    other => other?,
                };
                Ok(list.into_iter().map(|i| (i.name.clone(), i)).collect())
            })
            .await
    }

    /// Forgets a cluster's cached state, after the console changed something on it.
    pub async fn invalidate(&self, cluster_id: &str) {
        self.streams.invalidate_where(|c| c == cluster_id).await;
        self.consumers.invalidate_where(|(c, _)| c == cluster_id).await;
    }
}
