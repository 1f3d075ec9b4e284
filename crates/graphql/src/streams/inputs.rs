//! The inputs of stream and consumer mutations, and how each lands on a configuration.

use async_graphql::InputObject;
use chrono::{DateTime, Utc};
use jsc_app::Error as ApiError;
use jsc_domain::consumer::ConsumerConfig;
use jsc_domain::stream::{Placement, Republish, StreamConfig, StreamSource, SubjectTransform};

use super::{AckPolicy, Compression, DeliverPolicy, DiscardPolicy, ReplayPolicy, RetentionPolicy, StorageType};
use crate::scalars::Duration;

/// One entry of a stream's or consumer's metadata: free-form key-value pairs JetStream
/// stores with the configuration (nats-server 2.10+).
#[derive(InputObject, Clone)]
pub struct MetadataEntryInput {
    /// The key; keys starting with `_nats.` belong to the server.
    key: String,
    /// The value.
    value: String,
}

/// Another stream this stream copies messages from, as its mirror or one of its sources.
#[derive(InputObject, Clone)]
pub struct StreamSourceInput {
    /// The name of the stream to copy from.
    name: String,
    /// Start copying at this stream sequence of the source; left out, from its first message.
    opt_start_seq: Option<u64>,
    /// Start copying at the first message stored at or after this time.
    opt_start_time: Option<DateTime<Utc>>,
    /// Copy only messages on this subject (wildcards allowed); left out, every message.
    filter_subject: Option<String>,
}

impl From<StreamSourceInput> for StreamSource {
    fn from(s: StreamSourceInput) -> Self {
        Self {
            name: s.name,
            opt_start_seq: s.opt_start_seq,
            opt_start_time: s.opt_start_time.map(|t| t.to_rfc3339()),
            filter_subject: s.filter_subject,
            extra: Default::default(),
        }
    }
}

/// Rewrites the subject of each message the stream receives before storing it
/// (nats-server 2.10+).
#[derive(InputObject, Clone)]
pub struct SubjectTransformInput {
    /// The subjects to rewrite (wildcards allowed).
    src: String,
    /// The subject to store them under; may reuse `src`'s wildcards as `{{wildcard(1)}}`.
    dest: String,
}

/// Which servers of a JetStream cluster or super-cluster hold the stream's replicas.
#[derive(InputObject, Clone)]
pub struct PlacementInput {
    /// The name of the NATS cluster to place the stream in; left out, JetStream chooses.
    cluster: Option<String>,
    /// Place replicas only on servers that have all of these server tags. Defaults to none.
    #[graphql(default)]
    tags: Vec<String>,
}

/// Republishes each message the stream stores to another subject over core NATS, for
/// lightweight listeners that do not need a consumer.
#[derive(InputObject, Clone)]
pub struct RepublishInput {
    /// The stored subjects to republish (wildcards allowed), within the stream's subjects.
    src: String,
    /// The subject to republish to; may reuse `src`'s wildcards as `{{wildcard(1)}}`.
    dest: String,
    /// Republish only the headers (with the payload's size in `Nats-Msg-Size`), not the
    /// payload. Defaults to false.
    #[graphql(default)]
    headers_only: bool,
}

/// A stream's configuration. On create, fields left out take JetStream's defaults; on
/// update, fields left out keep their current value.
#[derive(InputObject, Default)]
pub struct StreamConfigInput {
    /// The stream's name: at most 255 characters, without white space, `.`, `*`, `>`, `/` or
    /// `\`. Required on create; must match on update (a stream cannot be renamed).
    pub(crate) name: Option<String>,
    /// A free-form description; an empty string removes it.
    description: Option<String>,
    /// Subjects the stream stores (wildcards allowed, none overlapping); none on a mirror.
    /// Left out on create of a stream without mirror or sources, JetStream uses its name.
    subjects: Option<Vec<String>>,
    /// How long messages are kept; defaults to `LIMITS`. Cannot be changed to or from
    /// `WORK_QUEUE` on an existing stream.
    retention: Option<RetentionPolicy>,
    /// File or memory; defaults to `FILE`. Cannot be changed on an existing stream.
    storage: Option<StorageType>,
    /// How many servers keep a copy of the stream, 1 to 5 (more than 1 needs a JetStream
    /// cluster). Defaults to 1.
    replicas: Option<i64>,
    /// Most consumers the stream may have. -1 is unlimited, as for every `max*` limit, and
    /// is the default.
    max_consumers: Option<i64>,
    /// Most messages the stream keeps; past it, `discard` applies. Defaults to -1
    /// (unlimited).
    max_msgs: Option<i64>,
    /// Most bytes of messages the stream keeps; past it, `discard` applies. Defaults to -1
    /// (unlimited).
    max_bytes: Option<i64>,
    /// How long a message is kept before JetStream removes it. `0s` is unlimited and the
    /// default.
    max_age: Option<Duration>,
    /// Most messages kept per subject; past it, the subject's oldest message goes (or, with
    /// `discardNewPerSubject`, the new one is refused). Defaults to -1 (unlimited).
    max_msgs_per_subject: Option<i64>,
    /// Largest message the stream accepts, in bytes. Defaults to -1 (up to the server's
    /// `max_payload`).
    max_msg_size: Option<i64>,
    /// What happens when a new message would exceed a limit; defaults to `OLD`.
    discard: Option<DiscardPolicy>,
    /// With `discard: NEW` and `maxMsgsPerSubject`, refuses a new message on a subject that
    /// already holds the most messages allowed, even when the stream has room (both are
    /// required). Defaults to false.
    discard_new_per_subject: Option<bool>,
    /// How long JetStream remembers each `Nats-Msg-Id` header to drop duplicate publishes.
    /// `0s` (the default) takes the server's 2 minutes.
    duplicate_window: Option<Duration>,
    /// How file storage is compressed; defaults to `NONE`.
    compression: Option<Compression>,
    /// Lets every replica (and mirror) answer direct get requests for a message, which is
    /// faster than going through the leader but may read slightly stale data. Defaults to
    /// false.
    allow_direct: Option<bool>,
    /// Allows the `Nats-Rollup` header, with which one message replaces every earlier one on
    /// its subject (`sub`) or in the whole stream (`all`). Defaults to false.
    allow_rollup: Option<bool>,
    /// Refuses deleting single messages through the API. Defaults to false.
    deny_delete: Option<bool>,
    /// Refuses purging the stream through the API (including `purgeStream`). Defaults to
    /// false.
    deny_purge: Option<bool>,
    /// Makes the stream a read-only copy of another stream; a mirror has no subjects and no
    /// sources, and this cannot be changed on an existing stream.
    mirror: Option<StreamSourceInput>,
    /// Other streams whose messages are copied into this one; not on a mirror. Given on
    /// update, the list replaces the current one.
    sources: Option<Vec<StreamSourceInput>>,
    /// Rewrites the subject of each incoming message before it is stored.
    subject_transform: Option<SubjectTransformInput>,
    /// Which servers hold the stream's replicas; left out on create, JetStream chooses.
    placement: Option<PlacementInput>,
    /// Republishes each stored message to another subject.
    republish: Option<RepublishInput>,
    /// Free-form key-value pairs; given on update, they replace the current ones.
    metadata: Option<Vec<MetadataEntryInput>>,
    /// Allow a per-message TTL in the `Nats-TTL` header (nats-server 2.11+). Defaults to
    /// false; once enabled it cannot be disabled.
    allow_msg_ttl: Option<bool>,
    /// When `maxAge` removes the last message of a subject, JetStream leaves a delete marker
    /// on that subject and keeps it this long (nats-server 2.11+). `0s` (the default) leaves
    /// no markers.
    subject_delete_marker_ttl: Option<Duration>,
}

impl StreamConfigInput {
    pub(crate) fn apply_to(self, c: &mut StreamConfig) -> Result<(), ApiError> {
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
            c.metadata = metadata(v)?;
        }
        Ok(())
    }
}

/// Metadata entries as a map: a key given twice is refused rather than the last one kept.
fn metadata(entries: Vec<MetadataEntryInput>) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    let mut map = std::collections::BTreeMap::new();
    for e in entries {
        if map.contains_key(&e.key) {
            return Err(ApiError::validation(format!(
                "config.metadata: the key '{}' is given twice; give each key once",
                e.key
            )));
        }
        map.insert(e.key, e.value);
    }
    Ok(map)
}

/// Refuses an update that gives no field to change: `identity` is the field that names
/// the object (it changes nothing), `examples` some fields to suggest.
pub(crate) fn require_change<T: async_graphql::InputType>(
    config: &T,
    identity: &str,
    examples: &str,
) -> Result<(), ApiError> {
    let given = match config.to_value() {
        async_graphql::Value::Object(fields) => fields
            .iter()
            .any(|(k, v)| k.as_str() != identity && *v != async_graphql::Value::Null),
        _ => true,
    };
    if given {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "config: nothing to change; give at least one field to change, such as {examples}"
        )))
    }
}

/// A consumer's configuration. On create, fields left out take JetStream's defaults; on
/// update, fields left out keep their current value.
#[derive(InputObject, Default)]
pub struct ConsumerConfigInput {
    /// The consumer's durable name: at most 255 characters, without white space, `.`, `*`,
    /// `>`, `/` or `\`. Required on create; must match on update (a consumer cannot be
    /// renamed).
    pub(crate) durable_name: Option<String>,
    /// A free-form description; an empty string removes it.
    description: Option<String>,
    /// Where delivery starts; defaults to `ALL`. Cannot be changed on an existing consumer.
    deliver_policy: Option<DeliverPolicy>,
    /// The stream sequence to start at; required with, and only allowed with,
    /// `BY_START_SEQUENCE`.
    opt_start_seq: Option<u64>,
    /// The time to start at; required with, and only allowed with, `BY_START_TIME`.
    opt_start_time: Option<DateTime<Utc>>,
    /// How messages are acknowledged; defaults to `EXPLICIT`. Cannot be changed on an
    /// existing consumer.
    ack_policy: Option<AckPolicy>,
    /// How long the server waits for an acknowledgement before it redelivers a message.
    /// `0s` (the default) takes the server's 30 seconds.
    ack_wait: Option<Duration>,
    /// Most times a message is delivered, redeliveries included; then it is given up.
    /// -1 is unlimited and the default.
    max_deliver: Option<i64>,
    /// One delay per redelivery, used instead of `ackWait` (the last one repeats);
    /// `maxDeliver`, when set, must be greater than the number of delays.
    backoff: Option<Vec<Duration>>,
    /// Deliver only messages on this subject (wildcards allowed); give this or
    /// `filterSubjects`, not both. An empty string removes the filter.
    filter_subject: Option<String>,
    /// Deliver only messages on these subjects (wildcards allowed, none overlapping;
    /// nats-server 2.10+). Left out on create, every message is delivered.
    filter_subjects: Option<Vec<String>>,
    /// How fast stored messages are replayed; defaults to `INSTANT`. Cannot be changed on an
    /// existing consumer.
    replay_policy: Option<ReplayPolicy>,
    /// Most delivery rate in bits per second (push consumers only); 0 removes the limit.
    /// Left out on create, unlimited.
    rate_limit_bps: Option<u64>,
    /// The share of acknowledgements the server samples to publish latency advisories, as
    /// a percentage such as `100%` or `10`; an empty string turns sampling off (the default).
    sample_frequency: Option<String>,
    /// Most pull requests waiting at once (pull consumers only). `0` (the default) takes the
    /// server's 512.
    max_waiting: Option<i64>,
    /// Most messages delivered but not yet acknowledged; when reached, delivery pauses until
    /// acknowledgements come in. `0` (the default) takes the server's 1000; -1 is unlimited.
    max_ack_pending: Option<i64>,
    /// Deliver only the headers of each message (with its size in `Nats-Msg-Size`), not the
    /// payload. Defaults to false.
    headers_only: Option<bool>,
    /// How long the consumer may go without activity before the server deletes it. `0s`
    /// (the default) keeps a durable consumer until it is deleted.
    inactive_threshold: Option<Duration>,
    /// How many servers keep the consumer's state; `0` (the default) takes the stream's
    /// number of replicas.
    replicas: Option<i64>,
    /// Keep the consumer's state in memory even on a file stream: faster, but lost when the
    /// server restarts. Defaults to false.
    mem_storage: Option<bool>,
    /// Free-form key-value pairs; given on update, they replace the current ones.
    metadata: Option<Vec<MetadataEntryInput>>,
    /// Makes a push consumer: the server sends messages to this subject. Left out, a pull
    /// consumer; a consumer cannot switch between push and pull.
    deliver_subject: Option<String>,
    /// The queue group that shares a push consumer's messages (push consumers only).
    deliver_group: Option<String>,
    /// The server asks a push consumer's client to confirm it keeps up and slows delivery
    /// until it does; needs `idleHeartbeat` (push consumers only). Defaults to false.
    flow_control: Option<bool>,
    /// When nothing has been delivered for this long, the server sends a heartbeat, so the
    /// client can tell a quiet consumer from a lost one (push consumers only). `0s` (the
    /// default) sends none.
    idle_heartbeat: Option<Duration>,
}

impl ConsumerConfigInput {
    pub(crate) fn apply_to(self, c: &mut ConsumerConfig) -> Result<(), ApiError> {
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
            c.metadata = metadata(v)?;
        }
        if let Some(v) = self.deliver_subject {
            if v.is_empty() {
                return Err(ApiError::validation(
                    "config.deliverSubject: must not be empty; leave it out for a pull consumer (or to keep the current one)",
                ));
            }
            c.deliver_subject = Some(v);
        }
        if let Some(v) = self.deliver_group {
            if v.is_empty() {
                return Err(ApiError::validation(
                    "config.deliverGroup: must not be empty; leave it out for no queue group (or to keep the current one)",
                ));
            }
            c.deliver_group = Some(v);
        }
        if let Some(v) = self.flow_control {
            c.flow_control = v;
        }
        if let Some(v) = self.idle_heartbeat {
            c.idle_heartbeat = v.0;
        }
        Ok(())
    }
}

/// A NATS header of a message to publish.
#[derive(InputObject)]
pub struct HeaderInput {
    /// The header's name: printable ASCII without spaces or `:`, such as `Nats-Msg-Id`.
    pub(crate) name: String,
    /// The header's value, on one line.
    pub(crate) value: String,
}

/// What a list of streams is ordered by.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Default)]
#[graphql(remote = "jsc_app::StreamOrder")]
pub enum StreamOrderField {
    /// The name (the default).
    #[default]
    Name,
    /// Messages stored.
    Messages,
    /// Bytes stored.
    Bytes,
    /// Bytes stored, percent of the stream's `maxBytes` (streams without it come last).
    StoragePercent,
    /// The largest lag (pending messages) of the stream's consumers.
    ConsumerLag,
    /// Messages stored per second.
    MessageRate,
    /// How many consumers the stream has.
    Consumers,
}

/// Which way a list runs.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum OrderDirection {
    /// Smallest first (A to Z for names).
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// The order of a list of streams. By messages, bytes, storage or consumers, the order is
/// the live state (as `state` shows it, `sampledAt` old); by rate or lag, the metrics
/// collector's last sample of the cluster (every 10 s by default; `UNAVAILABLE` before the
/// first). Streams without a value come last, ties by name.
#[derive(InputObject, Clone, Copy, Default)]
pub struct StreamOrderBy {
    /// What to order by.
    #[graphql(default)]
    pub field: StreamOrderField,
    /// Which way.
    #[graphql(default)]
    pub direction: OrderDirection,
}

/// A list request for a cluster's streams from the arguments every stream list takes.
pub fn stream_filter(
    name_contains: Option<String>,
    subject: Option<String>,
    tag: Option<String>,
    order_by: Option<StreamOrderBy>,
) -> jsc_app::StreamFilter {
    let order_by = order_by.unwrap_or_default();
    jsc_app::StreamFilter {
        name_contains,
        subject,
        tag,
        order: order_by.field.into(),
        descending: order_by.direction == OrderDirection::Desc,
    }
}
