//! The GraphQL schema: roots merged from one module per capability, limits, and the
//! request metadata every command carries.

mod clusters;
pub mod history;
pub mod identity;
pub mod scalars;
mod streams;

use async_graphql::{Context, MergedObject, MergedSubscription, Schema};
use jsc_eventstore::CommandContext;

use crate::auth::{AuthState, Principal};
use crate::error::ApiResult;
use crate::state::Console;

pub use clusters::{ClusterMutation, ClusterQuery, ClusterSubscription};
pub use history::{AuditMutation, AuditQuery, AuditSubscription, HistoryQuery};
pub use identity::{IdentityMutation, IdentityQuery};
pub use streams::{StreamMutation, StreamQuery, StreamSubscription};

#[derive(MergedObject, Default)]
pub struct Query(IdentityQuery, ClusterQuery, StreamQuery, HistoryQuery, AuditQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(IdentityMutation, ClusterMutation, StreamMutation, AuditMutation);

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
    /// The context of a command `actor` issues through this request, on a resource of
    /// `organization`.
    pub fn command_context(&self, actor: &str, organization: Option<&str>) -> CommandContext {
        CommandContext {
            actor: actor.to_string(),
            organization: organization.map(str::to_string),
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

/// The authenticated caller, or `UNAUTHENTICATED` saying how to sign in. A WebSocket
/// connection authenticates once, at `connection_init`, and may send queries and mutations
/// long after: its caller is checked again on every use (expiry, revocation, a disabled
/// user). An HTTP request was checked as it arrived.
pub(crate) fn principal<'a>(ctx: &Context<'a>) -> ApiResult<&'a Principal> {
    match ctx.data_opt::<AuthState>() {
        Some(AuthState::Authenticated(p)) => Ok(p),
        Some(AuthState::Connection(p)) => {
            console(ctx).revalidate(p)?;
            Ok(p)
        }
        Some(AuthState::Invalid(e)) => Err(e.clone()),
        _ => Err(crate::auth::unauthenticated(
            "sign in first: send `Authorization: Bearer <token>` with an access token from mutation login, \
             or an API key (over WebSocket: {\"authorization\": \"Bearer <token>\"} in connection_init)",
        )),
    }
}

/// The caller and the context of a command they issue on a resource of `organization`.
pub(crate) fn command<'a>(ctx: &Context<'a>, organization: Option<&str>) -> ApiResult<(&'a Principal, CommandContext)> {
    let p = principal(ctx)?;
    Ok((p, meta(ctx).command_context(&p.actor, organization)))
}

pub(crate) fn meta(ctx: &Context<'_>) -> RequestMeta {
    ctx.data_opt::<RequestMeta>().cloned().unwrap_or_else(|| RequestMeta {
        request_id: uuid::Uuid::now_v7().to_string(),
        client_addr: None,
        user_agent: None,
    })
}

/// Subscriptions open on one WebSocket connection (connection data).
#[derive(Clone, Default)]
pub struct SubscriptionCount(std::sync::Arc<std::sync::atomic::AtomicUsize>);

/// Holds one of the connection's subscription slots until dropped.
struct Slot(Option<SubscriptionCount>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

fn take_slot(ctx: &Context<'_>) -> ApiResult<Slot> {
    let Some(count) = ctx.data_opt::<SubscriptionCount>() else {
        return Ok(Slot(None));
    };
    let max = console(ctx).auth.settings.max_subscriptions_per_connection;
    let open = count.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let slot = Slot(Some(count.clone()));
    if open >= max {
        return Err(crate::error::ApiError::validation(format!(
            "at most {max} subscriptions per connection; complete one or open another connection"
        )));
    }
    Ok(slot)
}

/// Wraps a subscription's `stream` for the caller: it holds one of the connection's
/// subscription slots, and ends when the caller's credential expires or is revoked (or
/// the user is disabled) — the last item is an `UNAUTHENTICATED` error, then the stream
/// completes. Checked at the expiry instant and whenever an identity view changes.
pub(crate) fn guarded<S, T>(
    ctx: &Context<'_>,
    stream: S,
) -> ApiResult<impl futures::Stream<Item = async_graphql::Result<T>> + use<S, T>>
where
    S: futures::Stream<Item = T> + Send + 'static,
    T: Send + 'static,
{
    use futures::StreamExt;
    let slot = take_slot(ctx)?;
    let (c, p) = (console(ctx).clone(), principal(ctx)?.clone());
    let ended = async move {
        let mut sessions = c.auth.sessions.subscribe();
        let mut users = c.auth.users.subscribe();
        let mut keys = c.auth.api_keys.subscribe();
        let deadline = p.expires_at.map(|e| {
            let left = (e - chrono::Utc::now()).to_std().unwrap_or_default();
            tokio::time::Instant::now() + left
        });
        loop {
            if let Err(e) = c.revalidate(&p) {
                return e;
            }
            tokio::select! {
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {}
                _ = changed(&mut sessions) => {}
                _ = changed(&mut users) => {}
                _ = changed(&mut keys) => {}
            }
        }
    };
    Ok(futures::stream::unfold(
        (stream.boxed(), Box::pin(ended), false, slot),
        |(mut inner, mut ended, done, slot)| async move {
            if done {
                return None;
            }
            // The end first: nothing is delivered once the credential has ended.
            tokio::select! {
                biased;
                e = &mut ended => Some((Err(e.into()), (inner, ended, true, slot))),
                item = inner.next() => item.map(|i| (Ok(i), (inner, ended, false, slot))),
            }
        },
    ))
}

/// Waits for the next change on a view (a lagging receiver still counts as a change; a
/// closed one never fires again).
async fn changed<V: Clone>(rx: &mut tokio::sync::broadcast::Receiver<V>) {
    use tokio::sync::broadcast::error::RecvError;
    match rx.recv().await {
        Ok(_) | Err(RecvError::Lagged(_)) => {}
        Err(RecvError::Closed) => std::future::pending().await,
    }
}
