//! The read side's runtime: feeding events to read models and serving those models.
//!
//! - [`KvProjection`] is what a read model declares: which events it reads, the key each
//!   event touches, and how an event changes the view under that key.
//! - [`Projector`] runs a projection: an ordered consumer on the event stream from just
//!   after the view's checkpoint, events folded per key within a batch, one KV write per
//!   changed key, the checkpoint written last. Views carry the stream sequence they last
//!   applied, so an event delivered again after a crash is never applied twice.
//! - [`ViewCache`] is the reader: every API replica keeps a view in memory from a KV watch
//!   (no key scans per query), knows which stream sequence it reflects (so a mutation can
//!   wait for its own write), and broadcasts changes to subscriptions.
#![forbid(unsafe_code)]

mod cache;
mod reconnects;
mod runtime;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub use cache::{ChangeOp, OrderKey, ViewCache, ViewChange};
use jsc_eventstore::EventRecord;
pub use reconnects::Reconnects;
pub use runtime::{BucketDiff, ProjectionStatus, Projector, Runnable, ensure_bucket};

/// The key under which a view bucket records the last stream sequence applied.
pub const CHECKPOINT_KEY: &str = "_checkpoint";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The home NATS failed or answered unexpectedly; the source says how.
    #[error("the console's NATS failed: {0}")]
    Nats(#[source] BoxError),
    #[error("projection {projection} cannot apply the event at stream sequence {sequence}: {reason}")]
    Apply {
        projection: String,
        sequence: u64,
        reason: String,
    },
    #[error("malformed view under key {key}: {reason}")]
    Malformed { key: String, reason: String },
}

impl Error {
    pub(crate) fn nats(e: impl Into<BoxError>) -> Self {
        Self::Nats(e.into())
    }
}

/// Encodes one token of a KV key: the domain's one encoding in the KV alphabet (`=XX`
/// escapes, since KV keys allow only `[-/_=.a-zA-Z0-9]` and `.` separates tokens).
pub fn kv_token(raw: &str) -> String {
    jsc_domain::ids::encode_token(raw, jsc_domain::ids::TokenKind::KvKey)
}

pub use jsc_domain::ids::kv_key;

/// A view as stored in KV: the projection's value plus the stream sequence of the last
/// event applied to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned<V> {
    pub last_sequence: u64,
    #[serde(flatten)]
    pub view: V,
}

/// A read model kept in a NATS KV bucket, one entry per key.
pub trait KvProjection: Send + Sync + 'static {
    type View: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;

    /// Short name (`clusters`); with the version it names the bucket.
    fn name(&self) -> &'static str;
    /// Bump to rebuild the view from the start of the stream into a new bucket.
    fn version(&self) -> u32;
    /// The aggregate types whose events this projection reads (the event store's config
    /// says which subjects those are).
    fn aggregate_types(&self) -> Vec<&'static str>;
    /// The key an event changes; `None` for events the view ignores. Keys must match
    /// `[-/_=.a-zA-Z0-9]+`.
    fn key(&self, event: &EventRecord) -> Option<String>;
    /// The view after `event`; `None` removes the entry.
    fn apply(&self, view: Option<Self::View>, event: &EventRecord) -> Result<Option<Self::View>, String>;

    /// Where lists find an entry in the view's order index ([`ViewCache::walk`]); `None`
    /// (the default): the view keeps no index.
    fn order(&self) -> Option<OrderKey<Self::View>> {
        None
    }

    /// `view_<name>_v<version>`
    fn bucket(&self) -> String {
        format!("view_{}_v{}", self.name(), self.version())
    }
}
