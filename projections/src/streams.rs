//! `streams` and `consumers`: the configuration of every stream and consumer on every
//! managed cluster, and who changed it last and when.
//!
//! Keys: `<cluster>.<stream>` and `<cluster>.<stream>.<consumer>` (tokens KV-encoded);
//! buckets `view_streams_v1` and `view_consumers_v1`. Live state (messages, lag) is not
//! here: it is observation, read from the clusters.

use chrono::{DateTime, Utc};
use jsc_domain::consumer::{ConsumerConfig, ConsumerEvent};
use jsc_domain::ids::{ConsumerRef, StreamRef};
use jsc_domain::stream::{ChangeOrigin, StreamConfig, StreamEvent};
use jsc_eventstore::EventRecord;
use jsc_projector::KvProjection;
use serde::{Deserialize, Serialize};

use crate::compact::{Compact, Shared};

/// Who last changed something, when, and how the console learnt of it. The strings are
/// [`Shared`]: tens of thousands of views name the same few actors and event types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub created_at: DateTime<Utc>,
    pub created_by: Shared,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Shared,
    /// The event type of the last change (`StreamUpdated`, ...).
    pub last_change: Shared,
    /// Whether the last change was made outside the console.
    pub last_change_external: bool,
    /// The NATS client behind an external change, when known.
    pub last_change_client: Option<Shared>,
    pub version: u64,
}

impl Provenance {
    fn new(event: &EventRecord, origin: &ChangeOrigin) -> Self {
        let mut p = Self {
            created_at: event.timestamp,
            created_by: actor(event, origin),
            updated_at: event.timestamp,
            updated_by: Shared::default(),
            last_change: Shared::default(),
            last_change_external: false,
            last_change_client: None,
            version: 0,
        };
        p.touch(event, Some(origin));
        p
    }

    fn touch(&mut self, event: &EventRecord, origin: Option<&ChangeOrigin>) {
        self.updated_at = event.timestamp;
        self.updated_by = origin.map_or_else(|| Shared::new(event.actor()), |o| actor(event, o));
        self.last_change = Shared::new(&event.event_type);
        self.last_change_external = origin.is_some_and(ChangeOrigin::is_external);
        self.last_change_client = match origin {
            Some(ChangeOrigin::External { client, .. }) => client.as_deref().map(Shared::new),
            _ => None,
        };
        self.version = event.aggregate_sequence;
    }
}

/// The actor shown for a change: the client outside the console when it was external.
fn actor(event: &EventRecord, origin: &ChangeOrigin) -> Shared {
    match origin {
        ChangeOrigin::External { client: Some(c), .. } => Shared::from(format!("external:{c}")),
        ChangeOrigin::External { client: None, .. } => Shared::new("external"),
        ChangeOrigin::Console => Shared::new(event.actor()),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamView {
    pub cluster_id: Shared,
    pub name: String,
    pub config: StreamConfig,
    #[serde(flatten)]
    pub provenance: Provenance,
    pub last_purge: Option<DateTime<Utc>>,
    /// The type of the last event applied (purges and publishes included).
    pub last_event: Shared,
}

pub struct StreamsProjection;

pub fn stream_key(cluster_id: &str, name: &str) -> String {
    StreamRef::new(cluster_id, name).kv_key()
}

/// The group of a cluster's streams in the streams view's order index, by name.
pub fn streams_group(cluster_id: &str) -> String {
    jsc_domain::ids::kv_key(&[cluster_id])
}

/// The group of a stream's consumers in the consumers view's order index, by name.
pub fn consumers_group(cluster_id: &str, stream: &str) -> String {
    jsc_domain::ids::kv_key(&[cluster_id, stream])
}

/// The prefix of the keys of a stream's consumers in the consumers view.
pub fn consumers_prefix(cluster_id: &str, stream: &str) -> String {
    consumers_group(cluster_id, stream) + "."
}

impl KvProjection for StreamsProjection {
    type View = StreamView;

    fn name(&self) -> &'static str {
        "streams"
    }

    fn version(&self) -> u32 {
        1
    }

    fn aggregate_types(&self) -> Vec<&'static str> {
        vec![<jsc_domain::stream::Stream as cqrs_es::Aggregate>::TYPE]
    }

    fn key(&self, event: &EventRecord) -> Option<String> {
        Some(event.aggregate_id.parse::<StreamRef>().ok()?.kv_key())
    }

    fn order(&self) -> Option<jsc_projector::OrderKey<StreamView>> {
        Some(|v| Some((Shared::new(&streams_group(&v.cluster_id)), v.name.clone())))
    }

    fn apply(&self, view: Option<StreamView>, event: &EventRecord) -> Result<Option<StreamView>, String> {
        let ev: StreamEvent = Deserialize::deserialize(&event.payload).map_err(|e: serde_json::Error| e.to_string())?;
        let next = match (view, ev) {
            (
                _,
                StreamEvent::Created {
                    cluster_id,
                    config,
                    origin,
                },
            ) => Some(StreamView {
                cluster_id: cluster_id.into(),
                name: config.name.clone(),
                config,
                provenance: Provenance::new(event, &origin),
                last_purge: None,
                last_event: Shared::default(),
            }),
            (_, StreamEvent::Deleted { .. }) => None,
            (Some(mut v), StreamEvent::Updated { after, origin, .. }) => {
                v.config = after;
                v.provenance.touch(event, Some(&origin));
                Some(v)
            }
            (Some(mut v), StreamEvent::Sealed { after, .. }) => {
                v.config = after;
                v.provenance.touch(event, None);
                Some(v)
            }
            (Some(mut v), StreamEvent::Purged { .. }) => {
                v.last_purge = Some(event.timestamp);
                Some(v)
            }
            (
                v @ Some(_),
                StreamEvent::MessagePublished { .. }
                | StreamEvent::MessagesReadUnmasked { .. }
                | StreamEvent::MessageDeleted { .. }
                | StreamEvent::RepublishStarted { .. }
                | StreamEvent::RepublishFinished { .. },
            ) => v,
            (None, _) => return Err(format!("{} for a stream the view does not have", event.event_type)),
        };
        Ok(next.map(|mut v| {
            v.last_event = Shared::new(&event.event_type);
            v
        }))
    }
}

/// A consumer as the console knows it. A cluster can have tens of thousands, so its
/// configuration is held [`Compact`] (read it with `config.get()`) and the cluster and
/// stream are [`Shared`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerView {
    pub cluster_id: Shared,
    pub stream: Shared,
    pub name: String,
    pub config: Compact<ConsumerConfig>,
    #[serde(flatten)]
    pub provenance: Provenance,
}

pub struct ConsumersProjection;

pub fn consumer_key(cluster_id: &str, stream: &str, name: &str) -> String {
    ConsumerRef::new(cluster_id, stream, name).kv_key()
}

impl KvProjection for ConsumersProjection {
    type View = ConsumerView;

    fn name(&self) -> &'static str {
        "consumers"
    }

    fn version(&self) -> u32 {
        1
    }

    fn aggregate_types(&self) -> Vec<&'static str> {
        vec![<jsc_domain::consumer::Consumer as cqrs_es::Aggregate>::TYPE]
    }

    fn key(&self, event: &EventRecord) -> Option<String> {
        Some(event.aggregate_id.parse::<ConsumerRef>().ok()?.kv_key())
    }

    fn order(&self) -> Option<jsc_projector::OrderKey<ConsumerView>> {
        Some(|v| Some((Shared::new(&consumers_group(&v.cluster_id, &v.stream)), v.name.clone())))
    }

    fn apply(&self, view: Option<ConsumerView>, event: &EventRecord) -> Result<Option<ConsumerView>, String> {
        let ev: ConsumerEvent =
            Deserialize::deserialize(&event.payload).map_err(|e: serde_json::Error| e.to_string())?;
        Ok(match (view, ev) {
            (
                _,
                ConsumerEvent::Created {
                    cluster_id,
                    stream,
                    config,
                    origin,
                },
            ) => Some(ConsumerView {
                cluster_id: cluster_id.into(),
                stream: stream.into(),
                name: config.consumer_name().to_string(),
                config: Compact::new(&config),
                provenance: Provenance::new(event, &origin),
            }),
            (_, ConsumerEvent::Deleted { .. }) => None,
            (Some(mut v), ConsumerEvent::Updated { after, origin, .. }) => {
                v.config = Compact::new(&after);
                v.provenance.touch(event, Some(&origin));
                Some(v)
            }
            (Some(mut v), ConsumerEvent::Paused { after, .. } | ConsumerEvent::Resumed { after }) => {
                v.config = Compact::new(&after);
                v.provenance.touch(event, None);
                Some(v)
            }
            (None, _) => return Err(format!("{} for a consumer the view does not have", event.event_type)),
        })
    }
}
