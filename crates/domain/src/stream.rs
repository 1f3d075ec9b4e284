//! The stream aggregate: a JetStream stream on a managed cluster, and every change made to
//! it, by the console or observed as made outside it.
//!
//! Aggregate id: `<cluster id>/<stream name>`. The configuration recorded is the one the
//! server returned (defaults filled in), so comparing it with what a server reports later
//! tells exactly whether something changed outside the console.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::names::{check_name, check_subject, is_false, subjects_overlap};
pub use crate::policy::{Compression, Discard, Retention, Storage};
use crate::{DomainError, ErrorKind};

fn neg1() -> i64 {
    -1
}
fn one() -> i64 {
    1
}

/// A stream source or mirror.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StreamSource {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_start_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_subject: Option<String>,
    #[serde(flatten)]
    pub extra: crate::extra::Extra,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SubjectTransform {
    pub src: String,
    pub dest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Republish {
    pub src: String,
    pub dest: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub headers_only: bool,
}

/// A stream's configuration, with the JetStream API's field names (so the same value is
/// sent to and read from servers). Fields this version does not model are kept in
/// `extra` and sent back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default = "neg1")]
    pub max_consumers: i64,
    #[serde(default = "neg1")]
    pub max_msgs: i64,
    #[serde(default = "neg1")]
    pub max_bytes: i64,
    /// Nanoseconds; 0 = unlimited.
    #[serde(default)]
    pub max_age: i64,
    #[serde(default = "neg1")]
    pub max_msgs_per_subject: i64,
    #[serde(default = "neg1")]
    pub max_msg_size: i64,
    #[serde(default)]
    pub discard: Discard,
    #[serde(default, skip_serializing_if = "is_false")]
    pub discard_new_per_subject: bool,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default = "one")]
    pub num_replicas: i64,
    /// Nanoseconds.
    #[serde(default)]
    pub duplicate_window: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<StreamSource>,
    #[serde(default)]
    pub sealed: bool,
    #[serde(default)]
    pub deny_delete: bool,
    #[serde(default)]
    pub deny_purge: bool,
    #[serde(default)]
    pub allow_rollup_hdrs: bool,
    #[serde(default)]
    pub allow_direct: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub republish: Option<Republish>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_transform: Option<SubjectTransform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Per-message TTL (`Nats-TTL` header), server 2.11+.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_msg_ttl: bool,
    /// Nanoseconds; delete markers kept this long (server 2.11+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_delete_marker_ttl: Option<i64>,
    #[serde(flatten)]
    pub extra: crate::extra::Extra,
}

impl StreamConfig {
    pub fn named(name: impl Into<String>) -> Self {
        serde_json::from_value(serde_json::json!({"name": name.into()})).expect("defaults deserialize")
    }

    /// Drops what the server adds on its own (`_nats.*` metadata), so configurations from
    /// different sources compare equal when a person would call them equal.
    pub fn normalized(mut self) -> Self {
        self.metadata.retain(|k, _| !k.starts_with("_nats."));
        self
    }

    /// Checks everything that can be checked without a server.
    pub fn validate(&self) -> Result<(), StreamError> {
        check_name("stream", &self.name).map_err(|m| invalid("name", m))?;
        for s in &self.subjects {
            check_subject(s).map_err(|m| invalid("subjects", m))?;
        }
        for (i, a) in self.subjects.iter().enumerate() {
            for b in &self.subjects[i + 1..] {
                if subjects_overlap(a, b) {
                    return Err(invalid(
                        "subjects",
                        format!("'{a}' and '{b}' overlap; keep only the wider one"),
                    ));
                }
            }
        }
        if self.mirror.is_some() && !self.subjects.is_empty() {
            return Err(invalid(
                "subjects",
                "a mirror takes its messages from the mirrored stream and cannot have subjects",
            ));
        }
        if self.mirror.is_some() && !self.sources.is_empty() {
            return Err(invalid(
                "sources",
                "a stream is either a mirror or has sources, not both",
            ));
        }
        for (field, v) in [
            ("maxConsumers", self.max_consumers),
            ("maxMsgs", self.max_msgs),
            ("maxBytes", self.max_bytes),
            ("maxMsgsPerSubject", self.max_msgs_per_subject),
            ("maxMsgSize", self.max_msg_size),
        ] {
            if v < -1 {
                return Err(invalid(field, "must be -1 (unlimited) or more"));
            }
        }
        for (field, v) in [
            ("maxAge", self.max_age),
            ("duplicateWindow", self.duplicate_window),
            ("subjectDeleteMarkerTtl", self.subject_delete_marker_ttl.unwrap_or(0)),
        ] {
            if v < 0 {
                return Err(invalid(field, "must not be negative (0s is unlimited or off)"));
            }
        }
        if !(1..=5).contains(&self.num_replicas) {
            return Err(invalid("replicas", "must be between 1 and 5"));
        }
        if self.discard_new_per_subject && (self.discard != Discard::New || self.max_msgs_per_subject <= 0) {
            return Err(invalid(
                "discardNewPerSubject",
                "needs discard 'new' and a max messages per subject limit",
            ));
        }
        if let Some(t) = &self.subject_transform {
            check_subject(&t.src).map_err(|m| invalid("subjectTransform.src", m))?;
        }
        for src in self.mirror.iter().chain(&self.sources) {
            check_name("stream", &src.name).map_err(|m| invalid("sources", m))?;
        }
        crate::names::check_metadata(&self.metadata).map_err(|m| invalid("metadata", m))?;
        for tag in self.placement.iter().flat_map(|p| &p.tags) {
            crate::names::check_text("the placement tag", tag).map_err(|m| invalid("placement.tags", m))?;
        }
        Ok(())
    }

    /// What an update may not change on a live stream, checked before the server is asked.
    pub fn check_update_from(&self, current: &StreamConfig) -> Result<(), StreamError> {
        let fixed = |field: &'static str, what: &str| {
            Err(invalid(
                field,
                format!("{what} cannot be changed on an existing stream; create a new stream and move the data"),
            ))
        };
        if self.name != current.name {
            return fixed("name", "the name");
        }
        // JetStream would store a stream without subjects on its own name: a different
        // stream from the one asked for.
        if self.subjects.is_empty() && !current.subjects.is_empty() && self.mirror.is_none() && self.sources.is_empty()
        {
            return Err(invalid(
                "subjects",
                "must not be empty: leave subjects out to keep them, or list the subjects the stream should store",
            ));
        }
        if self.storage != current.storage {
            return fixed("storage", "the storage type");
        }
        if self.retention != current.retention
            && (self.retention == Retention::WorkQueue || current.retention == Retention::WorkQueue)
        {
            return fixed("retention", "retention to or from workqueue");
        }
        if self.mirror != current.mirror {
            return fixed("mirror", "the mirror configuration");
        }
        if current.sealed && !self.sealed {
            return Err(invalid("sealed", "a sealed stream cannot be unsealed"));
        }
        if current.allow_msg_ttl && !self.allow_msg_ttl {
            return Err(invalid(
                "allowMsgTtl",
                "per-message TTL cannot be disabled once enabled",
            ));
        }
        Ok(())
    }
}

/// Who made a change: the console itself, or someone outside it whom the console observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeOrigin {
    Console,
    External {
        /// How it was noticed: `advisory` (JetStream API audit) or `reconcile`.
        observed_via: String,
        /// The NATS client that made the change, when the server said (name, user, host).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
}

impl ChangeOrigin {
    pub fn is_external(&self) -> bool {
        matches!(self, Self::External { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PurgeRequest {
    /// Only messages on this subject (filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Keep this many newest messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<u64>,
    /// Purge up to (not including) this sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedMessage {
    pub subject: String,
    pub sequence: u64,
    pub duplicate: bool,
    pub size: u64,
    pub header_names: Vec<String>,
    /// SHA-256 of the payload, hex: proves what was sent without storing it.
    pub payload_sha256: String,
}

/// Where a republish sends messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepublishTarget {
    /// The cluster to publish on (the source's own, or another).
    pub cluster_id: String,
    /// The subject to publish to; `None`: each message's own subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The stream that must store them (`Nats-Expected-Stream`); `None`: whichever stream
    /// captures the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
}

impl RepublishTarget {
    /// The subject a message first published on `subject` goes to.
    pub fn subject_for(&self, subject: &str) -> String {
        self.subject.clone().unwrap_or_else(|| subject.to_string())
    }
}

/// Which messages a republish reads, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepublishSelection {
    /// The first and last sequence read.
    pub from_sequence: u64,
    pub to_sequence: u64,
    /// Only subjects matching this filter.
    pub subject: String,
    /// The search's other predicates, as the caller gave them (for the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicates: Option<String>,
    /// Exactly these sequences (a selection, say of dead letters), when given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequences: Vec<u64>,
    /// Why: `republish`, or `redrive` of a consumer's dead letters.
    pub purpose: String,
}

/// Most sequences one republish may name.
pub const MAX_REPUBLISH_SEQUENCES: usize = 10_000;
/// Most messages per second a republish may send.
pub const MAX_REPUBLISH_RATE: u32 = 100_000;

/// How a republish ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RepublishOutcome {
    /// Messages read from the source.
    pub scanned: u64,
    /// Messages the target stored.
    pub published: u64,
    /// Messages the target had already stored (the same message id): a retry that doubled
    /// nothing.
    pub duplicates: u64,
    /// The last source sequence sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sequence: Option<u64>,
    /// `end`, `max_scanned`, `max_results`, `time_budget`, `cancelled` or `failed`.
    pub stop: String,
    /// What went wrong, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamCommand {
    Create {
        cluster_id: String,
        config: StreamConfig,
    },
    Update {
        config: StreamConfig,
    },
    Delete {
        confirm_name: String,
    },
    Purge {
        request: PurgeRequest,
    },
    Seal,
    Publish {
        subject: String,
        headers: Vec<(String, String)>,
        payload: Vec<u8>,
    },
    /// Removes one message from the stream; `erase` overwrites its bytes too.
    DeleteMessage {
        sequence: u64,
        erase: bool,
    },
    /// Records the start of a republish of this stream's messages (the messages follow; see
    /// `FinishRepublish`).
    StartRepublish {
        job: String,
        selection: RepublishSelection,
        target: RepublishTarget,
        rate_per_second: u32,
    },
    /// Records how a republish ended (even if the stream has gone since it began).
    FinishRepublish {
        job: String,
        outcome: RepublishOutcome,
    },
    /// Records that the caller reads the stream's messages without masking (`read`: which
    /// read, such as `messages`; `subject`: its filter).
    RecordUnmaskedRead {
        read: String,
        subject: String,
    },
    /// Reads the stream from its server and records what differs from what the console
    /// knows (created, changed or gone): a change made outside the console. The read
    /// happens inside the command, so it cannot interleave with the console's own changes.
    Observe {
        cluster_id: String,
        name: String,
        origin: ChangeOrigin,
        /// What is known of the stream besides its server (see [`Seen`]).
        seen: Seen<StreamConfig>,
    },
}

/// What an observation of a stream or consumer knows before it is handled, besides what
/// its server says.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Seen<C> {
    /// Nothing: the server is read.
    #[default]
    Nothing,
    /// The configuration the change's own answer showed (an API advisory's response to a
    /// create or an update). Recorded as it is when the console knows no configuration for
    /// the resource (a creation: the console has not touched it, so nothing of its own can
    /// be newer), without asking the server; otherwise the server is read, so that an
    /// answer older than the console's own change is never recorded over it.
    Answer(Box<C>),
    /// A consumer whose stream was found gone just before, inside the stream's own command:
    /// gone with it, without a read of each. (A stream's observation reads its server.)
    GoneWithStream,
}

// Events are short-lived values on their way to and from JSON; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StreamEvent {
    Created {
        cluster_id: String,
        config: StreamConfig,
        origin: ChangeOrigin,
    },
    Updated {
        cluster_id: String,
        before: StreamConfig,
        after: StreamConfig,
        origin: ChangeOrigin,
    },
    Deleted {
        cluster_id: String,
        name: String,
        last_config: StreamConfig,
        origin: ChangeOrigin,
    },
    Purged {
        cluster_id: String,
        name: String,
        request: PurgeRequest,
        purged: u64,
    },
    Sealed {
        cluster_id: String,
        name: String,
        before: StreamConfig,
        after: StreamConfig,
    },
    MessagePublished {
        cluster_id: String,
        stream: String,
        message: PublishedMessage,
    },
    /// One message was removed (and its bytes overwritten, if `erased`).
    MessageDeleted {
        cluster_id: String,
        stream: String,
        sequence: u64,
        erased: bool,
    },
    /// A republish of the stream's messages began.
    RepublishStarted {
        cluster_id: String,
        stream: String,
        job: String,
        selection: RepublishSelection,
        target: RepublishTarget,
        rate_per_second: u32,
    },
    /// A republish ended: how many messages went where, and why it stopped.
    RepublishFinished {
        cluster_id: String,
        stream: String,
        job: String,
        outcome: RepublishOutcome,
    },
    /// Someone read the stream's messages without masking.
    MessagesReadUnmasked {
        cluster_id: String,
        stream: String,
        read: String,
        subject: String,
    },
}

impl DomainEvent for StreamEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "StreamCreated",
            Self::Updated { .. } => "StreamUpdated",
            Self::Deleted { .. } => "StreamDeleted",
            Self::Purged { .. } => "StreamPurged",
            Self::Sealed { .. } => "StreamSealed",
            Self::MessagePublished { .. } => "MessagePublished",
            Self::MessagesReadUnmasked { .. } => "MessagesReadUnmasked",
            Self::MessageDeleted { .. } => "MessageDeleted",
            Self::RepublishStarted { .. } => "RepublishStarted",
            Self::RepublishFinished { .. } => "RepublishFinished",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// The `error` of a JetStream API answer, as the server sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct ApiError {
    #[serde(default)]
    pub err_code: u64,
    #[serde(default)]
    pub description: String,
}

/// How a managed cluster answered (or failed to answer) an admin request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Unavailable(String),
    /// The server refused the request; `description` is the server's own words.
    #[error("the server refused: {description} (error {code})")]
    Rejected { code: u64, description: String },
    #[error("{0}")]
    NotFound(String),
    /// The server refused because the resource already exists.
    #[error("{0}")]
    Conflict(String),
    /// The server is too old for the feature.
    #[error("{0}")]
    Unsupported(String),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StreamError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("stream '{0}' not found on this cluster")]
    NotFound(String),
    #[error("stream '{0}' already exists on this cluster; update it instead")]
    AlreadyExists(String),
    #[error(transparent)]
    Service(ServiceError),
}

impl DomainError for StreamError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Validation,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::AlreadyExists(_) => ErrorKind::Conflict,
            Self::Service(s) => service_kind(s),
        }
    }
}

pub(crate) fn service_kind(s: &ServiceError) -> ErrorKind {
    match s {
        ServiceError::Unavailable(_) => ErrorKind::Unavailable,
        ServiceError::Rejected { .. } | ServiceError::Unsupported(_) => ErrorKind::Validation,
        ServiceError::NotFound(_) => ErrorKind::NotFound,
        ServiceError::Conflict(_) => ErrorKind::Conflict,
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> StreamError {
    StreamError::Invalid {
        field,
        message: message.into(),
    }
}

/// Admin calls on managed clusters that the stream aggregate needs.
#[async_trait]
pub trait StreamServices: Send + Sync {
    /// Creates the stream; returns the configuration the server stored.
    async fn create_stream(&self, cluster_id: &str, config: &StreamConfig) -> Result<StreamConfig, ServiceError>;
    async fn update_stream(&self, cluster_id: &str, config: &StreamConfig) -> Result<StreamConfig, ServiceError>;
    async fn delete_stream(&self, cluster_id: &str, name: &str) -> Result<(), ServiceError>;
    /// The stream's configuration as the server has it; `None` when it does not exist.
    async fn stream_config(&self, cluster_id: &str, name: &str) -> Result<Option<StreamConfig>, ServiceError>;
    /// Returns how many messages were purged.
    async fn purge_stream(&self, cluster_id: &str, name: &str, request: &PurgeRequest) -> Result<u64, ServiceError>;
    async fn publish(
        &self,
        cluster_id: &str,
        stream: &str,
        subject: &str,
        headers: &[(String, String)],
        payload: &[u8],
    ) -> Result<(u64, bool), ServiceError>;
    /// Removes message `sequence` (`erase`: overwriting it); `NotFound` when it is not there.
    async fn delete_message(
        &self,
        cluster_id: &str,
        stream: &str,
        sequence: u64,
        erase: bool,
    ) -> Result<(), ServiceError>;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Stream {
    pub cluster_id: String,
    pub name: String,
    pub config: Option<StreamConfig>,
}

impl Stream {
    fn live(&self) -> Result<&StreamConfig, StreamError> {
        self.config
            .as_ref()
            .ok_or_else(|| StreamError::NotFound(self.name.clone()))
    }
}

/// `<cluster id>/<stream name>`
pub fn stream_id(cluster_id: &str, name: &str) -> String {
    crate::ids::StreamRef::new(cluster_id, name).to_string()
}

impl Aggregate for Stream {
    const TYPE: &'static str = "stream";
    type Command = StreamCommand;
    type Event = StreamEvent;
    type Error = StreamError;
    type Services = Arc<dyn StreamServices>;

    async fn handle(
        &mut self,
        command: StreamCommand,
        svc: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), StreamError> {
        match command {
            StreamCommand::Create { cluster_id, config } => {
                config.validate()?;
                if self.config.is_some() {
                    return Err(StreamError::AlreadyExists(config.name));
                }
                let stored = svc
                    .create_stream(&cluster_id, &config)
                    .await
                    .map_err(StreamError::Service)?
                    .normalized();
                let origin = ChangeOrigin::Console;
                sink.write(
                    StreamEvent::Created {
                        cluster_id,
                        config: stored,
                        origin,
                    },
                    self,
                )
                .await;
            }
            StreamCommand::Update { config } => {
                let current = self.live()?.clone();
                config.validate()?;
                config.check_update_from(&current)?;
                let stored = svc
                    .update_stream(&self.cluster_id, &config)
                    .await
                    .map_err(StreamError::Service)?
                    .normalized();
                if stored != current {
                    let ev = StreamEvent::Updated {
                        cluster_id: self.cluster_id.clone(),
                        before: current,
                        after: stored,
                        origin: ChangeOrigin::Console,
                    };
                    sink.write(ev, self).await;
                }
            }
            StreamCommand::Delete { confirm_name } => {
                let current = self.live()?.clone();
                if confirm_name != self.name {
                    return Err(invalid(
                        "confirmName",
                        format!(
                            "type the stream's name ('{}') to confirm deleting it and all its messages",
                            self.name
                        ),
                    ));
                }
                svc.delete_stream(&self.cluster_id, &self.name)
                    .await
                    .map_err(StreamError::Service)?;
                let ev = StreamEvent::Deleted {
                    cluster_id: self.cluster_id.clone(),
                    name: self.name.clone(),
                    last_config: current,
                    origin: ChangeOrigin::Console,
                };
                sink.write(ev, self).await;
            }
            StreamCommand::Purge { request } => {
                let current = self.live()?;
                if current.deny_purge {
                    return Err(invalid("stream", "this stream denies purging (deny_purge)"));
                }
                if request.keep.is_some() && request.seq.is_some() {
                    return Err(invalid("purge", "give either keep or upToSequence, not both"));
                }
                if let Some(f) = &request.filter {
                    check_subject(f).map_err(|m| invalid("subject", m))?;
                }
                let purged = svc
                    .purge_stream(&self.cluster_id, &self.name, &request)
                    .await
                    .map_err(StreamError::Service)?;
                let ev = StreamEvent::Purged {
                    cluster_id: self.cluster_id.clone(),
                    name: self.name.clone(),
                    request,
                    purged,
                };
                sink.write(ev, self).await;
            }
            StreamCommand::Seal => {
                let current = self.live()?.clone();
                if current.sealed {
                    return Ok(());
                }
                let mut sealed = current.clone();
                sealed.sealed = true;
                let stored = svc
                    .update_stream(&self.cluster_id, &sealed)
                    .await
                    .map_err(StreamError::Service)?
                    .normalized();
                let ev = StreamEvent::Sealed {
                    cluster_id: self.cluster_id.clone(),
                    name: self.name.clone(),
                    before: current,
                    after: stored,
                };
                sink.write(ev, self).await;
            }
            StreamCommand::Publish {
                subject,
                headers,
                payload,
            } => {
                let current = self.live()?;
                check_subject(&subject).map_err(|m| invalid("subject", m))?;
                if subject.contains(['*', '>']) {
                    return Err(invalid("subject", "publish to a concrete subject, without wildcards"));
                }
                if current.sealed {
                    return Err(invalid("stream", "the stream is sealed and accepts no messages"));
                }
                for (name, value) in &headers {
                    check_header(name, value)?;
                }
                let (sequence, duplicate) = svc
                    .publish(&self.cluster_id, &self.name, &subject, &headers, &payload)
                    .await
                    .map_err(StreamError::Service)?;
                let message = PublishedMessage {
                    subject,
                    sequence,
                    duplicate,
                    size: payload.len() as u64,
                    header_names: headers.iter().map(|(k, _)| k.clone()).collect(),
                    payload_sha256: sha256_hex(&payload),
                };
                let ev = StreamEvent::MessagePublished {
                    cluster_id: self.cluster_id.clone(),
                    stream: self.name.clone(),
                    message,
                };
                sink.write(ev, self).await;
            }
            StreamCommand::DeleteMessage { sequence, erase } => {
                let current = self.live()?;
                if sequence == 0 {
                    return Err(invalid("sequence", "sequences start at 1"));
                }
                if current.deny_delete {
                    return Err(invalid("stream", "this stream denies deleting messages (deny_delete)"));
                }
                if current.sealed {
                    return Err(invalid(
                        "stream",
                        "the stream is sealed: its messages cannot be deleted",
                    ));
                }
                svc.delete_message(&self.cluster_id, &self.name, sequence, erase)
                    .await
                    .map_err(StreamError::Service)?;
                let ev = StreamEvent::MessageDeleted {
                    cluster_id: self.cluster_id.clone(),
                    stream: self.name.clone(),
                    sequence,
                    erased: erase,
                };
                sink.write(ev, self).await;
            }
            StreamCommand::StartRepublish {
                job,
                selection,
                target,
                rate_per_second,
            } => {
                self.live()?;
                if !(1..=MAX_REPUBLISH_RATE).contains(&rate_per_second) {
                    return Err(invalid(
                        "ratePerSecond",
                        format!("give 1 to {MAX_REPUBLISH_RATE} messages a second"),
                    ));
                }
                if let Some(subject) = &target.subject {
                    check_subject(subject).map_err(|m| invalid("target.subject", m))?;
                    if subject.contains(['*', '>']) {
                        return Err(invalid(
                            "target.subject",
                            "publish to a concrete subject, without wildcards",
                        ));
                    }
                }
                if let Some(stream) = &target.stream {
                    check_name("stream", stream).map_err(|m| invalid("target.stream", m))?;
                }
                if selection.sequences.len() > MAX_REPUBLISH_SEQUENCES {
                    return Err(invalid(
                        "sequences",
                        format!("name at most {MAX_REPUBLISH_SEQUENCES} sequences; use a range and filters for more"),
                    ));
                }
                if selection.from_sequence > selection.to_sequence {
                    return Err(invalid(
                        "fromSequence",
                        "the range runs backward; give fromSequence ≤ toSequence",
                    ));
                }
                let ev = StreamEvent::RepublishStarted {
                    cluster_id: self.cluster_id.clone(),
                    stream: self.name.clone(),
                    job,
                    selection,
                    target,
                    rate_per_second,
                };
                sink.write(ev, self).await;
            }
            StreamCommand::FinishRepublish { job, outcome } => {
                let ev = StreamEvent::RepublishFinished {
                    cluster_id: self.cluster_id.clone(),
                    stream: self.name.clone(),
                    job,
                    outcome,
                };
                sink.write(ev, self).await;
            }
            StreamCommand::RecordUnmaskedRead { read, subject } => {
                self.live()?;
                let ev = StreamEvent::MessagesReadUnmasked {
                    cluster_id: self.cluster_id.clone(),
                    stream: self.name.clone(),
                    read,
                    subject,
                };
                sink.write(ev, self).await;
            }
            StreamCommand::Observe {
                cluster_id,
                name,
                origin,
                seen,
            } => {
                let observed = match seen {
                    Seen::Answer(made) if self.config.is_none() => Some(*made),
                    _ => svc
                        .stream_config(&cluster_id, &name)
                        .await
                        .map_err(StreamError::Service)?,
                }
                .map(StreamConfig::normalized);
                match (self.config.clone(), observed) {
                    (None, Some(config)) => {
                        sink.write(
                            StreamEvent::Created {
                                cluster_id,
                                config,
                                origin,
                            },
                            self,
                        )
                        .await;
                    }
                    (Some(before), Some(after)) if before != after => {
                        sink.write(
                            StreamEvent::Updated {
                                cluster_id,
                                before,
                                after,
                                origin,
                            },
                            self,
                        )
                        .await;
                    }
                    (Some(last_config), None) => {
                        sink.write(
                            StreamEvent::Deleted {
                                cluster_id,
                                name,
                                last_config,
                                origin,
                            },
                            self,
                        )
                        .await;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Created { cluster_id, config, .. } => {
                self.cluster_id = cluster_id;
                self.name = config.name.clone();
                self.config = Some(config);
            }
            StreamEvent::Updated { after, .. } | StreamEvent::Sealed { after, .. } => self.config = Some(after),
            StreamEvent::Deleted { cluster_id, name, .. } => {
                self.cluster_id = cluster_id;
                self.name = name;
                self.config = None;
            }
            StreamEvent::Purged { .. }
            | StreamEvent::MessagePublished { .. }
            | StreamEvent::MessagesReadUnmasked { .. }
            | StreamEvent::MessageDeleted { .. }
            | StreamEvent::RepublishStarted { .. }
            | StreamEvent::RepublishFinished { .. } => {}
        }
    }
}

/// A NATS header: the name printable ASCII without `:` or spaces, the value on one line.
fn check_header(name: &str, value: &str) -> Result<(), StreamError> {
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(invalid(
            "headers",
            format!("'{name}' is not a valid header name; use printable ASCII without ':' or spaces"),
        ));
    }
    if value.contains(['\r', '\n']) {
        return Err(invalid("headers", format!("the value of '{name}' must be on one line")));
    }
    Ok(())
}

pub use crate::digest::sha256_hex;
