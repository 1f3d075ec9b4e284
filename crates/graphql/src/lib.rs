//! The GraphQL edge: the schema (roots merged from one module per capability), limits,
//! and resolvers that translate GraphQL into use-case calls on [`jsc_app::Console`] and
//! the answers back. No rule of the console lives here; errors become `extensions.code`
//! in one place (`jsc_app::Error`'s conversion).
#![forbid(unsafe_code)]

mod alerts;
mod bounded;
mod clusters;
mod connection;
mod context;
mod cost;
mod history;
mod identity;
mod messages;
mod metrics;
mod mutation;
mod nodes;
mod persisted;
mod scalars;
mod streams;

use async_graphql::{MergedObject, MergedSubscription, Schema};
use jsc_app::Console;

pub use context::{AuthState, ConnectionOperations, SubscriptionCount};
pub use cost::Budget;
pub use persisted::HttpGet;

/// What can be read: the caller, organizations and people, clusters, streams and consumers,
/// the messages streams hold, any object by its global id, histories and the audit trail.
#[derive(MergedObject, Default)]
pub struct Query(
    identity::IdentityQuery,
    alerts::AlertQuery,
    clusters::ClusterQuery,
    streams::StreamQuery,
    history::HistoryQuery,
    history::AuditQuery,
    messages::MessageQueryRoot,
    messages::SchemaQuery,
    metrics::MetricsQuery,
    nodes::NodeQuery,
);

/// What can be changed: each mutation is a command, recorded as events with its actor in
/// the audit trail before it answers. Each takes one `input` and answers a payload of its
/// own: what changed, `clientMutationId`, `correlationId` and the event stream `sequence`.
#[derive(MergedObject, Default)]
pub struct Mutation(
    identity::IdentityMutation,
    alerts::AlertMutation,
    clusters::ClusterMutation,
    streams::StreamMutation,
    history::AuditMutation,
    messages::MessageMutation,
    messages::RepublishMutation,
    messages::DeadLetterMutation,
    messages::SavedSearchMutation,
    messages::ProtobufMutation,
);

/// Live updates over WebSocket (`graphql-transport-ws` or `graphql-ws`): changes to
/// clusters, streams and consumers, the audit trail as it is written, and the messages
/// arriving in a stream.
#[derive(MergedSubscription, Default)]
pub struct Subscription(
    alerts::AlertSubscription,
    clusters::ClusterSubscription,
    streams::StreamSubscription,
    history::AuditSubscription,
    messages::MessageSubscription,
    messages::RepublishSubscription,
    metrics::MetricsSubscription,
);

pub type ApiSchema = Schema<Query, Mutation, Subscription>;

/// Deepest query accepted.
pub const MAX_DEPTH: usize = 16;
/// Most expensive query accepted (async-graphql's complexity: one per field, and a
/// connection's fields once per item it may return: `first`/`last`, 50 when neither).
pub const MAX_COMPLEXITY: usize = 20_000;

/// The limits every operation runs under, beyond depth and complexity.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Each caller's query budget (see `cost`); `None`: operations are not charged (their
    /// cost is not reported either).
    pub budget: Option<Budget>,
    /// Run only operations already registered as persisted queries.
    pub only_registered: bool,
}

/// Builds the schema with the default limits; `console` is absent only when exporting the SDL.
pub fn build_schema(console: Option<Console>) -> ApiSchema {
    build_schema_with(
        console,
        Limits {
            budget: Some(Budget::default()),
            only_registered: false,
        },
    )
}

/// Builds the schema with `limits`.
pub fn build_schema_with(console: Option<Console>, limits: Limits) -> ApiSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        // First, so that it bounds what every other extension added.
        .extension(bounded::BoundedErrors)
        .extension(context::OperationIds)
        .extension(persisted::PersistedQueries {
            only_registered: limits.only_registered,
            parsed: Default::default(),
        });
    if let Some(budget) = limits.budget {
        builder = builder.extension(cost::Cost(std::sync::Arc::new(cost::Budgets::new(budget))));
    }
    if let Some(c) = console {
        builder = builder.data(c);
    }
    builder.finish()
}

/// The schema in SDL, as checked in at `schema/console.graphql`.
pub fn sdl() -> String {
    build_schema(None).sdl()
}
