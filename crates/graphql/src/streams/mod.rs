//! Streams and consumers over GraphQL: configuration and history from the views, live
//! state from the clusters, changes as use cases of the application.

mod inputs;
mod roots;
mod subscriptions;
mod types;

use async_graphql::Enum;

pub use roots::{StreamMutation, StreamQuery};
pub use subscriptions::StreamSubscription;
pub use types::StreamPage;

/// What a stream keeps.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::Retention")]
pub enum RetentionPolicy {
    /// Until a limit (messages, bytes, age) is reached.
    Limits,
    /// While a consumer is interested.
    Interest,
    /// Until a consumer acknowledges it.
    WorkQueue,
}

/// Where a stream keeps its messages.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::Storage")]
pub enum StorageType {
    File,
    Memory,
}

/// What a full stream drops.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::Discard")]
pub enum DiscardPolicy {
    /// The oldest messages.
    Old,
    /// The new message (the publish fails).
    New,
}

/// How a stream compresses its file storage.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::Compression")]
pub enum Compression {
    None,
    S2,
}

/// Where a consumer starts.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::DeliverPolicy")]
pub enum DeliverPolicy {
    All,
    Last,
    New,
    ByStartSequence,
    ByStartTime,
    LastPerSubject,
}

/// How a consumer's messages are acknowledged.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::AckPolicy")]
pub enum AckPolicy {
    None,
    /// Acknowledging one acknowledges every message before it.
    All,
    Explicit,
}

/// How fast a consumer replays stored messages.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::ReplayPolicy")]
pub enum ReplayPolicy {
    Instant,
    /// At the pace they were stored.
    Original,
}
