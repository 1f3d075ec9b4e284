//! What one sample of a managed cluster holds, and how it travels: a [`ClusterSample`]
//! (server, JetStream health, account usage) and one [`StreamSample`] per stream (with its
//! consumers), each a message on the `CONSOLE_METRICS` stream.
//!
//! One subject per stream (`jsc.metrics.<cluster>.stream.<stream>`) rather than one message
//! per cluster: a sample of 1,000 streams stays far under NATS's payload limit, a query over
//! one stream reads that stream's subject only, and the last message of each subject is the
//! latest state of that stream. The cluster's message is published last and names how many
//! streams its sample holds, so a reader knows when a sample is whole.
//!
//! Samples are MessagePack with field names: compact, and a field added later reads as its
//! default from older samples.

pub use jsc_domain::cluster::AccountUsage;
use jsc_domain::ids::{TokenKind, encode_token};
use serde::{Deserialize, Serialize};

/// Every subject of the metrics stream starts with this.
pub const SUBJECT_PREFIX: &str = "jsc.metrics";

/// The subject of a cluster's own sample.
pub fn cluster_subject(cluster_id: &str) -> String {
    format!(
        "{SUBJECT_PREFIX}.{}.cluster",
        encode_token(cluster_id, TokenKind::Subject)
    )
}

/// The subject of one stream's samples.
pub fn stream_subject(cluster_id: &str, stream: &str) -> String {
    format!(
        "{SUBJECT_PREFIX}.{}.stream.{}",
        encode_token(cluster_id, TokenKind::Subject),
        encode_token(stream, TokenKind::Subject)
    )
}

/// How a sample was read from its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Source {
    /// Paged `STREAM.LIST` and `CONSUMER.LIST` on the console's own connection.
    #[default]
    List,
    /// `$SYS.REQ.SERVER.PING.JSZ` with system-account credentials (every server, leaders only).
    Jsz,
}

/// The server the collector reached, as the exporter labels it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ServerSample {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
    /// The NATS cluster name (`cluster` in the exporter's labels), when clustered.
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub domain: String,
}

/// One sample of a cluster as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClusterSample {
    pub cluster_id: String,
    /// When the sample was taken, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The collector's interval for this cluster.
    pub interval_ms: u64,
    /// Whether the cluster answered.
    pub up: bool,
    /// Whether JetStream answered (account info).
    pub jetstream: bool,
    /// Why the sample is partial or empty, in an operator's words.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub server: ServerSample,
    /// Round trip to the server, microseconds.
    #[serde(default)]
    pub rtt_us: Option<u64>,
    #[serde(default)]
    pub account: Option<AccountUsage>,
    /// How many stream samples belong to this one (published before it).
    pub streams: u32,
    /// How long reading the cluster took, microseconds.
    pub collect_us: u64,
    #[serde(default)]
    pub source: Source,
}

/// One sample of a stream and its consumers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StreamSample {
    pub name: String,
    pub at_ms: i64,
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    #[serde(default)]
    pub first_ts_ms: Option<i64>,
    #[serde(default)]
    pub last_ts_ms: Option<i64>,
    pub subjects: u64,
    pub deleted: u64,
    pub consumer_count: u64,
    /// Limits (-1 or 0: none).
    pub max_msgs: i64,
    pub max_bytes: i64,
    #[serde(default)]
    pub created_ms: Option<i64>,
    #[serde(default)]
    pub replicas: u32,
    #[serde(default)]
    pub leader: Option<jsc_domain::shared::Shared>,
    /// Messages behind the stream it mirrors.
    #[serde(default)]
    pub mirror_lag: Option<u64>,
    /// Messages behind all the streams it sources from.
    #[serde(default)]
    pub source_lag: Option<u64>,
    /// Messages per second and bytes per second stored since the previous sample.
    #[serde(default)]
    pub message_rate: Option<f64>,
    #[serde(default)]
    pub byte_rate: Option<f64>,
    #[serde(default)]
    pub consumers: Vec<ConsumerSample>,
}

/// One sample of a consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConsumerSample {
    pub name: String,
    /// Messages not yet delivered: the lag.
    pub pending: u64,
    pub ack_pending: u64,
    pub redelivered: u64,
    pub waiting: u64,
    pub delivered_consumer_seq: u64,
    pub delivered_stream_seq: u64,
    pub ack_floor_consumer_seq: u64,
    pub ack_floor_stream_seq: u64,
    #[serde(default)]
    pub last_active_ms: Option<i64>,
    #[serde(default)]
    pub created_ms: Option<i64>,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub leader: Option<jsc_domain::shared::Shared>,
    /// Deliveries per second (redeliveries included), acknowledgements per second (the ack
    /// floor's progress) and redeliveries per second, since the previous sample.
    #[serde(default)]
    pub delivery_rate: Option<f64>,
    #[serde(default)]
    pub ack_rate: Option<f64>,
    #[serde(default)]
    pub redelivery_rate: Option<f64>,
    /// Seconds until the lag is worked off at the current acknowledgement rate; `None`
    /// while nothing is acknowledged and something is pending.
    #[serde(default)]
    pub time_to_drain_s: Option<f64>,
}

/// One whole sample of a cluster: its own part and every stream's, by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub cluster: ClusterSample,
    pub streams: std::collections::BTreeMap<String, StreamSample>,
}

/// A message of the metrics stream, either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Cluster(ClusterSample),
    Stream(String, StreamSample),
}

/// Why a message of the metrics stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a metrics subject: {0}")]
    Subject(String),
    #[error("unreadable sample: {0}")]
    Payload(#[from] rmp_serde::decode::Error),
}

pub fn encode<T: Serialize>(sample: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(sample).expect("a sample always encodes")
}

impl Record {
    /// Reads one message of the metrics stream by its subject.
    pub fn decode(subject: &str, payload: &[u8]) -> Result<Self, DecodeError> {
        let rest = subject
            .strip_prefix(SUBJECT_PREFIX)
            .and_then(|r| r.strip_prefix('.'))
            .ok_or_else(|| DecodeError::Subject(subject.to_string()))?;
        let mut parts = rest.splitn(3, '.');
        let cluster = parts.next().unwrap_or_default();
        let cluster_id = jsc_domain::ids::decode_token(cluster, TokenKind::Subject)
            .ok_or_else(|| DecodeError::Subject(subject.to_string()))?;
        match (parts.next(), parts.next()) {
            (Some("cluster"), None) => Ok(Self::Cluster(rmp_serde::from_slice(payload)?)),
            (Some("stream"), Some(_)) => Ok(Self::Stream(cluster_id, rmp_serde::from_slice(payload)?)),
            _ => Err(DecodeError::Subject(subject.to_string())),
        }
    }

    pub fn at_ms(&self) -> i64 {
        match self {
            Self::Cluster(c) => c.at_ms,
            Self::Stream(_, s) => s.at_ms,
        }
    }
}

/// Milliseconds since the epoch of an RFC 3339 time, as the JetStream API writes them.
pub fn parse_ms(t: Option<&str>) -> Option<i64> {
    let t = t?;
    let parsed = chrono::DateTime::parse_from_rfc3339(t).ok()?;
    let ms = parsed.timestamp_millis();
    // The API writes the zero time for "never".
    (ms > 0).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip_through_records() {
        let s = StreamSample {
            name: "ORDERS".into(),
            at_ms: 42,
            ..Default::default()
        };
        let subject = stream_subject("c.1", "ORDERS");
        assert_eq!(subject, "jsc.metrics.c~2E1.stream.ORDERS");
        match Record::decode(&subject, &encode(&s)).unwrap() {
            Record::Stream(cluster, got) => {
                assert_eq!(cluster, "c.1");
                assert_eq!(got, s);
            }
            other => panic!("expected a stream record, got {other:?}"),
        }
        let c = ClusterSample {
            cluster_id: "c.1".into(),
            at_ms: 7,
            ..Default::default()
        };
        assert_eq!(
            Record::decode(&cluster_subject("c.1"), &encode(&c)).unwrap(),
            Record::Cluster(c)
        );
        assert!(Record::decode("jsc.other.x", b"").is_err());
    }

    #[test]
    fn a_field_added_later_reads_as_its_default() {
        #[derive(Serialize)]
        struct Old {
            name: String,
            pending: u64,
            ack_pending: u64,
            redelivered: u64,
            waiting: u64,
            delivered_consumer_seq: u64,
            delivered_stream_seq: u64,
            ack_floor_consumer_seq: u64,
            ack_floor_stream_seq: u64,
        }
        let old = Old {
            name: "c".into(),
            pending: 3,
            ack_pending: 0,
            redelivered: 0,
            waiting: 0,
            delivered_consumer_seq: 1,
            delivered_stream_seq: 1,
            ack_floor_consumer_seq: 1,
            ack_floor_stream_seq: 1,
        };
        let got: ConsumerSample = rmp_serde::from_slice(&encode(&old)).unwrap();
        assert_eq!(got.pending, 3);
        assert_eq!(got.time_to_drain_s, None);
    }

    #[test]
    fn zero_times_are_never() {
        assert_eq!(parse_ms(Some("0001-01-01T00:00:00Z")), None);
        assert_eq!(parse_ms(Some("1970-01-01T00:00:01Z")), Some(1000));
        assert_eq!(parse_ms(None), None);
    }
}
