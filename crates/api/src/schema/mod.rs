//! The GraphQL schema: roots merged from one module per capability, limits, and the
//! request metadata every command carries.

mod clusters;
pub mod history;
pub mod scalars;
mod streams;

use async_graphql::{Context, MergedObject, MergedSubscription, Schema};
use jsc_eventstore::CommandContext;

use crate::state::Console;

pub use clusters::{ClusterMutation, ClusterQuery, ClusterSubscription};
pub use history::{AuditMutation, AuditQuery, AuditSubscription, HistoryQuery};
pub use streams::{StreamMutation, StreamQuery, StreamSubscription};

#[derive(MergedObject, Default)]
pub struct Query(ClusterQuery, StreamQuery, HistoryQuery, AuditQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(ClusterMutation, StreamMutation, AuditMutation);

#[derive(MergedSubscription, Default)]
pub struct Subscription(ClusterSubscription, StreamSubscription, AuditSubscription);

pub type ApiSchema = Schema<Query, Mutation, Subscription>;

/// Deepest query accepted.
pub const MAX_DEPTH: usize = 16;
/// Most expensive query accepted (async-graphql's complexity: one per field by default).
pub const MAX_COMPLEXITY: usize = 500;

/// Builds the schema with its limits; `console` is absent only when exporting the SDL.
pub fn build_schema(console: Option<Console>) -> ApiSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY);
    if let Some(c) = console {
        builder = builder.data(c);
    }
    builder.finish()
}

/// The schema in SDL, as checked in at `schema/console.graphql`.
pub fn sdl() -> String {
    build_schema(None).sdl()
}

/// Who is asking and from where; attached to every request and WebSocket connection.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    /// The command context for a command issued by this request. Until identities exist,
    /// every caller is `anonymous`.
    pub fn command_context(&self) -> CommandContext {
        CommandContext {
            actor: "anonymous".into(),
            correlation_id: self.request_id.clone(),
            causation_id: self.request_id.clone(),
            client_addr: self.client_addr.clone(),
            user_agent: self.user_agent.clone(),
        }
    }
}

pub(crate) fn console<'a>(ctx: &Context<'a>) -> &'a Console {
    ctx.data_unchecked::<Console>()
}

pub(crate) fn meta(ctx: &Context<'_>) -> RequestMeta {
    ctx.data_opt::<RequestMeta>().cloned().unwrap_or_else(|| RequestMeta {
        request_id: uuid::Uuid::now_v7().to_string(),
        client_addr: None,
        user_agent: None,
    })
}
