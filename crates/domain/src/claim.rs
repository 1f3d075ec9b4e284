//! Claims: a unique key (a cluster's name in its organization, a user's email) held by one
//! aggregate at a time. The event store writes a claim's events in the same atomic batch as
//! the events of the command that takes or releases it, so no command handles a claim
//! directly; its history is in the audit trail like any other aggregate's.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// A key and who holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Claim {
    /// `<aggregate type>/<aggregate id>` of the holder; `None` when free.
    pub holder: Option<String>,
}

/// A claim's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimEvent {
    /// `holder` (`<aggregate type>/<aggregate id>`) holds the key.
    Taken { holder: String },
    /// `holder` let the key go.
    Released { holder: String },
}

impl DomainEvent for ClaimEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Taken { .. } => "ClaimTaken",
            Self::Released { .. } => "ClaimReleased",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// Claims take no commands: they change only with the command of the aggregate that holds
/// them.
#[derive(Debug, Clone)]
pub enum ClaimCommand {}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("claims change only with the command of the aggregate that takes or releases them")]
pub struct ClaimError;

impl crate::DomainError for ClaimError {
    fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::Validation
    }
}

impl Aggregate for Claim {
    const TYPE: &'static str = "claim";
    type Command = ClaimCommand;
    type Event = ClaimEvent;
    type Error = ClaimError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), _: &EventSink<Self>) -> Result<(), Self::Error> {
        match command {}
    }

    fn apply(&mut self, event: Self::Event) {
        self.holder = match event {
            ClaimEvent::Taken { holder } => Some(holder),
            ClaimEvent::Released { .. } => None,
        };
    }
}
