//! Stream use cases: lists and lookups from the streams view, live state from the cluster,
//! and every change as a command on the stream aggregate.

use std::sync::Arc;

use jsc_domain::identity::Role;
use jsc_domain::stream::{
    ChangeOrigin, PublishedMessage, PurgeRequest, ServiceError, Stream, StreamCommand, StreamConfig, StreamEvent,
    stream_id,
};
use jsc_fleet::admin::StreamState;
use jsc_metrics::{Metric, Snapshot};
use jsc_projections::{ConsumerView, StreamView, consumers_group, stream_key, streams_group};
use jsc_projector::Versioned;

use crate::paging::{List, MAX_PAGE, Page, Paging, Take};
use crate::runner::{Access, Actor};
use crate::{Caller, Console, Error, Result};

/// A cluster's streams to list, and in what order.
#[derive(Default)]
pub struct StreamFilter {
    /// Part of the name, case-insensitive.
    pub name_contains: Option<String>,
    /// A subject the stream stores (overlapping wildcards count).
    pub subject: Option<String>,
    /// A placement tag of the stream, or a metadata entry: `key` (any value) or
    /// `key=value`.
    pub tag: Option<String>,
    pub order: StreamOrder,
    pub descending: bool,
}

/// What a list of streams is in the order of: the name, or a figure of the stream's state
/// (live, or from the metrics collector's last sample for rates and lags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StreamOrder {
    #[default]
    Name,
    Messages,
    Bytes,
    /// Bytes stored, percent of `maxBytes` (streams without it come last).
    StoragePercent,
    /// The largest lag of the stream's consumers.
    ConsumerLag,
    /// Messages stored per second.
    MessageRate,
    Consumers,
}

impl StreamOrder {
    fn metric(self) -> Option<Metric> {
        Some(match self {
            Self::Name => return None,
            Self::Messages => Metric::StreamMessages,
            Self::Bytes => Metric::StreamBytes,
            Self::StoragePercent => Metric::StreamStoragePercent,
            Self::ConsumerLag => Metric::StreamMaxConsumerLag,
            Self::MessageRate => Metric::StreamMessageRate,
            Self::Consumers => Metric::StreamConsumers,
        })
    }

    /// The list a cursor of this order belongs to (a cursor of one order is refused by
    /// another).
    fn list(self, descending: bool) -> &'static str {
        match (self, descending) {
            (Self::Name, false) => "streams",
            (Self::Name, true) => "streams:name-desc",
            (Self::Messages, false) => "streams:messages",
            (Self::Messages, true) => "streams:messages-desc",
            (Self::Bytes, false) => "streams:bytes",
            (Self::Bytes, true) => "streams:bytes-desc",
            (Self::StoragePercent, false) => "streams:storage",
            (Self::StoragePercent, true) => "streams:storage-desc",
            (Self::ConsumerLag, false) => "streams:lag",
            (Self::ConsumerLag, true) => "streams:lag-desc",
            (Self::MessageRate, false) => "streams:rate",
            (Self::MessageRate, true) => "streams:rate-desc",
            (Self::Consumers, false) => "streams:consumers",
            (Self::Consumers, true) => "streams:consumers-desc",
        }
    }
}

/// A stream's place in a list by state: without a value (last), the value (negated when
/// descending), the name.
pub(crate) type StateKey = (bool, f64, String);

fn state_cmp(a: &StateKey, b: &StateKey) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then_with(|| a.2.cmp(&b.2))
}

/// Where the figures a list is ordered by come from: the live state, or the collector's
/// last sample of the cluster (rates and lags).
#[derive(Clone)]
pub(crate) enum StateSource {
    Sample(Arc<Snapshot>),
    Live(Arc<crate::Sampled<StreamState>>),
}

/// See [`StateSource::key`].
pub(crate) enum SourceKey {
    Sample(Arc<Snapshot>),
    Live(u64),
}

impl SourceKey {
    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Sample(a), Self::Sample(b)) => Arc::ptr_eq(a, b),
            (Self::Live(a), Self::Live(b)) => a == b,
            _ => false,
        }
    }
}

impl StateSource {
    /// Whether the live state has the figure (rates and lags are the collector's alone).
    fn live_has(metric: Metric) -> bool {
        matches!(
            metric,
            Metric::StreamMessages | Metric::StreamBytes | Metric::StreamConsumers | Metric::StreamStoragePercent
        )
    }

    /// What tells this source's content apart from any other's, kept beside a list sorted
    /// from it: the sample itself, or the live state's id (holding the live state would
    /// make every change put into it copy it).
    pub(crate) fn key(&self) -> SourceKey {
        match self {
            Self::Sample(a) => SourceKey::Sample(a.clone()),
            Self::Live(a) => SourceKey::Live(a.id),
        }
    }

    fn value(&self, metric: Metric, name: &str, view: &StreamView) -> Option<f64> {
        match self {
            Self::Sample(sample) => sample.streams.get(name).and_then(|s| metric.stream_value(s)),
            Self::Live(live) => {
                let s = live.get(name)?;
                match metric {
                    Metric::StreamMessages => Some(s.messages as f64),
                    Metric::StreamBytes => Some(s.bytes as f64),
                    Metric::StreamConsumers => Some(s.consumer_count as f64),
                    Metric::StreamStoragePercent => {
                        (view.config.max_bytes > 0).then(|| s.bytes as f64 * 100.0 / view.config.max_bytes as f64)
                    }
                    _ => None,
                }
            }
        }
    }
}

/// Whether a tag filter matches a stream: one of its placement tags, or a metadata entry
/// (`key`, or `key=value`).
fn has_tag(config: &StreamConfig, tag: &str) -> bool {
    config
        .placement
        .as_ref()
        .is_some_and(|p| p.tags.iter().any(|t| t == tag))
        || match tag.split_once('=') {
            Some((k, v)) => config.metadata.get(k).is_some_and(|m| m == v),
            None => config.metadata.contains_key(tag),
        }
}

pub(crate) fn unavailable(e: ServiceError) -> Error {
    Error::unavailable(e.to_string())
}

impl Console {
    /// One stream, for a viewer of its cluster; `NOT_FOUND` otherwise.
    pub fn stream(&self, caller: &Caller, cluster_id: &str, name: &str) -> Result<Versioned<StreamView>> {
        self.require_cluster(&caller.principal, cluster_id, Role::Viewer)?;
        self.views
            .streams
            .get(&stream_key(cluster_id, name))
            .ok_or_else(|| Error::not_found(format!("no stream '{name}' on cluster '{cluster_id}'")))
    }

    /// Streams of a cluster, filtered and ordered, one page (at most [`MAX_PAGE`]).
    pub async fn streams(
        &self,
        caller: &Caller,
        cluster_id: &str,
        filter: StreamFilter,
        paging: &Paging,
    ) -> Result<Page<Versioned<StreamView>>> {
        self.require_cluster(&caller.principal, cluster_id, Role::Viewer)?;
        self.stream_page(cluster_id, filter, paging).await
    }

    /// [`Self::streams`] for a cluster the caller was already found to see.
    pub async fn stream_page(
        &self,
        cluster_id: &str,
        filter: StreamFilter,
        paging: &Paging,
    ) -> Result<Page<Versioned<StreamView>>> {
        if let Some(subject) = &filter.subject {
            jsc_domain::names::check_subject(subject).map_err(|m| Error::validation(format!("subject: {m}")))?;
        }
        let needle = filter.name_contains.as_ref().map(|n| n.to_lowercase());
        let keep = |s: &StreamView| {
            needle.as_ref().is_none_or(|n| s.name.to_lowercase().contains(n))
                && filter.subject.as_ref().is_none_or(|subj| {
                    s.config
                        .subjects
                        .iter()
                        .any(|own| jsc_domain::names::subjects_overlap(own, subj))
                })
                && filter.tag.as_ref().is_none_or(|t| has_tag(&s.config, t))
        };
        let filtered = needle.is_some() || filter.subject.is_some() || filter.tag.is_some();
        let keep = filtered.then_some(&keep as &(dyn Fn(&StreamView) -> bool + Sync));
        let list = List::new(filter.order.list(filter.descending), cluster_id);
        match filter.order.metric() {
            None => self.ordered_page(
                list,
                &self.views.streams,
                &streams_group(cluster_id),
                keep.map(|k| k as &dyn Fn(&StreamView) -> bool),
                filter.descending,
                paging,
                MAX_PAGE,
            ),
            Some(metric) => {
                self.state_page(list, cluster_id, metric, filter.descending, keep, paging)
                    .await
            }
        }
    }

    /// A page of a cluster's streams in the order of a figure of their state: messages,
    /// bytes, consumers and storage from the live state (what `state` shows), rates and
    /// lags from the collector's last sample. The sorted list is made once per state read
    /// (and change to the view), not per query; a cursor is a place in that order (value,
    /// then name), so a page goes on from where the last one ended even when the order was
    /// made again.
    async fn state_page(
        &self,
        list: List<'_>,
        cluster_id: &str,
        metric: Metric,
        descending: bool,
        keep: Option<&(dyn Fn(&StreamView) -> bool + Sync)>,
        paging: &Paging,
    ) -> Result<Page<Versioned<StreamView>>> {
        let take = paging.take(MAX_PAGE)?;
        let (after, before) = self.bounds::<StateKey>(list, paging)?;
        // What `state` shows comes from the live state: the list is in the same order as
        // the figures it shows. Rates and lags are the collector's alone.
        let source = if StateSource::live_has(metric) {
            StateSource::Live(self.live_streams(cluster_id).await?)
        } else {
            match self.monitoring.latest.get(cluster_id) {
                Some(sample) => StateSource::Sample(sample),
                None => {
                    return Err(Error::unavailable(format!(
                        "ordering streams by rate or lag needs the metrics collector's sample of cluster \
                         '{cluster_id}', and there is none yet: the collector samples every --metrics-interval (not \
                         at all with --no-metrics-collector); order by NAME, MESSAGES, BYTES, STORAGE_PERCENT or \
                         CONSUMERS meanwhile"
                    )));
                }
            }
        };
        let keys = self.sorted_streams(cluster_id, metric, descending, &source);
        let view = |k: &StateKey| {
            self.views
                .streams
                .get(&stream_key(cluster_id, &k.2))
                .filter(|v| keep.is_none_or(|f| f(&v.view)))
        };
        let lo = after.map_or(0, |a| keys.partition_point(|k| state_cmp(k, &a).is_le()));
        let hi = before
            .map_or(keys.len(), |b| keys.partition_point(|k| state_cmp(k, &b).is_lt()))
            .max(lo);
        let mut items = Vec::new();
        let (has_previous_page, has_next_page) = match take {
            Take::First(n) => {
                let mut i = lo;
                while i < hi && items.len() < n {
                    if let Some(v) = view(&keys[i]) {
                        items.push((keys[i].clone(), v));
                    }
                    i += 1;
                }
                let next = keys[i..].iter().any(|k| view(k).is_some());
                (keys[..lo].iter().rev().any(|k| view(k).is_some()), next)
            }
            Take::Last(n) => {
                let mut i = hi;
                while i > lo && items.len() < n {
                    i -= 1;
                    if let Some(v) = view(&keys[i]) {
                        items.push((keys[i].clone(), v));
                    }
                }
                items.reverse();
                let previous = keys[..i].iter().rev().any(|k| view(k).is_some());
                (previous, keys[hi..].iter().any(|k| view(k).is_some()))
            }
        };
        let total = match keep {
            None => keys.len(),
            Some(_) => keys.iter().filter(|k| view(k).is_some()).count(),
        };
        Ok(Page {
            edges: Self::edges(list, items),
            has_previous_page,
            has_next_page,
            total_count: Some(total),
        })
    }

    /// A cluster's streams (those in the view) in the order of `metric` in `source`: made
    /// again only when the source or the view changed.
    fn sorted_streams(
        &self,
        cluster_id: &str,
        metric: Metric,
        descending: bool,
        source: &StateSource,
    ) -> Arc<Vec<StateKey>> {
        let version = self.views.streams.version();
        let key = (cluster_id.to_string(), metric, descending);
        let source_key = source.key();
        if let Some(hit) = self.live.orders.lock().expect("orders lock").get(&key)
            && hit.0.same(&source_key)
            && hit.1 == version
        {
            return hit.2.clone();
        }
        let mut keys: Vec<StateKey> = Vec::with_capacity(self.views.streams.group_len(&streams_group(cluster_id)));
        self.views.streams.walk(
            &streams_group(cluster_id),
            std::ops::Bound::Unbounded,
            false,
            |name, view| {
                let value = source.value(metric, name, &view.view);
                keys.push(match value {
                    // `+ 0.0`: no -0 (it would sort apart from 0).
                    Some(v) if descending => (false, -v + 0.0, name.to_string()),
                    Some(v) => (false, v, name.to_string()),
                    None => (true, 0.0, name.to_string()),
                });
                true
            },
        );
        keys.sort_by(state_cmp);
        let keys = Arc::new(keys);
        self.live
            .orders
            .lock()
            .expect("orders lock")
            .insert(key, (source_key, version, keys.clone()));
        keys
    }

    /// The durable consumers of a stream the caller was already found to see, by name, one
    /// page.
    pub fn consumers_of(
        &self,
        cluster_id: &str,
        stream: &str,
        paging: &Paging,
    ) -> Result<Page<Versioned<ConsumerView>>> {
        let scope = format!("{cluster_id}/{stream}");
        self.ordered_page(
            List::new("consumers", &scope),
            &self.views.consumers,
            &consumers_group(cluster_id, stream),
            None,
            false,
            paging,
            MAX_PAGE,
        )
    }

    /// Live: the state of every stream of a cluster, by name (shared for a moment).
    pub async fn live_streams(&self, cluster_id: &str) -> Result<Arc<crate::Sampled<StreamState>>> {
        self.live.streams(cluster_id).await.map_err(unavailable)
    }

    /// Creates a stream on a managed cluster (operator).
    pub async fn create_stream(
        &self,
        caller: &Caller,
        cluster_id: &str,
        config: StreamConfig,
    ) -> Result<Versioned<StreamView>> {
        let name = config.name.clone();
        let cmd = StreamCommand::Create {
            cluster_id: cluster_id.to_string(),
            config,
        };
        self.stream_command(caller, cluster_id, &name, cmd).await?;
        self.stream(caller, cluster_id, &name)
    }

    /// Changes a stream's configuration to `config` (operator).
    pub async fn update_stream(
        &self,
        caller: &Caller,
        cluster_id: &str,
        name: &str,
        config: StreamConfig,
    ) -> Result<Versioned<StreamView>> {
        self.stream(caller, cluster_id, name)?;
        if config.name != name {
            return Err(Error::validation(
                "name: a stream cannot be renamed; create a new stream",
            ));
        }
        self.stream_command(caller, cluster_id, name, StreamCommand::Update { config })
            .await?;
        self.stream(caller, cluster_id, name)
    }

    /// Deletes a stream and its messages (operator); `confirm_name` must repeat its name.
    /// Its consumers go with it, in their histories too.
    pub async fn delete_stream(
        &self,
        caller: &Caller,
        cluster_id: &str,
        name: &str,
        confirm_name: String,
    ) -> Result<()> {
        self.stream(caller, cluster_id, name)?;
        let ctx = self.authorize(Actor::Caller(caller), Access::Cluster(cluster_id, Role::Operator))?;
        self.run_in::<Stream>(
            &ctx,
            &stream_id(cluster_id, name),
            StreamCommand::Delete { confirm_name },
        )
        .await?;
        let last = self
            .observe_consumers_of(cluster_id, name, true, ChangeOrigin::Console, &ctx)
            .await;
        let _ = self.views.consumers.wait_for(last, self.view_wait).await;
        Ok(())
    }

    /// Removes messages (operator); how many were removed.
    pub async fn purge_stream(
        &self,
        caller: &Caller,
        cluster_id: &str,
        name: &str,
        request: PurgeRequest,
    ) -> Result<u64> {
        self.stream(caller, cluster_id, name)?;
        let committed = self
            .stream_command(caller, cluster_id, name, StreamCommand::Purge { request })
            .await?;
        Ok(committed
            .events
            .iter()
            .find_map(|e| match &e.payload {
                StreamEvent::Purged { purged, .. } => Some(*purged),
                _ => None,
            })
            .unwrap_or(0))
    }

    /// Seals a stream (operator): no more messages, deletes or purges.
    pub async fn seal_stream(&self, caller: &Caller, cluster_id: &str, name: &str) -> Result<Versioned<StreamView>> {
        self.stream(caller, cluster_id, name)?;
        self.stream_command(caller, cluster_id, name, StreamCommand::Seal)
            .await?;
        self.stream(caller, cluster_id, name)
    }

    /// Publishes a message into a stream (operator); the history records its subject, size,
    /// header names and payload digest, never the payload.
    pub async fn publish(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        subject: String,
        headers: Vec<(String, String)>,
        payload: Vec<u8>,
    ) -> Result<PublishedMessage> {
        self.stream(caller, cluster_id, stream)?;
        let cmd = StreamCommand::Publish {
            subject,
            headers,
            payload,
        };
        let committed = self.stream_command(caller, cluster_id, stream, cmd).await?;
        committed
            .events
            .iter()
            .find_map(|e| match &e.payload {
                StreamEvent::MessagePublished { message, .. } => Some(message.clone()),
                _ => None,
            })
            .ok_or_else(|| Error::bug("publish recorded no event", caller.correlation_id()))
    }

    /// Removes one message from a stream (operator); `erase` overwrites its bytes too. The
    /// history records which message, never its content.
    pub async fn delete_message(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        sequence: u64,
        erase: bool,
    ) -> Result<u64> {
        self.stream(caller, cluster_id, stream)?;
        let committed = self
            .stream_command(
                caller,
                cluster_id,
                stream,
                StreamCommand::DeleteMessage { sequence, erase },
            )
            .await?;
        Ok(committed.stream_sequence)
    }

    pub(crate) async fn stream_command(
        &self,
        caller: &Caller,
        cluster_id: &str,
        name: &str,
        cmd: StreamCommand,
    ) -> Result<jsc_eventstore::Committed<Stream>> {
        self.run(
            Actor::Caller(caller),
            Access::Cluster(cluster_id, Role::Operator),
            &stream_id(cluster_id, name),
            cmd,
        )
        .await
    }
}
