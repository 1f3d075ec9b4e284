//! The `CONSOLE_METRICS` stream on the home NATS: observations, not events. It keeps raw
//! samples for its own retention (24 h by default, and a byte cap), compressed where the
//! server can (2.10+), and deduplicates a sample published twice (a retry) by its id.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use jsc_eventstore::HomeStorage;

use crate::sample::{Record, SUBJECT_PREFIX, Snapshot, cluster_subject, encode, stream_subject};

pub const METRICS_STREAM: &str = "CONSOLE_METRICS";

/// How long and how much of the raw samples the stream keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRetention {
    pub max_age: Duration,
    /// Bytes at most (oldest samples go first); -1 for no cap.
    pub max_bytes: i64,
}

impl Default for RawRetention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(24 * 3600),
            max_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// Why the metrics stream could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the metrics stream {METRICS_STREAM} is unavailable: {0}; check the home NATS")]
    Unavailable(String),
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Creates the metrics stream, or brings its retention to `retention` (idempotent).
pub async fn ensure_stream(home: &HomeStorage, retention: RawRetention) -> Result<stream::Stream, StoreError> {
    let (major, minor) = jsc_fleet::admin::server_version(&home.jetstream().client());
    let config = stream::Config {
        name: METRICS_STREAM.to_string(),
        description: Some("JetStream Console: samples of the managed clusters (observations, not events)".into()),
        subjects: vec![format!("{SUBJECT_PREFIX}.>")],
        max_age: retention.max_age,
        max_bytes: retention.max_bytes,
        discard: stream::DiscardPolicy::Old,
        storage: stream::StorageType::File,
        allow_direct: true,
        duplicate_window: Duration::from_secs(120).min(retention.max_age),
        compression: ((major, minor) >= (2, 10)).then_some(stream::Compression::S2),
        ..Default::default()
    };
    home.stream_updated(config).await.map_err(unavailable)
}

/// Publishes a snapshot: every stream's sample, then the cluster's (which says the sample
/// is whole). Waits for every acknowledgement.
pub async fn publish(js: &jetstream::Context, snapshot: &Snapshot) -> Result<(), StoreError> {
    let cluster = &snapshot.cluster;
    let id = |what: &str| {
        let mut h = HeaderMap::new();
        h.insert(
            "Nats-Msg-Id",
            format!("{}:{}:{what}", cluster.cluster_id, cluster.at_ms).as_str(),
        );
        h
    };
    let mut acks = futures::stream::FuturesUnordered::new();
    for (name, s) in &snapshot.streams {
        let ack = js
            .publish_with_headers(stream_subject(&cluster.cluster_id, name), id(name), encode(s).into())
            .await
            .map_err(unavailable)?;
        acks.push(ack.into_future());
    }
    while let Some(ack) = acks.next().await {
        ack.map_err(unavailable)?;
    }
    js.publish_with_headers(cluster_subject(&cluster.cluster_id), id(""), encode(cluster).into())
        .await
        .map_err(unavailable)?
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// An ordered consumer's messages on `filter` (a subject or a wildcard) from `deliver` on.
async fn ordered_messages(
    stream: &stream::Stream,
    filter: &str,
    deliver: consumer::DeliverPolicy,
) -> Result<consumer::pull::Ordered, StoreError> {
    stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter.to_string(),
            deliver_policy: deliver,
            ..Default::default()
        })
        .await
        .map_err(unavailable)?
        .messages()
        .await
        .map_err(unavailable)
}

/// Delivery from the messages published at `ms` (since the epoch) on.
fn from_time(ms: i64) -> consumer::DeliverPolicy {
    consumer::DeliverPolicy::ByStartTime {
        start_time: time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    }
}

/// How long reading one range may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How much later than its sample time a sample may be published (a slow cluster, a retry).
pub const PUBLISH_MARGIN_MS: i64 = 120_000;

/// The subjects of every sample of one cluster.
pub fn cluster_filter(cluster_id: &str) -> String {
    let subject = cluster_subject(cluster_id);
    format!("{}.>", subject.strip_suffix(".cluster").unwrap_or(&subject))
}

/// The samples on `filter` (a subject, or a wildcard such as [`cluster_filter`]) taken from
/// `from_ms` to `to_ms` (ms since the epoch, by the time the sample was taken), in the
/// order they were published.
pub async fn read_range(
    stream: &stream::Stream,
    filter: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Record>, StoreError> {
    Ok(read_range_after(stream, filter, from_ms, to_ms, None).await?.0)
}

/// [`read_range`], starting at stream sequence `start_seq` when given (where the read of the
/// range before this one said the next begins) rather than by publish time. Also answers
/// that sequence for the range after this one: the first message read that was taken after
/// `to_ms` (`u64::MAX` when the filter has nothing after the range yet, so that a later range
/// that is over is known empty without a read). Reading consecutive ranges so is linear,
/// whenever their samples were published (by time, a backlog published at once would be
/// read from its start for every range).
pub async fn read_range_after(
    stream: &stream::Stream,
    filter: &str,
    from_ms: i64,
    to_ms: i64,
    start_seq: Option<u64>,
) -> Result<(Vec<Record>, Option<u64>), StoreError> {
    // The last message tells whether there is anything from `from` on: an ordered consumer
    // over an empty range would wait for a message that never comes.
    let (last_published, last_seq) = if filter.contains(['*', '>']) {
        let info = stream.get_info().await.map_err(unavailable)?;
        if info.state.messages == 0 {
            return Ok((Vec::new(), start_seq));
        }
        (info.state.last_timestamp, info.state.last_sequence)
    } else {
        match stream.direct_get_last_for_subject(filter).await {
            Ok(last) => (last.time, last.sequence),
            Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => return Ok((Vec::new(), start_seq)),
            Err(e) => return Err(unavailable(e)),
        }
    };
    if ((last_published.unix_timestamp_nanos() / 1_000_000) as i64) < from_ms || start_seq.is_some_and(|s| s > last_seq)
    {
        return Ok((Vec::new(), start_seq));
    }
    let read = async {
        let deliver = match start_seq {
            Some(start_sequence) => consumer::DeliverPolicy::ByStartSequence { start_sequence },
            None => from_time((from_ms - PUBLISH_MARGIN_MS).max(0)),
        };
        let mut messages = ordered_messages(stream, filter, deliver).await?;
        let mut out = Vec::new();
        let mut next: Option<u64> = None;
        while let Some(m) = messages.next().await {
            let m = m.map_err(unavailable)?;
            let info = m.info().map_err(unavailable)?;
            let pending = info.pending;
            let seq = info.stream_sequence;
            match Record::decode(&m.subject, &m.payload) {
                Ok(r) => {
                    let at = r.at_ms();
                    if at > to_ms && next.is_none() {
                        // Delivered in sequence order: the first such is the next range's start.
                        next = Some(seq);
                    }
                    if (from_ms..=to_ms).contains(&at) {
                        out.push(r);
                    } else if at > to_ms + PUBLISH_MARGIN_MS {
                        // Past the range: a sample of the range is published within the
                        // margin of its time, so before one taken later than that. (Samples
                        // published late at once, as a backlog, are read so too: they may be
                        // out of order by up to the margin, not more.)
                        break;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "skipping an unreadable sample"),
            }
            if pending == 0 {
                // Read to the end of the filter: with no later sample, a later range that is
                // over (past the publish margin) has none either.
                next = Some(next.unwrap_or(u64::MAX));
                break;
            }
        }
        Ok((out, next))
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .map_err(|_| unavailable(format!("reading {filter} took over {READ_TIMEOUT:?}")))?
}

/// The recent samples of the subjects queried lately, so that a query repeated (a chart
/// refreshing, a dashboard) reads from the metrics stream only what was published since the
/// last one, by sequence, instead of the whole range again. Bounded: at most `max_weight`
/// in all (a sample weighs one plus its consumers: a consumer's figures are most of a
/// stream sample's size, about 300 bytes decoded), the least recently used subject dropped
/// first, and no sample older than `keep_ms` (older ones are in the roll-ups).
pub struct TailCache {
    tails: std::sync::Mutex<std::collections::HashMap<String, Tail>>,
    max_weight: usize,
    keep_ms: i64,
}

fn weight(r: &Record) -> usize {
    match r {
        Record::Cluster(_) => 1,
        Record::Stream(_, s) => 1 + s.consumers.len(),
    }
}

struct Tail {
    /// Every sample on the subject taken from `from_ms` on is in `records`.
    from_ms: i64,
    /// The stream sequence of the last message read.
    last_seq: u64,
    records: Vec<std::sync::Arc<Record>>,
    /// The records' weight, kept as they come and go.
    weight: usize,
    used: std::time::Instant,
}

impl TailCache {
    pub fn new(max_weight: usize, keep_ms: i64) -> Self {
        Self {
            tails: Default::default(),
            max_weight,
            keep_ms,
        }
    }

    fn in_range(records: &[std::sync::Arc<Record>], from_ms: i64, to_ms: i64) -> Vec<std::sync::Arc<Record>> {
        records
            .iter()
            .filter(|r| (from_ms..=to_ms).contains(&r.at_ms()))
            .cloned()
            .collect()
    }

    /// The samples on `subject` (one subject, no wildcard) taken from `from_ms` to `to_ms`,
    /// as [`read_range`] gives them, from the cache and what was published since.
    pub async fn read(
        &self,
        stream: &stream::Stream,
        subject: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<std::sync::Arc<Record>>, StoreError> {
        let last = match stream.direct_get_last_for_subject(subject).await {
            Ok(last) => last,
            Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(unavailable(e)),
        };
        let cached = {
            let mut tails = self.tails.lock().unwrap();
            match tails.get_mut(subject).filter(|t| t.from_ms <= from_ms) {
                // Nothing new: all from the cache.
                Some(t) if t.last_seq == last.sequence => {
                    t.used = std::time::Instant::now();
                    return Ok(Self::in_range(&t.records, from_ms, to_ms));
                }
                Some(t) => {
                    t.used = std::time::Instant::now();
                    Some(t.last_seq)
                }
                None => None,
            }
        };
        let start_seq = match cached {
            Some(seq) => seq + 1,
            None => {
                // Everything taken from `from_ms` on, to keep (the query takes its part below),
                // read up to the last message seen above, so that the next read starts after it.
                let published = (last.time.unix_timestamp_nanos() / 1_000_000) as i64;
                let start_ms = (from_ms - PUBLISH_MARGIN_MS).max(0);
                let all = if published < start_ms {
                    Vec::new()
                } else {
                    read_until(stream, subject, from_time(start_ms), last.sequence).await?
                };
                let records: Vec<_> = all
                    .into_iter()
                    .filter(|(_, r)| r.at_ms() >= from_ms)
                    .map(|(_, r)| std::sync::Arc::new(r))
                    .collect();
                let out = Self::in_range(&records, from_ms, to_ms);
                self.store(subject, from_ms, last.sequence, records);
                return Ok(out);
            }
        };
        let from = consumer::DeliverPolicy::ByStartSequence {
            start_sequence: start_seq,
        };
        let new = read_until(stream, subject, from, last.sequence).await?;
        let out = {
            let mut tails = self.tails.lock().unwrap();
            tails.get_mut(subject).map(|t| {
                // Another query may have read some of them meanwhile: each once.
                let seen = t.last_seq;
                for (_, r) in new.into_iter().filter(|(seq, _)| *seq > seen) {
                    t.weight += weight(&r);
                    t.records.push(std::sync::Arc::new(r));
                }
                t.last_seq = t.last_seq.max(last.sequence);
                Self::in_range(&t.records, from_ms, to_ms)
            })
        };
        match out {
            Some(out) => {
                self.trim(subject);
                Ok(out)
            }
            // Dropped meanwhile (the cache was full): read it whole.
            None => Box::pin(self.read(stream, subject, from_ms, to_ms)).await,
        }
    }

    fn store(&self, subject: &str, from_ms: i64, last_seq: u64, records: Vec<std::sync::Arc<Record>>) {
        let weight = records.iter().map(|r| weight(r)).sum();
        self.tails.lock().unwrap().insert(
            subject.to_string(),
            Tail {
                from_ms,
                last_seq,
                records,
                weight,
                used: std::time::Instant::now(),
            },
        );
        self.trim(subject);
    }

    /// Drops the samples of `subject` older than `keep_ms` before its newest (it is the one
    /// that grew), then whole subjects, least recently used first, until at most
    /// `max_weight` remains. Costs the subject's samples and one look per subject, not a walk
    /// of every sample kept.
    fn trim(&self, subject: &str) {
        let mut tails = self.tails.lock().unwrap();
        if let Some(t) = tails.get_mut(subject) {
            let newest = t.records.iter().map(|r| r.at_ms()).max().unwrap_or(t.from_ms);
            let cutoff = newest - self.keep_ms;
            if cutoff > t.from_ms {
                t.records.retain(|r| r.at_ms() >= cutoff);
                t.weight = t.records.iter().map(|r| weight(r)).sum();
                t.from_ms = cutoff;
            }
        }
        let mut total: usize = tails.values().map(|t| t.weight).sum();
        while total > self.max_weight {
            let Some(oldest) = tails.iter().min_by_key(|(_, t)| t.used).map(|(k, _)| k.clone()) else {
                break;
            };
            total -= tails.remove(&oldest).map_or(0, |t| t.weight);
        }
    }
}

/// The samples on `subject` from `from` on, up to and including stream sequence `to_seq`
/// (which must exist on the subject), in order, with their stream sequences.
async fn read_until(
    stream: &stream::Stream,
    subject: &str,
    from: consumer::DeliverPolicy,
    to_seq: u64,
) -> Result<Vec<(u64, Record)>, StoreError> {
    if let consumer::DeliverPolicy::ByStartSequence { start_sequence } = from
        && start_sequence > to_seq
    {
        return Ok(Vec::new());
    }
    let read = async {
        let mut messages = ordered_messages(stream, subject, from).await?;
        let mut out = Vec::new();
        while let Some(m) = messages.next().await {
            let m = m.map_err(unavailable)?;
            let info = m.info().map_err(unavailable)?;
            let (seq, pending) = (info.stream_sequence, info.pending);
            if seq > to_seq {
                break;
            }
            match Record::decode(&m.subject, &m.payload) {
                Ok(r) => out.push((seq, r)),
                Err(e) => tracing::debug!(error = %e, "skipping an unreadable sample"),
            }
            if seq == to_seq || pending == 0 {
                break;
            }
        }
        Ok(out)
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .map_err(|_| unavailable(format!("reading {subject} took over {READ_TIMEOUT:?}")))?
}
