//! `audit::Error`: what can fail while writing, reading or exporting the audit table. Each
//! variant says what was being done and where (file, stream, bucket, sequence), and keeps
//! the error it came from as its `source`, so a caller printing the chain sees both.

use arrow::error::ArrowError;
use async_nats::jetstream;
use object_store::path::Path;
use parquet::errors::ParquetError;

use super::{FLUSHED_KEY, STATE_BUCKET};

/// A `Result` of the audit table.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The object store.
    #[error("cannot list the audit files under '{prefix}' in the object store")]
    List {
        prefix: Path,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot fetch the audit file '{path}' from the object store")]
    Fetch {
        path: Path,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot delete the audit file '{path}' from the object store after compacting it into '{merged}'")]
    Delete {
        path: Path,
        merged: Path,
        #[source]
        source: object_store::Error,
    },

    // The Parquet files.
    #[error("cannot write the audit file '{path}'")]
    Write {
        path: Path,
        #[source]
        source: ParquetError,
    },
    #[error("the audit file '{path}' is not readable Parquet")]
    Parquet {
        path: Path,
        #[source]
        source: ParquetError,
    },
    #[error("cannot decode the rows of the audit file '{path}'")]
    Decode {
        path: Path,
        #[source]
        source: ArrowError,
    },
    #[error("the audit file '{path}' does not read back as the audit table: {reason}")]
    Malformed { path: Path, reason: String },
    #[error("reading the audit file '{path}' panicked or was cancelled")]
    Task {
        path: Path,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("cannot build an Arrow batch of {rows} audit rows")]
    Batch {
        rows: usize,
        #[source]
        source: ArrowError,
    },

    // NATS: the writer's state and the event stream.
    #[error("cannot open or create the KV bucket '{bucket}' that holds the audit writer's state")]
    StateBucket {
        bucket: &'static str,
        #[source]
        source: jsc_projector::Error,
    },
    #[error("cannot publish the flushed sequence {sequence} to key '{FLUSHED_KEY}' of the KV bucket '{STATE_BUCKET}'")]
    PublishFlushed {
        sequence: u64,
        #[source]
        source: jetstream::kv::PutError,
    },
    #[error("cannot read key '{FLUSHED_KEY}' of the KV bucket '{STATE_BUCKET}' (the last flushed sequence)")]
    ReadFlushed {
        #[source]
        source: jetstream::kv::EntryError,
    },
    #[error("cannot look up the event stream '{stream}'")]
    Stream {
        stream: String,
        #[source]
        source: jetstream::context::GetStreamError,
    },
    #[error("cannot read the state of the event stream '{stream}'")]
    StreamInfo {
        stream: String,
        #[source]
        source: jetstream::stream::InfoError,
    },
    #[error("cannot create the audit writer's consumer on the event stream '{stream}'")]
    Consumer {
        stream: String,
        #[source]
        source: jetstream::stream::ConsumerError,
    },
    #[error("cannot start reading the event stream '{stream}'")]
    Messages {
        stream: String,
        #[source]
        source: jetstream::consumer::StreamError,
    },
    #[error("cannot receive the next event from the event stream '{stream}'")]
    Receive {
        stream: String,
        #[source]
        source: jetstream::consumer::pull::OrderedError,
    },
    #[error("a message from the event stream '{stream}' carries no JetStream metadata")]
    MessageInfo {
        stream: String,
        #[source]
        source: async_nats::Error,
    },
    #[error("the audit writer's message stream of '{stream}' ended")]
    StreamEnded { stream: String },
    #[error("cannot decode the event at sequence {sequence} of the event stream '{stream}'")]
    Event {
        stream: String,
        sequence: u64,
        #[source]
        source: jsc_eventstore::Error,
    },
    #[error("cannot read the events from sequence {from} of the event stream '{stream}' (not yet in audit files)")]
    Tail {
        stream: String,
        from: u64,
        #[source]
        source: jsc_eventstore::Error,
    },

    // Exports.
    #[error("cannot serialize the audit row at sequence {sequence} as JSON")]
    Json {
        sequence: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write the Parquet export")]
    ExportParquet(#[source] ParquetError),
    #[error("cannot write the export to its destination")]
    Sink(#[source] std::io::Error),
}
