//! The stored form of an event: a JSON body with payload and metadata, plus headers that
//! let tools filter by type without parsing bodies.

use std::collections::BTreeMap;

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Header names (non-`Nats-` headers are ours and never interpreted by the server).
pub mod headers {
    pub const EVENT_TYPE: &str = "Jsc-Event-Type";
    pub const EVENT_VERSION: &str = "Jsc-Event-Version";
    pub const AGGREGATE_TYPE: &str = "Jsc-Aggregate-Type";
    pub const AGGREGATE_ID: &str = "Jsc-Aggregate-Id";
    pub const AGGREGATE_SEQUENCE: &str = "Jsc-Aggregate-Seq";
    pub const COMMIT_ID: &str = "Jsc-Commit-Id";
    /// SHA-256 (hex) of the message body; the body names the previous event's hash.
    pub const HASH: &str = "Jsc-Hash";
    pub const MSG_ID: &str = "Nats-Msg-Id";
    pub const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";
    pub const BATCH_ID: &str = "Nats-Batch-Id";
    pub const BATCH_SEQUENCE: &str = "Nats-Batch-Sequence";
    pub const BATCH_COMMIT: &str = "Nats-Batch-Commit";
}

/// One event as stored in `CONSOLE_EVENTS` (the message body), with the stream sequence
/// it was stored at once it has been read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Unique id of this event (UUIDv7): what a command caused by it names as causation.
    pub event_id: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// 1-based position of the event in its aggregate's history, gapless.
    pub aggregate_sequence: u64,
    pub event_type: String,
    pub event_version: String,
    pub timestamp: DateTime<Utc>,
    /// The commit attempt that wrote this event; shared by the events of one command.
    pub commit_id: String,
    /// actor, correlation_id, causation_id, client_addr, user_agent.
    pub metadata: BTreeMap<String, String>,
    pub payload: serde_json::Value,
    /// Hash of the previous event of the same aggregate (none for its first event): the
    /// link that makes an aggregate's history a chain nobody can edit unnoticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_hash: Option<String>,
    /// Position in the stream; filled in when read, not stored in the body.
    #[serde(skip_serializing, default)]
    pub stream_sequence: u64,
    /// SHA-256 of the body as stored (the `Jsc-Hash` header); not part of the body.
    #[serde(skip)]
    pub hash: Option<String>,
    /// The serialized body that `hash` was computed over, kept so a commit serializes once.
    #[serde(skip)]
    pub body: Option<bytes::Bytes>,
}

impl EventRecord {
    pub fn actor(&self) -> &str {
        self.metadata.get("actor").map(String::as_str).unwrap_or("")
    }

    /// The body as stored, and its hash.
    pub fn body_and_hash(&self) -> (Vec<u8>, String) {
        let body = serde_json::to_vec(self).expect("events serialize to JSON");
        let hash = crate::verify::sha256_hex(&body);
        (body, hash)
    }

    /// Links the record to the previous event of its aggregate and computes its hash.
    /// Call again after changing a record by hand (tests, migrations).
    pub fn rehash(&mut self, prev_hash: Option<String>) {
        self.prev_hash = prev_hash;
        self.body = None;
        let (body, hash) = self.body_and_hash();
        self.hash = Some(hash);
        self.body = Some(body.into());
    }

    pub(crate) fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(headers::EVENT_TYPE, self.event_type.as_str());
        h.insert(headers::EVENT_VERSION, self.event_version.as_str());
        h.insert(headers::AGGREGATE_TYPE, self.aggregate_type.as_str());
        h.insert(headers::AGGREGATE_ID, crate::encode_id(&self.aggregate_id).as_str());
        h.insert(
            headers::AGGREGATE_SEQUENCE,
            self.aggregate_sequence.to_string().as_str(),
        );
        h.insert(headers::COMMIT_ID, self.commit_id.as_str());
        if let Some(hash) = &self.hash {
            h.insert(headers::HASH, hash.as_str());
        }
        h
    }

    /// Parses a stored message: its body, and its hash from the headers.
    pub fn from_message(body: &[u8], headers: Option<&HeaderMap>, stream_sequence: u64) -> Result<Self, Error> {
        let mut rec = Self::from_body(body, stream_sequence)?;
        rec.hash = headers
            .and_then(|h| h.get(headers::HASH))
            .map(|v| v.as_str().to_string());
        Ok(rec)
    }

    /// Parses a stored body read at `stream_sequence`.
    pub fn from_body(body: &[u8], stream_sequence: u64) -> Result<Self, Error> {
        let mut rec: EventRecord = serde_json::from_slice(body).map_err(|e| Error::Malformed {
            sequence: stream_sequence,
            reason: e.to_string(),
        })?;
        rec.stream_sequence = stream_sequence;
        Ok(rec)
    }
}
