//! Streams and consumers over GraphQL: configuration and history from the views, live state
//! from the clusters, changes as commands on the stream and consumer aggregates.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration as StdDuration;

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject, Subscription};
use base64::Engine;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use jsc_domain::consumer::{ConsumerCommand, ConsumerConfig, consumer_id};
use jsc_domain::stream::{
    ChangeOrigin, Placement, PurgeRequest, Republish, StreamCommand, StreamConfig, StreamSource, SubjectTransform,
    stream_id,
};
use jsc_eventstore::CommandContext;
use jsc_fleet::admin::{ConsumerInfo, StreamInfo};
use jsc_projections::streams::Provenance;
use jsc_projections::{ConsumerView, StreamView, consumer_key, stream_key};
use jsc_projector::{ChangeOp, Versioned};
use tokio::sync::broadcast::error::RecvError;

use super::scalars::Duration;
use super::{command, console, guarded, principal};
use crate::error::{ApiError, ApiResult};
use crate::state::Console;
use jsc_domain::identity::Role;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
        pub enum $name { $($variant),+ }
        impl $name {
            pub fn wire(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }
            pub fn from_wire(s: &str) -> Option<Self> {
                match s { $($wire => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

wire_enum!(RetentionPolicy { Limits => "limits", Interest => "interest", WorkQueue => "workqueue" });
wire_enum!(StorageType { File => "file", Memory => "memory" });
wire_enum!(DiscardPolicy { Old => "old", New => "new" });
wire_enum!(Compression { None => "none", S2 => "s2" });
wire_enum!(DeliverPolicy {
    All => "all",
    Last => "last",
    New => "new",
    ByStartSequence => "by_start_sequence",
    ByStartTime => "by_start_time",
    LastPerSubject => "last_per_subject",
});
wire_enum!(AckPolicy { None => "none", All => "all", Explicit => "explicit" });
wire_enum!(ReplayPolicy { Instant => "instant", Original => "original" });

// ---------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------

#[derive(InputObject, Clone)]
pub struct MetadataEntryInput {
    key: String,
    value: String,
}

#[derive(InputObject, Clone)]
pub struct StreamSourceInput {
    name: String,
    opt_start_seq: Option<u64>,
    opt_start_time: Option<DateTime<Utc>>,
    filter_subject: Option<String>,
}

impl From<StreamSourceInput> for StreamSource {
    fn from(s: StreamSourceInput) -> Self {
        Self {
            name: s.name,
            opt_start_seq: s.opt_start_seq,
            opt_start_time: s.opt_start_time.map(|t| t.to_rfc3339()),
            filter_subject: s.filter_subject,
            extra: BTreeMap::new(),
        }
    }
}

#[derive(InputObject, Clone)]
pub struct SubjectTransformInput {
    src: String,
    dest: String,
}

#[derive(InputObject, Clone)]
pub struct PlacementInput {
    cluster: Option<String>,
    #[graphql(default)]
    tags: Vec<String>,
}

#[derive(InputObject, Clone)]
pub struct RepublishInput {
    src: String,
    dest: String,
    #[graphql(default)]
    headers_only: bool,
}

/// A stream's configuration. On create, fields left out take JetStream's defaults; on
/// update, fields left out keep their current value.
#[derive(InputObject, Default)]
pub struct StreamConfigInput {
    /// Required on create; must match on update.
    name: Option<String>,
    description: Option<String>,
    /// Subjects the stream stores (wildcards allowed); none on a mirror.
    subjects: Option<Vec<String>>,
    retention: Option<RetentionPolicy>,
    storage: Option<StorageType>,
    replicas: Option<i64>,
    /// -1 is unlimited, as for every `max*` limit.
    max_consumers: Option<i64>,
    max_msgs: Option<i64>,
    max_bytes: Option<i64>,
    /// `0s` is unlimited.
    max_age: Option<Duration>,
    max_msgs_per_subject: Option<i64>,
    max_msg_size: Option<i64>,
    discard: Option<DiscardPolicy>,
    discard_new_per_subject: Option<bool>,
    duplicate_window: Option<Duration>,
    compression: Option<Compression>,
    allow_direct: Option<bool>,
    allow_rollup: Option<bool>,
    deny_delete: Option<bool>,
    deny_purge: Option<bool>,
    mirror: Option<StreamSourceInput>,
    sources: Option<Vec<StreamSourceInput>>,
    subject_transform: Option<SubjectTransformInput>,
    placement: Option<PlacementInput>,
    republish: Option<RepublishInput>,
    metadata: Option<Vec<MetadataEntryInput>>,
    /// Allow a per-message TTL in the `Nats-TTL` header (nats-server 2.11+).
    allow_msg_ttl: Option<bool>,
    subject_delete_marker_ttl: Option<Duration>,
}

impl StreamConfigInput {
    fn apply_to(self, c: &mut StreamConfig) {
        macro_rules! set {
            ($($field:ident => $target:ident),* $(,)?) => { $( if let Some(v) = self.$field { c.$target = v; } )* };
        }
        set!(subjects => subjects, max_consumers => max_consumers, max_msgs => max_msgs, max_bytes => max_bytes,
             max_msgs_per_subject => max_msgs_per_subject, max_msg_size => max_msg_size, replicas => num_replicas,
             discard_new_per_subject => discard_new_per_subject, allow_direct => allow_direct,
             allow_rollup => allow_rollup_hdrs, deny_delete => deny_delete, deny_purge => deny_purge,
             allow_msg_ttl => allow_msg_ttl);
        if let Some(v) = self.description {
            c.description = Some(v).filter(|d| !d.is_empty());
        }
        if let Some(v) = self.retention {
            c.retention = v.wire().into();
        }
        if let Some(v) = self.storage {
            c.storage = v.wire().into();
        }
        if let Some(v) = self.discard {
            c.discard = v.wire().into();
        }
        if let Some(v) = self.compression {
            c.compression = Some(v.wire().into());
        }
        if let Some(v) = self.max_age {
            c.max_age = v.0;
        }
        if let Some(v) = self.duplicate_window {
            c.duplicate_window = v.0;
        }
        if let Some(v) = self.subject_delete_marker_ttl {
            c.subject_delete_marker_ttl = Some(v.0).filter(|t| *t > 0);
        }
        if let Some(v) = self.mirror {
            c.mirror = Some(v.into());
        }
        if let Some(v) = self.sources {
            c.sources = v.into_iter().map(Into::into).collect();
        }
        if let Some(v) = self.subject_transform {
            c.subject_transform = Some(SubjectTransform {
                src: v.src,
                dest: v.dest,
            });
        }
        if let Some(v) = self.placement {
            c.placement = Some(Placement {
                cluster: v.cluster,
                tags: v.tags,
            });
        }
        if let Some(v) = self.republish {
            c.republish = Some(Republish {
                src: v.src,
                dest: v.dest,
                headers_only: v.headers_only,
            });
        }
        if let Some(v) = self.metadata {
            c.metadata = v.into_iter().map(|e| (e.key, e.value)).collect();
        }
    }
}

/// A consumer's configuration. On create, fields left out take JetStream's defaults; on
/// update, fields left out keep their current value.
#[derive(InputObject, Default)]
pub struct ConsumerConfigInput {
    /// Required on create; must match on update.
    durable_name: Option<String>,
    description: Option<String>,
    deliver_policy: Option<DeliverPolicy>,
    opt_start_seq: Option<u64>,
    opt_start_time: Option<DateTime<Utc>>,
    ack_policy: Option<AckPolicy>,
    ack_wait: Option<Duration>,
    /// -1 is unlimited.
    max_deliver: Option<i64>,
    /// One delay per redelivery.
    backoff: Option<Vec<Duration>>,
    filter_subject: Option<String>,
    filter_subjects: Option<Vec<String>>,
    replay_policy: Option<ReplayPolicy>,
    /// Bits per second (push consumers).
    rate_limit_bps: Option<u64>,
    sample_frequency: Option<String>,
    /// Most pull requests waiting at once (pull consumers).
    max_waiting: Option<i64>,
    max_ack_pending: Option<i64>,
    headers_only: Option<bool>,
    inactive_threshold: Option<Duration>,
    replicas: Option<i64>,
    mem_storage: Option<bool>,
    metadata: Option<Vec<MetadataEntryInput>>,
    /// Makes a push consumer.
    deliver_subject: Option<String>,
    deliver_group: Option<String>,
    flow_control: Option<bool>,
    idle_heartbeat: Option<Duration>,
}

impl ConsumerConfigInput {
    fn apply_to(self, c: &mut ConsumerConfig) {
        if let Some(v) = self.description {
            c.description = Some(v).filter(|d| !d.is_empty());
        }
        if let Some(v) = self.deliver_policy {
            c.deliver_policy = v.wire().into();
        }
        if self.opt_start_seq.is_some() {
            c.opt_start_seq = self.opt_start_seq;
        }
        if let Some(t) = self.opt_start_time {
            c.opt_start_time = Some(t.to_rfc3339());
        }
        if let Some(v) = self.ack_policy {
            c.ack_policy = v.wire().into();
        }
        if let Some(v) = self.ack_wait {
            c.ack_wait = v.0;
        }
        if let Some(v) = self.max_deliver {
            c.max_deliver = v;
        }
        if let Some(v) = self.backoff {
            c.backoff = v.into_iter().map(|d| d.0).collect();
        }
        if let Some(v) = self.filter_subject {
            c.filter_subject = Some(v).filter(|s| !s.is_empty());
        }
        if let Some(v) = self.filter_subjects {
            c.filter_subjects = v;
        }
        if let Some(v) = self.replay_policy {
            c.replay_policy = v.wire().into();
        }
        if self.rate_limit_bps.is_some() {
            c.rate_limit_bps = self.rate_limit_bps.filter(|r| *r > 0);
        }
        if self.sample_frequency.is_some() {
            c.sample_freq = self.sample_frequency.filter(|s| !s.is_empty());
        }
        if let Some(v) = self.max_waiting {
            c.max_waiting = v;
        }
        if let Some(v) = self.max_ack_pending {
            c.max_ack_pending = v;
        }
        if let Some(v) = self.headers_only {
            c.headers_only = v;
        }
        if let Some(v) = self.inactive_threshold {
            c.inactive_threshold = v.0;
        }
        if let Some(v) = self.replicas {
            c.num_replicas = v;
        }
        if let Some(v) = self.mem_storage {
            c.mem_storage = v;
        }
        if let Some(v) = self.metadata {
            c.metadata = v.into_iter().map(|e| (e.key, e.value)).collect();
        }
        if let Some(v) = self.deliver_subject {
            c.deliver_subject = Some(v).filter(|s| !s.is_empty());
        }
        if let Some(v) = self.deliver_group {
            c.deliver_group = Some(v).filter(|s| !s.is_empty());
        }
        if let Some(v) = self.flow_control {
            c.flow_control = v;
        }
        if let Some(v) = self.idle_heartbeat {
            c.idle_heartbeat = v.0;
        }
    }
}

#[derive(InputObject)]
pub struct HeaderInput {
    name: String,
    value: String,
}

// ---------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------

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
    async fn retention(&self) -> Option<RetentionPolicy> {
        RetentionPolicy::from_wire(&self.0.retention)
    }
    async fn storage(&self) -> Option<StorageType> {
        StorageType::from_wire(&self.0.storage)
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
    async fn discard(&self) -> Option<DiscardPolicy> {
        DiscardPolicy::from_wire(&self.0.discard)
    }
    async fn discard_new_per_subject(&self) -> bool {
        self.0.discard_new_per_subject
    }
    async fn duplicate_window(&self) -> Duration {
        Duration(self.0.duplicate_window)
    }
    async fn compression(&self) -> Compression {
        self.0
            .compression
            .as_deref()
            .and_then(Compression::from_wire)
            .unwrap_or(Compression::None)
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
    async fn deliver_policy(&self) -> Option<DeliverPolicy> {
        DeliverPolicy::from_wire(&self.0.deliver_policy)
    }
    async fn opt_start_seq(&self) -> Option<u64> {
        self.0.opt_start_seq
    }
    async fn opt_start_time(&self) -> Option<&str> {
        self.0.opt_start_time.as_deref()
    }
    async fn ack_policy(&self) -> Option<AckPolicy> {
        AckPolicy::from_wire(&self.0.ack_policy)
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
    async fn replay_policy(&self) -> Option<ReplayPolicy> {
        ReplayPolicy::from_wire(&self.0.replay_policy)
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

fn unavailable(e: jsc_domain::stream::ServiceError) -> async_graphql::Error {
    ApiError::unavailable(e.to_string()).into()
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
        let live = console(ctx)
            .live
            .streams(&self.0.view.cluster_id)
            .await
            .map_err(unavailable)?;
        Ok(live.get(&self.0.view.name).map(StreamState::from))
    }
    /// Durable consumers of the stream.
    async fn consumers(&self, ctx: &Context<'_>) -> Vec<ConsumerObj> {
        let v = &self.0.view;
        let mut list = console(ctx)
            .consumer_view
            .filter(|c| c.cluster_id == v.cluster_id && c.stream == v.name);
        list.sort_by(|a, b| a.view.name.cmp(&b.view.name));
        list.into_iter().map(ConsumerObj).collect()
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
        let live = console(ctx)
            .live
            .consumers(&v.cluster_id, &v.stream)
            .await
            .map_err(unavailable)?;
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

#[derive(SimpleObject)]
pub struct PurgeResult {
    purged: u64,
}

#[derive(SimpleObject)]
pub struct PublishAck {
    stream: String,
    sequence: u64,
    /// JetStream dropped it as a duplicate (same `Nats-Msg-Id` within the window).
    duplicate: bool,
}

#[derive(SimpleObject)]
pub struct DeletedResource {
    cluster_id: ID,
    name: String,
}

// ---------------------------------------------------------------------------------------
// Roots
// ---------------------------------------------------------------------------------------

/// Checks the caller has `min` on the cluster (`NOT_FOUND` if it is not theirs to see) and
/// returns the cluster's organization.
pub(crate) fn ensure_cluster(ctx: &Context<'_>, cluster_id: &str, min: Role) -> ApiResult<String> {
    console(ctx).require_cluster(principal(ctx)?, cluster_id, min)
}

fn find_stream(ctx: &Context<'_>, cluster_id: &str, name: &str) -> ApiResult<StreamObj> {
    ensure_cluster(ctx, cluster_id, Role::Viewer)?;
    let c = console(ctx);
    c.stream_view
        .get(&stream_key(cluster_id, name))
        .map(StreamObj)
        .ok_or_else(|| ApiError::not_found(format!("no stream '{name}' on cluster '{cluster_id}'")))
}

fn find_consumer(ctx: &Context<'_>, cluster_id: &str, stream: &str, name: &str) -> ApiResult<ConsumerObj> {
    find_stream(ctx, cluster_id, stream)?;
    let c = console(ctx);
    c.consumer_view
        .get(&consumer_key(cluster_id, stream, name))
        .map(ConsumerObj)
        .ok_or_else(|| ApiError::not_found(format!("no consumer '{name}' on stream '{stream}'")))
}

/// Streams of a cluster by name, filtered and paginated.
pub(crate) fn list_streams(
    c: &Console,
    cluster_id: &str,
    name_contains: Option<String>,
    subject: Option<String>,
    first: usize,
    after: Option<String>,
) -> StreamPage {
    let needle = name_contains.map(|n| n.to_lowercase());
    let mut all = c.stream_view.filter(|s| {
        s.cluster_id == cluster_id
            && needle.as_ref().is_none_or(|n| s.name.to_lowercase().contains(n))
            && subject.as_ref().is_none_or(|subj| {
                s.config
                    .subjects
                    .iter()
                    .any(|own| jsc_domain::names::subjects_overlap(own, subj))
            })
    });
    all.sort_by(|a, b| a.view.name.cmp(&b.view.name));
    let total_count = all.len();
    let start = after.map_or(0, |a| all.partition_point(|s| s.view.name <= a));
    let first = first.clamp(1, 500);
    let page: Vec<_> = all.into_iter().skip(start).take(first + 1).collect();
    let has_next_page = page.len() > first;
    let nodes: Vec<StreamObj> = page.into_iter().take(first).map(StreamObj).collect();
    let end_cursor = nodes.last().map(|s| s.0.view.name.clone());
    StreamPage {
        nodes,
        total_count,
        page_info: PageInfo {
            has_next_page,
            end_cursor,
        },
    }
}

#[derive(Default)]
pub struct StreamQuery;

#[Object]
impl StreamQuery {
    /// Streams of a cluster, by name: `first` (at most 500) after the cursor `after`.
    /// Filter by part of the name, or by a subject the stream stores.
    async fn streams(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        name_contains: Option<String>,
        subject: Option<String>,
        #[graphql(default = 50)] first: usize,
        after: Option<String>,
    ) -> Result<StreamPage> {
        ensure_cluster(ctx, &cluster_id, Role::Viewer)?;
        Ok(list_streams(
            console(ctx),
            &cluster_id,
            name_contains,
            subject,
            first,
            after,
        ))
    }

    /// One stream with its consumers.
    async fn stream(&self, ctx: &Context<'_>, cluster_id: ID, name: String) -> Result<StreamObj> {
        Ok(find_stream(ctx, &cluster_id, &name)?)
    }

    async fn consumer(&self, ctx: &Context<'_>, cluster_id: ID, stream: String, name: String) -> Result<ConsumerObj> {
        Ok(find_consumer(ctx, &cluster_id, &stream, &name)?)
    }
}

#[derive(Default)]
pub struct StreamMutation;

async fn run_stream(ctx: &Context<'_>, cluster_id: &str, name: &str, cmd: StreamCommand) -> ApiResult<CommandContext> {
    let c = console(ctx);
    let org = ensure_cluster(ctx, cluster_id, Role::Operator)?;
    let (_, cctx) = command(ctx, Some(&org))?;
    let committed = c
        .streams
        .execute(&stream_id(cluster_id, name), cmd, &cctx)
        .await
        .map_err(|e| ApiError::from_aggregate(e, &cctx.correlation_id))?;
    c.await_view(&c.stream_view, "streams", committed.stream_sequence, &cctx)
        .await?;
    c.live.invalidate(cluster_id).await;
    Ok(cctx)
}

async fn run_consumer(
    ctx: &Context<'_>,
    cluster_id: &str,
    stream: &str,
    name: &str,
    cmd: ConsumerCommand,
) -> ApiResult<()> {
    let c = console(ctx);
    let org = ensure_cluster(ctx, cluster_id, Role::Operator)?;
    let (_, cctx) = command(ctx, Some(&org))?;
    let committed = c
        .consumers
        .execute(&consumer_id(cluster_id, stream, name), cmd, &cctx)
        .await
        .map_err(|e| ApiError::from_aggregate(e, &cctx.correlation_id))?;
    c.await_view(&c.consumer_view, "consumers", committed.stream_sequence, &cctx)
        .await?;
    c.live.invalidate(cluster_id).await;
    Ok(())
}

#[Object]
impl StreamMutation {
    /// Creates a stream on a managed cluster.
    async fn create_stream(&self, ctx: &Context<'_>, cluster_id: ID, config: StreamConfigInput) -> Result<StreamObj> {
        let Some(name) = config.name.clone() else {
            return Err(ApiError::validation("name: give the stream a name").into());
        };
        let mut full = StreamConfig::named(name.clone());
        config.apply_to(&mut full);
        run_stream(
            ctx,
            &cluster_id,
            &name,
            StreamCommand::Create {
                cluster_id: cluster_id.to_string(),
                config: full,
            },
        )
        .await?;
        Ok(find_stream(ctx, &cluster_id, &name)?)
    }

    /// Changes a stream's configuration; fields left out keep their value. Fields the
    /// server cannot change (storage, retention to or from workqueue, mirror) are refused.
    async fn update_stream(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        name: String,
        config: StreamConfigInput,
    ) -> Result<StreamObj> {
        let current = find_stream(ctx, &cluster_id, &name)?;
        if config.name.as_ref().is_some_and(|n| n != &name) {
            return Err(ApiError::validation("name: a stream cannot be renamed; create a new stream").into());
        }
        let mut full = current.0.view.config.clone();
        config.apply_to(&mut full);
        run_stream(ctx, &cluster_id, &name, StreamCommand::Update { config: full }).await?;
        Ok(find_stream(ctx, &cluster_id, &name)?)
    }

    /// Deletes a stream and all its messages; repeat its name in `confirmName`.
    async fn delete_stream(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        name: String,
        confirm_name: String,
    ) -> Result<DeletedResource> {
        find_stream(ctx, &cluster_id, &name)?;
        let c = console(ctx);
        let cctx = run_stream(ctx, &cluster_id, &name, StreamCommand::Delete { confirm_name }).await?;
        // Its consumers went with it: record that in their histories too.
        for consumer in c
            .consumer_view
            .filter(|v| v.cluster_id == cluster_id.as_str() && v.stream == name)
        {
            let cmd = ConsumerCommand::Observe {
                cluster_id: cluster_id.to_string(),
                stream: name.clone(),
                name: consumer.view.name.clone(),
                origin: ChangeOrigin::Console,
            };
            let id = consumer_id(&cluster_id, &name, &consumer.view.name);
            if let Ok(done) = c.consumers.execute(&id, cmd, &cctx).await {
                let _ = c.consumer_view.wait_for(done.stream_sequence, c.view_wait).await;
            }
        }
        Ok(DeletedResource { cluster_id, name })
    }

    /// Removes messages: all, only those on `subject`, all but the newest `keep`, or those
    /// below `upToSequence`.
    async fn purge_stream(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        name: String,
        subject: Option<String>,
        keep: Option<u64>,
        up_to_sequence: Option<u64>,
    ) -> Result<PurgeResult> {
        find_stream(ctx, &cluster_id, &name)?;
        let org = ensure_cluster(ctx, &cluster_id, Role::Operator)?;
        let request = PurgeRequest {
            filter: subject,
            keep,
            seq: up_to_sequence,
        };
        let c = console(ctx);
        let (_, cctx) = command(ctx, Some(&org))?;
        let committed = c
            .streams
            .execute(&stream_id(&cluster_id, &name), StreamCommand::Purge { request }, &cctx)
            .await
            .map_err(|e| ApiError::from_aggregate(e, &cctx.correlation_id))?;
        c.live.invalidate(&cluster_id).await;
        let purged = committed
            .events
            .iter()
            .find_map(|e| match &e.payload {
                jsc_domain::stream::StreamEvent::Purged { purged, .. } => Some(*purged),
                _ => None,
            })
            .unwrap_or(0);
        c.await_view(&c.stream_view, "streams", committed.stream_sequence, &cctx)
            .await?;
        Ok(PurgeResult { purged })
    }

    /// Seals a stream: no more messages, deletes or purges; cannot be undone.
    async fn seal_stream(&self, ctx: &Context<'_>, cluster_id: ID, name: String) -> Result<StreamObj> {
        find_stream(ctx, &cluster_id, &name)?;
        run_stream(ctx, &cluster_id, &name, StreamCommand::Seal).await?;
        Ok(find_stream(ctx, &cluster_id, &name)?)
    }

    /// Publishes a message into a stream and returns JetStream's acknowledgement. Give the
    /// payload as text or as base64, not both. The history records the subject, size,
    /// header names and a SHA-256 of the payload, never the payload.
    async fn publish_message(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        stream: String,
        subject: String,
        #[graphql(default)] headers: Vec<HeaderInput>,
        payload: Option<String>,
        payload_base64: Option<String>,
    ) -> Result<PublishAck> {
        find_stream(ctx, &cluster_id, &stream)?;
        let payload = match (payload, payload_base64) {
            (Some(_), Some(_)) => return Err(ApiError::validation("give payload or payloadBase64, not both").into()),
            (Some(t), None) => t.into_bytes(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|_| ApiError::validation("payloadBase64: not valid base64"))?,
            (None, None) => Vec::new(),
        };
        let headers = headers.into_iter().map(|h| (h.name, h.value)).collect();
        let c = console(ctx);
        let org = ensure_cluster(ctx, &cluster_id, Role::Operator)?;
        let (_, cctx) = command(ctx, Some(&org))?;
        let committed = c
            .streams
            .execute(
                &stream_id(&cluster_id, &stream),
                StreamCommand::Publish {
                    subject,
                    headers,
                    payload,
                },
                &cctx,
            )
            .await
            .map_err(|e| ApiError::from_aggregate(e, &cctx.correlation_id))?;
        c.live.invalidate(&cluster_id).await;
        let message = committed
            .events
            .iter()
            .find_map(|e| match &e.payload {
                jsc_domain::stream::StreamEvent::MessagePublished { message, .. } => Some(message.clone()),
                _ => None,
            })
            .ok_or_else(|| ApiError::internal(&"publish recorded no event", &cctx.correlation_id))?;
        Ok(PublishAck {
            stream,
            sequence: message.sequence,
            duplicate: message.duplicate,
        })
    }

    /// Creates a durable consumer (pull, or push with a deliver subject).
    async fn create_consumer(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        stream: String,
        config: ConsumerConfigInput,
    ) -> Result<ConsumerObj> {
        find_stream(ctx, &cluster_id, &stream)?;
        let Some(name) = config.durable_name.clone() else {
            return Err(ApiError::validation("durableName: give the consumer a durable name").into());
        };
        let mut full = ConsumerConfig::durable(name.clone());
        config.apply_to(&mut full);
        let cmd = ConsumerCommand::Create {
            cluster_id: cluster_id.to_string(),
            stream: stream.clone(),
            config: full,
        };
        run_consumer(ctx, &cluster_id, &stream, &name, cmd).await?;
        Ok(find_consumer(ctx, &cluster_id, &stream, &name)?)
    }

    /// Changes a consumer; fields left out keep their value.
    async fn update_consumer(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        stream: String,
        name: String,
        config: ConsumerConfigInput,
    ) -> Result<ConsumerObj> {
        let current = find_consumer(ctx, &cluster_id, &stream, &name)?;
        if config.durable_name.as_ref().is_some_and(|n| n != &name) {
            return Err(ApiError::validation("durableName: a consumer cannot be renamed").into());
        }
        let mut full = current.0.view.config.clone();
        config.apply_to(&mut full);
        run_consumer(
            ctx,
            &cluster_id,
            &stream,
            &name,
            ConsumerCommand::Update { config: full },
        )
        .await?;
        Ok(find_consumer(ctx, &cluster_id, &stream, &name)?)
    }

    async fn delete_consumer(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        stream: String,
        name: String,
    ) -> Result<DeletedResource> {
        find_consumer(ctx, &cluster_id, &stream, &name)?;
        run_consumer(ctx, &cluster_id, &stream, &name, ConsumerCommand::Delete).await?;
        Ok(DeletedResource { cluster_id, name })
    }

    /// Stops delivery until `until` (nats-server 2.11+).
    async fn pause_consumer(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        stream: String,
        name: String,
        until: DateTime<Utc>,
    ) -> Result<ConsumerObj> {
        find_consumer(ctx, &cluster_id, &stream, &name)?;
        let until = until.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        run_consumer(ctx, &cluster_id, &stream, &name, ConsumerCommand::Pause { until }).await?;
        Ok(find_consumer(ctx, &cluster_id, &stream, &name)?)
    }

    /// Resumes a paused consumer now (nats-server 2.11+).
    async fn resume_consumer(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        stream: String,
        name: String,
    ) -> Result<ConsumerObj> {
        find_consumer(ctx, &cluster_id, &stream, &name)?;
        run_consumer(ctx, &cluster_id, &stream, &name, ConsumerCommand::Resume).await?;
        Ok(find_consumer(ctx, &cluster_id, &stream, &name)?)
    }
}

// ---------------------------------------------------------------------------------------
// Subscriptions
// ---------------------------------------------------------------------------------------

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ResourceChangeKind {
    Created,
    Updated,
    Sealed,
    Purged,
    Paused,
    Resumed,
    Deleted,
    /// Live state changed (messages, bytes, lag, acks).
    State,
}

fn kind_of(event_type: &str) -> ResourceChangeKind {
    match event_type {
        "StreamCreated" | "ConsumerCreated" => ResourceChangeKind::Created,
        "StreamSealed" => ResourceChangeKind::Sealed,
        "StreamPurged" => ResourceChangeKind::Purged,
        "ConsumerPaused" => ResourceChangeKind::Paused,
        "ConsumerResumed" => ResourceChangeKind::Resumed,
        _ => ResourceChangeKind::Updated,
    }
}

#[derive(SimpleObject)]
pub struct StreamChange {
    kind: ResourceChangeKind,
    cluster_id: ID,
    name: String,
    /// The stream after the change; absent when deleted.
    stream: Option<StreamObj>,
    /// Set for `STATE` changes.
    state: Option<StreamState>,
}

#[derive(SimpleObject)]
pub struct ConsumerChange {
    kind: ResourceChangeKind,
    cluster_id: ID,
    stream: String,
    name: String,
    consumer: Option<ConsumerObj>,
    state: Option<ConsumerState>,
}

/// Polls live state every `every` and yields what changed since the previous poll (the
/// first poll yields everything: the state when the subscription started).
fn state_changes<T, F, Fut>(every: StdDuration, mut poll: F) -> impl Stream<Item = Vec<(String, T)>>
where
    T: Clone + PartialEq + Send + 'static,
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<HashMap<String, T>>> + Send,
{
    let mut last: HashMap<String, T> = HashMap::new();
    let ticks = tokio_stream_interval(every);
    ticks.then(move |_| poll()).filter_map(move |now| {
        let out = match now {
            Some(now) => {
                let changed: Vec<(String, T)> = now
                    .iter()
                    .filter(|(k, v)| last.get(*k) != Some(v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                last = now;
                Some(changed).filter(|c| !c.is_empty())
            }
            None => None,
        };
        futures::future::ready(out)
    })
}

fn tokio_stream_interval(every: StdDuration) -> impl Stream<Item = ()> {
    futures::stream::unfold(tokio::time::interval(every), |mut i| async move {
        i.tick().await;
        Some(((), i))
    })
}

#[derive(Default)]
pub struct StreamSubscription;

#[Subscription]
impl StreamSubscription {
    /// Changes to the streams of a cluster (or to the one named): configuration changes
    /// as they are recorded, from the console or from outside it, and, with
    /// `includeState`, the live state of each stream when the subscription starts and
    /// whenever it changes (`STATE`), polled every `stateInterval`.
    async fn stream_changed(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        name: Option<String>,
        #[graphql(default)] include_state: bool,
        #[graphql(default_with = "Duration(2_000_000_000)")] state_interval: Duration,
    ) -> Result<impl Stream<Item = Result<StreamChange>> + use<>> {
        let c = console(ctx).clone();
        ensure_cluster(ctx, &cluster_id, Role::Viewer)?;
        let cluster = cluster_id.to_string();
        let only = name.clone();
        let rx = c.stream_view.subscribe();
        let (cl, on) = (cluster.clone(), only.clone());
        let config = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ch) => return Some((ch, rx)),
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                }
            }
        })
        .filter_map(move |ch| {
            let subject = ch.value.as_ref().or(ch.previous.as_ref()).map(|v| v.view.clone());
            let out = subject
                .filter(|v| v.cluster_id == cl && on.as_ref().is_none_or(|n| n == &v.name))
                .map(|v| {
                    let deleted = ch.op == ChangeOp::Delete;
                    StreamChange {
                        kind: if deleted {
                            ResourceChangeKind::Deleted
                        } else {
                            kind_of(&v.last_event)
                        },
                        cluster_id: ID(v.cluster_id.clone()),
                        name: v.name.clone(),
                        stream: ch.value.map(StreamObj),
                        state: None,
                    }
                });
            futures::future::ready(out)
        });
        let state = if include_state {
            let every = StdDuration::from_nanos(state_interval.0.max(250_000_000) as u64);
            let (c2, cl2, on2) = (c.clone(), cluster.clone(), only.clone());
            state_changes(every, move || {
                let (c, cl, on) = (c2.clone(), cl2.clone(), on2.clone());
                async move {
                    let live = c.live.streams(&cl).await.ok()?;
                    Some(
                        live.iter()
                            .filter(|(n, _)| {
                                on.as_ref().is_none_or(|o| o == *n) && !crate::watch::is_internal_stream(n)
                            })
                            .map(|(n, i)| (n.clone(), StreamState::from(i)))
                            .collect(),
                    )
                }
            })
            .flat_map(move |changed| {
                let cl = cluster.clone();
                futures::stream::iter(changed.into_iter().map(move |(name, state)| StreamChange {
                    kind: ResourceChangeKind::State,
                    cluster_id: ID(cl.clone()),
                    name,
                    stream: None,
                    state: Some(state),
                }))
            })
            .boxed()
        } else {
            futures::stream::empty().boxed()
        };
        Ok(still_visible(
            ctx,
            &cluster_id,
            futures::stream::select(config.boxed(), state),
        )?)
    }

    /// Changes to the consumers of a stream (or to the one named), as for `streamChanged`.
    async fn consumer_changed(
        &self,
        ctx: &Context<'_>,
        cluster_id: ID,
        stream: String,
        name: Option<String>,
        #[graphql(default)] include_state: bool,
        #[graphql(default_with = "Duration(2_000_000_000)")] state_interval: Duration,
    ) -> Result<impl Stream<Item = Result<ConsumerChange>> + use<>> {
        let c = console(ctx).clone();
        ensure_cluster(ctx, &cluster_id, Role::Viewer)?;
        let cluster = cluster_id.to_string();
        let rx = c.consumer_view.subscribe();
        let (cl, st, on) = (cluster.clone(), stream.clone(), name.clone());
        let config = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ch) => return Some((ch, rx)),
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                }
            }
        })
        .filter_map(move |ch| {
            let subject = ch.value.as_ref().or(ch.previous.as_ref()).map(|v| v.view.clone());
            let out = subject
                .filter(|v| v.cluster_id == cl && v.stream == st && on.as_ref().is_none_or(|n| n == &v.name))
                .map(|v| {
                    let deleted = ch.op == ChangeOp::Delete;
                    ConsumerChange {
                        kind: if deleted {
                            ResourceChangeKind::Deleted
                        } else {
                            kind_of(&v.provenance.last_change)
                        },
                        cluster_id: ID(v.cluster_id.clone()),
                        stream: v.stream.clone(),
                        name: v.name.clone(),
                        consumer: ch.value.map(ConsumerObj),
                        state: None,
                    }
                });
            futures::future::ready(out)
        });
        let state = if include_state {
            let every = StdDuration::from_nanos(state_interval.0.max(250_000_000) as u64);
            let (c2, cl2, st2, on2) = (c.clone(), cluster.clone(), stream.clone(), name.clone());
            state_changes(every, move || {
                let (c, cl, st, on) = (c2.clone(), cl2.clone(), st2.clone(), on2.clone());
                async move {
                    let live = c.live.consumers(&cl, &st).await.ok()?;
                    Some(
                        live.iter()
                            .filter(|(n, i)| on.as_ref().is_none_or(|o| o == *n) && i.config.durable_name.is_some())
                            .map(|(n, i)| (n.clone(), ConsumerState::from(i)))
                            .collect(),
                    )
                }
            })
            .flat_map(move |changed| {
                let (cl, st) = (cluster.clone(), stream.clone());
                futures::stream::iter(changed.into_iter().map(move |(name, state)| ConsumerChange {
                    kind: ResourceChangeKind::State,
                    cluster_id: ID(cl.clone()),
                    stream: st.clone(),
                    name,
                    consumer: None,
                    state: Some(state),
                }))
            })
            .boxed()
        } else {
            futures::stream::empty().boxed()
        };
        Ok(still_visible(
            ctx,
            &cluster_id,
            futures::stream::select(config.boxed(), state),
        )?)
    }
}

/// A cluster-scoped subscription: items only while the caller may still see the cluster,
/// and the end when their credential does.
fn still_visible<T: Send + 'static, S: Stream<Item = T> + Send + 'static>(
    ctx: &Context<'_>,
    cluster_id: &str,
    stream: S,
) -> ApiResult<impl Stream<Item = Result<T>> + use<T, S>> {
    let (vc, vp, cluster) = (console(ctx).clone(), principal(ctx)?.clone(), cluster_id.to_string());
    let visible = stream.filter(move |_| futures::future::ready(vc.cluster_role(&vp, &cluster).is_some()));
    guarded(ctx, visible)
}
