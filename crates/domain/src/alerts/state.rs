//! Alerts: one aggregate per rule and resource (a rule over `ORDERS*` has one alert per
//! matching stream), moving Normal → Pending → Firing → Resolved. Each transition is an
//! event with the value that caused it, so the history shows why an alert fired and when
//! it stopped; acknowledgements and silences are events too.
//!
//! The evaluator (`jsc-alerts`) decides when a condition holds and how long it has; the
//! aggregate refuses transitions that make no sense (firing an alert twice, acknowledging
//! one that is not firing), so a replayed or doubled command changes nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::{AlertError, Severity, invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// The condition does not hold (or the alert never existed).
    #[default]
    Normal,
    /// The condition holds, not yet for the rule's `for`.
    Pending,
    Firing,
    /// It fired and no longer does.
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// What an alert is about, as the evaluator saw it when the condition started to hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertOrigin {
    pub organization: String,
    pub rule_id: String,
    pub rule_name: String,
    pub severity: Severity,
    pub cluster_id: String,
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub consumer: Option<String>,
    /// The rule's labels and the console's (`alertname`, `severity`, `cluster`, ...).
    pub labels: BTreeMap<String, String>,
    /// Rendered annotations (`summary`, `description`).
    pub annotations: BTreeMap<String, String>,
    /// The threshold in force (the rule's, or the resource's metadata).
    #[serde(default)]
    pub threshold: Option<f64>,
}

/// Who acknowledged a firing alert, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub by: String,
    pub comment: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Alert {
    pub id: String,
    pub origin: Option<AlertOrigin>,
    pub status: AlertStatus,
    /// When the current status began.
    pub since: Option<DateTime<Utc>>,
    /// When it last started firing.
    pub fired_at: Option<DateTime<Utc>>,
    /// The value of the last transition.
    pub value: Option<f64>,
    pub acknowledged: Option<Acknowledgement>,
    /// The silences that keep it quiet now (empty: none).
    pub silenced_by: Vec<String>,
    /// How many times it has fired.
    pub fired_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlertCommand {
    /// The condition started to hold.
    Pend {
        origin: Box<AlertOrigin>,
        value: f64,
        at: DateTime<Utc>,
    },
    /// It held for `for` (or `for` is 0).
    Fire {
        origin: Box<AlertOrigin>,
        value: f64,
        at: DateTime<Utc>,
    },
    /// It stopped holding before it fired.
    Clear { value: Option<f64>, at: DateTime<Utc> },
    /// It stopped holding (for `keep_firing_for`) after it fired, or its rule went away.
    Resolve { value: Option<f64>, at: DateTime<Utc> },
    Acknowledge {
        by: String,
        comment: String,
        at: DateTime<Utc>,
    },
    /// The silences that match it now (empty: none).
    SetSilences { silences: Vec<String>, at: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlertEvent {
    Pending {
        origin: Box<AlertOrigin>,
        value: f64,
        at: DateTime<Utc>,
    },
    Firing {
        origin: Box<AlertOrigin>,
        value: f64,
        at: DateTime<Utc>,
    },
    Cleared {
        value: Option<f64>,
        at: DateTime<Utc>,
    },
    Resolved {
        value: Option<f64>,
        at: DateTime<Utc>,
    },
    Acknowledged(Acknowledgement),
    Silenced {
        silences: Vec<String>,
        at: DateTime<Utc>,
    },
    Unsilenced {
        at: DateTime<Utc>,
    },
}

impl DomainEvent for AlertEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Pending { .. } => "AlertPending",
            Self::Firing { .. } => "AlertFiring",
            Self::Cleared { .. } => "AlertCleared",
            Self::Resolved { .. } => "AlertResolved",
            Self::Acknowledged(_) => "AlertAcknowledged",
            Self::Silenced { .. } => "AlertSilenced",
            Self::Unsilenced { .. } => "AlertUnsilenced",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// An alert's id: the rule's id and the resource, hashed (stable across restarts and
/// replicas, so every evaluator names an alert the same way).
pub fn alert_id(rule_id: &str, cluster_id: &str, stream: Option<&str>, consumer: Option<&str>) -> String {
    let key = format!(
        "{rule_id}\n{cluster_id}\n{}\n{}",
        stream.unwrap_or(""),
        consumer.unwrap_or("")
    );
    crate::sha256_hex(key.as_bytes())[..32].to_string()
}

impl AlertOrigin {
    pub fn alert_id(&self) -> String {
        alert_id(
            &self.rule_id,
            &self.cluster_id,
            self.stream.as_deref(),
            self.consumer.as_deref(),
        )
    }
}

impl Alert {
    pub fn organization(&self) -> Option<&str> {
        self.origin.as_ref().map(|o| o.organization.as_str())
    }
}

impl Aggregate for Alert {
    const TYPE: &'static str = "alert";
    type Command = AlertCommand;
    type Event = AlertEvent;
    type Error = AlertError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        use AlertStatus::*;
        let event = match command {
            AlertCommand::Pend { origin, value, at } => match self.status {
                Normal | Resolved => AlertEvent::Pending { origin, value, at },
                Pending | Firing => return Ok(()),
            },
            AlertCommand::Fire { origin, value, at } => match self.status {
                Normal | Resolved | Pending => AlertEvent::Firing { origin, value, at },
                Firing => return Ok(()),
            },
            AlertCommand::Clear { value, at } => match self.status {
                Pending => AlertEvent::Cleared { value, at },
                _ => return Ok(()),
            },
            AlertCommand::Resolve { value, at } => match self.status {
                Firing => AlertEvent::Resolved { value, at },
                Pending => AlertEvent::Cleared { value, at },
                Normal | Resolved => return Ok(()),
            },
            AlertCommand::Acknowledge { by, comment, at } => {
                if self.origin.is_none() {
                    return Err(AlertError::NotFound("alert"));
                }
                if self.status != Firing {
                    return Err(AlertError::Conflict(format!(
                        "the alert is {}, not firing: only a firing alert can be acknowledged",
                        self.status.as_str()
                    )));
                }
                if self.acknowledged.is_some() {
                    return Ok(());
                }
                let comment = comment.trim().to_string();
                if comment.len() > 1024 {
                    return Err(invalid("comment", "at most 1024 bytes"));
                }
                AlertEvent::Acknowledged(Acknowledgement { by, comment, at })
            }
            AlertCommand::SetSilences { mut silences, at } => {
                silences.sort();
                silences.dedup();
                if silences == self.silenced_by {
                    return Ok(());
                }
                if silences.is_empty() {
                    AlertEvent::Unsilenced { at }
                } else {
                    AlertEvent::Silenced { silences, at }
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AlertEvent::Pending { origin, value, at } => {
                self.id = origin.alert_id();
                self.origin = Some(*origin);
                self.status = AlertStatus::Pending;
                self.since = Some(at);
                self.value = Some(value);
                self.acknowledged = None;
            }
            AlertEvent::Firing { origin, value, at } => {
                self.id = origin.alert_id();
                self.origin = Some(*origin);
                self.status = AlertStatus::Firing;
                self.since = Some(at);
                self.fired_at = Some(at);
                self.value = Some(value);
                self.fired_count += 1;
                self.acknowledged = None;
            }
            AlertEvent::Cleared { value, at } => {
                self.status = AlertStatus::Normal;
                self.since = Some(at);
                self.value = value.or(self.value);
            }
            AlertEvent::Resolved { value, at } => {
                self.status = AlertStatus::Resolved;
                self.since = Some(at);
                self.value = value.or(self.value);
            }
            AlertEvent::Acknowledged(a) => self.acknowledged = Some(a),
            AlertEvent::Silenced { silences, .. } => self.silenced_by = silences,
            AlertEvent::Unsilenced { .. } => self.silenced_by.clear(),
        }
    }
}
