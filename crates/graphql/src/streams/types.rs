//! The objects streams and consumers are shown as.

use std::collections::BTreeMap;

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use jsc_domain::consumer::ConsumerConfig;
use jsc_domain::stream::{StreamConfig, StreamSource};
use jsc_fleet::admin::{ConsumerInfo, StreamInfo};
use jsc_projections::streams::Provenance;
use jsc_projections::{ConsumerView, StreamView};
use jsc_projector::Versioned;

use super::{AckPolicy, Compression, DeliverPolicy, DiscardPolicy, ReplayPolicy, RetentionPolicy, StorageType};
use crate::context::console;
use crate::scalars::Duration;

#[derive(SimpleObject)]
pub struct MetadataEntry {
    key: String,
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

#[derive(SimpleObject)]
pub struct StreamSourceOut {
    name: String,
    opt_start_seq: Option<u64>,
    opt_start_time: Option<String>,
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

/// A stream's configuration as the server stores it.
pub struct StreamConfigOut(StreamConfig);

#[Object(name = "StreamConfig")]
impl StreamConfigOut {
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn subjects(&self) -> &[String] {
        &self.0.subjects
    }
    async fn retention(&self) -> RetentionPolicy {
        self.0.retention.into()
    }
    async fn storage(&self) -> StorageType {
        self.0.storage.into()
    }
    async fn replicas(&self) -> i64 {
        self.0.num_replicas
    }
    async fn max_consumers(&self) -> i64 {
        self.0.max_consumers
    }
    async fn max_msgs(&self) -> i64 {
        self.0.max_msgs
    }
    async fn max_bytes(&self) -> i64 {
        self.0.max_bytes
    }
    async fn max_age(&self) -> Duration {
        Duration(self.0.max_age)
    }
    async fn max_msgs_per_subject(&self) -> i64 {
        self.0.max_msgs_per_subject
    }
    async fn max_msg_size(&self) -> i64 {
        self.0.max_msg_size
    }
    async fn discard(&self) -> DiscardPolicy {
        self.0.discard.into()
    }
    async fn discard_new_per_subject(&self) -> bool {
        self.0.discard_new_per_subject
    }
    async fn duplicate_window(&self) -> Duration {
        Duration(self.0.duplicate_window)
    }
    async fn compression(&self) -> Compression {
        self.0.compression.unwrap_or_default().into()
    }
    async fn allow_direct(&self) -> bool {
        self.0.allow_direct
    }
    async fn allow_rollup(&self) -> bool {
        self.0.allow_rollup_hdrs
    }
    async fn deny_delete(&self) -> bool {
        self.0.deny_delete
    }
    async fn deny_purge(&self) -> bool {
        self.0.deny_purge
    }
    async fn sealed(&self) -> bool {
        self.0.sealed
    }
    async fn mirror(&self) -> Option<StreamSourceOut> {
        self.0.mirror.as_ref().map(source_out)
    }
    async fn sources(&self) -> Vec<StreamSourceOut> {
        self.0.sources.iter().map(source_out).collect()
    }
    async fn subject_transform_src(&self) -> Option<&str> {
        self.0.subject_transform.as_ref().map(|t| t.src.as_str())
    }
    async fn subject_transform_dest(&self) -> Option<&str> {
        self.0.subject_transform.as_ref().map(|t| t.dest.as_str())
    }
    async fn placement_cluster(&self) -> Option<&str> {
        self.0.placement.as_ref().and_then(|p| p.cluster.as_deref())
    }
    async fn placement_tags(&self) -> Vec<String> {
        self.0.placement.as_ref().map(|p| p.tags.clone()).unwrap_or_default()
    }
    async fn metadata(&self) -> Vec<MetadataEntry> {
        metadata(&self.0.metadata)
    }
    async fn allow_msg_ttl(&self) -> bool {
        self.0.allow_msg_ttl
    }
    async fn subject_delete_marker_ttl(&self) -> Option<Duration> {
        self.0.subject_delete_marker_ttl.map(Duration)
    }
}

/// A consumer's configuration as the server stores it.
pub struct ConsumerConfigOut(ConsumerConfig);

#[Object(name = "ConsumerConfig")]
impl ConsumerConfigOut {
    async fn durable_name(&self) -> &str {
        self.0.consumer_name()
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn deliver_policy(&self) -> DeliverPolicy {
        self.0.deliver_policy.into()
    }
    async fn opt_start_seq(&self) -> Option<u64> {
        self.0.opt_start_seq
    }
    async fn opt_start_time(&self) -> Option<&str> {
        self.0.opt_start_time.as_deref()
    }
    async fn ack_policy(&self) -> AckPolicy {
        self.0.ack_policy.into()
    }
    async fn ack_wait(&self) -> Duration {
        Duration(self.0.ack_wait)
    }
    async fn max_deliver(&self) -> i64 {
        self.0.max_deliver
    }
    async fn backoff(&self) -> Vec<Duration> {
        self.0.backoff.iter().map(|b| Duration(*b)).collect()
    }
    async fn filter_subjects(&self) -> Vec<String> {
        self.0
            .filter_subject
            .iter()
            .chain(&self.0.filter_subjects)
            .cloned()
            .collect()
    }
    async fn replay_policy(&self) -> ReplayPolicy {
        self.0.replay_policy.into()
    }
    async fn rate_limit_bps(&self) -> Option<u64> {
        self.0.rate_limit_bps
    }
    async fn max_waiting(&self) -> i64 {
        self.0.max_waiting
    }
    async fn max_ack_pending(&self) -> i64 {
        self.0.max_ack_pending
    }
    async fn headers_only(&self) -> bool {
        self.0.headers_only
    }
    async fn inactive_threshold(&self) -> Duration {
        Duration(self.0.inactive_threshold)
    }
    async fn replicas(&self) -> i64 {
        self.0.num_replicas
    }
    async fn mem_storage(&self) -> bool {
        self.0.mem_storage
    }
    async fn metadata(&self) -> Vec<MetadataEntry> {
        metadata(&self.0.metadata)
    }
    /// Set for push consumers.
    async fn deliver_subject(&self) -> Option<&str> {
        self.0.deliver_subject.as_deref()
    }
    async fn deliver_group(&self) -> Option<&str> {
        self.0.deliver_group.as_deref()
    }
    async fn flow_control(&self) -> bool {
        self.0.flow_control
    }
    async fn idle_heartbeat(&self) -> Duration {
        Duration(self.0.idle_heartbeat)
    }
    async fn pause_until(&self) -> Option<&str> {
        self.0.pause_until.as_deref()
    }
    async fn is_push(&self) -> bool {
        self.0.is_push()
    }
}

/// A stream's live state, read from its cluster (refreshed every couple of seconds).
#[derive(SimpleObject, Clone, PartialEq)]
pub struct StreamState {
    messages: u64,
    bytes: u64,
    first_seq: u64,
    first_time: Option<String>,
    last_seq: u64,
    last_time: Option<String>,
    consumer_count: u64,
    num_subjects: u64,
    num_deleted: u64,
}

impl From<&StreamInfo> for StreamState {
    fn from(i: &StreamInfo) -> Self {
        let s = &i.state;
        Self {
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

/// A consumer's live state, read from its cluster.
#[derive(SimpleObject, Clone, PartialEq)]
pub struct ConsumerState {
    /// Messages not yet delivered: the consumer's lag.
    pending: u64,
    /// Delivered but not yet acknowledged.
    ack_pending: u64,
    redelivered: u64,
    /// Pull requests waiting.
    waiting: u64,
    delivered_stream_seq: u64,
    delivered_consumer_seq: u64,
    ack_floor_stream_seq: u64,
    last_active: Option<String>,
    paused: bool,
}

impl From<&ConsumerInfo> for ConsumerState {
    fn from(i: &ConsumerInfo) -> Self {
        Self {
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

/// Who created a resource and who changed it last, from its history.
pub struct ProvenanceOut(Provenance);

#[Object(name = "Provenance")]
impl ProvenanceOut {
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Who made the last change (`external:<client>` when made outside the console).
    async fn updated_by(&self) -> &str {
        &self.0.updated_by
    }
    /// Event type of the last change.
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
    /// Number of events in the resource's history.
    async fn version(&self) -> u64 {
        self.0.version
    }
}

/// A JetStream stream on a managed cluster.
pub struct StreamObj(pub(crate) Versioned<StreamView>);

#[Object(name = "Stream")]
impl StreamObj {
    async fn cluster_id(&self) -> ID {
        ID(self.0.view.cluster_id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.view.name
    }
    async fn config(&self) -> StreamConfigOut {
        StreamConfigOut(self.0.view.config.clone())
    }
    /// Who created the stream and who changed its configuration last.
    async fn provenance(&self) -> ProvenanceOut {
        ProvenanceOut(self.0.view.provenance.clone())
    }
    async fn last_purged_at(&self) -> Option<DateTime<Utc>> {
        self.0.view.last_purge
    }
    /// Number of events in the stream's history.
    async fn version(&self) -> u64 {
        self.0.view.provenance.version
    }
    /// Live state from the cluster; null if the stream is gone from it.
    async fn state(&self, ctx: &Context<'_>) -> Result<Option<StreamState>> {
        let live = console(ctx).live_streams(&self.0.view.cluster_id).await?;
        Ok(live.get(&self.0.view.name).map(StreamState::from))
    }
    /// Durable consumers of the stream.
    async fn consumers(&self, ctx: &Context<'_>) -> Vec<ConsumerObj> {
        let v = &self.0.view;
        console(ctx)
            .consumers_of(&v.cluster_id, &v.name)
            .into_iter()
            .map(ConsumerObj)
            .collect()
    }
}

/// A durable consumer of a stream.
pub struct ConsumerObj(pub(crate) Versioned<ConsumerView>);

#[Object(name = "Consumer")]
impl ConsumerObj {
    async fn cluster_id(&self) -> ID {
        ID(self.0.view.cluster_id.clone())
    }
    async fn stream(&self) -> &str {
        &self.0.view.stream
    }
    async fn name(&self) -> &str {
        &self.0.view.name
    }
    async fn config(&self) -> ConsumerConfigOut {
        ConsumerConfigOut(self.0.view.config.clone())
    }
    /// Who created the consumer and who changed it last.
    async fn provenance(&self) -> ProvenanceOut {
        ProvenanceOut(self.0.view.provenance.clone())
    }
    /// Live state from the cluster (lag, acks pending, redeliveries); null if gone.
    async fn state(&self, ctx: &Context<'_>) -> Result<Option<ConsumerState>> {
        let v = &self.0.view;
        let live = console(ctx).live_consumers(&v.cluster_id, &v.stream).await?;
        Ok(live.get(&v.name).map(ConsumerState::from))
    }
}

#[derive(SimpleObject)]
pub struct PageInfo {
    has_next_page: bool,
    /// Pass as `after` to get the next page.
    end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct StreamPage {
    nodes: Vec<StreamObj>,
    total_count: usize,
    page_info: PageInfo,
}

impl From<jsc_app::StreamPage> for StreamPage {
    fn from(p: jsc_app::StreamPage) -> Self {
        Self {
            nodes: p.nodes.into_iter().map(StreamObj).collect(),
            total_count: p.total_count,
            page_info: PageInfo {
                has_next_page: p.has_next_page,
                end_cursor: p.end_cursor,
            },
        }
    }
}

#[derive(SimpleObject)]
pub struct PurgeResult {
    pub purged: u64,
}

#[derive(SimpleObject)]
pub struct PublishAck {
    pub stream: String,
    pub sequence: u64,
    /// JetStream dropped it as a duplicate (same `Nats-Msg-Id` within the window).
    pub duplicate: bool,
}

#[derive(SimpleObject)]
pub struct DeletedResource {
    pub cluster_id: ID,
    pub name: String,
}
