//! `audit`: every event as a row of a Parquet table on object storage, for compliance
//! exports and data engineers.
//!
//! Files: `audit/date=YYYY-MM-DD/part-<first seq>-<last seq>.parquet` (zero-padded, zstd),
//! one day per file, flushed when `max_rows` are buffered or the oldest buffered event is
//! `max_age` old. A file is named by the sequences it holds, so rewriting it after a crash
//! produces the same file. The last flushed sequence is derived from the file names at
//! start and published in the KV bucket `audit_state` (key `flushed`) after each flush.
//! The columns are documented in `schema/audit.md`.
//!
//! This module owns the table itself: its columns and Arrow schema, [`AuditRow`] (one
//! event as a row) and [`AuditFilter`] (what a query or export looks for). Writing the
//! files is in `writer`, reading them back in `reader`, exports in `export`, and what can
//! fail on the way in `error`.

mod error;
mod export;
mod reader;
mod writer;

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::NaiveDate;
use jsc_domain::ids::{ConsumerRef, StreamRef};
use jsc_eventstore::EventRecord;
use serde_json::Value;

pub use error::{Error, Result};
pub use export::ExportFormat;
pub use reader::AuditReader;
pub use writer::{AuditWriter, MAX_BUFFERED_BYTES, file_path, live_files, parse_range};

pub const STATE_BUCKET: &str = "audit_state";
pub const FLUSHED_KEY: &str = "flushed";

/// The audit table's columns, in order (see `schema/audit.md`).
pub const COLUMNS: [&str; 17] = [
    "sequence",
    "time",
    "aggregate_type",
    "aggregate_id",
    "aggregate_sequence",
    "event_type",
    "event_version",
    "actor",
    "client_addr",
    "correlation_id",
    "causation_id",
    "organization",
    "cluster",
    "payload",
    "summary",
    "hash",
    "prev_hash",
];

/// The text columns, in order (all but sequence, time and aggregate_sequence).
fn text_columns() -> impl Iterator<Item = &'static str> {
    COLUMNS
        .into_iter()
        .filter(|c| !matches!(*c, "sequence" | "time" | "aggregate_sequence"))
}

/// The Arrow schema of the audit table.
pub fn schema() -> SchemaRef {
    let nullable = [
        "client_addr",
        "correlation_id",
        "causation_id",
        "organization",
        "cluster",
        "hash",
        "prev_hash",
    ];
    Arc::new(Schema::new(
        COLUMNS
            .iter()
            .map(|&name| match name {
                "sequence" | "aggregate_sequence" => Field::new(name, DataType::UInt64, false),
                "time" => Field::new(
                    name,
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    false,
                ),
                _ => Field::new(name, DataType::Utf8, nullable.contains(&name)),
            })
            .collect::<Vec<_>>(),
    ))
}

/// The cluster an event concerns: the cluster itself, or the one a stream or consumer is on.
pub fn cluster_of(rec: &EventRecord) -> Option<String> {
    match rec.aggregate_type.as_str() {
        "cluster" => Some(rec.aggregate_id.clone()),
        "stream" => rec.aggregate_id.parse::<StreamRef>().ok().map(|s| s.cluster_id),
        "consumer" => rec
            .aggregate_id
            .parse::<ConsumerRef>()
            .ok()
            .map(|c| c.stream.cluster_id),
        _ => None,
    }
}

/// One readable line: who did what to which resource.
pub fn summary(rec: &EventRecord) -> String {
    let body = rec.payload.as_object().and_then(|o| o.values().next());
    let name = body.and_then(|b| {
        b.pointer("/spec/name")
            .or_else(|| b.pointer("/config/name"))
            .or_else(|| b.pointer("/after/name"))
            .or_else(|| b.pointer("/name"))
            .or_else(|| b.pointer("/config/durable_name"))
            .and_then(Value::as_str)
    });
    let what = split_words(&rec.event_type);
    let external = body.and_then(|b| b.pointer("/origin/kind")).and_then(Value::as_str) == Some("external");
    let actor = if external {
        let client = body
            .and_then(|b| b.pointer("/origin/client"))
            .and_then(Value::as_str)
            .unwrap_or("a client");
        format!("outside the console ({client})")
    } else {
        rec.actor().to_string()
    };
    match name {
        Some(n) => format!("{what} '{n}' ({} {}) by {actor}", rec.aggregate_type, rec.aggregate_id),
        None => format!("{what} ({} {}) by {actor}", rec.aggregate_type, rec.aggregate_id),
    }
}

/// `ClusterRegistered` → `cluster registered`.
fn split_words(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The rows of `records` as one Arrow batch.
pub fn to_batch(records: &[EventRecord]) -> Result<RecordBatch> {
    let rows: Vec<AuditRow> = records.iter().map(AuditRow::from_record).collect();
    rows_to_batch(&rows)
}

/// Audit rows as one Arrow batch of [`schema`].
pub fn rows_to_batch(rows: &[AuditRow]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut seq = UInt64Builder::with_capacity(n);
    let mut time = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut agg_seq = UInt64Builder::with_capacity(n);
    let mut strings: Vec<StringBuilder> = (0..14).map(|_| StringBuilder::new()).collect();
    for r in rows {
        seq.append_value(r.sequence);
        time.append_value(r.time.timestamp_micros());
        agg_seq.append_value(r.aggregate_sequence);
        let values: [Option<&str>; 14] = [
            Some(&r.aggregate_type),
            Some(&r.aggregate_id),
            Some(&r.event_type),
            Some(&r.event_version),
            Some(&r.actor),
            r.client_addr.as_deref(),
            r.correlation_id.as_deref(),
            r.causation_id.as_deref(),
            r.organization.as_deref(),
            r.cluster.as_deref(),
            Some(&r.payload),
            Some(&r.summary),
            r.hash.as_deref(),
            r.prev_hash.as_deref(),
        ];
        for (b, v) in strings.iter_mut().zip(values) {
            b.append_option(v);
        }
    }
    let mut s = strings.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut columns: Vec<ArrayRef> = vec![Arc::new(seq.finish()), Arc::new(time.finish())];
    columns.extend(s.by_ref().take(2));
    columns.push(Arc::new(agg_seq.finish()));
    columns.extend(s);
    RecordBatch::try_new(schema(), columns).map_err(|source| Error::Batch { rows: n, source })
}

/// One audit row, as read back.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditRow {
    pub sequence: u64,
    pub time: chrono::DateTime<chrono::Utc>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub aggregate_sequence: u64,
    pub event_type: String,
    pub event_version: String,
    pub actor: String,
    pub client_addr: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub organization: Option<String>,
    pub cluster: Option<String>,
    pub payload: String,
    pub summary: String,
    pub hash: Option<String>,
    pub prev_hash: Option<String>,
}

impl AuditRow {
    /// The bytes of its text: about what it costs buffered, and as Arrow columns.
    pub fn text_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        self.aggregate_type.len()
            + self.aggregate_id.len()
            + self.event_type.len()
            + self.event_version.len()
            + self.actor.len()
            + self.payload.len()
            + self.summary.len()
            + opt(&self.client_addr)
            + opt(&self.correlation_id)
            + opt(&self.causation_id)
            + opt(&self.organization)
            + opt(&self.cluster)
            + opt(&self.hash)
            + opt(&self.prev_hash)
    }

    pub fn from_record(r: &EventRecord) -> Self {
        let mut payload = r.payload.clone();
        jsc_domain::secret::redact_json(&mut payload);
        Self {
            sequence: r.stream_sequence,
            time: r.timestamp,
            aggregate_type: r.aggregate_type.clone(),
            aggregate_id: r.aggregate_id.clone(),
            aggregate_sequence: r.aggregate_sequence,
            event_type: r.event_type.clone(),
            event_version: r.event_version.clone(),
            actor: r.actor().to_string(),
            client_addr: r.metadata.get("client_addr").cloned(),
            correlation_id: r.metadata.get("correlation_id").cloned(),
            causation_id: r.metadata.get("causation_id").cloned(),
            organization: r.metadata.get("organization").cloned(),
            cluster: cluster_of(r),
            payload: payload.to_string(),
            summary: summary(r),
            hash: r.hash.clone(),
            prev_hash: r.prev_hash.clone(),
        }
    }
}

/// A range of stream sequences, both ends excluded: what a page of the trail may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Only sequences above this one (0: from the first).
    pub above: u64,
    /// Only sequences below this one (`u64::MAX`: to the last).
    pub below: u64,
}

impl Span {
    /// Every sequence.
    pub const ALL: Span = Span {
        above: 0,
        below: u64::MAX,
    };

    pub fn contains(&self, sequence: u64) -> bool {
        self.above < sequence && sequence < self.below
    }
}

/// Which end of a span a page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The newest events of the span (the trail's own order).
    Newest,
    /// The oldest events of the span: paging back towards the newest.
    Oldest,
}

/// What to look for in the trail. Every field narrows; none means everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    pub actor: Option<String>,
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub event_type: Option<String>,
    pub cluster: Option<String>,
    pub organization: Option<String>,
    /// Case-insensitive text in the summary.
    pub text: Option<String>,
    /// Only events of these organizations (what a caller may see), and, with
    /// `within_installation`, events of no organization (accounts, sessions).
    pub within: Option<Vec<String>>,
    pub within_installation: bool,
}

impl AuditFilter {
    pub fn matches(&self, r: &AuditRow) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
        self.from.is_none_or(|f| r.time >= f)
            && self.to.is_none_or(|t| r.time <= t)
            && eq(&self.actor, Some(&r.actor))
            && eq(&self.aggregate_type, Some(&r.aggregate_type))
            && eq(&self.aggregate_id, Some(&r.aggregate_id))
            && eq(&self.event_type, Some(&r.event_type))
            && eq(&self.cluster, r.cluster.as_deref())
            && eq(&self.organization, r.organization.as_deref())
            && self.within.as_ref().is_none_or(|w| match &r.organization {
                Some(o) => w.contains(o),
                None => self.within_installation,
            })
            && self
                .text
                .as_ref()
                .is_none_or(|t| r.summary.to_lowercase().contains(&t.to_lowercase()))
    }

    /// Whether a file of `day` holding `first..=last` can hold a match before `before`.
    fn may_hold(&self, day: Option<NaiveDate>, first: u64, last: u64, span: Span) -> bool {
        first < span.below
            && last > span.above
            && day.is_none_or(|d| {
                self.from.is_none_or(|f| d >= f.date_naive()) && self.to.is_none_or(|t| d <= t.date_naive())
            })
    }
}
