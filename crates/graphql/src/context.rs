//! What every resolver reads from the request: the console, the caller, and the
//! subscription plumbing (slots per connection, and the end of a credential).

use async_graphql::Context;
use jsc_app::{Caller, Console, Error, Principal, RequestMeta, Result};

/// What the HTTP layer found in `Authorization` (or `connection_init`).
#[derive(Debug, Clone)]
pub enum AuthState {
    Anonymous,
    Invalid(Error),
    /// Checked as the request arrived (an HTTP request lives for milliseconds).
    Authenticated(Principal),
    /// Checked at `connection_init` of a WebSocket, which may live for hours: checked again
    /// on every use.
    Connection(Principal),
}

pub(crate) fn console<'a>(ctx: &Context<'a>) -> &'a Console {
    ctx.data_unchecked::<Console>()
}

/// The request, with a receipt of the resolver's own: a mutation's payload tells what that
/// mutation committed, not what others of the same document did.
pub(crate) fn meta(ctx: &Context<'_>) -> RequestMeta {
    ctx.data_opt::<RequestMeta>()
        .map(RequestMeta::fresh_receipt)
        .unwrap_or_else(RequestMeta::local)
}

/// The authenticated caller, or `UNAUTHENTICATED` saying how to sign in. A WebSocket
/// connection authenticates once, at `connection_init`, and may send queries and mutations
/// long after: its caller is checked again on every use (expiry, revocation, a disabled
/// user). An HTTP request was checked as it arrived.
pub(crate) fn principal<'a>(ctx: &Context<'a>) -> Result<&'a Principal> {
    match ctx.data_opt::<AuthState>() {
        Some(AuthState::Authenticated(p)) => Ok(p),
        Some(AuthState::Connection(p)) => {
            console(ctx).revalidate(p)?;
            Ok(p)
        }
        Some(AuthState::Invalid(e)) => Err(e.clone()),
        _ => Err(Error::unauthenticated(
            "sign in first: send `Authorization: Bearer <token>` with an access token from mutation login, \
             or an API key (over WebSocket: {\"authorization\": \"Bearer <token>\"} in connection_init)",
        )),
    }
}

/// The caller with their request, for use cases.
pub(crate) fn caller(ctx: &Context<'_>) -> Result<Caller> {
    Ok(Caller::new(principal(ctx)?.clone(), meta(ctx)))
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
            metrics::gauge!("jsconsole_subscriptions").decrement(1.0);
        }
    }
}

fn take_slot(ctx: &Context<'_>) -> Result<Slot> {
    let Some(count) = ctx.data_opt::<SubscriptionCount>() else {
        return Ok(Slot(None));
    };
    let max = console(ctx).auth_settings().max_subscriptions_per_connection;
    let open = count.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let slot = Slot(Some(count.clone()));
    metrics::gauge!("jsconsole_subscriptions").increment(1.0);
    if open >= max {
        return Err(Error::validation(format!(
            "at most {max} subscriptions per connection; complete one or open another connection"
        )));
    }
    Ok(slot)
}

/// Wraps a subscription's `stream` for the caller: it holds one of the connection's
/// subscription slots, and ends when the caller's credential expires or is revoked (or
/// the user is disabled) — the last item is an `UNAUTHENTICATED` error, then the stream
/// completes.
pub(crate) fn guarded<S, T>(
    ctx: &Context<'_>,
    stream: S,
) -> Result<impl futures::Stream<Item = async_graphql::Result<T>> + use<S, T>>
where
    S: futures::Stream<Item = T> + Send + 'static,
    T: Send + 'static,
{
    use futures::StreamExt;
    let slot = take_slot(ctx)?;
    let (c, p) = (console(ctx).clone(), principal(ctx)?.clone());
    let ended = async move { c.credential_ended(&p).await };
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

/// [`guarded`] for a stream whose items may fail: a failed item is the subscription's
/// error (the use case ends its stream after it).
pub(crate) fn guarded_results<S, T>(
    ctx: &Context<'_>,
    stream: S,
) -> Result<impl futures::Stream<Item = async_graphql::Result<T>> + use<S, T>>
where
    S: futures::Stream<Item = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    use futures::StreamExt;
    Ok(guarded(ctx, stream)?.map(|r| r.and_then(|item| item.map_err(Into::into))))
}

/// A cluster-scoped subscription: items only while the caller may still see the cluster,
/// and the end when their credential does.
pub(crate) fn still_visible<T: Send + 'static, S: futures::Stream<Item = T> + Send + 'static>(
    ctx: &Context<'_>,
    cluster_id: &str,
    stream: S,
) -> Result<impl futures::Stream<Item = async_graphql::Result<T>> + use<T, S>> {
    use futures::StreamExt;
    let (vc, vp, cluster) = (console(ctx).clone(), principal(ctx)?.clone(), cluster_id.to_string());
    let visible = stream.filter(move |_| futures::future::ready(vc.cluster_role(&vp, &cluster).is_some()));
    guarded(ctx, visible)
}

/// Counts the operations of one WebSocket connection (connection data), so that each gets
/// a correlation id of its own: `<connection's request id>.<n>`. Without it every mutation
/// sent over a socket that lives for hours would share the upgrade request's id.
#[derive(Clone, Default)]
pub struct ConnectionOperations(std::sync::Arc<std::sync::atomic::AtomicU64>);

/// Gives each operation over a WebSocket its own [`RequestMeta`] (see
/// [`ConnectionOperations`]); HTTP requests already have one each.
pub(crate) struct OperationIds;

impl async_graphql::extensions::ExtensionFactory for OperationIds {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(OperationIds)
    }
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for OperationIds {
    async fn prepare_request(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        request: async_graphql::Request,
        next: async_graphql::extensions::NextPrepareRequest<'_>,
    ) -> async_graphql::ServerResult<async_graphql::Request> {
        let request = match (ctx.data_opt::<ConnectionOperations>(), ctx.data_opt::<RequestMeta>()) {
            (Some(ops), Some(meta)) => {
                let n = ops.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                request.data(RequestMeta {
                    request_id: format!("{}.{n}", meta.request_id),
                    ..meta.fresh_receipt()
                })
            }
            _ => request,
        };
        next.run(ctx, request).await
    }
}
