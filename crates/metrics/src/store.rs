//! The `CONSOLE_METRICS` stream on the home NATS: observations, not events. It keeps raw
//! samples for its own retention (24 h by default, and a byte cap), compressed where the
//! server can (2.10+), and deduplicates a sample published twice (a retry) by its id.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;

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
pub async fn ensure_stream(home: &async_nats::Client, retention: RawRetention) -> Result<stream::Stream, StoreError> {
    let js = jetstream::new(home.clone());
    let (major, minor) = jsc_fleet::admin::server_version(home);
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
    js.create_or_update_stream(config).await.map_err(unavailable)?;
    js.get_stream(METRICS_STREAM).await.map_err(unavailable)
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
    // The last message tells whether there is anything from `from` on: an ordered consumer
    // over an empty range would wait for a message that never comes.
    let last_published = if filter.contains(['*', '>']) {
        let info = stream.get_info().await.map_err(unavailable)?;
        if info.state.messages == 0 {
            return Ok(Vec::new());
        }
        info.state.last_timestamp
    } else {
        match stream.direct_get_last_for_subject(filter).await {
            Ok(last) => last.time,
            Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(unavailable(e)),
        }
    };
    if ((last_published.unix_timestamp_nanos() / 1_000_000) as i64) < from_ms {
        return Ok(Vec::new());
    }
    let read = async {
        let start = (from_ms - PUBLISH_MARGIN_MS).max(0);
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: filter.to_string(),
                deliver_policy: consumer::DeliverPolicy::ByStartTime {
                    start_time: time::OffsetDateTime::from_unix_timestamp_nanos(start as i128 * 1_000_000)
                        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
                },
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let mut messages = consumer.messages().await.map_err(unavailable)?;
        let mut out = Vec::new();
        while let Some(m) = messages.next().await {
            let m = m.map_err(unavailable)?;
            let info = m.info().map_err(unavailable)?;
            let pending = info.pending;
            let published = (info.published.unix_timestamp_nanos() / 1_000_000) as i64;
            match Record::decode(&m.subject, &m.payload) {
                Ok(r) => {
                    let at = r.at_ms();
                    if (from_ms..=to_ms).contains(&at) {
                        out.push(r);
                    } else if at > to_ms && published > to_ms + PUBLISH_MARGIN_MS {
                        break;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "skipping an unreadable sample"),
            }
            if pending == 0 {
                break;
            }
        }
        Ok(out)
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .map_err(|_| unavailable(format!("reading {filter} took over {READ_TIMEOUT:?}")))?
}
