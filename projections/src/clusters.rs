//! `clusters`: the current view of every managed cluster.
//!
//! Reads `es.cluster.>`; key = cluster id; bucket `view_clusters_v1`. Holds no secret: the
//! auth kind and user name only, and whether TLS material is configured.

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use jsc_domain::cluster::{Cluster, ClusterAuth, ClusterEvent, ClusterSpec, ConnectionTest, TlsOptions};
use jsc_eventstore::EventRecord;
use jsc_projector::KvProjection;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsView {
    pub required: bool,
    pub handshake_first: bool,
    pub ca_cert_pem: Option<String>,
    pub client_cert_pem: Option<String>,
    pub has_client_key: bool,
}

impl From<&TlsOptions> for TlsView {
    fn from(t: &TlsOptions) -> Self {
        Self {
            required: t.required,
            handshake_first: t.handshake_first,
            ca_cert_pem: t.ca_cert_pem.clone(),
            client_cert_pem: t.client_cert_pem.clone(),
            has_client_key: t.client_key.is_some(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    pub id: String,
    /// The organization the cluster belongs to.
    #[serde(default = "default_organization")]
    pub organization: String,
    pub name: String,
    pub urls: Vec<String>,
    /// `none`, `user_password`, `token`, `nkey`, `credentials`.
    pub auth_kind: String,
    pub auth_username: Option<String>,
    /// The system account's auth kind (`none` without one); never its secret.
    #[serde(default = "no_auth")]
    pub system_auth_kind: String,
    /// The cluster's own sampling interval, in seconds (`None`: the console's).
    #[serde(default)]
    pub metrics_interval_secs: Option<u32>,
    pub tls: TlsView,
    pub tags: Vec<String>,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    /// The aggregate's version: how many events it has.
    pub version: u64,
    /// The version at which the way to reach the cluster (URLs, auth, TLS) last changed;
    /// connections opened before it are stale.
    #[serde(default)]
    pub connection_version: u64,
    pub last_event_type: String,
    pub last_test: Option<ConnectionTest>,
}

impl ClusterView {
    fn set_spec(&mut self, spec: &ClusterSpec) {
        self.name = spec.name.clone();
        self.urls = spec.urls.clone();
        self.set_auth(&spec.auth);
        self.tls = (&spec.tls).into();
        self.tags = spec.tags.clone();
        self.description = spec.description.clone();
        self.system_auth_kind = spec.system_auth.kind_name().to_string();
        self.metrics_interval_secs = spec.metrics_interval_secs;
    }

    fn set_auth(&mut self, auth: &ClusterAuth) {
        self.auth_kind = auth.kind_name().to_string();
        self.auth_username = match auth {
            ClusterAuth::UserPassword { username, .. } => Some(username.clone()),
            _ => None,
        };
    }
}

fn no_auth() -> String {
    ClusterAuth::None.kind_name().to_string()
}

fn default_organization() -> String {
    jsc_domain::identity::DEFAULT_ORGANIZATION.to_string()
}

pub struct ClustersProjection;

impl KvProjection for ClustersProjection {
    type View = ClusterView;

    fn name(&self) -> &'static str {
        "clusters"
    }

    fn version(&self) -> u32 {
        1
    }

    fn aggregate_types(&self) -> Vec<&'static str> {
        vec![Cluster::TYPE]
    }

    fn key(&self, event: &EventRecord) -> Option<String> {
        (event.aggregate_type == Cluster::TYPE).then(|| jsc_projector::kv_token(&event.aggregate_id))
    }

    fn apply(&self, view: Option<ClusterView>, event: &EventRecord) -> Result<Option<ClusterView>, String> {
        let payload: ClusterEvent =
            Deserialize::deserialize(&event.payload).map_err(|e: serde_json::Error| e.to_string())?;
        let actor = event.actor().to_string();
        let at = event.timestamp;
        let mut view = match (view, &payload) {
            (_, ClusterEvent::Registered { id, organization, spec }) => {
                let mut v = ClusterView {
                    id: id.clone(),
                    organization: organization.clone(),
                    name: String::new(),
                    urls: Vec::new(),
                    auth_kind: String::new(),
                    auth_username: None,
                    system_auth_kind: no_auth(),
                    metrics_interval_secs: None,
                    tls: (&TlsOptions::default()).into(),
                    tags: Vec::new(),
                    description: String::new(),
                    created_at: at,
                    created_by: actor.clone(),
                    updated_at: at,
                    updated_by: actor.clone(),
                    version: 0,
                    connection_version: event.aggregate_sequence,
                    last_event_type: String::new(),
                    last_test: None,
                };
                v.set_spec(spec);
                v
            }
            (_, ClusterEvent::Removed { .. }) => return Ok(None),
            (Some(mut v), ClusterEvent::Updated { changes }) => {
                let mut spec = ClusterSpec {
                    name: v.name.clone(),
                    urls: v.urls.clone(),
                    tags: v.tags.clone(),
                    description: v.description.clone(),
                    metrics_interval_secs: v.metrics_interval_secs,
                    ..Default::default()
                };
                changes.apply_to(&mut spec);
                v.name = spec.name;
                v.urls = spec.urls;
                v.tags = spec.tags;
                v.description = spec.description;
                v.metrics_interval_secs = spec.metrics_interval_secs;
                if let Some(auth) = &changes.system_auth {
                    v.system_auth_kind = auth.kind_name().to_string();
                }
                if let Some(auth) = &changes.auth {
                    v.set_auth(auth);
                }
                if let Some(tls) = &changes.tls {
                    v.tls = tls.into();
                }
                if changes.urls.is_some()
                    || changes.auth.is_some()
                    || changes.tls.is_some()
                    || changes.system_auth.is_some()
                {
                    v.connection_version = event.aggregate_sequence;
                }
                v
            }
            (Some(mut v), ClusterEvent::ConnectionTested { result }) => {
                v.last_test = Some(result.clone());
                v
            }
            (None, other) => {
                return Err(format!("{} for a cluster the view does not have", other.event_type()));
            }
        };
        view.version = event.aggregate_sequence;
        view.last_event_type = event.event_type.clone();
        if !matches!(payload, ClusterEvent::ConnectionTested { .. }) {
            view.updated_at = at;
            view.updated_by = actor;
        }
        Ok(Some(view))
    }
}
