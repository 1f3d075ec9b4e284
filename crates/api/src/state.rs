//! What resolvers work with: the command side, the read side and the fleet.

use std::sync::Arc;
use std::time::Duration;

use jsc_domain::cluster::Cluster;
use jsc_domain::consumer::Consumer;
use jsc_domain::identity::{ApiKey, Invitation, Organization, Session, User};
use jsc_domain::stream::Stream;
use jsc_eventstore::{CommandContext, Repository};
use jsc_fleet::Fleet;
use jsc_projections::{
    ClusterView, ClustersProjection, ConsumerView, ConsumersProjection, StreamView, StreamsProjection,
};
use jsc_projector::{Projector, ViewCache};

use crate::error::{ApiError, ApiResult};
use crate::services::LiveState;

/// The services behind the API. Cheap to clone; holds nothing another replica could not
/// rebuild from NATS.
#[derive(Clone)]
pub struct Console {
    pub home: async_nats::Client,
    pub clusters: Arc<Repository<Cluster>>,
    pub streams: Arc<Repository<Stream>>,
    pub consumers: Arc<Repository<Consumer>>,
    pub users: Arc<Repository<User>>,
    pub organizations: Arc<Repository<Organization>>,
    pub invitations: Arc<Repository<Invitation>>,
    pub sessions: Arc<Repository<Session>>,
    pub api_keys: Arc<Repository<ApiKey>>,
    /// Keys, identity views and login limits.
    pub auth: crate::auth::Auth,
    pub cluster_view: ViewCache<ClusterView>,
    pub stream_view: ViewCache<StreamView>,
    pub consumer_view: ViewCache<ConsumerView>,
    pub live: Arc<LiveState>,
    pub audit: jsc_projections::audit::AuditReader,
    pub fleet: Fleet,
    pub projector: Projector,
    /// How long a mutation waits for the read model to show its change.
    pub view_wait: Duration,
}

impl Console {
    /// Waits until the clusters view reflects `seq`.
    pub async fn await_clusters(&self, seq: u64, ctx: &CommandContext) -> ApiResult<()> {
        self.await_view(&self.cluster_view, "clusters", seq, ctx).await
    }

    /// Waits until `view` reflects stream sequence `seq` (read-your-writes for mutations).
    pub async fn await_view<V>(&self, view: &ViewCache<V>, name: &str, seq: u64, ctx: &CommandContext) -> ApiResult<()>
    where
        V: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if view.wait_for(seq, self.view_wait).await {
            Ok(())
        } else {
            tracing::warn!(seq, view = name, correlation_id = %ctx.correlation_id, "view lagging");
            Err(ApiError::unavailable(format!(
                "the change was saved (event stream sequence {seq}) but the {name} view has not caught up yet; \
                 query again in a moment"
            )))
        }
    }

    /// Where every projection stands (for `/readyz`).
    pub async fn projections_caught_up(&self) -> Result<Vec<jsc_projector::ProjectionStatus>, jsc_projector::Error> {
        Ok(vec![
            self.projector.status(&ClustersProjection).await?,
            self.projector.status(&StreamsProjection).await?,
            self.projector.status(&ConsumersProjection).await?,
            self.projector.status(&jsc_projections::identity::USERS).await?,
            self.projector.status(&jsc_projections::identity::ORGANIZATIONS).await?,
            self.projector.status(&jsc_projections::identity::INVITATIONS).await?,
            self.projector.status(&jsc_projections::identity::SESSIONS).await?,
            self.projector.status(&jsc_projections::identity::API_KEYS).await?,
        ])
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
