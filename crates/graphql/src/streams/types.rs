//! The objects streams and consumers are shown as.

use std::collections::BTreeMap;

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use jsc_domain::consumer::ConsumerConfig;
use jsc_domain::stream::{StreamConfig, StreamSource};
use jsc_fleet::admin::{ConsumerInfo, StreamState as LiveStreamState};
use jsc_projections::streams::Provenance;
use jsc_projections::{ConsumerView, StreamView};
use jsc_projector::Versioned;

use super::{AckPolicy, Compression, DeliverPolicy, DiscardPolicy, ReplayPolicy, RetentionPolicy, StorageType};
use crate::connection::{connection, paging};
use crate::context::console;
use crate::scalars::Duration;

/// One entry of a stream's or consumer's metadata: a free-form key-value pair.
#[derive(SimpleObject)]
pub struct MetadataEntry {
    /// The key.
    key: String,
    /// The value.
    value: String,
}

fn metadata(m: &BTreeMap<String, String>) -> Vec<MetadataEntry> {
    m.iter()
        .map(|(k, v)| MetadataEntry {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// Another stream a stream copies messages from, as its mirror or one of its sources.
#[derive(SimpleObject)]
pub struct StreamSourceOut {
    /// The name of the stream copied from.
    name: String,
    /// The stream sequence of the source copying started at; null for its first message.
    opt_start_seq: Option<u64>,
    /// The time copying started at, RFC 3339; null when not set.
    opt_start_time: Option<String>,
    /// Only messages on this subject are copied; null for every message.
    filter_subject: Option<String>,
}

fn source_out(s: &StreamSource) -> StreamSourceOut {
    StreamSourceOut {
        name: s.name.clone(),
        opt_start_seq: s.opt_start_seq,
        opt_start_time: s.opt_start_time.clone(),
        filter_subject: s.filter_subject.clone(),
    }
}

/// The GraphQL `StreamConfig` object; the schema's description is the doc comment on its impl.
pub struct StreamConfigOut(StreamConfig);

/// A stream's configuration as the server stores it, with JetStream's defaults filled in.
/// Limits of -1 are unlimited.
#[Object(name = "StreamConfig")]
impl StreamConfigOut {
    /// The stream's name, unique on its cluster.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// A free-form description; null when none is set.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The subjects the stream stores (wildcards allowed); empty on a mirror.
    async fn subjects(&self) -> &[String] {
        &self.0.subjects
    }
    /// How long the stream keeps a message.
    async fn retention(&self) -> RetentionPolicy {
        self.0.retention.into()
    }
    /// Where the stream keeps its messages.
    async fn storage(&self) -> StorageType {
        self.0.storage.into()
    }
    /// How many servers keep a copy of the stream (1 to 5).
    async fn replicas(&self) -> i64 {
        self.0.num_replicas
    }
    /// Most consumers the stream may have; -1 is unlimited.
    async fn max_consumers(&self) -> i64 {
        self.0.max_consumers
    }
    /// Most messages the stream keeps before `discard` applies; -1 is unlimited.
    async fn max_msgs(&self) -> i64 {
        self.0.max_msgs
    }
    /// Most bytes of messages the stream keeps before `discard` applies; -1 is unlimited.
    async fn max_bytes(&self) -> i64 {
        self.0.max_bytes
    }
    /// How long a message is kept; `0s` is unlimited.
    async fn max_age(&self) -> Duration {
        Duration(self.0.max_age)
    }
    /// Most messages kept per subject; -1 is unlimited.
    async fn max_msgs_per_subject(&self) -> i64 {
        self.0.max_msgs_per_subject
    }
    /// Largest message the stream accepts, in bytes; -1 is up to the server's `max_payload`.
    async fn max_msg_size(&self) -> i64 {
        self.0.max_msg_size
    }
    /// What happens when a new message would exceed a limit.
    async fn discard(&self) -> DiscardPolicy {
        self.0.discard.into()
    }
    /// Whether a new message on a subject already at `maxMsgsPerSubject` is refused, even
    /// when the stream has room (with `discard: NEW`).
    async fn discard_new_per_subject(&self) -> bool {
        self.0.discard_new_per_subject
    }
    /// How long JetStream remembers each `Nats-Msg-Id` header to drop duplicate publishes.
    async fn duplicate_window(&self) -> Duration {
        Duration(self.0.duplicate_window)
    }
    /// How file storage is compressed.
    async fn compression(&self) -> Compression {
        self.0.compression.unwrap_or_default().into()
    }
    /// Whether every replica (and mirror) answers direct get requests for a message, faster
    /// than the leader but possibly slightly stale.
    async fn allow_direct(&self) -> bool {
        self.0.allow_direct
    }
    /// Whether the `Nats-Rollup` header may replace every earlier message on a subject or
    /// in the whole stream with the new one.
    async fn allow_rollup(&self) -> bool {
        self.0.allow_rollup_hdrs
    }
    /// Whether deleting single messages through the API is refused.
    async fn deny_delete(&self) -> bool {
        self.0.deny_delete
    }
    /// Whether purging the stream through the API is refused.
    async fn deny_purge(&self) -> bool {
        self.0.deny_purge
    }
    /// Whether the stream is sealed (`sealStream`): it takes no more messages and no
    /// message can be deleted or purged; it cannot be unsealed.
    async fn sealed(&self) -> bool {
        self.0.sealed
    }
    /// The stream this one is a read-only copy of; null when it is not a mirror.
    async fn mirror(&self) -> Option<StreamSourceOut> {
        self.0.mirror.as_ref().map(source_out)
    }
    /// Other streams whose messages are copied into this one; empty when none.
    async fn sources(&self) -> Vec<StreamSourceOut> {
        self.0.sources.iter().map(source_out).collect()
    }
    /// The subjects whose incoming messages are rewritten before they are stored; null
    /// without a subject transform.
    async fn subject_transform_src(&self) -> Option<&str> {
        self.0.subject_transform.as_ref().map(|t| t.src.as_str())
    }
    /// The subject those messages are stored under; null without a subject transform.
    async fn subject_transform_dest(&self) -> Option<&str> {
        self.0.subject_transform.as_ref().map(|t| t.dest.as_str())
    }
    /// The NATS cluster the stream's replicas are placed in; null when JetStream chose.
    async fn placement_cluster(&self) -> Option<&str> {
        self.0.placement.as_ref().and_then(|p| p.cluster.as_deref())
    }
    /// Server tags the servers holding the stream's replicas must have; empty when none.
    async fn placement_tags(&self) -> Vec<String> {
        self.0.placement.as_ref().map(|p| p.tags.clone()).unwrap_or_default()
    }
    /// Free-form key-value pairs, by key; the server's own `_nats.` entries are left out.
    async fn metadata(&self) -> Vec<MetadataEntry> {
        metadata(&self.0.metadata)
    }
    /// Whether a message may carry its own time to live in the `Nats-TTL` header
    /// (nats-server 2.11+).
    async fn allow_msg_ttl(&self) -> bool {
        self.0.allow_msg_ttl
    }
    /// How long the delete marker left when `maxAge` removes a subject's last message is
    /// kept (nats-server 2.11+); null when no markers are left.
    async fn subject_delete_marker_ttl(&self) -> Option<Duration> {
        self.0.subject_delete_marker_ttl.map(Duration)
    }
}

/// The GraphQL `ConsumerConfig` object; the schema's description is the doc comment on its impl.
pub struct ConsumerConfigOut(ConsumerConfig);

/// A consumer's configuration as the server stores it, with JetStream's defaults filled in.
#[Object(name = "ConsumerConfig")]
impl ConsumerConfigOut {
    /// The consumer's durable name, unique on its stream.
    async fn durable_name(&self) -> &str {
        self.0.consumer_name()
    }
    /// A free-form description; null when none is set.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Where in the stream delivery started.
    async fn deliver_policy(&self) -> DeliverPolicy {
        self.0.deliver_policy.into()
    }
    /// The stream sequence delivery started at, with `BY_START_SEQUENCE`; null otherwise.
    async fn opt_start_seq(&self) -> Option<u64> {
        self.0.opt_start_seq
    }
    /// The time delivery started at, RFC 3339, with `BY_START_TIME`; null otherwise.
    async fn opt_start_time(&self) -> Option<&str> {
        self.0.opt_start_time.as_deref()
    }
    /// How messages are acknowledged.
    async fn ack_policy(&self) -> AckPolicy {
        self.0.ack_policy.into()
    }
    /// How long the server waits for an acknowledgement before it redelivers a message.
    async fn ack_wait(&self) -> Duration {
        Duration(self.0.ack_wait)
    }
    /// Most times a message is delivered, redeliveries included; -1 is unlimited.
    async fn max_deliver(&self) -> i64 {
        self.0.max_deliver
    }
    /// The delays before each redelivery, used instead of `ackWait`; empty when none.
    async fn backoff(&self) -> Vec<Duration> {
        self.0.backoff.iter().map(|b| Duration(*b)).collect()
    }
    /// The subjects delivered (wildcards allowed), from `filterSubject` or `filterSubjects`;
    /// empty when every message of the stream is delivered.
    async fn filter_subjects(&self) -> Vec<String> {
        self.0
            .filter_subject
            .iter()
            .chain(&self.0.filter_subjects)
            .cloned()
            .collect()
    }
    /// How fast stored messages are replayed.
    async fn replay_policy(&self) -> ReplayPolicy {
        self.0.replay_policy.into()
    }
    /// Most delivery rate in bits per second (push consumers); null when unlimited.
    async fn rate_limit_bps(&self) -> Option<u64> {
        self.0.rate_limit_bps
    }
    /// Most pull requests waiting at once (pull consumers).
    async fn max_waiting(&self) -> i64 {
        self.0.max_waiting
    }
    /// Most messages delivered but not yet acknowledged before delivery pauses; -1 is
    /// unlimited.
    async fn max_ack_pending(&self) -> i64 {
        self.0.max_ack_pending
    }
    /// Whether only the headers of each message are delivered (with its size in
    /// `Nats-Msg-Size`), not the payload.
    async fn headers_only(&self) -> bool {
        self.0.headers_only
    }
    /// How long the consumer may go without activity before the server deletes it; `0s`
    /// keeps it until it is deleted.
    async fn inactive_threshold(&self) -> Duration {
        Duration(self.0.inactive_threshold)
    }
    /// How many servers keep the consumer's state; 0 is the stream's number of replicas.
    async fn replicas(&self) -> i64 {
        self.0.num_replicas
    }
    /// Whether the consumer's state is kept in memory even on a file stream.
    async fn mem_storage(&self) -> bool {
        self.0.mem_storage
    }
    /// Free-form key-value pairs, by key; the server's own `_nats.` entries are left out.
    async fn metadata(&self) -> Vec<MetadataEntry> {
        metadata(&self.0.metadata)
    }
    /// The subject the server sends messages to; set for push consumers, null for pull
    /// consumers.
    async fn deliver_subject(&self) -> Option<&str> {
        self.0.deliver_subject.as_deref()
    }
    /// The queue group that shares a push consumer's messages; null when none.
    async fn deliver_group(&self) -> Option<&str> {
        self.0.deliver_group.as_deref()
    }
    /// Whether the server asks a push consumer's client to confirm it keeps up, slowing
    /// delivery until it does.
    async fn flow_control(&self) -> bool {
        self.0.flow_control
    }
    /// How long without deliveries before the server sends a push consumer a heartbeat;
    /// `0s` sends none.
    async fn idle_heartbeat(&self) -> Duration {
        Duration(self.0.idle_heartbeat)
    }
    /// Until when delivery is paused (`pauseConsumer`), RFC 3339; null when not paused.
    async fn pause_until(&self) -> Option<&str> {
        self.0.pause_until.as_deref()
    }
    /// Whether this is a push consumer (it has a `deliverSubject`) rather than a pull one.
    async fn is_push(&self) -> bool {
        self.0.is_push()
    }
}

/// A stream's live state, read from its cluster (the last state read is answered at once,
/// refreshed in the background every couple of seconds; `sampledAt` says when it was read).
#[derive(SimpleObject, Clone)]
pub struct StreamState {
    /// When this state was read from the cluster.
    sampled_at: DateTime<Utc>,
    /// Messages the stream holds.
    messages: u64,
    /// Bytes the stream's messages take up.
    bytes: u64,
    /// Stream sequence of the oldest message held.
    first_seq: u64,
    /// When the oldest message was stored, RFC 3339; null when the stream is empty.
    first_time: Option<String>,
    /// Stream sequence of the newest message stored.
    last_seq: u64,
    /// When the newest message was stored, RFC 3339; null when none was.
    last_time: Option<String>,
    /// Consumers of the stream, durable or not.
    consumer_count: u64,
    /// Distinct subjects among the messages held.
    num_subjects: u64,
    /// Messages deleted between `firstSeq` and `lastSeq` (gaps in the sequence).
    num_deleted: u64,
}

/// The same state, whenever it was read (what a subscription compares).
impl PartialEq for StreamState {
    fn eq(&self, o: &Self) -> bool {
        let f = |s: &Self| {
            (
                s.messages,
                s.bytes,
                s.first_seq,
                s.first_time.clone(),
                s.last_seq,
                s.last_time.clone(),
                s.consumer_count,
                s.num_subjects,
                s.num_deleted,
            )
        };
        f(self) == f(o)
    }
}

impl StreamState {
    pub(crate) fn of(s: &LiveStreamState, sampled_at: DateTime<Utc>) -> Self {
        Self {
            sampled_at,
            messages: s.messages,
            bytes: s.bytes,
            first_seq: s.first_seq,
            first_time: s.first_ts.clone(),
            last_seq: s.last_seq,
            last_time: s.last_ts.clone(),
            consumer_count: s.consumer_count,
            num_subjects: s.num_subjects,
            num_deleted: s.num_deleted,
        }
    }
}

/// A consumer's live state, read from its cluster (as a stream's: the last state read,
/// refreshed in the background; `sampledAt` says when it was read).
#[derive(SimpleObject, Clone)]
pub struct ConsumerState {
    /// When this state was read from the cluster.
    sampled_at: DateTime<Utc>,
    /// Messages not yet delivered: the consumer's lag.
    pending: u64,
    /// Delivered but not yet acknowledged.
    ack_pending: u64,
    /// Messages delivered more than once and not yet acknowledged.
    redelivered: u64,
    /// Pull requests waiting.
    waiting: u64,
    /// Stream sequence of the last message delivered.
    delivered_stream_seq: u64,
    /// The consumer's own sequence of the last delivery (it counts redeliveries too).
    delivered_consumer_seq: u64,
    /// Stream sequence up to which every message is acknowledged.
    ack_floor_stream_seq: u64,
    /// When the consumer last delivered a message, RFC 3339; null when it never did.
    last_active: Option<String>,
    /// Whether delivery is paused (`pauseConsumer`).
    paused: bool,
}

/// The same state, whenever it was read (what a subscription compares).
impl PartialEq for ConsumerState {
    fn eq(&self, o: &Self) -> bool {
        let f = |s: &Self| {
            (
                s.pending,
                s.ack_pending,
                s.redelivered,
                s.waiting,
                s.delivered_stream_seq,
                s.delivered_consumer_seq,
                s.ack_floor_stream_seq,
                s.last_active.clone(),
                s.paused,
            )
        };
        f(self) == f(o)
    }
}

impl ConsumerState {
    pub(crate) fn of(i: &ConsumerInfo, sampled_at: DateTime<Utc>) -> Self {
        Self {
            sampled_at,
            pending: i.num_pending,
            ack_pending: i.num_ack_pending,
            redelivered: i.num_redelivered,
            waiting: i.num_waiting,
            delivered_stream_seq: i.delivered.stream_seq,
            delivered_consumer_seq: i.delivered.consumer_seq,
            ack_floor_stream_seq: i.ack_floor.stream_seq,
            last_active: i.delivered.last_active.clone(),
            paused: i.paused,
        }
    }
}

/// The GraphQL `Provenance` object; the schema's description is the doc comment on its impl.
pub struct ProvenanceOut(Provenance);

/// Who created a resource and who changed it last, from its history.
#[Object(name = "Provenance")]
impl ProvenanceOut {
    /// When the resource was created (or first seen by the console).
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Who created it: `user:<id>` or `apikey:<id>`, or `external` (`external:<client>` when
    /// the server named the client) when it was created outside the console.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When it last changed; a stream's purges and published messages do not count.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Who made the last change (`external:<client>` when made outside the console).
    async fn updated_by(&self) -> &str {
        &self.0.updated_by
    }
    /// Event type of the last change, such as `StreamUpdated` or `ConsumerPaused`.
    async fn last_change(&self) -> &str {
        &self.0.last_change
    }
    /// Whether the last change was made outside the console.
    async fn last_change_external(&self) -> bool {
        self.0.last_change_external
    }
    /// The NATS client behind an external change, when the server said.
    async fn last_change_client(&self) -> Option<&str> {
        self.0.last_change_client.as_deref()
    }
    /// Sequence, in the resource's history, of the last change shown here; a stream's
    /// purges and published messages are in its history but do not move it.
    async fn version(&self) -> u64 {
        self.0.version
    }
}

/// The GraphQL `Stream` object; the schema's description is the doc comment on its impl.
#[derive(Clone)]
pub struct StreamObj(pub(crate) Versioned<StreamView>);

connection!(StreamConnection, StreamEdge, StreamObj, "streams");

/// A JetStream stream on a managed cluster: its configuration and history as the console
/// recorded them, and its live state. Viewers of the cluster can read it.
#[Object(name = "Stream")]
impl StreamObj {
    /// The stream's global id, unique across every type: for `node(id)` and client caches.
    pub(crate) async fn id(&self) -> ID {
        ID(jsc_app::nodes::PathId::stream(
            &self.0.view.cluster_id,
            &self.0.view.name,
        ))
    }
    /// The id of the cluster the stream is on.
    async fn cluster_id(&self) -> ID {
        ID(self.0.view.cluster_id.to_string())
    }
    /// The stream's name, unique on its cluster.
    async fn name(&self) -> &str {
        &self.0.view.name
    }
    /// The stream's configuration as the server stores it.
    async fn config(&self) -> StreamConfigOut {
        StreamConfigOut(self.0.view.config.clone())
    }
    /// Who created the stream and who changed its configuration last.
    async fn provenance(&self) -> ProvenanceOut {
        ProvenanceOut(self.0.view.provenance.clone())
    }
    /// When the stream was last purged through the console; null when it never was.
    async fn last_purged_at(&self) -> Option<DateTime<Utc>> {
        self.0.view.last_purge
    }
    /// The stream's version, the same as `provenance.version`: the sequence, in its history,
    /// of its last configuration change (purges and published messages do not count).
    async fn version(&self) -> u64 {
        self.0.view.provenance.version
    }
    /// Live state from the cluster; null if the stream is gone from it. Fails with
    /// `UNAVAILABLE` when the cluster cannot be reached.
    async fn state(&self, ctx: &Context<'_>) -> Result<Option<StreamState>> {
        let live = console(ctx).live_streams(&self.0.view.cluster_id).await?;
        Ok(live.get(&self.0.view.name).map(|i| StreamState::of(i, live.at)))
    }
    /// Messages and bytes stored per second over a time range (the series
    /// `STREAM_MESSAGE_RATE` and `STREAM_BYTE_RATE` of `metrics`), from the console's
    /// samples. Errors: `VALIDATION`, `UNAVAILABLE`.
    async fn throughput(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The range's start.")] from: DateTime<Utc>,
        #[graphql(desc = "The range's end; left out, now.")] to: Option<DateTime<Utc>>,
        #[graphql(desc = "Seconds per point; left out, about 300 points over the range.")] step: Option<i64>,
    ) -> Result<Vec<crate::metrics::MetricSeries>> {
        use jsc_metrics::Metric;
        let v = &self.0.view;
        let series = [Metric::StreamMessageRate, Metric::StreamByteRate]
            .map(|m| crate::metrics::key(m, &v.cluster_id, Some(&v.name), None))
            .to_vec();
        Ok(crate::metrics::read(ctx, series, crate::metrics::Range::shortcut(from, to, step)).await?)
    }
    /// Durable consumers of the stream, by name, one page.
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn consumers(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The first `first` consumers (after `after`): 0 to 500; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only consumers after this cursor (an `endCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        after: Option<String>,
        #[graphql(desc = "The last `last` consumers (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(
            desc = "Only consumers before this cursor (a `startCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        before: Option<String>,
    ) -> Result<ConsumerConnection> {
        let v = &self.0.view;
        let page = console(ctx).consumers_of(&v.cluster_id, &v.name, &paging(first, after, last, before))?;
        Ok(ConsumerConnection::new(page, ConsumerObj))
    }
}

/// The GraphQL `Consumer` object; the schema's description is the doc comment on its impl.
#[derive(Clone)]
pub struct ConsumerObj(pub(crate) Versioned<ConsumerView>);

connection!(ConsumerConnection, ConsumerEdge, ConsumerObj, "consumers");

/// A durable consumer of a stream: its configuration and history as the console recorded
/// them, and its live state. Viewers of the cluster can read it.
#[Object(name = "Consumer")]
impl ConsumerObj {
    /// The consumer's global id, unique across every type: for `node(id)` and client caches.
    pub(crate) async fn id(&self) -> ID {
        let v = &self.0.view;
        ID(jsc_app::nodes::PathId::consumer(&v.cluster_id, &v.stream, &v.name))
    }
    /// The id of the cluster the consumer is on.
    async fn cluster_id(&self) -> ID {
        ID(self.0.view.cluster_id.to_string())
    }
    /// The name of the stream the consumer reads.
    async fn stream(&self) -> &str {
        &self.0.view.stream
    }
    /// The consumer's durable name, unique on its stream.
    async fn name(&self) -> &str {
        &self.0.view.name
    }
    /// The consumer's configuration as the server stores it.
    async fn config(&self) -> ConsumerConfigOut {
        ConsumerConfigOut(self.0.view.config.get())
    }
    /// Who created the consumer and who changed it last.
    async fn provenance(&self) -> ProvenanceOut {
        ProvenanceOut(self.0.view.provenance.clone())
    }
    /// Live state from the cluster (lag, acks pending, redeliveries); null if gone. Fails
    /// with `UNAVAILABLE` when the cluster cannot be reached.
    async fn state(&self, ctx: &Context<'_>) -> Result<Option<ConsumerState>> {
        let v = &self.0.view;
        let live = console(ctx).live_consumers(&v.cluster_id, &v.stream).await?;
        Ok(live.get(&v.name).map(|i| ConsumerState::of(i, live.at)))
    }
    /// The consumer's lag (messages not yet delivered, the series `CONSUMER_LAG` of
    /// `metrics`) over a time range, from the console's samples. Errors: `VALIDATION`,
    /// `UNAVAILABLE`.
    async fn lag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The range's start.")] from: DateTime<Utc>,
        #[graphql(desc = "The range's end; left out, now.")] to: Option<DateTime<Utc>>,
        #[graphql(desc = "Seconds per point; left out, about 300 points over the range.")] step: Option<i64>,
    ) -> Result<crate::metrics::MetricSeries> {
        let v = &self.0.view;
        let series = vec![crate::metrics::key(
            jsc_metrics::Metric::ConsumerLag,
            &v.cluster_id,
            Some(&v.stream),
            Some(&v.name),
        )];
        let mut got = crate::metrics::read(ctx, series, crate::metrics::Range::shortcut(from, to, step)).await?;
        Ok(got.remove(0))
    }
    /// The messages this consumer gave up on (after `maxDeliver` deliveries, or terminated
    /// by a client), oldest message first, as the console saw their advisories (kept 30 days,
    /// at most 10,000). Redrive them with redriveDeadLetters. Errors: `UNAVAILABLE`.
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn dead_letters(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The first `first` dead letters (after `after`): 0 to 500; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(desc = "Only dead letters after this cursor (`VALIDATION` for a cursor of another list).")]
        after: Option<String>,
        #[graphql(desc = "The last `last` dead letters (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(desc = "Only dead letters before this cursor (`VALIDATION` for a cursor of another list).")]
        before: Option<String>,
    ) -> Result<crate::messages::DeadLetterConnection> {
        let v = &self.0.view;
        let page = console(ctx)
            .dead_letters(
                &crate::context::caller(ctx)?,
                &v.cluster_id,
                &v.stream,
                &v.name,
                &paging(first, after, last, before),
            )
            .await?;
        Ok(crate::messages::DeadLetterConnection::new(
            page,
            crate::messages::DeadLetterObj,
        ))
    }
}

/// JetStream's acknowledgement of a published message.
#[derive(SimpleObject)]
pub struct PublishAck {
    /// The stream that stored the message.
    pub stream: String,
    /// The stream sequence the message was stored at (for a duplicate, the original's).
    pub sequence: u64,
    /// JetStream dropped it as a duplicate (same `Nats-Msg-Id` within the window).
    pub duplicate: bool,
}

/// A stream or consumer that was deleted.
#[derive(SimpleObject)]
pub struct DeletedResource {
    /// The id of the cluster it was on.
    pub cluster_id: ID,
    /// The name of the deleted stream or consumer.
    pub name: String,
}
