//! `audit`: every event as a row of a Parquet table on object storage, for compliance
//! exports and data engineers.
//!
//! Files: `audit/date=YYYY-MM-DD/part-<first seq>-<last seq>.parquet` (zero-padded, zstd),
//! one day per file, flushed when `max_rows` are buffered or the oldest buffered event is
//! `max_age` old. A file is named by the sequences it holds, so rewriting it after a crash
//! produces the same file. The last flushed sequence is derived from the file names at
//! start and published in the KV bucket `audit_state` (key `flushed`) after each flush.
//! The columns are documented in `schema/audit.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::array::{ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_nats::jetstream;
use chrono::NaiveDate;
use futures::StreamExt;
use jsc_eventstore::EventRecord;
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const STATE_BUCKET: &str = "audit_state";
pub const FLUSHED_KEY: &str = "flushed";

/// The Arrow schema of the audit table.
pub fn schema() -> SchemaRef {
    let s = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        Field::new("sequence", DataType::UInt64, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        s("aggregate_type", false),
        s("aggregate_id", false),
        Field::new("aggregate_sequence", DataType::UInt64, false),
        s("event_type", false),
        s("event_version", false),
        s("actor", false),
        s("client_addr", true),
        s("correlation_id", true),
        s("causation_id", true),
        s("organization", true),
        s("cluster", true),
        s("payload", false),
        s("summary", false),
        s("hash", true),
        s("prev_hash", true),
    ]))
}

/// The cluster an event concerns: the cluster itself, or the one a stream or consumer is on.
pub fn cluster_of(rec: &EventRecord) -> Option<String> {
    match rec.aggregate_type.as_str() {
        "cluster" => Some(rec.aggregate_id.clone()),
        "stream" | "consumer" => rec.aggregate_id.split('/').next().map(str::to_string),
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
pub fn to_batch(records: &[EventRecord]) -> anyhow::Result<RecordBatch> {
    let n = records.len();
    let mut seq = UInt64Builder::with_capacity(n);
    let mut time = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut agg_seq = UInt64Builder::with_capacity(n);
    let mut strings: Vec<StringBuilder> = (0..14).map(|_| StringBuilder::new()).collect();
    for r in records {
        seq.append_value(r.stream_sequence);
        time.append_value(r.timestamp.timestamp_micros());
        agg_seq.append_value(r.aggregate_sequence);
        let mut payload = r.payload.clone();
        jsc_domain::secret::redact_json(&mut payload);
        let meta = |k: &str| r.metadata.get(k).cloned();
        let values: [Option<String>; 14] = [
            Some(r.aggregate_type.clone()),
            Some(r.aggregate_id.clone()),
            Some(r.event_type.clone()),
            Some(r.event_version.clone()),
            Some(r.actor().to_string()),
            meta("client_addr"),
            meta("correlation_id"),
            meta("causation_id"),
            meta("organization"),
            cluster_of(r),
            Some(payload.to_string()),
            Some(summary(r)),
            r.hash.clone(),
            r.prev_hash.clone(),
        ];
        for (b, v) in strings.iter_mut().zip(values) {
            b.append_option(v);
        }
    }
    let mut s = strings.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut next = || s.next().expect("14 string columns");
    let columns: Vec<ArrayRef> = vec![
        Arc::new(seq.finish()),
        Arc::new(time.finish()),
        next(),
        next(),
        Arc::new(agg_seq.finish()),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// `audit/date=YYYY-MM-DD/part-<first>-<last>.parquet`
pub fn file_path(day: NaiveDate, first: u64, last: u64) -> Path {
    Path::from(format!("audit/date={day}/part-{first:020}-{last:020}.parquet"))
}

/// The sequence range a file name holds.
pub fn parse_range(path: &Path) -> Option<(u64, u64)> {
    let name = path.filename()?;
    let stem = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (a, b) = stem.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Writes the audit table.
pub struct AuditWriter {
    pub client: async_nats::Client,
    pub stream: String,
    pub store: Arc<dyn ObjectStore>,
    pub max_rows: usize,
    pub max_age: Duration,
}

impl AuditWriter {
    /// The highest sequence already in a file.
    pub async fn flushed(&self) -> anyhow::Result<u64> {
        let mut list = self.store.list(Some(&Path::from("audit")));
        let mut last = 0;
        while let Some(meta) = list.next().await {
            if let Some((_, l)) = parse_range(&meta?.location) {
                last = last.max(l);
            }
        }
        Ok(last)
    }

    /// Follows the event stream until `shutdown`, writing files; flushes what is buffered
    /// on the way out.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let js = jetstream::new(self.client.clone());
        let state = jsc_projector::ensure_bucket(&js, STATE_BUCKET, 1).await?;
        let mut flushed = self.flushed().await?;
        state.put(FLUSHED_KEY, flushed.to_string().into()).await?;
        let stream = js.get_stream(&self.stream).await?;
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                deliver_policy: if flushed == 0 {
                    jetstream::consumer::DeliverPolicy::All
                } else {
                    jetstream::consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: flushed + 1,
                    }
                },
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        let mut buffer: Vec<EventRecord> = Vec::new();
        let mut oldest: Option<Instant> = None;
        let mut tick = tokio::time::interval(self.max_age.min(Duration::from_secs(1)).max(Duration::from_millis(50)));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.flush(&mut buffer, &state, &mut flushed).await?;
                    return Ok(());
                }
                _ = tick.tick() => {
                    if oldest.is_some_and(|o| o.elapsed() >= self.max_age) {
                        self.flush(&mut buffer, &state, &mut flushed).await?;
                        oldest = None;
                    }
                }
                m = messages.next() => {
                    let Some(m) = m else { anyhow::bail!("the audit writer's message stream ended") };
                    let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
                    let seq = m.info().map_err(|e| anyhow::anyhow!("{e}"))?.stream_sequence;
                    if seq <= flushed {
                        continue;
                    }
                    let rec = EventRecord::from_message(&m.payload, m.headers.as_ref(), seq)?;
                    // One day per file: a new day closes the file of the previous one.
                    if buffer.first().is_some_and(|f| f.timestamp.date_naive() != rec.timestamp.date_naive()) {
                        self.flush(&mut buffer, &state, &mut flushed).await?;
                    }
                    buffer.push(rec);
                    oldest.get_or_insert_with(Instant::now);
                    if buffer.len() >= self.max_rows {
                        self.flush(&mut buffer, &state, &mut flushed).await?;
                        oldest = None;
                    }
                }
            }
        }
    }

    async fn flush(
        &self,
        buffer: &mut Vec<EventRecord>,
        state: &jetstream::kv::Store,
        flushed: &mut u64,
    ) -> anyhow::Result<()> {
        let (Some(first), Some(last)) = (buffer.first(), buffer.last()) else {
            return Ok(());
        };
        let day = first.timestamp.date_naive();
        let path = file_path(day, first.stream_sequence, last.stream_sequence);
        let batch = to_batch(buffer)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_row_count(Some(65_536))
            .build();
        let sink = object_store::buffered::BufWriter::new(self.store.clone(), path.clone());
        let mut writer = AsyncArrowWriter::try_new(sink, schema(), Some(props))?;
        writer.write(&batch).await?;
        writer.close().await.with_context(|| format!("writing {path}"))?;
        *flushed = last.stream_sequence;
        state.put(FLUSHED_KEY, flushed.to_string().into()).await?;
        tracing::debug!(%path, rows = buffer.len(), "audit file written");
        buffer.clear();
        Ok(())
    }
}
