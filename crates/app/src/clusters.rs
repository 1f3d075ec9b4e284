//! Managed clusters: lists and lookups from the clusters view, live server detail, and
//! every change as a command on the cluster aggregate.

use jsc_domain::cluster::{AccountUsage, Cluster, ClusterChanges, ClusterCommand, ClusterSpec, ConnectionTest};
use jsc_domain::identity::{DEFAULT_ORGANIZATION, Role};
use jsc_projections::ClusterView;
use jsc_projector::{Versioned, kv_token};

use crate::paging::{List, MAX_PAGE, Page, Paging, by_name};
use crate::runner::{Access, Actor};
use crate::{Caller, Console, Error, Result};

/// The id (and name) under which the embedded server is registered.
pub const LOCAL_CLUSTER_ID: &str = "local";

/// Which clusters to list.
#[derive(Default)]
pub struct ClusterFilter {
    pub tag: Option<String>,
    /// Part of the name, case-insensitive.
    pub name_contains: Option<String>,
    pub organization_id: Option<String>,
}

/// The server the console reached on a cluster, and its health.
pub struct ServerDetail {
    pub name: String,
    pub id: String,
    pub version: String,
    pub jetstream: bool,
    pub cluster_name: Option<String>,
    pub domain: Option<String>,
    pub max_payload: u64,
    pub connect_urls: Vec<String>,
    pub lame_duck_mode: bool,
    pub rtt_ms: Option<f64>,
    /// Answering pings, JetStream answering (when enabled), not in lame-duck mode.
    pub healthy: bool,
}

/// Clusters' order in every list: by name ignoring case, then id.
fn cluster_order(c: &Versioned<ClusterView>) -> (String, String) {
    by_name(&c.view.name, &c.view.id)
}

impl Console {
    /// The organization a managed cluster belongs to.
    pub fn cluster_organization(&self, cluster_id: &str) -> Option<String> {
        self.views
            .clusters
            .get(&kv_token(cluster_id))
            .map(|c| c.view.organization)
    }

    /// The clusters the caller can see, by name, one page.
    pub fn clusters(
        &self,
        caller: &Caller,
        filter: ClusterFilter,
        paging: &Paging,
    ) -> Result<Page<Versioned<ClusterView>>> {
        let list = self.matching_clusters(caller, filter);
        self.page(List::new("clusters", ""), list, cluster_order, paging, MAX_PAGE)
    }

    /// Every cluster the caller can see that matches `filter`, by name.
    pub fn visible_clusters(&self, caller: &Caller, filter: ClusterFilter) -> Vec<Versioned<ClusterView>> {
        let mut list = self.matching_clusters(caller, filter);
        list.sort_by_cached_key(cluster_order);
        list
    }

    /// Every cluster the caller can see that matches `filter`, in no order.
    fn matching_clusters(&self, caller: &Caller, filter: ClusterFilter) -> Vec<Versioned<ClusterView>> {
        let needle = filter.name_contains.map(|s| s.to_lowercase());
        let mut visible = self.cluster_roles(&caller.principal);
        self.views.clusters.filter(|v| {
            filter.tag.as_ref().is_none_or(|t| v.tags.contains(t))
                && needle.as_ref().is_none_or(|n| v.name.to_lowercase().contains(n))
                && filter.organization_id.as_ref().is_none_or(|o| o == &v.organization)
                && visible(v).is_some()
        })
    }

    /// One cluster the caller can see; `NOT_FOUND` otherwise.
    pub fn cluster(&self, caller: &Caller, id: &str) -> Result<Versioned<ClusterView>> {
        self.require_cluster(&caller.principal, id, Role::Viewer)?;
        self.views
            .clusters
            .get(&kv_token(id))
            .ok_or_else(|| Error::not_found(format!("no cluster with id '{id}'")))
    }

    /// Every cluster, for the console's own uses and baselines.
    pub fn all_clusters(&self) -> Vec<Versioned<ClusterView>> {
        self.views.clusters.list()
    }

    /// Registers a cluster in `organization` (admin there; may be left out when the caller
    /// administers exactly one organization).
    pub async fn register_cluster(
        &self,
        caller: &Caller,
        organization: Option<String>,
        spec: ClusterSpec,
    ) -> Result<Versioned<ClusterView>> {
        let p = &caller.principal;
        let organization = self.organization_for(p, organization, Role::Admin, "registering a cluster")?;
        let id = uuid::Uuid::now_v7().to_string();
        let cmd = ClusterCommand::Register {
            id: id.clone(),
            organization: organization.clone(),
            spec,
        };
        self.run::<Cluster>(
            Actor::Caller(caller),
            Access::Organization(&organization, Role::Admin),
            &id,
            cmd,
        )
        .await?;
        self.cluster(caller, &id)
    }

    /// Changes a cluster's settings (admin); fields left out stay as they are.
    pub async fn update_cluster(
        &self,
        caller: &Caller,
        id: &str,
        changes: ClusterChanges,
    ) -> Result<Versioned<ClusterView>> {
        if changes.is_empty() {
            return Err(Error::validation(
                "input: nothing to change; give at least one of name, urls, auth, tls, tags, description, \
                 metricsInterval or systemAuth",
            ));
        }
        self.cluster_command(caller, id, Role::Admin, ClusterCommand::Update { changes })
            .await?;
        self.cluster(caller, id)
    }

    /// Stops managing a cluster (admin); the cluster itself is not touched.
    pub async fn remove_cluster(&self, caller: &Caller, id: &str) -> Result<()> {
        self.cluster_command(caller, id, Role::Admin, ClusterCommand::Remove)
            .await?;
        // Stop reconnecting with the removed cluster's credentials.
        self.live.managed().pool.forget(id).await;
        self.live.managed().pool.forget(&crate::adapters::system_slot(id)).await;
        Ok(())
    }

    /// Connects to the cluster and records what it found (operator). An unreachable
    /// cluster is `UNAVAILABLE`, saying why; the attempt is recorded all the same.
    pub async fn test_cluster_connection(&self, caller: &Caller, id: &str) -> Result<ConnectionTest> {
        let committed = self
            .cluster_command(caller, id, Role::Operator, ClusterCommand::TestConnection)
            .await?;
        let test = committed
            .state
            .last_test
            .ok_or_else(|| Error::bug("connection test recorded no result", caller.correlation_id()))?;
        if !test.ok {
            let reason = test
                .error
                .clone()
                .unwrap_or_else(|| "the cluster could not be reached".into());
            return Err(Error::unavailable(reason));
        }
        Ok(test)
    }

    async fn cluster_command(
        &self,
        caller: &Caller,
        id: &str,
        min: Role,
        cmd: ClusterCommand,
    ) -> Result<jsc_eventstore::Committed<Cluster>> {
        self.run(Actor::Caller(caller), Access::Cluster(id, min), id, cmd).await
    }

    pub(crate) async fn admin(&self, cluster_id: &str) -> Result<jsc_fleet::Admin> {
        self.live
            .managed()
            .admin(cluster_id)
            .await
            .map_err(|e| Error::unavailable(e.to_string()))
    }

    /// Live: the server the console is connected to on a cluster the caller was found to
    /// see, and its health.
    pub async fn server_detail(&self, cluster_id: &str) -> Result<ServerDetail> {
        let admin = self.admin(cluster_id).await?;
        let info = admin.client().server_info();
        let started = std::time::Instant::now();
        let flushed = tokio::time::timeout(std::time::Duration::from_secs(3), admin.client().flush()).await;
        let rtt_ms = matches!(flushed, Ok(Ok(()))).then(|| started.elapsed().as_secs_f64() * 1000.0);
        let jetstream_ok = info.jetstream && admin.account().await.is_ok();
        Ok(ServerDetail {
            name: info.server_name.clone(),
            id: info.server_id.clone(),
            version: info.version.clone(),
            jetstream: info.jetstream,
            cluster_name: info.cluster.clone(),
            domain: info.domain.clone(),
            max_payload: info.max_payload as u64,
            connect_urls: info.connect_urls.clone(),
            lame_duck_mode: info.lame_duck_mode,
            rtt_ms,
            healthy: rtt_ms.is_some() && (!info.jetstream || jetstream_ok) && !info.lame_duck_mode,
        })
    }

    /// Live: JetStream usage against the account's limits; `None` without JetStream.
    pub async fn jetstream_account(&self, cluster_id: &str) -> Result<Option<AccountUsage>> {
        let admin = self.admin(cluster_id).await?;
        if !admin.client().server_info().jetstream {
            return Ok(None);
        }
        let usage = admin
            .account_usage()
            .await
            .map_err(|e| Error::unavailable(e.to_string()))?;
        Ok(Some(usage))
    }

    /// Seals a credential given through the API, so it enters events only sealed.
    pub fn seal(&self, clear: &str) -> jsc_domain::Sealed {
        self.fleet.secrets().seal(clear)
    }

    /// Registers the embedded server as the cluster `local`, or points it at `url`.
    pub async fn register_local(&self, url: &str) {
        let existing = match self.repos.clusters.load(LOCAL_CLUSTER_ID).await {
            Ok((state, _)) => state,
            Err(e) => {
                tracing::warn!(error = %e, "could not load the local cluster; not registering it");
                return;
            }
        };
        let command = if !existing.registered {
            ClusterCommand::Register {
                id: LOCAL_CLUSTER_ID.into(),
                organization: DEFAULT_ORGANIZATION.into(),
                spec: ClusterSpec {
                    name: LOCAL_CLUSTER_ID.into(),
                    urls: vec![url.to_string()],
                    tags: vec!["embedded".into()],
                    description: "The nats-server the console started itself (its home NATS).".into(),
                    ..Default::default()
                },
            }
        } else if existing.removed {
            return;
        } else {
            ClusterCommand::Update {
                changes: ClusterChanges {
                    urls: Some(vec![url.to_string()]),
                    ..Default::default()
                },
            }
        };
        let access = Access::Checked(Some(DEFAULT_ORGANIZATION));
        if let Err(e) = self
            .run::<Cluster>(Actor::System("bootstrap"), access, LOCAL_CLUSTER_ID, command)
            .await
        {
            tracing::warn!(error = %e, "could not register the embedded server as cluster 'local'");
        }
    }
}
