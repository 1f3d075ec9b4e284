//! Streams and consumers over GraphQL: configuration and history from the views, live
//! state from the clusters, changes as use cases of the application.

pub(crate) mod inputs;
mod roots;
mod subscriptions;
mod types;

use async_graphql::Enum;

pub use roots::{StreamMutation, StreamQuery};
pub use subscriptions::StreamSubscription;
pub use types::{ConsumerObj, StreamConnection, StreamObj};

/// How long a stream keeps a message. JetStream's default is `LIMITS`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::Retention")]
pub enum RetentionPolicy {
    /// Until a limit (messages, bytes, age, messages per subject) is reached.
    Limits,
    /// While a consumer is interested: a message goes once every consumer has acknowledged
    /// it, and at once when there are no consumers (the limits still apply).
    Interest,
    /// Until a consumer acknowledges it: each message goes to exactly one consumer, and
    /// consumers may not overlap in the subjects they filter.
    WorkQueue,
}

/// Where a stream keeps its messages. JetStream's default is `FILE`; it cannot be changed
/// on an existing stream.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::Storage")]
pub enum StorageType {
    /// On disk: messages survive a server restart.
    File,
    /// In memory: faster, but lost when the server restarts.
    Memory,
}

/// What a stream does when a new message would exceed a limit. JetStream's default is `OLD`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::Discard")]
pub enum DiscardPolicy {
    /// Drops the oldest messages to make room.
    Old,
    /// Refuses the new message: the publish fails.
    New,
}

/// How a stream compresses its file storage (nats-server 2.10+). JetStream's default is
/// `NONE`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::Compression")]
pub enum Compression {
    /// Stored uncompressed.
    None,
    /// Compressed with S2 (a Snappy variant): less disk for a little CPU.
    S2,
}

/// Where in the stream a consumer starts delivering. JetStream's default is `ALL`; it cannot
/// be changed on an existing consumer.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::DeliverPolicy")]
pub enum DeliverPolicy {
    /// From the first message the stream holds.
    All,
    /// From the last message the stream holds.
    Last,
    /// Only messages stored after the consumer was created.
    New,
    /// From the stream sequence `optStartSeq`.
    ByStartSequence,
    /// From the first message stored at or after `optStartTime`.
    ByStartTime,
    /// From the last message of each subject, then every new one.
    LastPerSubject,
}

/// How a consumer's messages are acknowledged. JetStream's default is `EXPLICIT`; it cannot
/// be changed on an existing consumer.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::AckPolicy")]
pub enum AckPolicy {
    /// No acknowledgement: a message counts as handled once delivered, and is never
    /// redelivered.
    None,
    /// Acknowledging one acknowledges every message before it.
    All,
    /// Each message is acknowledged on its own; one not acknowledged within `ackWait` is
    /// redelivered.
    Explicit,
}

/// How fast a consumer replays stored messages. JetStream's default is `INSTANT`; it cannot
/// be changed on an existing consumer.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::policy::ReplayPolicy")]
pub enum ReplayPolicy {
    /// As fast as the consumer can take them.
    Instant,
    /// At the pace they were stored, keeping the gaps between messages.
    Original,
}
