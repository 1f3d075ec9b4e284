//! Writing the audit table: [`AuditWriter`] follows the event stream and flushes its buffer
//! into one Parquet file per day (by row count or age), compacts a day's files into one,
//! and publishes the last flushed sequence. Also the file layout: [`file_path`],
//! [`parse_range`] and [`live_files`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use async_nats::jetstream;
use chrono::NaiveDate;
use futures::StreamExt;
use jsc_eventstore::EventRecord;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tokio_util::sync::CancellationToken;

use super::{AuditRow, Error, FLUSHED_KEY, Result, STATE_BUCKET, rows_to_batch, schema};

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

/// By default the buffer is flushed when its rows' text reaches this many bytes, whatever
/// `max_rows` says: a burst of big events (stream configurations) then costs a bounded amount of
/// memory, held only until the file is written.
pub const MAX_BUFFERED_BYTES: usize = 4 << 20;

/// A Parquet row group is closed at about this many encoded bytes: what the writer holds
/// before it uploads, when it writes a big file or merges a day's files.
const MAX_ROW_GROUP_BYTES: usize = 8 << 20;

/// Writes the audit table.
#[derive(Clone)]
pub struct AuditWriter {
    pub client: async_nats::Client,
    pub stream: String,
    pub store: Arc<dyn ObjectStore>,
    pub max_rows: usize,
    /// Bytes of buffered event text at which the buffer is flushed whatever its rows
    /// ([`MAX_BUFFERED_BYTES`] unless a test asks otherwise).
    pub max_bytes: usize,
    pub max_age: Duration,
    /// A day with this many files is compacted into one (0: never).
    pub compact_after: usize,
    /// Copies of the writer's state bucket (the event stream's).
    pub replicas: usize,
}

impl AuditWriter {
    /// The highest sequence already in a file.
    pub async fn flushed(&self) -> Result<u64> {
        let files = all_files(&self.store, &Path::from("audit")).await?;
        Ok(files.iter().map(|(_, last, _)| *last).max().unwrap_or(0))
    }

    /// Follows the event stream until `shutdown`, writing files; flushes what is buffered
    /// on the way out.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let js = jetstream::new(self.client.clone());
        let state = jsc_projector::ensure_bucket(&js, STATE_BUCKET, self.replicas)
            .await
            .map_err(|source| Error::StateBucket {
                bucket: STATE_BUCKET,
                source,
            })?;
        let mut flushed = self.flushed().await?;
        publish_flushed(&state, flushed).await?;
        let stream = js.get_stream(&self.stream).await.map_err(|source| Error::Stream {
            stream: self.stream.clone(),
            source,
        })?;
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
            .await
            .map_err(|source| Error::Consumer {
                stream: self.stream.clone(),
                source,
            })?;
        let mut messages = consumer.messages().await.map_err(|source| Error::Messages {
            stream: self.stream.clone(),
            source,
        })?;
        // Rows, not records: a row is flat strings, a fraction of a parsed event's memory.
        let mut buffer: Vec<AuditRow> = Vec::new();
        let mut buffered_bytes = 0;
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
                    let Some(m) = m else {
                        return Err(Error::StreamEnded { stream: self.stream.clone() });
                    };
                    let m = m.map_err(|source| Error::Receive { stream: self.stream.clone(), source })?;
                    let seq = m
                        .info()
                        .map_err(|source| Error::MessageInfo { stream: self.stream.clone(), source })?
                        .stream_sequence;
                    if seq <= flushed {
                        continue;
                    }
                    let record = EventRecord::from_message(&m.payload, m.headers.as_ref(), seq)
                        .map_err(|source| Error::Event { stream: self.stream.clone(), sequence: seq, source })?;
                    let row = AuditRow::from_record(&record);
                    // One day per file: a new day closes the file of the previous one.
                    if buffer.first().is_some_and(|f| f.time.date_naive() != row.time.date_naive()) {
                        self.flush(&mut buffer, &state, &mut flushed).await?;
                    }
                    if buffer.is_empty() {
                        buffered_bytes = 0;
                    }
                    buffered_bytes += row.text_bytes();
                    buffer.push(row);
                    oldest.get_or_insert_with(Instant::now);
                    if buffer.len() >= self.max_rows || buffered_bytes >= self.max_bytes {
                        self.flush(&mut buffer, &state, &mut flushed).await?;
                        oldest = None;
                    }
                }
            }
        }
    }

    async fn flush(&self, buffer: &mut Vec<AuditRow>, state: &jetstream::kv::Store, flushed: &mut u64) -> Result<()> {
        let (Some(first), Some(last)) = (buffer.first(), buffer.last()) else {
            return Ok(());
        };
        let day = first.time.date_naive();
        let path = file_path(day, first.sequence, last.sequence);
        write_parquet(&self.store, &path, &[rows_to_batch(buffer)?]).await?;
        *flushed = last.sequence;
        tracing::debug!(%path, rows = buffer.len(), "audit file written");
        metrics::counter!("jsconsole_audit_rows_written_total").increment(buffer.len() as u64);
        metrics::counter!("jsconsole_audit_files_written_total").increment(1);
        metrics::gauge!("jsconsole_audit_flushed_sequence").set(last.sequence as f64);
        // A new buffer, not a cleared one: a burst's capacity is not kept for good.
        *buffer = Vec::new();
        if self.compact_after > 0 {
            self.compact(day).await?;
        }
        // Published last: whoever sees it sees the files as they will stay.
        publish_flushed(state, *flushed).await
    }

    /// Merges the files of `day` into one when there are `compact_after` of them. The
    /// merged file is written before the parts are deleted, and readers ignore a file
    /// whose range another file covers, so a reader never sees a row twice or misses one.
    async fn compact(&self, day: NaiveDate) -> Result<()> {
        let files = live_files(&self.store, &Path::from(format!("audit/date={day}"))).await?;
        if files.len() < self.compact_after {
            return Ok(());
        }
        let (first, last) = (files[0].0, files[files.len() - 1].1);
        let merged = file_path(day, first, last);
        // One part in memory at a time, not the whole day.
        let mut writer = ParquetFile::create(&self.store, &merged)?;
        for (_, _, path) in &files {
            let bytes = fetch(&self.store, path).await?;
            let p = path.clone();
            let batches = tokio::task::spawn_blocking(move || read_batches(&p, bytes))
                .await
                .map_err(|source| Error::Task {
                    path: path.clone(),
                    source,
                })??;
            for b in &batches {
                writer.write(b).await?;
            }
        }
        writer.close().await?;
        for (_, _, path) in files {
            if path != merged
                && let Err(source) = self.store.delete(&path).await
            {
                return Err(Error::Delete { path, merged, source });
            }
        }
        tracing::debug!(%merged, "audit files compacted");
        Ok(())
    }
}

/// Publishes `flushed` in the state bucket.
async fn publish_flushed(state: &jetstream::kv::Store, flushed: u64) -> Result<()> {
    state
        .put(FLUSHED_KEY, flushed.to_string().into())
        .await
        .map_err(|source| Error::PublishFlushed {
            sequence: flushed,
            source,
        })?;
    Ok(())
}

async fn write_parquet(store: &Arc<dyn ObjectStore>, path: &Path, batches: &[RecordBatch]) -> Result<()> {
    let mut writer = ParquetFile::create(store, path)?;
    for b in batches {
        writer.write(b).await?;
    }
    writer.close().await
}

/// An audit file being written, batch by batch.
struct ParquetFile {
    path: Path,
    writer: AsyncArrowWriter<object_store::buffered::BufWriter>,
}

impl ParquetFile {
    fn create(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Self> {
        let props = || -> std::result::Result<WriterProperties, parquet::errors::ParquetError> {
            Ok(WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
                .set_max_row_group_row_count(Some(65_536))
                .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
                .build())
        };
        let sink = object_store::buffered::BufWriter::new(store.clone(), path.clone());
        let writer = props()
            .and_then(|props| AsyncArrowWriter::try_new(sink, schema(), Some(props)))
            .map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            path: path.clone(),
            writer,
        })
    }

    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).await.map_err(|source| Error::Write {
            path: self.path.clone(),
            source,
        })
    }

    async fn close(self) -> Result<()> {
        self.writer.close().await.map(|_| ()).map_err(|source| Error::Write {
            path: self.path,
            source,
        })
    }
}

fn read_batches(path: &Path, bytes: bytes::Bytes) -> Result<Vec<RecordBatch>> {
    let parquet = |source| Error::Parquet {
        path: path.clone(),
        source,
    };
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(parquet)?;
    reader.collect::<Result<Vec<_>, _>>().map_err(|source| Error::Decode {
        path: path.clone(),
        source,
    })
}

/// The bytes of the audit file at `path`.
pub(super) async fn fetch(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<bytes::Bytes> {
    let get = async { store.get(path).await?.bytes().await };
    get.await.map_err(|source| Error::Fetch {
        path: path.clone(),
        source,
    })
}

/// Every audit file under `prefix` as (first, last, path), in listing order.
async fn all_files(store: &Arc<dyn ObjectStore>, prefix: &Path) -> Result<Vec<(u64, u64, Path)>> {
    let mut all = Vec::new();
    let mut list = store.list(Some(prefix));
    while let Some(meta) = list.next().await {
        let meta = meta.map_err(|source| Error::List {
            prefix: prefix.clone(),
            source,
        })?;
        if let Some((first, last)) = parse_range(&meta.location) {
            all.push((first, last, meta.location));
        }
    }
    Ok(all)
}

/// The audit files under `prefix` as (first, last, path), oldest first, leaving out any
/// file whose range another file covers (the parts of a compaction not yet deleted).
pub async fn live_files(store: &Arc<dyn ObjectStore>, prefix: &Path) -> Result<Vec<(u64, u64, Path)>> {
    let all = all_files(store, prefix).await?;
    let covered = |f: &(u64, u64, Path)| {
        all.iter()
            .any(|g| g.2 != f.2 && g.0 <= f.0 && f.1 <= g.1 && (g.1 - g.0) > (f.1 - f.0))
    };
    let mut live: Vec<_> = all.iter().filter(|f| !covered(f)).cloned().collect();
    live.sort_by_key(|f| f.0);
    Ok(live)
}
