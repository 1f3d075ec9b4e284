//! The read models: one module per view, each saying which events it reads, its key, its
//! target (a KV bucket) and its version.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod audit;
pub mod clusters;
pub mod compact;
pub mod identity;
pub mod streams;

pub use clusters::{ClusterView, ClustersProjection};
pub use streams::{
    ConsumerView, ConsumersProjection, StreamView, StreamsProjection, consumer_key, consumers_group, consumers_prefix,
    stream_key, streams_group,
};

/// Every view the console keeps: the one list that the application (which starts them),
/// `/readyz` (which waits for them), `jsconsole replay` and the tests read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Projection {
    Clusters,
    Streams,
    Consumers,
    Users,
    Organizations,
    Invitations,
    Sessions,
    ApiKeys,
    AlertRules,
    NotificationChannels,
    AlertPolicies,
    Silences,
    Alerts,
}

/// Something to do with one projection, whatever its type (each view is its own type, so
/// the list is walked with a visitor rather than as trait objects).
pub trait WithProjection {
    type Output;
    fn call<P: jsc_projector::KvProjection>(self, projection: P) -> Self::Output;
}

impl Projection {
    pub const ALL: [Projection; 13] = [
        Self::Clusters,
        Self::Streams,
        Self::Consumers,
        Self::Users,
        Self::Organizations,
        Self::Invitations,
        Self::Sessions,
        Self::ApiKeys,
        Self::AlertRules,
        Self::NotificationChannels,
        Self::AlertPolicies,
        Self::Silences,
        Self::Alerts,
    ];

    /// Its name on the command line (`--projection`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Clusters => "clusters",
            Self::Streams => "streams",
            Self::Consumers => "consumers",
            Self::Users => "users",
            Self::Organizations => "organizations",
            Self::Invitations => "invitations",
            Self::Sessions => "sessions",
            Self::ApiKeys => "api_keys",
            Self::AlertRules => "alert_rules",
            Self::NotificationChannels => "notification_channels",
            Self::AlertPolicies => "alert_policies",
            Self::Silences => "silences",
            Self::Alerts => "alerts",
        }
    }

    /// By name; the error lists the names there are.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|p| p.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|p| p.name()).collect();
            format!("unknown projection '{name}'; use one of {}", names.join(", "))
        })
    }

    /// Runs `w` with this projection.
    pub fn with<W: WithProjection>(self, w: W) -> W::Output {
        match self {
            Self::Clusters => w.call(ClustersProjection),
            Self::Streams => w.call(StreamsProjection),
            Self::Consumers => w.call(ConsumersProjection),
            Self::Users => w.call(identity::USERS),
            Self::Organizations => w.call(identity::ORGANIZATIONS),
            Self::Invitations => w.call(identity::INVITATIONS),
            Self::Sessions => w.call(identity::SESSIONS),
            Self::ApiKeys => w.call(identity::API_KEYS),
            Self::AlertRules => w.call(alerts::ALERT_RULES),
            Self::NotificationChannels => w.call(alerts::CHANNELS),
            Self::AlertPolicies => w.call(alerts::ALERT_POLICIES),
            Self::Silences => w.call(alerts::SILENCES),
            Self::Alerts => w.call(alerts::ALERTS),
        }
    }
}
