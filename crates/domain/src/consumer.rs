//! The consumer aggregate: a durable JetStream consumer on a stream of a managed cluster.
//!
//! Aggregate id: `<cluster id>/<stream>/<consumer>`. As for streams, the configuration
//! recorded is the one the server returned.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::names::{check_name, check_subject, is_false, subjects_overlap};
pub use crate::policy::{AckPolicy, DeliverPolicy, ReplayPolicy};
use crate::stream::{ChangeOrigin, Seen, ServiceError, service_kind};
use crate::{DomainError, ErrorKind};

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// A consumer's configuration with the JetStream API's field names. Push consumers have a
/// `deliver_subject`; pull consumers do not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub deliver_policy: DeliverPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_start_seq: Option<u64>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    #[serde(default)]
    pub ack_policy: AckPolicy,
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ack_wait: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_deliver: i64,
    /// Nanoseconds, one per redelivery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backoff: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_subject: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter_subjects: Vec<String>,
    #[serde(default)]
    pub replay_policy: ReplayPolicy,
    /// Bits per second (push consumers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_bps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_freq: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_waiting: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_ack_pending: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub headers_only: bool,
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inactive_threshold: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_replicas: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub mem_storage: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Push consumers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_group: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub flow_control: bool,
    /// Nanoseconds (push consumers).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub idle_heartbeat: i64,
    /// RFC 3339; the consumer delivers nothing until then (server 2.11+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<String>,
    #[serde(flatten)]
    pub extra: crate::extra::Extra,
}

impl ConsumerConfig {
    pub fn durable(name: impl Into<String>) -> Self {
        serde_json::from_value(serde_json::json!({"durable_name": name.into()})).expect("defaults deserialize")
    }

    pub fn consumer_name(&self) -> &str {
        self.durable_name
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or_default()
    }

    pub fn is_push(&self) -> bool {
        self.deliver_subject.is_some()
    }

    /// Drops what the server adds on its own, so configurations compare as a person would.
    pub fn normalized(mut self) -> Self {
        self.metadata.retain(|k, _| !k.starts_with("_nats."));
        if self.name.is_some() && self.name == self.durable_name {
            self.name = None;
        }
        self
    }

    pub fn validate(&self) -> Result<(), ConsumerError> {
        let name = self.consumer_name();
        if name.is_empty() {
            return Err(invalid("durableName", "give the consumer a durable name"));
        }
        check_name("consumer", name).map_err(|m| invalid("durableName", m))?;
        match self.deliver_policy {
            DeliverPolicy::ByStartSequence if self.opt_start_seq.is_none() => {
                return Err(invalid(
                    "optStartSeq",
                    "deliver policy by_start_sequence needs a start sequence",
                ));
            }
            DeliverPolicy::ByStartTime if self.opt_start_time.is_none() => {
                return Err(invalid(
                    "optStartTime",
                    "deliver policy by_start_time needs a start time",
                ));
            }
            DeliverPolicy::ByStartSequence | DeliverPolicy::ByStartTime => {}
            other if self.opt_start_seq.is_some() || self.opt_start_time.is_some() => {
                return Err(invalid(
                    "deliverPolicy",
                    format!(
                        "a start sequence or time needs deliver policy by_start_sequence or by_start_time, not {other}"
                    ),
                ));
            }
            _ => {}
        }
        if self.filter_subject.is_some() && !self.filter_subjects.is_empty() {
            return Err(invalid(
                "filterSubjects",
                "give filterSubject or filterSubjects, not both",
            ));
        }
        for s in self.filter_subject.iter().chain(&self.filter_subjects) {
            check_subject(s).map_err(|m| invalid("filterSubjects", m))?;
        }
        for (i, a) in self.filter_subjects.iter().enumerate() {
            for b in &self.filter_subjects[i + 1..] {
                if subjects_overlap(a, b) {
                    return Err(invalid("filterSubjects", format!("'{a}' and '{b}' overlap")));
                }
            }
        }
        if !self.backoff.is_empty() && self.max_deliver > 0 && self.max_deliver <= self.backoff.len() as i64 {
            return Err(invalid(
                "maxDeliver",
                "must be greater than the number of backoff durations",
            ));
        }
        if self.backoff.iter().any(|b| *b <= 0) {
            return Err(invalid("backoff", "durations must be positive"));
        }
        for (field, v) in [
            ("ackWait", self.ack_wait),
            ("inactiveThreshold", self.inactive_threshold),
        ] {
            if v < 0 {
                return Err(invalid(field, "must not be negative (0s takes the server's default)"));
            }
        }
        if let Some(d) = &self.deliver_subject {
            check_subject(d).map_err(|m| invalid("deliverSubject", m))?;
            if self.max_waiting > 0 {
                return Err(invalid("maxWaiting", "only pull consumers have waiting pulls"));
            }
        } else if self.flow_control
            || self.idle_heartbeat > 0
            || self.rate_limit_bps.is_some()
            || self.deliver_group.is_some()
        {
            return Err(invalid(
                "deliverSubject",
                "flow control, heartbeats, rate limits and deliver groups are for push consumers: give a deliver subject",
            ));
        }
        if self.max_waiting < 0 {
            return Err(invalid("maxWaiting", "must be 0 (the server's default) or more"));
        }
        if self.max_ack_pending < -1 {
            return Err(invalid(
                "maxAckPending",
                "must be -1 (unlimited), 0 (the server's default) or more",
            ));
        }
        if !(0..=5).contains(&self.num_replicas) {
            return Err(invalid("replicas", "must be between 0 (as many as the stream) and 5"));
        }
        crate::names::check_metadata(&self.metadata).map_err(|m| invalid("metadata", m))?;
        Ok(())
    }

    /// What an update may not change.
    pub fn check_update_from(&self, current: &ConsumerConfig) -> Result<(), ConsumerError> {
        let fixed = |field: &'static str| {
            Err(invalid(
                field,
                "cannot be changed on an existing consumer; delete it and create it again",
            ))
        };
        if self.consumer_name() != current.consumer_name() {
            return fixed("durableName");
        }
        if self.deliver_policy != current.deliver_policy
            || self.opt_start_seq != current.opt_start_seq
            || self.opt_start_time != current.opt_start_time
        {
            return fixed("deliverPolicy");
        }
        if self.ack_policy != current.ack_policy {
            return fixed("ackPolicy");
        }
        if self.replay_policy != current.replay_policy {
            return fixed("replayPolicy");
        }
        if self.is_push() != current.is_push() {
            return Err(invalid(
                "deliverSubject",
                "a consumer cannot switch between push and pull",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConsumerCommand {
    Create {
        cluster_id: String,
        stream: String,
        config: ConsumerConfig,
    },
    Update {
        config: ConsumerConfig,
    },
    Delete,
    /// Deliver nothing until `until` (RFC 3339).
    Pause {
        until: String,
    },
    Resume,
    /// Reads the consumer from its server and records what differs (see `StreamCommand::Observe`).
    Observe {
        cluster_id: String,
        stream: String,
        name: String,
        origin: ChangeOrigin,
        /// What is known of the consumer besides its server (see [`Seen`]).
        seen: Seen<ConsumerConfig>,
    },
}

// Events are short-lived values on their way to and from JSON; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConsumerEvent {
    Created {
        cluster_id: String,
        stream: String,
        config: ConsumerConfig,
        origin: ChangeOrigin,
    },
    Updated {
        cluster_id: String,
        stream: String,
        before: ConsumerConfig,
        after: ConsumerConfig,
        origin: ChangeOrigin,
    },
    Deleted {
        cluster_id: String,
        stream: String,
        name: String,
        last_config: ConsumerConfig,
        origin: ChangeOrigin,
    },
    Paused {
        until: String,
        after: ConsumerConfig,
    },
    Resumed {
        after: ConsumerConfig,
    },
}

impl DomainEvent for ConsumerEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "ConsumerCreated",
            Self::Updated { .. } => "ConsumerUpdated",
            Self::Deleted { .. } => "ConsumerDeleted",
            Self::Paused { .. } => "ConsumerPaused",
            Self::Resumed { .. } => "ConsumerResumed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConsumerError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("consumer '{0}' not found on this stream")]
    NotFound(String),
    #[error("consumer '{0}' already exists on this stream; update it instead")]
    AlreadyExists(String),
    #[error(transparent)]
    Service(ServiceError),
}

impl DomainError for ConsumerError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Validation,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::AlreadyExists(_) => ErrorKind::Conflict,
            Self::Service(s) => service_kind(s),
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConsumerError {
    ConsumerError::Invalid {
        field,
        message: message.into(),
    }
}

#[async_trait]
pub trait ConsumerServices: Send + Sync {
    async fn create_consumer(
        &self,
        cluster_id: &str,
        stream: &str,
        config: &ConsumerConfig,
    ) -> Result<ConsumerConfig, ServiceError>;
    async fn update_consumer(
        &self,
        cluster_id: &str,
        stream: &str,
        config: &ConsumerConfig,
    ) -> Result<ConsumerConfig, ServiceError>;
    async fn delete_consumer(&self, cluster_id: &str, stream: &str, name: &str) -> Result<(), ServiceError>;
    /// The consumer's configuration as the server has it; `None` when it (or its stream)
    /// does not exist.
    async fn consumer_config(
        &self,
        cluster_id: &str,
        stream: &str,
        name: &str,
    ) -> Result<Option<ConsumerConfig>, ServiceError>;
    /// Pauses until `until` (RFC 3339), or resumes with `None`; returns the stored config.
    /// Servers older than 2.11 answer `Unsupported`.
    async fn pause_consumer(
        &self,
        cluster_id: &str,
        stream: &str,
        name: &str,
        until: Option<&str>,
    ) -> Result<ConsumerConfig, ServiceError>;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Consumer {
    pub cluster_id: String,
    pub stream: String,
    pub name: String,
    pub config: Option<ConsumerConfig>,
}

/// `<cluster id>/<stream>/<consumer>`
pub fn consumer_id(cluster_id: &str, stream: &str, name: &str) -> String {
    crate::ids::ConsumerRef::new(cluster_id, stream, name).to_string()
}

impl Consumer {
    fn live(&self) -> Result<&ConsumerConfig, ConsumerError> {
        self.config
            .as_ref()
            .ok_or_else(|| ConsumerError::NotFound(self.name.clone()))
    }
}

impl Aggregate for Consumer {
    const TYPE: &'static str = "consumer";
    type Command = ConsumerCommand;
    type Event = ConsumerEvent;
    type Error = ConsumerError;
    type Services = Arc<dyn ConsumerServices>;

    async fn handle(
        &mut self,
        command: ConsumerCommand,
        svc: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), ConsumerError> {
        match command {
            ConsumerCommand::Create {
                cluster_id,
                stream,
                config,
            } => {
                config.validate()?;
                if self.config.is_some() {
                    return Err(ConsumerError::AlreadyExists(config.consumer_name().to_string()));
                }
                let stored = svc
                    .create_consumer(&cluster_id, &stream, &config)
                    .await
                    .map_err(ConsumerError::Service)?
                    .normalized();
                let origin = ChangeOrigin::Console;
                sink.write(
                    ConsumerEvent::Created {
                        cluster_id,
                        stream,
                        config: stored,
                        origin,
                    },
                    self,
                )
                .await;
            }
            ConsumerCommand::Update { config } => {
                let current = self.live()?.clone();
                config.validate()?;
                config.check_update_from(&current)?;
                let stored = svc
                    .update_consumer(&self.cluster_id, &self.stream, &config)
                    .await
                    .map_err(ConsumerError::Service)?
                    .normalized();
                if stored != current {
                    let ev = ConsumerEvent::Updated {
                        cluster_id: self.cluster_id.clone(),
                        stream: self.stream.clone(),
                        before: current,
                        after: stored,
                        origin: ChangeOrigin::Console,
                    };
                    sink.write(ev, self).await;
                }
            }
            ConsumerCommand::Delete => {
                let current = self.live()?.clone();
                svc.delete_consumer(&self.cluster_id, &self.stream, &self.name)
                    .await
                    .map_err(ConsumerError::Service)?;
                let ev = ConsumerEvent::Deleted {
                    cluster_id: self.cluster_id.clone(),
                    stream: self.stream.clone(),
                    name: self.name.clone(),
                    last_config: current,
                    origin: ChangeOrigin::Console,
                };
                sink.write(ev, self).await;
            }
            ConsumerCommand::Pause { until } => {
                self.live()?;
                let parsed = chrono::DateTime::parse_from_rfc3339(&until)
                    .map_err(|_| invalid("until", "give an RFC 3339 time such as 2026-12-01T08:00:00Z"))?;
                if parsed <= chrono::Utc::now() {
                    return Err(invalid(
                        "until",
                        "must be in the future; use resumeConsumer to resume now",
                    ));
                }
                let after = svc
                    .pause_consumer(&self.cluster_id, &self.stream, &self.name, Some(&until))
                    .await
                    .map_err(ConsumerError::Service)?
                    .normalized();
                sink.write(ConsumerEvent::Paused { until, after }, self).await;
            }
            ConsumerCommand::Resume => {
                self.live()?;
                let after = svc
                    .pause_consumer(&self.cluster_id, &self.stream, &self.name, None)
                    .await
                    .map_err(ConsumerError::Service)?
                    .normalized();
                sink.write(ConsumerEvent::Resumed { after }, self).await;
            }
            ConsumerCommand::Observe {
                cluster_id,
                stream,
                name,
                origin,
                seen,
            } => {
                let observed = match seen {
                    Seen::Answer(made) if self.config.is_none() => Some(*made),
                    Seen::GoneWithStream => None,
                    _ => svc
                        .consumer_config(&cluster_id, &stream, &name)
                        .await
                        .map_err(ConsumerError::Service)?,
                }
                .map(ConsumerConfig::normalized);
                match (self.config.clone(), observed) {
                    (None, Some(config)) => {
                        sink.write(
                            ConsumerEvent::Created {
                                cluster_id,
                                stream,
                                config,
                                origin,
                            },
                            self,
                        )
                        .await;
                    }
                    (Some(before), Some(after)) if before != after => {
                        let ev = ConsumerEvent::Updated {
                            cluster_id,
                            stream,
                            before,
                            after,
                            origin,
                        };
                        sink.write(ev, self).await;
                    }
                    (Some(last_config), None) => {
                        let ev = ConsumerEvent::Deleted {
                            cluster_id,
                            stream,
                            name,
                            last_config,
                            origin,
                        };
                        sink.write(ev, self).await;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: ConsumerEvent) {
        match event {
            ConsumerEvent::Created {
                cluster_id,
                stream,
                config,
                ..
            } => {
                self.cluster_id = cluster_id;
                self.stream = stream;
                self.name = config.consumer_name().to_string();
                self.config = Some(config);
            }
            ConsumerEvent::Updated { after, .. }
            | ConsumerEvent::Paused { after, .. }
            | ConsumerEvent::Resumed { after } => self.config = Some(after),
            ConsumerEvent::Deleted {
                cluster_id,
                stream,
                name,
                ..
            } => {
                self.cluster_id = cluster_id;
                self.stream = stream;
                self.name = name;
                self.config = None;
            }
        }
    }
}
