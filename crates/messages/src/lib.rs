//! The data inside streams. [`Reader`] reads a stream's messages without consuming them —
//! never a durable consumer, never an ack, so browsing a work-queue or interest stream
//! leaves it exactly as it was — and [`decode`] turns payloads into text a person can read.
//!
//! Two ways to read, chosen per stream ([`ReadPath`]):
//! - **batch direct get** (`$JS.API.DIRECT.GET.<stream>` with `batch`, nats-server 2.11+,
//!   `allow_direct`): a page in one request, answered by any replica;
//! - **message get** (`$JS.API.STREAM.MSG.GET.<stream>`, one message a request): every server
//!   and every stream. An ephemeral consumer is no fallback: a work-queue stream refuses one
//!   that does not ack, and one that acks removes what it reads.

#![forbid(unsafe_code)]

pub mod decode;
pub mod export;
pub mod expr;
pub mod mask;
pub mod protobuf;
mod read;
pub mod schema;
pub mod search;

pub use read::{ReadError, ReadPath, Reader, StreamFacts};

use chrono::{DateTime, Utc};

/// One message as the stream stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Its stream sequence.
    pub sequence: u64,
    pub subject: String,
    /// When the stream stored it.
    pub time: DateTime<Utc>,
    /// Its headers in order, as published (a name may repeat).
    pub headers: Vec<(String, String)>,
    pub payload: bytes::Bytes,
    /// The Protobuf message type the payload was decoded from (it now holds that message's
    /// JSON); `None` for a payload as stored.
    pub decoded_as: Option<String>,
}

impl StoredMessage {
    /// Bytes the message takes as JetStream counts them: subject, headers and payload.
    pub fn size(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        self.subject.len() + headers + self.payload.len()
    }
}

/// A run of messages in stream order and whether more follow in the direction read.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub messages: Vec<StoredMessage>,
    /// More messages (matching the filter) lie beyond the last one, in the direction read.
    pub more: bool,
}
