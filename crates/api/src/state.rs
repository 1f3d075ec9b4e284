//! What resolvers work with: the command side, the read side and the fleet.

use std::sync::Arc;
use std::time::Duration;

use jsc_domain::cluster::Cluster;
use jsc_eventstore::{CommandContext, Repository};
use jsc_fleet::Fleet;
use jsc_projections::{ClusterView, ClustersProjection};
use jsc_projector::{Projector, ViewCache};

use crate::error::{ApiError, ApiResult};

/// The services behind the API. Cheap to clone; holds nothing another replica could not
/// rebuild from NATS.
#[derive(Clone)]
pub struct Console {
    pub home: async_nats::Client,
    pub clusters: Arc<Repository<Cluster>>,
    pub cluster_view: ViewCache<ClusterView>,
    pub fleet: Fleet,
    pub projector: Projector,
    /// How long a mutation waits for the read model to show its change.
    pub view_wait: Duration,
}

impl Console {
    /// Waits until the clusters view reflects `seq`.
    pub async fn await_clusters(&self, seq: u64, ctx: &CommandContext) -> ApiResult<()> {
        if self.cluster_view.wait_for(seq, self.view_wait).await {
            Ok(())
        } else {
            tracing::warn!(seq, correlation_id = %ctx.correlation_id, "clusters view lagging");
            Err(ApiError::unavailable(format!(
                "the change was saved (event stream sequence {seq}) but the clusters view has not caught up yet; \
                 query again in a moment"
            )))
        }
    }

    /// Whether every projection has applied every event (for `/readyz`).
    pub async fn projections_caught_up(&self) -> Result<Vec<jsc_projector::ProjectionStatus>, jsc_projector::Error> {
        Ok(vec![self.projector.status(&ClustersProjection).await?])
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
    async fn name_in_use(&self, name: &str, except_id: &str) -> Result<bool, String> {
        Ok(!self
            .view
            .filter(|v| v.id != except_id && v.name.eq_ignore_ascii_case(name))
            .is_empty())
    }

    async fn probe(&self, spec: &jsc_domain::cluster::ClusterSpec) -> jsc_domain::cluster::ConnectionTest {
        self.fleet.probe(spec).await
    }
}
