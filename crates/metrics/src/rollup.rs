//! Roll-ups: the raw samples of the metrics stream summarised per minute and per hour (min,
//! max, mean, last and count of every series) as Parquet files on the object store, each
//! resolution kept for its own time.
//!
//! Files: `metrics/resolution=<1m|1h>/date=YYYY-MM-DD/cluster=<id>/<from>_<to>.parquet`
//! (times as `YYYYMMDDTHHMMSSZ`, UTC). A 1-minute file holds one hour of one cluster, rolled
//! from the raw samples once the hour is over (and late samples have had time to arrive); a
//! 1-hour file holds one day of one cluster, rolled from that day's 1-minute files. A file
//! is named by the range it holds and its content depends only on the samples, so rolling a
//! range again (after a restart in the middle of one) writes the same file; what is already
//! rolled is derived from the file names. Rows are sorted by metric, stream, consumer and
//! time, so a reader skips the row groups of other metrics and streams by their statistics. The
//! columns are documented in `schema/metrics.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder, UInt64Builder,
};
use arrow::datatypes::{
    DataType, Field, Float64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType, UInt64Type,
};
use async_nats::jetstream::stream;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use tokio_util::sync::CancellationToken;

use jsc_domain::ids::{TokenKind, decode_token, encode_token};

use crate::sample::SUBJECT_PREFIX;
use crate::series::{Aggregate, Metric, SeriesKey, values_in};
use crate::store::{PUBLISH_MARGIN_MS, StoreError, cluster_filter, read_range_after};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// How long after the end of a range it is rolled: samples may be published that late.
pub const GRACE_MS: i64 = PUBLISH_MARGIN_MS + MINUTE_MS;

/// A roll-up's resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    Minute,
    Hour,
}

impl Resolution {
    pub const ALL: [Resolution; 2] = [Resolution::Minute, Resolution::Hour];

    /// How long one row summarises.
    pub fn bucket_ms(self) -> i64 {
        match self {
            Self::Minute => MINUTE_MS,
            Self::Hour => HOUR_MS,
        }
    }

    /// How long one file holds.
    pub fn file_ms(self) -> i64 {
        match self {
            Self::Minute => HOUR_MS,
            Self::Hour => DAY_MS,
        }
    }

    pub fn dir(self) -> &'static str {
        match self {
            Self::Minute => "1m",
            Self::Hour => "1h",
        }
    }
}

/// How long each resolution is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupRetention {
    pub minute: Duration,
    pub hour: Duration,
}

impl Default for RollupRetention {
    fn default() -> Self {
        Self {
            minute: Duration::from_secs(14 * 86_400),
            hour: Duration::from_secs(400 * 86_400),
        }
    }
}

impl RollupRetention {
    pub fn of(&self, r: Resolution) -> Duration {
        match r {
            Resolution::Minute => self.minute,
            Resolution::Hour => self.hour,
        }
    }
}

/// What can go wrong rolling up or reading roll-ups.
#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the metrics roll-ups on the object store are unavailable ({path}): {source}; check the object store")]
    Object {
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("the roll-up file {path} cannot be read or written: {reason}")]
    File { path: String, reason: String },
}

fn object(path: &Path) -> impl FnOnce(object_store::Error) -> RollupError + '_ {
    move |source| RollupError::Object {
        path: path.to_string(),
        source,
    }
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> RollupError {
    RollupError::File {
        path: path.to_string(),
        reason: e.to_string(),
    }
}

const STAMP: &str = "%Y%m%dT%H%M%SZ";

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The file of `cluster_id`'s roll-up at `resolution` over `from_ms..to_ms`.
pub fn file_path(resolution: Resolution, cluster_id: &str, from_ms: i64, to_ms: i64) -> Path {
    let from = utc(from_ms);
    Path::from(format!(
        "metrics/resolution={}/date={}/cluster={}/{}_{}.parquet",
        resolution.dir(),
        from.date_naive(),
        encode_token(cluster_id, TokenKind::Subject),
        from.format(STAMP),
        utc(to_ms).format(STAMP),
    ))
}

/// One roll-up file, as its name describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupFile {
    pub resolution: Resolution,
    pub cluster_id: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub path: Path,
}

/// Reads a roll-up file's name; `None` for anything else (a staging file, another table).
pub fn parse_file(path: &Path) -> Option<RollupFile> {
    let parts: Vec<_> = path.parts().map(|p| p.as_ref().to_string()).collect();
    let [root, resolution, _date, cluster, name] = parts.as_slice() else {
        return None;
    };
    if root != "metrics" {
        return None;
    }
    let resolution = match resolution.strip_prefix("resolution=")? {
        "1m" => Resolution::Minute,
        "1h" => Resolution::Hour,
        _ => return None,
    };
    let cluster_id = decode_token(&percent_decode(cluster.strip_prefix("cluster=")?)?, TokenKind::Subject)?;
    let (from, to) = name.strip_suffix(".parquet")?.split_once('_')?;
    let stamp = |s: &str| {
        chrono::NaiveDateTime::parse_from_str(s, STAMP)
            .ok()
            .map(|t| t.and_utc().timestamp_millis())
    };
    Some(RollupFile {
        resolution,
        cluster_id,
        from_ms: stamp(from)?,
        to_ms: stamp(to)?,
        path: path.clone(),
    })
}

/// A path part as written: the object store escapes what paths may not hold (`%7E`).
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// One row of a roll-up: a series over one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: SeriesKey,
    /// Where the bucket starts.
    pub at_ms: i64,
    /// When its last sample was taken.
    pub last_at_ms: i64,
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub last: f64,
}

/// The roll-up table's columns, in order (see `schema/metrics.md`).
pub fn schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("cluster", DataType::Utf8, false),
        Field::new("stream", DataType::Utf8, true),
        Field::new("consumer", DataType::Utf8, true),
        Field::new("metric", DataType::Utf8, false),
        Field::new("time", ts(), false),
        Field::new("last_time", ts(), false),
        Field::new("count", DataType::UInt64, false),
        Field::new("min", DataType::Float64, false),
        Field::new("max", DataType::Float64, false),
        Field::new("avg", DataType::Float64, false),
        Field::new("last", DataType::Float64, false),
    ]))
}

/// A row's place in a file: metric name, stream, consumer, bucket.
type RowOrder = (&'static str, Option<String>, Option<String>, i64);

/// Sums samples (or finer rows) into buckets of one resolution.
#[derive(Default)]
struct Acc {
    rows: BTreeMap<RowOrder, (Metric, Aggregate)>,
}

impl Acc {
    #[allow(clippy::too_many_arguments)]
    fn add(&mut self, key: &SeriesKey, bucket: i64, at: i64, count: u64, min: f64, max: f64, avg: f64, last: f64) {
        if count == 0 || !avg.is_finite() {
            return;
        }
        let k = (key.metric.name(), key.stream.clone(), key.consumer.clone(), bucket);
        let (_, a) = self.rows.entry(k).or_insert((key.metric, Aggregate::EMPTY));
        a.add(at, min, max, avg, last, count);
    }

    fn rows(self, cluster_id: &str) -> Vec<Row> {
        self.rows
            .into_iter()
            .map(|((_, stream, consumer, at_ms), (metric, a))| Row {
                key: SeriesKey {
                    metric,
                    cluster_id: cluster_id.to_string(),
                    stream,
                    consumer,
                },
                at_ms,
                last_at_ms: a.last_at,
                count: a.count,
                min: a.min,
                max: a.max,
                avg: a.avg(),
                last: a.last,
            })
            .collect()
    }
}

fn floor(ms: i64, unit: i64) -> i64 {
    ms.div_euclid(unit) * unit
}

fn rows_to_batch(rows: &[Row]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let n = rows.len();
    let mut cluster = StringBuilder::new();
    let mut stream = StringBuilder::new();
    let mut consumer = StringBuilder::new();
    let mut metric = StringBuilder::new();
    let mut time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut last_time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut count = UInt64Builder::with_capacity(n);
    let mut floats: [Float64Builder; 4] = std::array::from_fn(|_| Float64Builder::with_capacity(n));
    for r in rows {
        cluster.append_value(&r.key.cluster_id);
        stream.append_option(r.key.stream.as_deref());
        consumer.append_option(r.key.consumer.as_deref());
        metric.append_value(r.key.metric.name());
        time.append_value(r.at_ms);
        last_time.append_value(r.last_at_ms);
        count.append_value(r.count);
        for (b, v) in floats.iter_mut().zip([r.min, r.max, r.avg, r.last]) {
            b.append_value(v);
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(cluster.finish()),
        Arc::new(stream.finish()),
        Arc::new(consumer.finish()),
        Arc::new(metric.finish()),
        Arc::new(time.finish()),
        Arc::new(last_time.finish()),
        Arc::new(count.finish()),
    ];
    columns.extend(floats.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    RecordBatch::try_new(schema(), columns)
}

/// Which rows a reader wants, asked before a row is built: (metric, stream, consumer).
pub trait Wanted: Sync {
    fn wants(&self, metric: &str, stream: Option<&str>, consumer: Option<&str>) -> bool;
}

/// Every row.
pub struct All;

impl Wanted for All {
    fn wants(&self, _: &str, _: Option<&str>, _: Option<&str>) -> bool {
        true
    }
}

fn batch_to_rows(batch: &RecordBatch, keep: &dyn Wanted, out: &mut Vec<Row>) -> Option<()> {
    let text = |i: usize| batch.column(i).as_string_opt::<i32>();
    let (cluster, stream, consumer, metric) = (text(0)?, text(1)?, text(2)?, text(3)?);
    let time = batch.column(4).as_primitive_opt::<TimestampMillisecondType>()?;
    let last_time = batch.column(5).as_primitive_opt::<TimestampMillisecondType>()?;
    let count = batch.column(6).as_primitive_opt::<UInt64Type>()?;
    let f = |i: usize| batch.column(i).as_primitive_opt::<Float64Type>();
    let (min, max, avg, last) = (f(7)?, f(8)?, f(9)?, f(10)?);
    fn opt(a: &arrow::array::StringArray, i: usize) -> Option<&str> {
        (!a.is_null(i)).then(|| a.value(i))
    }
    for i in 0..batch.num_rows() {
        let (s, c) = (opt(stream, i), opt(consumer, i));
        if !keep.wants(metric.value(i), s, c) {
            continue;
        }
        // A metric this version does not know (written by a newer one) is skipped.
        let Some(m) = Metric::from_name(metric.value(i)) else {
            continue;
        };
        let key = SeriesKey {
            metric: m,
            cluster_id: cluster.value(i).to_string(),
            stream: s.map(str::to_string),
            consumer: c.map(str::to_string),
        };
        {
            out.push(Row {
                key,
                at_ms: time.value(i),
                last_at_ms: last_time.value(i),
                count: count.value(i),
                min: min.value(i),
                max: max.value(i),
                avg: avg.value(i),
                last: last.value(i),
            });
        }
    }
    Some(())
}

/// What a reader looks for, to skip row groups by their statistics: metric names, and
/// stream names (`None`: a cluster series).
pub struct Prune {
    pub metrics: BTreeSet<Option<String>>,
    pub streams: BTreeSet<Option<String>>,
}

impl Prune {
    /// An empty set of streams takes any stream.
    fn may_hold(&self, g: &parquet::file::metadata::RowGroupMetaData) -> bool {
        may_hold(g.column(3).statistics(), &self.metrics)
            && (self.streams.is_empty() || may_hold(g.column(1).statistics(), &self.streams))
    }
}

/// Rows of some metrics, whatever the series.
struct Metrics<'a>(&'a BTreeSet<Metric>);

impl Wanted for Metrics<'_> {
    fn wants(&self, metric: &str, _: Option<&str>, _: Option<&str>) -> bool {
        Metric::from_name(metric).is_some_and(|m| self.0.contains(&m))
    }
}

/// Decoded rows of roll-up files, by file and metric. A file never changes once written
/// (a roll-up is named by its range and written whole), and charts ask for the same ranges
/// again and again: the second query of a day reads no file.
#[derive(Default)]
struct RowCache {
    entries: HashMap<(Path, Metric), Arc<Vec<Row>>>,
    order: std::collections::VecDeque<(Path, Metric)>,
    rows: usize,
}

/// Rows kept in [`RowCache`] at most (about 150 bytes each: some 30 MiB), oldest dropped first.
const CACHE_ROWS: usize = 200_000;

impl RowCache {
    fn get(&self, k: &(Path, Metric)) -> Option<Arc<Vec<Row>>> {
        self.entries.get(k).cloned()
    }

    fn put(&mut self, k: (Path, Metric), rows: Arc<Vec<Row>>) {
        if rows.len() > CACHE_ROWS || self.entries.contains_key(&k) {
            return;
        }
        self.rows += rows.len();
        self.entries.insert(k.clone(), rows);
        self.order.push_back(k);
        while self.rows > CACHE_ROWS {
            let Some(old) = self.order.pop_front() else { break };
            if let Some(r) = self.entries.remove(&old) {
                self.rows -= r.len();
            }
        }
    }
}

/// Whether a column chunk may hold one of `values` (`None`: null), by its statistics.
fn may_hold(stats: Option<&Statistics>, streams: &BTreeSet<Option<String>>) -> bool {
    let Some(Statistics::ByteArray(s)) = stats else {
        return true;
    };
    let nulls = s.null_count_opt().is_none_or(|n| n > 0);
    let (Some(lo), Some(hi)) = (s.min_opt(), s.max_opt()) else {
        return streams.contains(&None) && nulls;
    };
    streams.iter().any(|name| match name {
        None => nulls,
        Some(n) => lo.data() <= n.as_bytes() && n.as_bytes() <= hi.data(),
    })
}

/// Rolls up the metrics stream and reads the roll-ups.
pub struct Rollups {
    pub store: Arc<dyn ObjectStore>,
    pub stream: stream::Stream,
    /// How long the metrics stream keeps raw samples: nothing older is there to roll.
    pub raw_age: Duration,
    pub retention: RollupRetention,
    /// Ranges found empty, so each is read once: (resolution, cluster) → rolled up to.
    empty: Mutex<HashMap<(Resolution, String), i64>>,
    cache: Mutex<RowCache>,
}

/// What one [`Rollups::catch_up`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub written: Vec<Path>,
    pub deleted: Vec<Path>,
}

impl Rollups {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        stream: stream::Stream,
        raw_age: Duration,
        retention: RollupRetention,
    ) -> Self {
        Self {
            store,
            stream,
            raw_age,
            retention,
            empty: Default::default(),
            cache: Default::default(),
        }
    }

    /// Every roll-up file, by resolution and cluster, oldest first.
    pub async fn files(&self) -> Result<Vec<RollupFile>, RollupError> {
        let prefix = Path::from("metrics");
        let mut files = Vec::new();
        let mut list = self.store.list(Some(&prefix));
        while let Some(meta) = list.next().await {
            let meta = meta.map_err(object(&prefix))?;
            files.extend(parse_file(&meta.location));
        }
        files.sort_by(|a, b| (a.resolution, &a.cluster_id, a.from_ms).cmp(&(b.resolution, &b.cluster_id, b.from_ms)));
        Ok(files)
    }

    /// The clusters the metrics stream holds samples of.
    async fn sampled_clusters(&self) -> Result<BTreeSet<String>, RollupError> {
        let filter = format!("{SUBJECT_PREFIX}.*.cluster");
        let unavailable = |e: String| RollupError::Store(StoreError::Unavailable(e));
        let mut subjects = self
            .stream
            .info_with_subjects(&filter)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let mut out = BTreeSet::new();
        while let Some(s) = subjects.next().await {
            let (subject, _) = s.map_err(|e| unavailable(e.to_string()))?;
            if let Some(id) = subject
                .strip_prefix(&format!("{SUBJECT_PREFIX}."))
                .and_then(|r| r.strip_suffix(".cluster"))
                .and_then(|t| decode_token(t, TokenKind::Subject))
            {
                out.insert(id);
            }
        }
        Ok(out)
    }

    /// Rolls every range that is over as of `now_ms` and not rolled yet, for every cluster,
    /// then deletes the files older than their resolution's retention.
    pub async fn catch_up(&self, now_ms: i64) -> Result<Report, RollupError> {
        let mut report = Report::default();
        let files = self.files().await?;
        let mut clusters = self.sampled_clusters().await?;
        clusters.extend(files.iter().map(|f| f.cluster_id.clone()));
        let raw_from = floor(now_ms - self.raw_age.as_millis() as i64, HOUR_MS);
        for cluster in &clusters {
            let rolled = |r: Resolution| {
                let done = files
                    .iter()
                    .filter(|f| f.resolution == r && f.cluster_id == *cluster)
                    .map(|f| f.to_ms)
                    .max();
                let empty = self.empty.lock().unwrap().get(&(r, cluster.clone())).copied();
                done.max(empty)
            };
            // Minutes, an hour per file, from the raw samples.
            let mut from = rolled(Resolution::Minute).unwrap_or(raw_from).max(raw_from);
            // Each hour read on from where the one before stopped.
            let mut start_seq = None;
            while from + HOUR_MS + GRACE_MS <= now_ms {
                let (written, next) = self.roll_minutes_after(cluster, from, start_seq).await?;
                if let Some(path) = written {
                    report.written.push(path);
                }
                start_seq = next;
                self.mark(Resolution::Minute, cluster, from + HOUR_MS);
                from += HOUR_MS;
            }
            let minutes_to = from;
            // Hours, a day per file, from the day's minute files.
            let first_minute = files
                .iter()
                .filter(|f| f.resolution == Resolution::Minute && f.cluster_id == *cluster)
                .map(|f| f.from_ms)
                .min()
                .unwrap_or(raw_from);
            let mut day = rolled(Resolution::Hour).unwrap_or(floor(first_minute, DAY_MS));
            while day + DAY_MS <= minutes_to && day + DAY_MS + GRACE_MS <= now_ms {
                if let Some(path) = self.roll_hours(cluster, day).await? {
                    report.written.push(path);
                }
                self.mark(Resolution::Hour, cluster, day + DAY_MS);
                day += DAY_MS;
            }
        }
        for f in &files {
            if f.to_ms < now_ms - self.retention.of(f.resolution).as_millis() as i64 {
                self.store.delete(&f.path).await.map_err(object(&f.path))?;
                report.deleted.push(f.path.clone());
            }
        }
        if !report.written.is_empty() || !report.deleted.is_empty() {
            tracing::debug!(
                written = report.written.len(),
                deleted = report.deleted.len(),
                "metrics roll-ups"
            );
        }
        Ok(report)
    }

    fn mark(&self, r: Resolution, cluster: &str, to: i64) {
        let mut empty = self.empty.lock().unwrap();
        let e = empty.entry((r, cluster.to_string())).or_insert(to);
        *e = (*e).max(to);
    }

    /// Rolls one hour of one cluster's raw samples into minutes; `None` when it had none.
    pub async fn roll_minutes(&self, cluster_id: &str, from_ms: i64) -> Result<Option<Path>, RollupError> {
        Ok(self.roll_minutes_after(cluster_id, from_ms, None).await?.0)
    }

    /// [`Self::roll_minutes`], reading from stream sequence `start_seq` when given (what the
    /// hour before answered); answers where the next hour's samples start.
    async fn roll_minutes_after(
        &self,
        cluster_id: &str,
        from_ms: i64,
        start_seq: Option<u64>,
    ) -> Result<(Option<Path>, Option<u64>), RollupError> {
        let to_ms = from_ms + HOUR_MS;
        let (records, next) =
            read_range_after(&self.stream, &cluster_filter(cluster_id), from_ms, to_ms - 1, start_seq).await?;
        let mut acc = Acc::default();
        for r in &records {
            for (key, at, v) in values_in(r) {
                acc.add(&key, floor(at, MINUTE_MS), at, 1, v, v, v, v);
            }
        }
        let written = self
            .write(Resolution::Minute, cluster_id, from_ms, to_ms, acc.rows(cluster_id))
            .await?;
        Ok((written, next))
    }

    /// Rolls one day of one cluster's minute files into hours; `None` when it had none.
    pub async fn roll_hours(&self, cluster_id: &str, day_ms: i64) -> Result<Option<Path>, RollupError> {
        let to_ms = day_ms + DAY_MS;
        let files = self.files_of(Resolution::Minute, cluster_id, day_ms, to_ms).await?;
        let rows = self.read_rows(&files, day_ms, to_ms, &All, None).await?;
        let mut acc = Acc::default();
        for r in &rows {
            acc.add(
                &r.key,
                floor(r.at_ms, HOUR_MS),
                r.last_at_ms,
                r.count,
                r.min,
                r.max,
                r.avg,
                r.last,
            );
        }
        self.write(Resolution::Hour, cluster_id, day_ms, to_ms, acc.rows(cluster_id))
            .await
    }

    async fn write(
        &self,
        resolution: Resolution,
        cluster_id: &str,
        from_ms: i64,
        to_ms: i64,
        rows: Vec<Row>,
    ) -> Result<Option<Path>, RollupError> {
        if rows.is_empty() {
            return Ok(None);
        }
        let path = file_path(resolution, cluster_id, from_ms, to_ms);
        let batch = rows_to_batch(&rows).map_err(|e| file_error(&path, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).map_err(|e| file_error(&path, e))?,
            ))
            .set_max_row_group_row_count(Some(4_096))
            .build();
        // The buffered writer puts the file whole (or completes a multipart upload) at
        // close: a reader never sees half a file, and a crash before leaves none.
        let sink = object_store::buffered::BufWriter::new(self.store.clone(), path.clone());
        let mut writer = AsyncArrowWriter::try_new(sink, schema(), Some(props)).map_err(|e| file_error(&path, e))?;
        writer.write(&batch).await.map_err(|e| file_error(&path, e))?;
        writer.close().await.map_err(|e| file_error(&path, e))?;
        tracing::debug!(%path, rows = rows.len(), "metrics roll-up written");
        metrics::counter!("jsconsole_metrics_rollups_written_total", "resolution" => resolution.dir()).increment(1);
        Ok(Some(path))
    }

    /// The rows in `files` (of one resolution, from [`Rollups::files_of`]) within
    /// `from_ms..to_ms` whose series `keep` accepts; `prune` (when given) skips row groups by
    /// their statistics.
    async fn read_rows(
        &self,
        files: &[RollupFile],
        from_ms: i64,
        to_ms: i64,
        keep: &dyn Wanted,
        prune: Option<&Prune>,
    ) -> Result<Vec<Row>, RollupError> {
        let mut out = Vec::new();
        let Some(resolution) = files.first().map(|f| f.resolution) else {
            return Ok(out);
        };
        for f in files {
            let bytes = self
                .store
                .get(&f.path)
                .await
                .map_err(object(&f.path))?
                .bytes()
                .await
                .map_err(object(&f.path))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| file_error(&f.path, e))?;
            let groups: Vec<usize> = builder
                .metadata()
                .row_groups()
                .iter()
                .enumerate()
                .filter(|(_, g)| prune.is_none_or(|p| p.may_hold(g)))
                .map(|(i, _)| i)
                .collect();
            let reader = builder
                .with_row_groups(groups)
                .build()
                .map_err(|e| file_error(&f.path, e))?;
            for batch in reader {
                let batch = batch.map_err(|e| file_error(&f.path, e))?;
                batch_to_rows(&batch, keep, &mut out)
                    .ok_or_else(|| file_error(&f.path, "its columns are not the roll-up table's"))?;
            }
        }
        out.retain(|r| r.at_ms + resolution.bucket_ms() > from_ms && r.at_ms < to_ms);
        Ok(out)
    }

    async fn files_of(
        &self,
        resolution: Resolution,
        cluster_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RollupFile>, RollupError> {
        // Only the days of the range are listed, and none older than the retention.
        let kept_from = Utc::now().timestamp_millis() - self.retention.of(resolution).as_millis() as i64 - DAY_MS;
        let mut out = Vec::new();
        let mut day = floor(from_ms.max(kept_from), DAY_MS);
        while day < to_ms {
            let date: NaiveDate = utc(day).date_naive();
            let prefix = Path::from(format!(
                "metrics/resolution={}/date={date}/cluster={}",
                resolution.dir(),
                encode_token(cluster_id, TokenKind::Subject)
            ));
            let mut list = self.store.list(Some(&prefix));
            while let Some(meta) = list.next().await {
                let meta = meta.map_err(object(&prefix))?;
                if let Some(f) = parse_file(&meta.location)
                    && f.from_ms < to_ms
                    && f.to_ms > from_ms
                {
                    out.push(f);
                }
            }
            day += DAY_MS;
        }
        out.sort_by_key(|f| f.from_ms);
        Ok(out)
    }

    /// Hands `f` each row of each of `series` at `resolution` over `from_ms..to_ms`, with
    /// the series' index in `series`; answers how far the roll-up reaches: the end of the
    /// last file read (`from_ms` when there is none), after which the caller reads a finer
    /// resolution. Rows of a file are decoded once per metric and kept sorted by series (see
    /// [`RowCache`]), so a series' rows are found by search: a query of a few series of a
    /// cluster with thousands costs what its own rows cost.
    pub async fn read_each(
        &self,
        resolution: Resolution,
        series: &[SeriesKey],
        from_ms: i64,
        to_ms: i64,
        mut f: impl FnMut(usize, &Row),
    ) -> Result<i64, RollupError> {
        let mut by_cluster: BTreeMap<&str, BTreeSet<Metric>> = BTreeMap::new();
        for s in series {
            by_cluster.entry(&s.cluster_id).or_default().insert(s.metric);
        }
        let mut reach = i64::MAX;
        for (cluster, metrics) in by_cluster {
            let files = self.files_of(resolution, cluster, from_ms, to_ms).await?;
            reach = reach.min(files.iter().map(|f| f.to_ms).max().unwrap_or(from_ms));
            for file in &files {
                // The metrics this file has not been read for yet are read in one pass.
                let mut rows_of: BTreeMap<Metric, Arc<Vec<Row>>> = BTreeMap::new();
                let mut missing = BTreeSet::new();
                {
                    let cache = self.cache.lock().expect("row cache");
                    for m in &metrics {
                        match cache.get(&(file.path.clone(), *m)) {
                            Some(rows) => {
                                rows_of.insert(*m, rows);
                            }
                            None => {
                                missing.insert(*m);
                            }
                        }
                    }
                }
                if !missing.is_empty() {
                    let prune = Prune {
                        metrics: missing.iter().map(|m| Some(m.name().to_string())).collect(),
                        streams: BTreeSet::new(),
                    };
                    let read = self
                        .read_rows(
                            std::slice::from_ref(file),
                            i64::MIN / 2,
                            i64::MAX / 2,
                            &Metrics(&missing),
                            Some(&prune),
                        )
                        .await?;
                    let mut split: BTreeMap<Metric, Vec<Row>> = missing.iter().map(|m| (*m, Vec::new())).collect();
                    for r in read {
                        split.entry(r.key.metric).or_default().push(r);
                    }
                    let mut cache = self.cache.lock().expect("row cache");
                    for (m, mut rows) in split {
                        rows.sort_by(|a, b| a.key.cmp(&b.key).then(a.at_ms.cmp(&b.at_ms)));
                        let rows = Arc::new(rows);
                        cache.put((file.path.clone(), m), rows.clone());
                        rows_of.insert(m, rows);
                    }
                }
                for (i, key) in series.iter().enumerate().filter(|(_, k)| k.cluster_id == cluster) {
                    let Some(rows) = rows_of.get(&key.metric) else {
                        continue;
                    };
                    let start = rows.partition_point(|r| r.key < *key);
                    let of_key = rows[start..].partition_point(|r| r.key == *key);
                    for r in &rows[start..start + of_key] {
                        if r.at_ms + resolution.bucket_ms() > from_ms && r.at_ms < to_ms {
                            f(i, r);
                        }
                    }
                }
            }
        }
        Ok(if reach == i64::MAX { from_ms } else { reach })
    }

    /// Rolls up as ranges end, until `shutdown`: at start (catching up on what a restart
    /// missed), then after every hour. A failure is logged and tried again in a minute.
    pub async fn run(&self, shutdown: CancellationToken) {
        loop {
            let now = Utc::now().timestamp_millis();
            let wait = match self.catch_up(now).await {
                Ok(_) => next_due(now),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics roll-up failed; trying again in a minute");
                    MINUTE_MS
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            }
        }
    }
}

/// Milliseconds from `now_ms` until the next hour can be rolled.
pub fn next_due(now_ms: i64) -> i64 {
    let due = floor(now_ms - GRACE_MS, HOUR_MS) + HOUR_MS + GRACE_MS;
    (due - now_ms).max(1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        let from = 1_764_633_600_000; // 2025-12-02T00:00:00Z
        let p = file_path(Resolution::Minute, "cl.1 x", from, from + HOUR_MS);
        assert_eq!(
            p.as_ref().split('/').take(3).collect::<Vec<_>>(),
            ["metrics", "resolution=1m", "date=2025-12-02"]
        );
        assert!(
            p.as_ref().ends_with("/20251202T000000Z_20251202T010000Z.parquet"),
            "{p}"
        );
        let f = parse_file(&p).unwrap();
        assert_eq!((f.resolution, f.cluster_id.as_str()), (Resolution::Minute, "cl.1 x"));
        assert_eq!((f.from_ms, f.to_ms), (from, from + HOUR_MS));
        assert_eq!(parse_file(&Path::from("metrics/resolution=1m/x.parquet")), None);
        assert_eq!(parse_file(&Path::from("audit/date=2025-12-02/part-1-2.parquet")), None);
    }

    #[test]
    fn the_next_roll_is_after_the_hour_and_its_grace() {
        let hour = 1_764_633_600_000;
        assert_eq!(next_due(hour), GRACE_MS);
        assert_eq!(next_due(hour + GRACE_MS), HOUR_MS);
        assert_eq!(next_due(hour + GRACE_MS + 1), HOUR_MS - 1);
    }

    #[test]
    fn rows_survive_a_batch() {
        let key = |stream: Option<&str>| SeriesKey {
            metric: Metric::StreamMessages,
            cluster_id: "c".into(),
            stream: stream.map(Into::into),
            consumer: None,
        };
        let mut acc = Acc::default();
        acc.add(&key(Some("B")), 0, 10, 1, 2.0, 2.0, 2.0, 2.0);
        acc.add(&key(Some("B")), 0, 20, 1, 4.0, 4.0, 4.0, 4.0);
        acc.add(&key(Some("A")), 60_000, 61_000, 3, 1.0, 9.0, 5.0, 7.0);
        acc.add(&key(Some("A")), 60_000, 61_000, 1, 1.0, 1.0, f64::NAN, 1.0);
        let rows = acc.rows("c");
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].key.stream.as_deref(),
            Some("A"),
            "sorted by metric, then stream"
        );
        assert_eq!((rows[1].avg, rows[1].last, rows[1].count), (3.0, 4.0, 2));
        let batch = rows_to_batch(&rows).unwrap();
        let mut back = Vec::new();
        struct OnlyB;
        impl Wanted for OnlyB {
            fn wants(&self, _: &str, stream: Option<&str>, _: Option<&str>) -> bool {
                stream == Some("B")
            }
        }
        batch_to_rows(&batch, &OnlyB, &mut back).unwrap();
        assert_eq!(back, vec![rows[1].clone()]);
    }
}
