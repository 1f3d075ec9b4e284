//! One long-lived connection per managed cluster, reopened when the cluster's settings change.

use std::collections::HashMap;

use jsc_domain::cluster::ClusterSpec;
use jsc_domain::stream::ServiceError;
use tokio::sync::Mutex;

use crate::{Admin, Fleet};

/// Connections to managed clusters, keyed by cluster id. Cheap to share behind an `Arc`.
pub struct Pool {
    fleet: Fleet,
    conns: Mutex<HashMap<String, (String, async_nats::Client)>>,
}

impl Pool {
    pub fn new(fleet: Fleet) -> Self {
        Self {
            fleet,
            conns: Mutex::new(HashMap::new()),
        }
    }

    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Admin calls on cluster `cluster_id` as described by `spec`; connects on first use
    /// and again when the spec changed. Fails at once while the connection is down.
    pub async fn admin(&self, cluster_id: &str, spec: &ClusterSpec) -> Result<Admin, ServiceError> {
        let fingerprint = serde_json::to_string(spec).unwrap_or_default();
        let mut conns = self.conns.lock().await;
        if let Some((fp, client)) = conns.get(cluster_id)
            && *fp == fingerprint
        {
            if client.connection_state() != async_nats::connection::State::Connected {
                return Err(ServiceError::Unavailable(format!(
                    "the connection to cluster '{}' is down; the console reconnects on its own, retry in a moment",
                    spec.name
                )));
            }
            return Ok(Admin::new(client.clone()));
        }
        let client = self
            .fleet
            .connect_with(spec, true)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        if let Some((_, old)) = conns.insert(cluster_id.to_string(), (fingerprint, client.clone())) {
            tokio::spawn(async move {
                let _ = old.drain().await;
            });
        }
        Ok(Admin::new(client))
    }

    /// Closes the connection to a cluster (after it was removed).
    pub async fn forget(&self, cluster_id: &str) {
        if let Some((_, client)) = self.conns.lock().await.remove(cluster_id) {
            let _ = client.drain().await;
        }
    }
}
