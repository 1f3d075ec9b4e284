//! The domain's service traits, implemented: the cluster aggregate's name checks (against
//! the clusters view) and probes (through the fleet); the stream and consumer aggregates'
//! admin calls on the managed cluster a resource lives on, over the pool's connection.

use std::sync::Arc;

use async_trait::async_trait;
use jsc_domain::cluster::{Cluster, ClusterAuth, ClusterSpec};
use jsc_domain::consumer::{ConsumerConfig, ConsumerServices};
use jsc_domain::stream::{PurgeRequest, ServiceError, StreamConfig, StreamServices};
use jsc_eventstore::Repository;
use jsc_fleet::{Admin, Fleet, Pool};
use jsc_projections::ClusterView;
use jsc_projector::ViewCache;

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
        // The connection depends only on how the cluster is reached.
        let spec = ClusterSpec {
            metrics_interval_secs: None,
            system_auth: ClusterAuth::None,
            ..cluster.spec
        };
        self.pool.admin(cluster_id, &spec).await
    }

    /// Admin calls on the cluster's system account; `None` when it has no credentials for
    /// one.
    pub async fn system_admin(&self, cluster_id: &str) -> Option<Result<Admin, ServiceError>> {
        let cluster = match self.clusters.load(cluster_id).await {
            Ok((c, _)) if c.registered && !c.removed => c,
            _ => return None,
        };
        if cluster.spec.system_auth.is_none() {
            return None;
        }
        let spec = ClusterSpec {
            auth: cluster.spec.system_auth.clone(),
            metrics_interval_secs: None,
            system_auth: ClusterAuth::None,
            ..cluster.spec
        };
        Some(self.pool.admin(&system_slot(cluster_id), &spec).await)
    }
}

/// The pool's key for a cluster's system-account connection.
pub(crate) fn system_slot(cluster_id: &str) -> String {
    format!("{cluster_id}#system")
}

pub(crate) fn not_found_is_none<T>(r: Result<T, ServiceError>) -> Result<Option<T>, ServiceError> {
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

    async fn delete_message(
        &self,
        cluster_id: &str,
        stream: &str,
        sequence: u64,
        erase: bool,
    ) -> Result<(), ServiceError> {
        self.admin(cluster_id)
            .await?
            .delete_message(stream, sequence, erase)
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

/// The cluster aggregate's side effects: name checks against the clusters view, probes
/// through the fleet.
pub struct ClusterServicesImpl {
    pub view: ViewCache<ClusterView>,
    pub fleet: Fleet,
}

#[async_trait::async_trait]
impl jsc_domain::cluster::ClusterServices for ClusterServicesImpl {
    async fn name_in_use(&self, organization: &str, name: &str, except_id: &str) -> Result<bool, String> {
        Ok(!self
            .view
            .filter(|v| v.organization == organization && v.id != except_id && v.name.eq_ignore_ascii_case(name))
            .is_empty())
    }

    async fn probe(&self, spec: &jsc_domain::cluster::ClusterSpec) -> jsc_domain::cluster::ConnectionTest {
        self.fleet.probe(spec).await
    }
}
