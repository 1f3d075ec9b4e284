//! One long-lived connection per managed cluster, reopened when the cluster's settings change.

use std::collections::HashMap;
use std::sync::Arc;

use jsc_domain::cluster::ClusterSpec;
use jsc_domain::stream::ServiceError;
use tokio::sync::Mutex;

use crate::{Admin, Fleet};

type Slot = Arc<Mutex<Option<(String, crate::Connection)>>>;

/// Connections to managed clusters, keyed by cluster id. Each cluster has its own slot, so
/// a slow or failing connect to one cluster never holds up requests to another.
pub struct Pool {
    fleet: Fleet,
    slots: std::sync::Mutex<HashMap<String, Slot>>,
}

impl Pool {
    pub fn new(fleet: Fleet) -> Self {
        Self {
            fleet,
            slots: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    fn slot(&self, cluster_id: &str) -> Slot {
        self.slots
            .lock()
            .expect("pool lock")
            .entry(cluster_id.to_string())
            .or_default()
            .clone()
    }

    /// Admin calls on cluster `cluster_id` as described by `spec`; connects on first use
    /// and again when the spec changed. Fails at once while the connection is down.
    pub async fn admin(&self, cluster_id: &str, spec: &ClusterSpec) -> Result<Admin, ServiceError> {
        let fingerprint = serde_json::to_string(spec).unwrap_or_default();
        let slot = self.slot(cluster_id);
        let mut guard = slot.lock().await;
        if let Some((fp, conn)) = guard.as_ref()
            && *fp == fingerprint
        {
            let client = &conn.client;
            if client.connection_state() != async_nats::connection::State::Connected {
                return Err(ServiceError::Unavailable(format!(
                    "the connection to cluster '{}' is down; the console reconnects on its own, retry in a moment",
                    spec.name
                )));
            }
            return Ok(Admin::new(client.clone()));
        }
        let conn = self
            .fleet
            .connect_with(spec, true)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        let client = conn.client.clone();
        if let Some((_, old)) = guard.replace((fingerprint, conn)) {
            tokio::spawn(async move {
                let _ = old.client.drain().await;
            });
        }
        Ok(Admin::new(client))
    }

    /// Closes the connection to a cluster (after it was removed).
    pub async fn forget(&self, cluster_id: &str) {
        let slot = self.slots.lock().expect("pool lock").remove(cluster_id);
        if let Some(slot) = slot
            && let Some((_, conn)) = slot.lock().await.take()
        {
            let _ = conn.client.drain().await;
        }
    }
}
