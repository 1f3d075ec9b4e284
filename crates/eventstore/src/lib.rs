//! The event store on JetStream: the console's one source of truth and its audit trail.
//!
//! All aggregates share the stream `CONSOLE_EVENTS`; each aggregate instance has its own
//! subject `es.<aggregate type>.<encoded id>`. Appends use optimistic concurrency
//! (`Nats-Expected-Last-Subject-Sequence` against the stream sequence remembered from load),
//! multi-event commits are one atomic batch, and every attempt carries a commit id reused on
//! retry so that a commit can never land twice. Unique keys (a cluster's name, a user's
//! email) are [`claims`]: events of their own committed in the same batch.
//!
//! [`JetStreamEventStore`] implements `cqrs_es::EventStore`, so it plugs into
//! `cqrs_es::CqrsFramework`; [`Repository`] adds the in-memory aggregate cache, the bounded
//! reload-and-retry on conflict, and returns what was committed (the stream sequence that
//! readers wait for).
#![forbid(unsafe_code)]

pub mod claims;
mod home;
mod metadata;
mod reader;
mod recent;
mod record;
mod repository;
mod store;
mod subject;
pub mod trace;
pub mod verify;

pub use home::HomeStorage;
pub use metadata::{CommandContext, Receipt};
pub use reader::EventReader;
pub use recent::Recent;
pub use record::{EventRecord, headers};
pub use repository::{CommandError, Committed, Repository};
pub use store::{AppendOutcome, ClaimRecord, EventStoreConfig, JetStreamEventStore, JsAggregateContext, Unsent};
pub use subject::{decode_id, encode_id};

/// Errors of the event store itself (the infrastructure layer of the three).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The aggregate changed since it was loaded: reload and retry.
    #[error("the aggregate was changed concurrently; reload it and retry")]
    Conflict,
    /// No answer in time; the commit may or may not have landed.
    #[error("the event store did not answer in time; retrying with the same commit id is safe")]
    Timeout,
    /// JetStream refused the append for a reason other than a conflict.
    #[error("JetStream refused the append: {description} (error code {code})")]
    Rejected { code: u64, description: String },
    /// NATS failed or answered unexpectedly; the source says how.
    #[error("the event store's NATS failed: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("malformed event at stream sequence {sequence}: {reason}")]
    Malformed { sequence: u64, reason: String },
    /// No stream answered the append: nothing was stored. The stream is missing, or (on a
    /// cluster) electing a new leader after losing a node; an append sends again for a
    /// while before it says so.
    #[error("{0}")]
    NoStream(String),
}

impl Error {
    /// A read's failure: a timeout there sent nothing, so it is the store being unreachable
    /// rather than a write whose outcome is unknown.
    pub fn unanswered(self) -> Self {
        match self {
            Self::Timeout => Self::nats("the console's NATS did not answer a read in time"),
            other => other,
        }
    }

    pub(crate) fn nats(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Nats(e.into())
    }
}

impl<T: std::error::Error> From<Error> for cqrs_es::AggregateError<T> {
    fn from(e: Error) -> Self {
        match e {
            Error::Conflict => cqrs_es::AggregateError::AggregateConflict,
            Error::Malformed { .. } => cqrs_es::AggregateError::DeserializationError(Box::new(e)),
            other => cqrs_es::AggregateError::DatabaseConnectionError(Box::new(other)),
        }
    }
}
