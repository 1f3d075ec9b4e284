//! Who and what caused a command: the metadata every event carries.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

/// The context a command runs in. Every event it emits carries these fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    /// Who issued the command: `user:<id>`, `apikey:<id>`, or `system:<component>` for
    /// commands the console issues itself.
    pub actor: String,
    /// One id per request, shared by every event it caused, across aggregates.
    pub correlation_id: String,
    /// The id of what directly caused this command (a request id or an event id).
    pub causation_id: String,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// The organization the command's resource belongs to (none for installation-wide
    /// resources: user accounts and sessions).
    pub organization: Option<String>,
    /// Where the repository notes the stream sequence of what this context committed, so
    /// that a request can tell its client (contexts cloned from one share it).
    pub receipt: Receipt,
}

/// The event stream sequence of the last event committed through a context: zero until
/// one is. Not part of what a context means, so every receipt compares equal.
#[derive(Debug, Clone, Default)]
pub struct Receipt(Arc<AtomicU64>);

impl Receipt {
    /// Notes that events up to `stream_sequence` were committed.
    pub fn record(&self, stream_sequence: u64) {
        self.0.fetch_max(stream_sequence, Ordering::AcqRel);
    }

    /// The sequence of the last event committed, if any was.
    pub fn last(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Acquire)).filter(|s| *s > 0)
    }
}

impl PartialEq for Receipt {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Receipt {}

impl CommandContext {
    /// A command issued by a component of the console itself.
    pub fn system(component: &str) -> Self {
        let id = Uuid::now_v7().to_string();
        Self {
            actor: format!("system:{component}"),
            correlation_id: id.clone(),
            causation_id: id,
            client_addr: None,
            user_agent: None,
            organization: None,
            receipt: Receipt::default(),
        }
    }

    /// The same context, for a resource of `organization`.
    pub fn in_organization(mut self, organization: Option<&str>) -> Self {
        self.organization = organization.map(str::to_string);
        self
    }

    /// The metadata map stored with each event (cqrs-es carries metadata as strings).
    pub fn to_metadata(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        m.insert("actor".to_string(), self.actor.clone());
        m.insert("correlation_id".to_string(), self.correlation_id.clone());
        m.insert("causation_id".to_string(), self.causation_id.clone());
        if let Some(a) = &self.client_addr {
            m.insert("client_addr".to_string(), a.clone());
        }
        if let Some(a) = &self.user_agent {
            m.insert("user_agent".to_string(), a.clone());
        }
        if let Some(o) = &self.organization {
            m.insert("organization".to_string(), o.clone());
        }
        m
    }
}
