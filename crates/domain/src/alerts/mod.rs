//! Alerting: rules (what to watch and when to fire), notification channels (where to say
//! it), an organization's routing policy (which alert goes to which channel, and how often),
//! silences (what to keep quiet for a while) and alerts themselves (each transition an
//! event, with the value that caused it).
//!
//! The vocabulary is Alertmanager's (`for`, `keep_firing_for`, `group_wait`,
//! `group_interval`, `repeat_interval`, matchers), which operators already know; the
//! conditions are JetStream's (consumer lag, stalled consumers, message rates, storage
//! against limits, dead letters), with thresholds that may come from a stream's or a
//! consumer's `io.nats.monitor.*` metadata as `nats server check` reads them.
//!
//! Secrets (SMTP passwords, webhook URLs, signing secrets, routing keys) enter these
//! aggregates only [`Sealed`](crate::Sealed); what people may see of them is a hint.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{DomainError, ErrorKind};

pub mod channel;
pub mod matcher;
pub mod policy;
pub mod rule;
pub mod silence;
pub mod state;
pub mod template;

pub use channel::*;
pub use matcher::*;
pub use policy::*;
pub use rule::*;
pub use silence::*;
pub use state::*;

/// Most labels or annotations on one rule.
pub const MAX_LABELS: usize = 32;
/// Longest label name.
pub const MAX_LABEL_NAME: usize = 64;
/// Longest label value or annotation template.
pub const MAX_LABEL_VALUE: usize = 1024;
/// Longest `for`, `keep_firing_for`, window or interval: 30 days.
pub const MAX_DURATION_S: u64 = 30 * 24 * 3600;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AlertError {
    /// The input breaks a rule; `field` is the input's path (`condition.threshold`).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
}

impl DomainError for AlertError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Validation,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::Conflict,
        }
    }
}

pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> AlertError {
    AlertError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// How urgent an alert is. Ordered: a route for `Warning` and above takes `Critical` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// A display name: trimmed, 1 to 64 characters, no control characters.
pub(crate) fn check_name(field: &str, name: &str) -> Result<String, AlertError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(invalid(field, "give a name of 1 to 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(name.to_string())
}

/// A duration in seconds within `0..=MAX_DURATION_S` (`min` at least).
pub(crate) fn check_seconds(field: &str, s: u64, min: u64) -> Result<(), AlertError> {
    if s < min {
        return Err(invalid(field, format!("must be at least {min} s")));
    }
    if s > MAX_DURATION_S {
        return Err(invalid(field, "must be at most 30 days"));
    }
    Ok(())
}

/// Labels: names as Prometheus's (`[a-zA-Z_][a-zA-Z0-9_]*`), values of bounded length.
pub(crate) fn check_labels(field: &str, labels: &BTreeMap<String, String>) -> Result<(), AlertError> {
    if labels.len() > MAX_LABELS {
        return Err(invalid(field, format!("at most {MAX_LABELS} entries")));
    }
    for (k, v) in labels {
        check_label_name(&format!("{field}.{k}"), k)?;
        if v.len() > MAX_LABEL_VALUE || v.chars().any(|c| c.is_control() && c != '\n') {
            return Err(invalid(
                format!("{field}.{k}"),
                format!("at most {MAX_LABEL_VALUE} bytes, no control characters"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn check_label_name(field: &str, name: &str) -> Result<(), AlertError> {
    let mut chars = name.chars();
    let ok = name.len() <= MAX_LABEL_NAME
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("'{name}' is not a label name: use letters, digits and '_', not starting with a digit"),
        ))
    }
}
