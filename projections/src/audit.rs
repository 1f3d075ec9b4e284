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
use jsc_domain::ids::{ConsumerRef, StreamRef};
use jsc_eventstore::EventRecord;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

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
pub fn to_batch(records: &[EventRecord]) -> anyhow::Result<RecordBatch> {
    let rows: Vec<AuditRow> = records.iter().map(AuditRow::from_record).collect();
    rows_to_batch(&rows)
}

/// Audit rows as one Arrow batch of [`schema`].
pub fn rows_to_batch(rows: &[AuditRow]) -> anyhow::Result<RecordBatch> {
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
    /// A day with this many files is compacted into one (0: never).
    pub compact_after: usize,
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
        // Rows, not records: a row is flat strings, a fraction of a parsed event's memory.
        let mut buffer: Vec<AuditRow> = Vec::new();
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
                    let row = AuditRow::from_record(&EventRecord::from_message(&m.payload, m.headers.as_ref(), seq)?);
                    // One day per file: a new day closes the file of the previous one.
                    if buffer.first().is_some_and(|f| f.time.date_naive() != row.time.date_naive()) {
                        self.flush(&mut buffer, &state, &mut flushed).await?;
                    }
                    buffer.push(row);
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
        buffer: &mut Vec<AuditRow>,
        state: &jetstream::kv::Store,
        flushed: &mut u64,
    ) -> anyhow::Result<()> {
        let (Some(first), Some(last)) = (buffer.first(), buffer.last()) else {
            return Ok(());
        };
        let day = first.time.date_naive();
        let path = file_path(day, first.sequence, last.sequence);
        write_parquet(&self.store, &path, &[rows_to_batch(buffer)?]).await?;
        *flushed = last.sequence;
        tracing::debug!(%path, rows = buffer.len(), "audit file written");
        buffer.clear();
        if self.compact_after > 0 {
            self.compact(day).await?;
        }
        // Published last: whoever sees it sees the files as they will stay.
        state.put(FLUSHED_KEY, flushed.to_string().into()).await?;
        Ok(())
    }

    /// Merges the files of `day` into one when there are `compact_after` of them. The
    /// merged file is written before the parts are deleted, and readers ignore a file
    /// whose range another file covers, so a reader never sees a row twice or misses one.
    async fn compact(&self, day: NaiveDate) -> anyhow::Result<()> {
        let files = live_files(&self.store, &Path::from(format!("audit/date={day}"))).await?;
        if files.len() < self.compact_after {
            return Ok(());
        }
        let mut batches = Vec::new();
        for (_, _, path) in &files {
            let bytes = self.store.get(path).await?.bytes().await?;
            batches.extend(tokio::task::spawn_blocking(move || read_batches(bytes)).await??);
        }
        let (first, last) = (files[0].0, files[files.len() - 1].1);
        let merged = file_path(day, first, last);
        write_parquet(&self.store, &merged, &batches).await?;
        for (_, _, path) in files {
            if path != merged {
                self.store.delete(&path).await?;
            }
        }
        tracing::debug!(%merged, "audit files compacted");
        Ok(())
    }
}

async fn write_parquet(store: &Arc<dyn ObjectStore>, path: &Path, batches: &[RecordBatch]) -> anyhow::Result<()> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(65_536))
        .build();
    let sink = object_store::buffered::BufWriter::new(store.clone(), path.clone());
    let mut writer = AsyncArrowWriter::try_new(sink, schema(), Some(props))?;
    for b in batches {
        writer.write(b).await?;
    }
    writer.close().await.with_context(|| format!("writing {path}"))?;
    Ok(())
}

fn read_batches(bytes: bytes::Bytes) -> anyhow::Result<Vec<RecordBatch>> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// The audit files under `prefix` as (first, last, path), oldest first, leaving out any
/// file whose range another file covers (the parts of a compaction not yet deleted).
pub async fn live_files(store: &Arc<dyn ObjectStore>, prefix: &Path) -> anyhow::Result<Vec<(u64, u64, Path)>> {
    let mut all = Vec::new();
    let mut list = store.list(Some(prefix));
    while let Some(meta) = list.next().await {
        let meta = meta?;
        if let Some((first, last)) = parse_range(&meta.location) {
            all.push((first, last, meta.location));
        }
    }
    let covered = |f: &(u64, u64, Path)| {
        all.iter()
            .any(|g| g.2 != f.2 && g.0 <= f.0 && f.1 <= g.1 && (g.1 - g.0) > (f.1 - f.0))
    };
    let mut live: Vec<_> = all.iter().filter(|f| !covered(f)).cloned().collect();
    live.sort_by_key(|f| f.0);
    Ok(live)
}

// ---------------------------------------------------------------------------------------
// Reading the trail: Parquet files (pruned by name and row-group statistics) plus the
// tail of the stream not yet written, so the newest events are never missing.
// ---------------------------------------------------------------------------------------

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

    fn from_batch(batch: &RecordBatch) -> anyhow::Result<Vec<Self>> {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::{TimestampMicrosecondType, UInt64Type};
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| anyhow::anyhow!("no column {name}"))
        };
        let u64s = |name: &str| -> anyhow::Result<_> { Ok(col(name)?.as_primitive::<UInt64Type>().clone()) };
        let strs = |name: &str| -> anyhow::Result<_> { Ok(col(name)?.as_string::<i32>().clone()) };
        let (seq, agg_seq) = (u64s("sequence")?, u64s("aggregate_sequence")?);
        let time = col("time")?.as_primitive::<TimestampMicrosecondType>().clone();
        let names: Vec<&str> = text_columns().collect();
        let s: Vec<_> = names.iter().map(|n| strs(n)).collect::<anyhow::Result<_>>()?;
        let get = |i: usize, row: usize| (!s[i].is_null(row)).then(|| s[i].value(row).to_string());
        Ok((0..batch.num_rows())
            .map(|row| AuditRow {
                sequence: seq.value(row),
                time: chrono::DateTime::from_timestamp_micros(time.value(row)).unwrap_or_default(),
                aggregate_type: get(0, row).unwrap_or_default(),
                aggregate_id: get(1, row).unwrap_or_default(),
                aggregate_sequence: agg_seq.value(row),
                event_type: get(2, row).unwrap_or_default(),
                event_version: get(3, row).unwrap_or_default(),
                actor: get(4, row).unwrap_or_default(),
                client_addr: get(5, row),
                correlation_id: get(6, row),
                causation_id: get(7, row),
                organization: get(8, row),
                cluster: get(9, row),
                payload: get(10, row).unwrap_or_default(),
                summary: get(11, row).unwrap_or_default(),
                hash: get(12, row),
                prev_hash: get(13, row),
            })
            .collect())
    }
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
    fn may_hold(&self, day: Option<NaiveDate>, first: u64, before: u64) -> bool {
        first < before
            && day.is_none_or(|d| {
                self.from.is_none_or(|f| d >= f.date_naive()) && self.to.is_none_or(|t| d <= t.date_naive())
            })
    }
}

/// Reads the audit trail.
#[derive(Clone)]
pub struct AuditReader {
    pub client: async_nats::Client,
    pub stream: String,
    pub store: Arc<dyn ObjectStore>,
}

fn day_of_path(path: &Path) -> Option<NaiveDate> {
    path.parts()
        .find_map(|p| p.as_ref().strip_prefix("date=").map(str::to_string))
        .and_then(|d| d.parse().ok())
}

impl AuditReader {
    /// The last sequence the writer has put in a file (0 before the first).
    pub async fn flushed_sequence(&self) -> anyhow::Result<u64> {
        let js = jetstream::new(self.client.clone());
        Ok(match js.get_key_value(STATE_BUCKET).await {
            Ok(kv) => kv
                .get(FLUSHED_KEY)
                .await?
                .and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok())
                .unwrap_or(0),
            Err(_) => 0,
        })
    }

    /// The files that may hold rows for `filter` below `before`, oldest first.
    async fn files_for(&self, filter: &AuditFilter, flushed: u64, before: u64) -> anyhow::Result<Vec<Path>> {
        Ok(live_files(&self.store, &Path::from("audit"))
            .await?
            .into_iter()
            .filter(|(first, _, path)| *first <= flushed && filter.may_hold(day_of_path(path), *first, before))
            .map(|(_, _, path)| path)
            .collect())
    }

    /// The newest `first` rows matching `filter` with a sequence below `before` (all when
    /// `None`), newest first, and whether more match.
    pub async fn query(
        &self,
        filter: &AuditFilter,
        first: usize,
        before: Option<u64>,
    ) -> anyhow::Result<(Vec<AuditRow>, bool)> {
        let before = before.unwrap_or(u64::MAX);
        let want = first + 1;
        let flushed = self.flushed_sequence().await?;
        let mut out = Vec::new();
        // The tail, newest first.
        if before > flushed + 1 {
            let to = (before != u64::MAX).then(|| before - 1);
            let tail = jsc_eventstore::EventReader::new(self.client.clone(), self.stream.clone())
                .read_range(">", flushed + 1, to)
                .await?;
            out.extend(
                tail.iter()
                    .rev()
                    .map(AuditRow::from_record)
                    .filter(|r| filter.matches(r)),
            );
        }
        if out.len() >= want {
            out.truncate(want);
            let more = out.len() > first;
            out.truncate(first);
            return Ok((out, more));
        }
        // The files, newest first, skipped by name when they cannot match.
        let mut files = self.files_for(filter, flushed, before).await?;
        files.reverse();
        for path in files {
            let bytes = self.store.get(&path).await?.bytes().await?;
            let filter = filter.clone();
            let rows = tokio::task::spawn_blocking(move || read_file(bytes, &filter, before)).await??;
            out.extend(rows);
            if out.len() >= want {
                break;
            }
        }
        let more = out.len() > first;
        out.truncate(first);
        Ok((out, more))
    }
}

/// Matching rows of one file, newest first, reading only the row groups whose statistics
/// (sequence, time) allow a match.
fn read_file(bytes: bytes::Bytes, filter: &AuditFilter, before: u64) -> anyhow::Result<Vec<AuditRow>> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::statistics::Statistics;
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let meta = builder.metadata().clone();
    let schema = builder.schema().clone();
    let idx = |name: &str| schema.index_of(name).ok();
    let (seq_i, time_i) = (idx("sequence"), idx("time"));
    let range = |rg: &parquet::file::metadata::RowGroupMetaData, i: Option<usize>| -> Option<(i64, i64)> {
        match rg.column(i?).statistics()? {
            Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
            _ => None,
        }
    };
    let groups: Vec<usize> = (0..meta.num_row_groups())
        .filter(|&g| {
            let rg = meta.row_group(g);
            let seq_ok = range(rg, seq_i).is_none_or(|(min, _)| (min as u64) < before);
            let time_ok = range(rg, time_i).is_none_or(|(min, max)| {
                filter.from.is_none_or(|f| max >= f.timestamp_micros())
                    && filter.to.is_none_or(|t| min <= t.timestamp_micros())
            });
            seq_ok && time_ok
        })
        .collect();
    let reader = builder.with_row_groups(groups).build()?;
    let mut rows = Vec::new();
    for batch in reader {
        rows.extend(
            AuditRow::from_batch(&batch?)?
                .into_iter()
                .filter(|r| r.sequence < before && filter.matches(r)),
        );
    }
    rows.reverse();
    Ok(rows)
}

// ---------------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Parquet,
    Csv,
    Jsonl,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "parquet" => Some(Self::Parquet),
            "csv" => Some(Self::Csv),
            "jsonl" => Some(Self::Jsonl),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Parquet => "application/vnd.apache.parquet",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Jsonl => "application/x-ndjson",
        }
    }
}

fn csv_field(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

fn csv_line(r: &AuditRow) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let fields = [
        r.sequence.to_string(),
        r.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        r.aggregate_type.clone(),
        r.aggregate_id.clone(),
        r.aggregate_sequence.to_string(),
        r.event_type.clone(),
        r.event_version.clone(),
        r.actor.clone(),
        opt(&r.client_addr),
        opt(&r.correlation_id),
        opt(&r.causation_id),
        opt(&r.organization),
        opt(&r.cluster),
        r.payload.clone(),
        r.summary.clone(),
        opt(&r.hash),
        opt(&r.prev_hash),
    ];
    let mut line = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        csv_field(&mut line, f);
    }
    line.push('\n');
    line
}

impl AuditReader {
    /// Writes every row matching `filter`, oldest first, to `sink` in `format`, one file
    /// (or the tail) at a time, so memory stays flat whatever the range. `progress` gets
    /// the rows written so far and the stream's last sequence. Returns the rows written.
    pub async fn export<W>(
        &self,
        filter: &AuditFilter,
        format: ExportFormat,
        sink: W,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> anyhow::Result<u64>
    where
        W: tokio::io::AsyncWrite + Unpin + Send,
    {
        use tokio::io::AsyncWriteExt;
        let js = jetstream::new(self.client.clone());
        let flushed = self.flushed_sequence().await?;
        let last = js.get_stream(&self.stream).await?.get_info().await?.state.last_sequence;
        let files = self.files_for(filter, flushed, u64::MAX).await?;

        enum Out<W: tokio::io::AsyncWrite + Unpin + Send> {
            Text(W),
            Parquet(Box<AsyncArrowWriter<W>>),
        }
        let mut out = match format {
            ExportFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
                    .build();
                Out::Parquet(Box::new(AsyncArrowWriter::try_new(sink, schema(), Some(props))?))
            }
            ExportFormat::Csv => {
                let mut sink = sink;
                sink.write_all(format!("{}\n", COLUMNS.join(",")).as_bytes()).await?;
                Out::Text(sink)
            }
            ExportFormat::Jsonl => Out::Text(sink),
        };
        let mut written = 0u64;
        let mut emit = async |rows: Vec<AuditRow>, out: &mut Out<W>| -> anyhow::Result<()> {
            if rows.is_empty() {
                return Ok(());
            }
            match out {
                Out::Parquet(w) => w.write(&rows_to_batch(&rows)?).await?,
                Out::Text(w) => {
                    let mut buf = String::new();
                    for r in &rows {
                        if format == ExportFormat::Csv {
                            buf.push_str(&csv_line(r));
                        } else {
                            buf.push_str(&serde_json::to_string(r)?);
                            buf.push('\n');
                        }
                    }
                    w.write_all(buf.as_bytes()).await?;
                }
            }
            written += rows.len() as u64;
            progress(written, last);
            Ok(())
        };
        for path in files {
            let bytes = self.store.get(&path).await?.bytes().await?;
            let f = filter.clone();
            let mut rows = tokio::task::spawn_blocking(move || read_file(bytes, &f, u64::MAX)).await??;
            rows.reverse();
            emit(rows, &mut out).await?;
        }
        if last > flushed {
            let tail = jsc_eventstore::EventReader::new(self.client.clone(), self.stream.clone())
                .read_range(">", flushed + 1, Some(last))
                .await?;
            let rows = tail
                .iter()
                .map(AuditRow::from_record)
                .filter(|r| filter.matches(r))
                .collect();
            emit(rows, &mut out).await?;
        }
        match out {
            Out::Parquet(w) => {
                w.close().await?;
            }
            Out::Text(mut w) => {
                w.flush().await?;
                w.shutdown().await?;
            }
        }
        Ok(written)
    }
}
