//! The side effects of the stream and consumer aggregates: admin calls on the managed
//! cluster the resource lives on, over the pool's connection to it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsc_domain::cluster::Cluster;
use jsc_domain::consumer::{ConsumerConfig, ConsumerServices};
use jsc_domain::stream::{PurgeRequest, ServiceError, StreamConfig, StreamServices};
use jsc_eventstore::Repository;
use jsc_fleet::admin::{ConsumerInfo, StreamInfo};
use jsc_fleet::{Admin, Pool};
use tokio::sync::Mutex;

/// Reaches managed clusters by id: looks the cluster up (write side, where its sealed
/// credentials are) and hands out the pool's connection.
pub struct ManagedClusters {
    pub clusters: Arc<Repository<Cluster>>,
    pub pool: Arc<Pool>,
}

impl ManagedClusters {
    pub async fn admin(&self, cluster_id: &str) -> Result<Admin, ServiceError> {
        let (cluster, _) = self
            .clusters
            .load(cluster_id)
            .await
            .map_err(|e| ServiceError::Unavailable(format!("cannot read the cluster's settings: {e}")))?;
        if !cluster.registered || cluster.removed {
            return Err(ServiceError::NotFound(format!(
                "no cluster with id '{cluster_id}'; list clusters to see the ids that exist"
            )));
        }
        self.pool.admin(cluster_id, &cluster.spec).await
    }
}

fn not_found_is_none<T>(r: Result<T, ServiceError>) -> Result<Option<T>, ServiceError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ServiceError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl StreamServices for ManagedClusters {
    async fn create_stream(&self, cluster_id: &str, config: &StreamConfig) -> Result<StreamConfig, ServiceError> {
        self.admin(cluster_id).await?.create_stream(config).await
    }

    async fn update_stream(&self, cluster_id: &str, config: &StreamConfig) -> Result<StreamConfig, ServiceError> {
        self.admin(cluster_id).await?.update_stream(config).await
    }

    async fn delete_stream(&self, cluster_id: &str, name: &str) -> Result<(), ServiceError> {
        self.admin(cluster_id).await?.delete_stream(name).await
    }

    async fn stream_config(&self, cluster_id: &str, name: &str) -> Result<Option<StreamConfig>, ServiceError> {
        let admin = self.admin(cluster_id).await?;
        Ok(not_found_is_none(admin.stream_info(name).await)?.map(|i| i.config))
    }

    async fn purge_stream(&self, cluster_id: &str, name: &str, request: &PurgeRequest) -> Result<u64, ServiceError> {
        self.admin(cluster_id).await?.purge_stream(name, request).await
    }

    async fn publish(
        &self,
        cluster_id: &str,
        stream: &str,
        subject: &str,
        headers: &[(String, String)],
        payload: &[u8],
    ) -> Result<(u64, bool), ServiceError> {
        self.admin(cluster_id)
            .await?
            .publish(stream, subject, headers, payload)
            .await
    }
}

#[async_trait]
impl ConsumerServices for ManagedClusters {
    async fn create_consumer(
        &self,
        cluster_id: &str,
        stream: &str,
        config: &ConsumerConfig,
    ) -> Result<ConsumerConfig, ServiceError> {
        self.admin(cluster_id).await?.create_consumer(stream, config).await
    }

    async fn update_consumer(
        &self,
        cluster_id: &str,
        stream: &str,
        config: &ConsumerConfig,
    ) -> Result<ConsumerConfig, ServiceError> {
        self.admin(cluster_id).await?.update_consumer(stream, config).await
    }

    async fn delete_consumer(&self, cluster_id: &str, stream: &str, name: &str) -> Result<(), ServiceError> {
        self.admin(cluster_id).await?.delete_consumer(stream, name).await
    }

    async fn consumer_config(
        &self,
        cluster_id: &str,
        stream: &str,
        name: &str,
    ) -> Result<Option<ConsumerConfig>, ServiceError> {
        let admin = self.admin(cluster_id).await?;
        // Ephemeral consumers (ordered consumers, KV watchers) come and go with their
        // clients; only durable ones are managed resources with a history.
        Ok(not_found_is_none(admin.consumer_info(stream, name).await)?
            .map(|i| i.config)
            .filter(|c| c.durable_name.is_some()))
    }

    async fn pause_consumer(
        &self,
        cluster_id: &str,
        stream: &str,
        name: &str,
        until: Option<&str>,
    ) -> Result<ConsumerConfig, ServiceError> {
        self.admin(cluster_id).await?.pause_consumer(stream, name, until).await
    }
}

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
