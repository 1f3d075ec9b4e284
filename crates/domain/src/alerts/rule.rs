//! Alert rules: a condition over the metrics of the clusters, streams or consumers in a
//! scope, with a severity, how long it must hold before it fires (`for`), how long an alert
//! keeps firing once it no longer holds (`keep_firing_for`), labels and annotation
//! templates. One aggregate per rule; every change is an event with its actor.

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::template;
use super::{AlertError, Glob, Severity, check_labels, check_name, check_seconds, invalid};

/// What a rule watches. Thresholds left out (`None`) come from the resource's
/// `io.nats.monitor.*` metadata, as `nats server check` reads them
/// ([`Condition::metadata_key`]); a resource without that key is not checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    /// A consumer's lag (messages not yet delivered) above `threshold`.
    ConsumerLag { threshold: Option<f64> },
    /// A consumer with messages pending whose ack floor has not moved for `stalled_for_s`.
    ConsumerStalled { stalled_for_s: u64 },
    /// Messages acknowledged but then redelivered: redeliveries per second above `threshold`.
    RedeliveryRate { threshold: Option<f64> },
    /// A stream's messages stored per second above `threshold`.
    MessageRateAbove { threshold: f64 },
    /// A stream's messages stored per second below `threshold`.
    MessageRateBelow { threshold: f64 },
    /// A stream that had traffic in the last `window_s` and now has none.
    MessageRateZero { window_s: u64 },
    /// A stream's message rate more than `z` standard deviations from its own mean over the
    /// trailing `window_s`.
    MessageRateAnomaly { z: f64, window_s: u64 },
    /// A stream's bytes or messages above `percent` of its `max_bytes` or `max_msgs`.
    StreamStorage { percent: f64 },
    /// The account's JetStream storage, memory, streams or consumers above `percent` of its
    /// limits.
    AccountStorage { percent: f64 },
    /// The cluster does not answer the console's samples (for the rule's `for`).
    ClusterUnreachable,
    /// The cluster answers but JetStream does not (for the rule's `for`).
    JetstreamUnhealthy,
    /// More than `threshold` messages given up on (max deliveries reached or terminated) by
    /// a consumer within the trailing `window_s`.
    DeadLetters { threshold: f64, window_s: u64 },
}

/// What a condition is about: which resources a scope's patterns select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Cluster,
    Stream,
    Consumer,
}

impl Condition {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ConsumerLag { .. } => "consumer_lag",
            Self::ConsumerStalled { .. } => "consumer_stalled",
            Self::RedeliveryRate { .. } => "redelivery_rate",
            Self::MessageRateAbove { .. } => "message_rate_above",
            Self::MessageRateBelow { .. } => "message_rate_below",
            Self::MessageRateZero { .. } => "message_rate_zero",
            Self::MessageRateAnomaly { .. } => "message_rate_anomaly",
            Self::StreamStorage { .. } => "stream_storage",
            Self::AccountStorage { .. } => "account_storage",
            Self::ClusterUnreachable => "cluster_unreachable",
            Self::JetstreamUnhealthy => "jetstream_unhealthy",
            Self::DeadLetters { .. } => "dead_letters",
        }
    }

    pub fn target(&self) -> Target {
        match self {
            Self::ConsumerLag { .. }
            | Self::ConsumerStalled { .. }
            | Self::RedeliveryRate { .. }
            | Self::DeadLetters { .. } => Target::Consumer,
            Self::MessageRateAbove { .. }
            | Self::MessageRateBelow { .. }
            | Self::MessageRateZero { .. }
            | Self::MessageRateAnomaly { .. }
            | Self::StreamStorage { .. } => Target::Stream,
            Self::AccountStorage { .. } | Self::ClusterUnreachable | Self::JetstreamUnhealthy => Target::Cluster,
        }
    }

    /// The metadata key that gives the threshold when the rule leaves it out.
    pub fn metadata_key(&self) -> Option<&'static str> {
        match self {
            Self::ConsumerLag { .. } => Some("io.nats.monitor.unprocessed-critical"),
            Self::RedeliveryRate { .. } => Some("io.nats.monitor.redelivery-critical"),
            _ => None,
        }
    }

    /// The threshold the rule gives, if it gives one.
    pub fn threshold(&self) -> Option<f64> {
        match self {
            Self::ConsumerLag { threshold } | Self::RedeliveryRate { threshold } => *threshold,
            Self::MessageRateAbove { threshold } | Self::MessageRateBelow { threshold } => Some(*threshold),
            Self::DeadLetters { threshold, .. } => Some(*threshold),
            Self::StreamStorage { percent } | Self::AccountStorage { percent } => Some(*percent),
            Self::MessageRateAnomaly { z, .. } => Some(*z),
            Self::ConsumerStalled { stalled_for_s } => Some(*stalled_for_s as f64),
            Self::MessageRateZero { .. } | Self::ClusterUnreachable | Self::JetstreamUnhealthy => None,
        }
    }

    fn check(&self) -> Result<(), AlertError> {
        let non_negative = |field: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(invalid(field, "must be a number of at least 0"))
            }
        };
        let percent = |v: f64| {
            if v.is_finite() && v > 0.0 && v <= 100.0 {
                Ok(())
            } else {
                Err(invalid("condition.percent", "must be above 0 and at most 100"))
            }
        };
        match self {
            Self::ConsumerLag { threshold } | Self::RedeliveryRate { threshold } => {
                threshold.map_or(Ok(()), |t| non_negative("condition.threshold", t))
            }
            Self::MessageRateAbove { threshold } | Self::MessageRateBelow { threshold } => {
                non_negative("condition.threshold", *threshold)
            }
            Self::ConsumerStalled { stalled_for_s } => check_seconds("condition.stalledFor", *stalled_for_s, 1),
            Self::MessageRateZero { window_s } => check_seconds("condition.window", *window_s, 10),
            Self::MessageRateAnomaly { z, window_s } => {
                if !(z.is_finite() && *z > 0.0 && *z <= 100.0) {
                    return Err(invalid("condition.z", "must be above 0 and at most 100 (3 is usual)"));
                }
                check_seconds("condition.window", *window_s, 60)
            }
            Self::StreamStorage { percent: p } | Self::AccountStorage { percent: p } => percent(*p),
            Self::ClusterUnreachable | Self::JetstreamUnhealthy => Ok(()),
            Self::DeadLetters { threshold, window_s } => {
                non_negative("condition.threshold", *threshold)?;
                check_seconds("condition.window", *window_s, 10)
            }
        }
    }
}

/// Which resources a rule watches: patterns of names (`*`, `?`), empty for any, and tags the
/// cluster must all have. Patterns below the condition's target are refused (a stream
/// pattern on a cluster condition would silently do nothing).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Scope {
    /// Cluster ids or names.
    #[serde(default)]
    pub clusters: Vec<Glob>,
    #[serde(default)]
    pub streams: Vec<Glob>,
    #[serde(default)]
    pub consumers: Vec<Glob>,
    /// Tags every selected cluster has.
    #[serde(default)]
    pub cluster_tags: Vec<String>,
}

impl Scope {
    fn check(&self, target: Target) -> Result<(), AlertError> {
        for (field, globs) in [
            ("scope.clusters", &self.clusters),
            ("scope.streams", &self.streams),
            ("scope.consumers", &self.consumers),
        ] {
            if globs.len() > 64 {
                return Err(invalid(field, "at most 64 patterns"));
            }
            for (i, g) in globs.iter().enumerate() {
                g.check(&format!("{field}[{i}]"))?;
            }
        }
        if self.cluster_tags.len() > 32 || self.cluster_tags.iter().any(|t| t.trim().is_empty() || t.len() > 64) {
            return Err(invalid("scope.clusterTags", "at most 32 tags of 1 to 64 characters"));
        }
        if target == Target::Cluster && !self.streams.is_empty() {
            return Err(invalid(
                "scope.streams",
                "this condition is about clusters; leave out stream patterns",
            ));
        }
        if target != Target::Consumer && !self.consumers.is_empty() {
            return Err(invalid(
                "scope.consumers",
                "this condition is not about consumers; leave out consumer patterns",
            ));
        }
        Ok(())
    }

    fn any(globs: &[Glob], name: &str) -> bool {
        globs.is_empty() || globs.iter().any(|g| g.matches(name))
    }

    /// Whether a cluster (by id and name, with its tags) is in scope.
    pub fn has_cluster(&self, id: &str, name: &str, tags: &[String]) -> bool {
        (self.clusters.is_empty() || self.clusters.iter().any(|g| g.matches(id) || g.matches(name)))
            && self.cluster_tags.iter().all(|t| tags.contains(t))
    }

    /// Whether every stream pattern is a plain name (no `*` or `?`): the streams can be
    /// looked up rather than matched.
    pub fn streams_are_literal(&self) -> bool {
        !self.streams.is_empty() && self.streams.iter().all(|g| !g.0.contains(['*', '?']))
    }

    pub fn has_stream(&self, stream: &str) -> bool {
        Self::any(&self.streams, stream)
    }

    pub fn has_consumer(&self, consumer: &str) -> bool {
        Self::any(&self.consumers, consumer)
    }
}

/// Everything a rule says, as created or replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub condition: Condition,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub severity: Severity,
    /// How long the condition must hold before the alert fires; 0 fires at once.
    #[serde(default)]
    pub for_s: u64,
    /// How long an alert keeps firing after the condition stops holding.
    #[serde(default)]
    pub keep_firing_for_s: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Templates (`summary`, `description`, ...) rendered for each alert.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Labels an alert gets from the console; a rule may not set them itself.
pub const RESERVED_LABELS: &[&str] = &["alertname", "severity", "cluster", "stream", "consumer", "rule_id"];

impl RuleSpec {
    /// Checks every field; the error names the field (`condition.threshold`).
    pub fn checked(mut self) -> Result<Self, AlertError> {
        self.name = check_name("name", &self.name)?;
        self.description = self.description.trim().to_string();
        if self.description.len() > 1024 {
            return Err(invalid("description", "at most 1024 bytes"));
        }
        self.condition.check()?;
        self.scope.check(self.condition.target())?;
        for globs in [
            &mut self.scope.clusters,
            &mut self.scope.streams,
            &mut self.scope.consumers,
        ] {
            globs.sort_by(|a, b| a.0.cmp(&b.0));
            globs.dedup();
        }
        check_seconds("for", self.for_s, 0)?;
        check_seconds("keepFiringFor", self.keep_firing_for_s, 0)?;
        check_labels("labels", &self.labels)?;
        if let Some(k) = self.labels.keys().find(|k| RESERVED_LABELS.contains(&k.as_str())) {
            return Err(invalid(
                format!("labels.{k}"),
                format!("'{k}' is set by the console; choose another name"),
            ));
        }
        check_labels("annotations", &self.annotations)?;
        for (k, t) in &self.annotations {
            template::check(&format!("annotations.{k}"), t)?;
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AlertRule {
    pub id: String,
    pub organization: String,
    pub spec: Option<RuleSpec>,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlertRuleCommand {
    Create {
        id: String,
        organization: String,
        spec: RuleSpec,
    },
    /// Replaces the whole rule.
    Update {
        spec: RuleSpec,
    },
    SetEnabled {
        enabled: bool,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlertRuleEvent {
    Created {
        id: String,
        organization: String,
        spec: RuleSpec,
    },
    /// The rule as it is now (the history diffs it with the state before).
    Updated {
        spec: RuleSpec,
    },
    Enabled,
    Disabled,
    Deleted,
}

impl DomainEvent for AlertRuleEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "AlertRuleCreated",
            Self::Updated { .. } => "AlertRuleUpdated",
            Self::Enabled => "AlertRuleEnabled",
            Self::Disabled => "AlertRuleDisabled",
            Self::Deleted => "AlertRuleDeleted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl AlertRule {
    pub fn exists(&self) -> bool {
        self.spec.is_some() && !self.deleted
    }
}

impl Aggregate for AlertRule {
    const TYPE: &'static str = "alert_rule";
    type Command = AlertRuleCommand;
    type Event = AlertRuleEvent;
    type Error = AlertError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        let event = match command {
            AlertRuleCommand::Create { id, organization, spec } => {
                if self.spec.is_some() {
                    return Err(AlertError::Conflict("the alert rule already exists".into()));
                }
                AlertRuleEvent::Created {
                    id,
                    organization,
                    spec: spec.checked()?,
                }
            }
            AlertRuleCommand::Update { spec } => {
                let current = self.spec.as_ref().filter(|_| !self.deleted);
                let current = current.ok_or(AlertError::NotFound("alert rule"))?;
                let spec = spec.checked()?;
                if &spec == current {
                    return Ok(());
                }
                AlertRuleEvent::Updated { spec }
            }
            AlertRuleCommand::SetEnabled { enabled } => {
                let current = self.spec.as_ref().filter(|_| !self.deleted);
                let current = current.ok_or(AlertError::NotFound("alert rule"))?;
                match (current.enabled, enabled) {
                    (a, b) if a == b => return Ok(()),
                    (_, true) => AlertRuleEvent::Enabled,
                    (_, false) => AlertRuleEvent::Disabled,
                }
            }
            AlertRuleCommand::Delete => {
                if !self.exists() {
                    return Err(AlertError::NotFound("alert rule"));
                }
                AlertRuleEvent::Deleted
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AlertRuleEvent::Created { id, organization, spec } => {
                self.id = id;
                self.organization = organization;
                self.spec = Some(spec);
            }
            AlertRuleEvent::Updated { spec } => self.spec = Some(spec),
            AlertRuleEvent::Enabled | AlertRuleEvent::Disabled => {
                if let Some(s) = &mut self.spec {
                    s.enabled = matches!(event, AlertRuleEvent::Enabled);
                }
            }
            AlertRuleEvent::Deleted => self.deleted = true,
        }
    }
}
