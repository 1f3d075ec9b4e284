//! The inputs of stream and consumer mutations, and how each lands on a configuration.

use std::collections::BTreeMap;

use async_graphql::InputObject;
use chrono::{DateTime, Utc};
use jsc_domain::consumer::ConsumerConfig;
use jsc_domain::stream::{Placement, Republish, StreamConfig, StreamSource, SubjectTransform};

use super::{AckPolicy, Compression, DeliverPolicy, DiscardPolicy, ReplayPolicy, RetentionPolicy, StorageType};
use crate::scalars::Duration;

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
    pub(crate) name: Option<String>,
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
    pub(crate) fn apply_to(self, c: &mut StreamConfig) {
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
            c.retention = v.into();
        }
        if let Some(v) = self.storage {
            c.storage = v.into();
        }
        if let Some(v) = self.discard {
            c.discard = v.into();
        }
        if let Some(v) = self.compression {
            c.compression = Some(v.into());
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
    pub(crate) durable_name: Option<String>,
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
    pub(crate) fn apply_to(self, c: &mut ConsumerConfig) {
        if let Some(v) = self.description {
            c.description = Some(v).filter(|d| !d.is_empty());
        }
        if let Some(v) = self.deliver_policy {
            c.deliver_policy = v.into();
        }
        if self.opt_start_seq.is_some() {
            c.opt_start_seq = self.opt_start_seq;
        }
        if let Some(t) = self.opt_start_time {
            c.opt_start_time = Some(t.to_rfc3339());
        }
        if let Some(v) = self.ack_policy {
            c.ack_policy = v.into();
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
            c.replay_policy = v.into();
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
    pub(crate) name: String,
    pub(crate) value: String,
}
