//! Live changes to streams and consumers: configuration changes as the views apply them,
//! and live state polled from the clusters.

use std::time::Duration as StdDuration;

use async_graphql::{Context, Enum, ID, Result, SimpleObject, Subscription};
use futures::{Stream, StreamExt};
use jsc_app::changes::poll_changes;
use jsc_projector::ChangeOp;

use super::types::{ConsumerObj, ConsumerState, StreamObj, StreamState};
use crate::context::{caller, console, still_visible};
use crate::scalars::Duration;

/// What happened to a stream or consumer, in a `StreamChange` or `ConsumerChange`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ResourceChangeKind {
    /// It was created, from the console or outside it.
    Created,
    /// Its configuration changed, from the console or outside it.
    Updated,
    /// The stream was sealed (`sealStream`).
    Sealed,
    /// Messages were purged from the stream (`purgeStream`).
    Purged,
    /// A message was published into the stream through the console (`publishMessage`); its
    /// configuration did not change.
    Published,
    /// The consumer was paused (`pauseConsumer`).
    Paused,
    /// The consumer was resumed (`resumeConsumer`).
    Resumed,
    /// It was deleted, from the console or outside it (a stream's consumers go with it).
    Deleted,
    /// Live state changed (messages, bytes, lag, acks).
    State,
}

fn kind_of(event_type: &str) -> ResourceChangeKind {
    match event_type {
        "StreamCreated" | "ConsumerCreated" => ResourceChangeKind::Created,
        "StreamSealed" => ResourceChangeKind::Sealed,
        "StreamPurged" => ResourceChangeKind::Purged,
        "MessagePublished" => ResourceChangeKind::Published,
        "ConsumerPaused" => ResourceChangeKind::Paused,
        "ConsumerResumed" => ResourceChangeKind::Resumed,
        _ => ResourceChangeKind::Updated,
    }
}

/// A change to a stream: to its configuration, or (`STATE`) to its live state.
#[derive(SimpleObject)]
pub struct StreamChange {
    /// What happened.
    kind: ResourceChangeKind,
    /// The id of the cluster the stream is on.
    cluster_id: ID,
    /// The stream's name.
    name: String,
    /// The stream after the change; absent when deleted, and for `STATE` changes.
    stream: Option<StreamObj>,
    /// Set for `STATE` changes.
    state: Option<StreamState>,
}

/// A change to a consumer: to its configuration, or (`STATE`) to its live state.
#[derive(SimpleObject)]
pub struct ConsumerChange {
    /// What happened.
    kind: ResourceChangeKind,
    /// The id of the cluster the consumer is on.
    cluster_id: ID,
    /// The name of the stream the consumer reads.
    stream: String,
    /// The consumer's durable name.
    name: String,
    /// The consumer after the change; absent when deleted, and for `STATE` changes.
    consumer: Option<ConsumerObj>,
    /// Set for `STATE` changes.
    state: Option<ConsumerState>,
}

#[derive(Default)]
pub struct StreamSubscription;

#[Subscription]
impl StreamSubscription {
    /// Changes to the streams of a cluster (or to the one named): configuration changes
    /// as they are recorded, from the console or from outside it, and, with
    /// `includeState`, the live state of each stream when the subscription starts and
    /// whenever it changes (`STATE`), polled every `stateInterval`. Needs the viewer role
    /// on the cluster (`NOT_FOUND` otherwise); items stop when the caller loses it, and the
    /// subscription ends with `UNAUTHENTICATED` when their credential does. `VALIDATION`
    /// when the connection has too many subscriptions open.
    async fn stream_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster whose streams to watch.")] cluster_id: ID,
        #[graphql(desc = "Only changes to the stream with this name; left out, every stream of the cluster.")]
        name: Option<String>,
        #[graphql(
            default,
            desc = "Also send each stream's live state at the start and whenever it changes, as `STATE`. Defaults to false."
        )]
        include_state: bool,
        #[graphql(
            default_with = "Duration(2_000_000_000)",
            desc = "How often live state is polled with `includeState`; at least 250ms. Defaults to `2s`."
        )]
        state_interval: Duration,
    ) -> Result<impl Stream<Item = Result<StreamChange>> + use<>> {
        check_state_interval(&state_interval)?;
        let c = console(ctx).clone();
        c.cluster(&caller(ctx)?, &cluster_id)?;
        let cluster = cluster_id.to_string();
        let (cl, on) = (cluster.clone(), name.clone());
        let config = c.stream_changes().filter_map(move |ch| {
            let subject = ch.value.as_ref().or(ch.previous.as_ref()).map(|v| v.view.clone());
            let out = subject
                .filter(|v| v.cluster_id == cl && on.as_ref().is_none_or(|n| n == &v.name))
                .map(|v| StreamChange {
                    kind: if ch.op == ChangeOp::Delete {
                        ResourceChangeKind::Deleted
                    } else {
                        kind_of(&v.last_event)
                    },
                    cluster_id: ID(v.cluster_id.to_string()),
                    name: v.name.clone(),
                    stream: ch.value.map(|v| StreamObj(std::sync::Arc::unwrap_or_clone(v))),
                    state: None,
                });
            futures::future::ready(out)
        });
        let (cl, on) = (cluster.clone(), name);
        let poll = move || {
            let (c, cl, on) = (c.clone(), cl.clone(), on.clone());
            async move {
                let live = c.live_streams(&cl).await.ok()?;
                let states = live
                    .iter()
                    .filter(|(n, _)| on.as_ref().is_none_or(|o| o == *n) && !c.is_internal_stream(n))
                    .map(|(n, i)| (n.clone(), StreamState::of(i, live.at)));
                Some(states.collect())
            }
        };
        let state = live_states(include_state, state_interval, poll, move |name, state| StreamChange {
            kind: ResourceChangeKind::State,
            cluster_id: ID(cluster.clone()),
            name,
            stream: None,
            state: Some(state),
        });
        Ok(still_visible(
            ctx,
            &cluster_id,
            futures::stream::select(config.boxed(), state),
        )?)
    }

    /// Changes to the durable consumers of a stream (or to the one named), as for
    /// `streamChanged`: configuration changes, and with `includeState` their live state
    /// (lag, acks pending). Needs the viewer role on the cluster; errors as for
    /// `streamChanged`.
    async fn consumer_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the cluster the stream is on.")] cluster_id: ID,
        #[graphql(desc = "The name of the stream whose consumers to watch.")] stream: String,
        #[graphql(desc = "Only changes to the consumer with this durable name; left out, every consumer.")]
        name: Option<String>,
        #[graphql(
            default,
            desc = "Also send each consumer's live state at the start and whenever it changes, as `STATE`. Defaults to false."
        )]
        include_state: bool,
        #[graphql(
            default_with = "Duration(2_000_000_000)",
            desc = "How often live state is polled with `includeState`; at least 250ms. Defaults to `2s`."
        )]
        state_interval: Duration,
    ) -> Result<impl Stream<Item = Result<ConsumerChange>> + use<>> {
        check_state_interval(&state_interval)?;
        let c = console(ctx).clone();
        c.cluster(&caller(ctx)?, &cluster_id)?;
        let cluster = cluster_id.to_string();
        let (cl, st, on) = (cluster.clone(), stream.clone(), name.clone());
        let config = c.consumer_changes().filter_map(move |ch| {
            let subject = ch.value.as_ref().or(ch.previous.as_ref()).map(|v| v.view.clone());
            let out = subject
                .filter(|v| v.cluster_id == cl && v.stream == st && on.as_ref().is_none_or(|n| n == &v.name))
                .map(|v| ConsumerChange {
                    kind: if ch.op == ChangeOp::Delete {
                        ResourceChangeKind::Deleted
                    } else {
                        kind_of(&v.provenance.last_change)
                    },
                    cluster_id: ID(v.cluster_id.to_string()),
                    stream: v.stream.to_string(),
                    name: v.name.clone(),
                    consumer: ch.value.map(|v| ConsumerObj(std::sync::Arc::unwrap_or_clone(v))),
                    state: None,
                });
            futures::future::ready(out)
        });
        let (cl, st, on) = (cluster.clone(), stream.clone(), name);
        let poll = move || {
            let (c, cl, st, on) = (c.clone(), cl.clone(), st.clone(), on.clone());
            async move {
                let live = c.live_consumers(&cl, &st).await.ok()?;
                let states = live
                    .iter()
                    .filter(|(n, i)| on.as_ref().is_none_or(|o| o == *n) && i.config.durable_name.is_some())
                    .map(|(n, i)| (n.clone(), ConsumerState::of(i, live.at)));
                Some(states.collect())
            }
        };
        let state = live_states(include_state, state_interval, poll, move |name, state| ConsumerChange {
            kind: ResourceChangeKind::State,
            cluster_id: ID(cluster.clone()),
            stream: stream.clone(),
            name,
            consumer: None,
            state: Some(state),
        });
        Ok(still_visible(
            ctx,
            &cluster_id,
            futures::stream::select(config.boxed(), state),
        )?)
    }
}

/// With `include`, the live state of each resource `poll` finds, when the subscription
/// starts and whenever it changes, polled every `interval` (checked to be at least 250 ms
/// by [`check_state_interval`]), as the items
/// `make` builds; without, nothing.
fn live_states<T, C, F, Fut>(
    include: bool,
    interval: Duration,
    poll: F,
    make: impl Fn(String, T) -> C + Send + Sync + 'static,
) -> futures::stream::BoxStream<'static, C>
where
    T: Clone + PartialEq + Send + 'static,
    C: Send + 'static,
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<std::collections::HashMap<String, T>>> + Send + 'static,
{
    if !include {
        return futures::stream::empty().boxed();
    }
    let every = StdDuration::from_nanos(interval.0 as u64);
    let make = std::sync::Arc::new(make);
    poll_changes(every, poll)
        .flat_map(move |changed| {
            let make = make.clone();
            futures::stream::iter(changed.into_iter().map(move |(name, state)| make(name, state)))
        })
        .boxed()
}

/// The shortest `stateInterval`: live state is read no more often than this.
const MIN_STATE_INTERVAL_NS: i64 = 250_000_000;

/// Refuses a `stateInterval` below the shortest, rather than polling slower than asked.
fn check_state_interval(interval: &Duration) -> Result<()> {
    if interval.0 < MIN_STATE_INTERVAL_NS {
        return Err(jsc_app::Error::validation(
            "stateInterval: must be at least 250ms; give 250ms or more (2s when left out)",
        )
        .into());
    }
    Ok(())
}
