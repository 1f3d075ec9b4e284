//! Series: one metric of one cluster, stream or consumer over time, read out of samples,
//! and downsampled into buckets of a step (min, max, mean, last).

use crate::sample::{ClusterSample, ConsumerSample, Record, Snapshot, StreamSample, cluster_subject, stream_subject};

/// What a metric describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Cluster,
    Stream,
    Consumer,
}

macro_rules! metrics {
    ($($variant:ident => $name:literal, $scope:ident, $doc:literal;)+) => {
        /// Every series the console keeps.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Metric {
            $(#[doc = $doc] $variant,)+
        }

        impl Metric {
            pub const ALL: &'static [Metric] = &[$(Self::$variant),+];

            /// The metric's name in files and expositions (`stream_message_rate`).
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $name,)+ }
            }

            pub fn scope(self) -> Scope {
                match self { $(Self::$variant => Scope::$scope,)+ }
            }

            pub fn describe(self) -> &'static str {
                match self { $(Self::$variant => $doc,)+ }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

metrics! {
    ClusterUp => "cluster_up", Cluster, "1 when the cluster answered the sample, else 0.";
    ClusterJetstream => "cluster_jetstream_up", Cluster, "1 when JetStream answered the sample, else 0.";
    ClusterRttSeconds => "cluster_rtt_seconds", Cluster, "Round trip to the server, seconds.";
    CollectSeconds => "collect_seconds", Cluster, "How long reading the sample took, seconds.";
    AccountMemoryBytes => "account_memory_bytes", Cluster, "JetStream memory the account uses, bytes.";
    AccountStorageBytes => "account_storage_bytes", Cluster, "JetStream file storage the account uses, bytes.";
    AccountStreams => "account_streams", Cluster, "Streams in the account.";
    AccountConsumers => "account_consumers", Cluster, "Consumers in the account.";
    AccountMemoryPercent => "account_memory_percent", Cluster, "Memory used, percent of the account's limit.";
    AccountStoragePercent => "account_storage_percent", Cluster, "Storage used, percent of the account's limit.";
    AccountStreamsPercent => "account_streams_percent", Cluster, "Streams, percent of the account's limit.";
    AccountConsumersPercent => "account_consumers_percent", Cluster, "Consumers, percent of the account's limit.";
    StreamMessages => "stream_messages", Stream, "Messages stored.";
    StreamBytes => "stream_bytes", Stream, "Bytes stored.";
    StreamFirstSequence => "stream_first_sequence", Stream, "First sequence stored.";
    StreamLastSequence => "stream_last_sequence", Stream, "Last sequence stored.";
    StreamSubjects => "stream_subjects", Stream, "Distinct subjects stored.";
    StreamConsumers => "stream_consumers", Stream, "Consumers of the stream.";
    StreamMessageRate => "stream_message_rate", Stream, "Messages stored per second.";
    StreamByteRate => "stream_byte_rate", Stream, "Bytes stored per second.";
    StreamStoragePercent => "stream_storage_percent", Stream, "Bytes stored, percent of the stream's max_bytes.";
    StreamMessagesPercent => "stream_messages_percent", Stream, "Messages stored, percent of the stream's max_msgs.";
    StreamMirrorLag => "stream_mirror_lag", Stream, "Messages the mirror is behind its origin.";
    StreamSourceLag => "stream_source_lag", Stream, "Messages the stream is behind the streams it sources from.";
    StreamMaxConsumerLag => "stream_max_consumer_lag", Stream, "The largest lag of the stream's consumers.";
    ConsumerLag => "consumer_lag", Consumer, "Messages not yet delivered (num_pending).";
    ConsumerAckPending => "consumer_ack_pending", Consumer, "Messages delivered and not yet acknowledged.";
    ConsumerRedelivered => "consumer_redelivered", Consumer, "Messages being redelivered.";
    ConsumerWaiting => "consumer_waiting", Consumer, "Pull requests waiting.";
    ConsumerDeliveredSequence => "consumer_delivered_sequence", Consumer, "Last stream sequence delivered.";
    ConsumerAckFloorSequence => "consumer_ack_floor_sequence", Consumer, "Stream sequence of the ack floor.";
    ConsumerDeliveryRate => "consumer_delivery_rate", Consumer, "Deliveries per second, redeliveries included.";
    ConsumerAckRate => "consumer_ack_rate", Consumer, "Acknowledgements per second (the ack floor's progress).";
    ConsumerRedeliveryRate => "consumer_redelivery_rate", Consumer, "Redeliveries per second.";
    ConsumerTimeToDrainSeconds => "consumer_time_to_drain_seconds", Consumer, "Seconds to work off the lag at the current acknowledgement rate.";
    ConsumerIdleSeconds => "consumer_idle_seconds", Consumer, "Seconds since the consumer last delivered or was acknowledged.";
}

fn percent(used: u64, limit: i64) -> Option<f64> {
    (limit > 0).then(|| used as f64 * 100.0 / limit as f64)
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

impl Metric {
    pub fn cluster_value(self, c: &ClusterSample) -> Option<f64> {
        let a = c.account.as_ref();
        match self {
            Self::ClusterUp => Some(flag(c.up)),
            Self::ClusterJetstream => Some(flag(c.jetstream)),
            Self::ClusterRttSeconds => c.rtt_us.map(|us| us as f64 / 1e6),
            Self::CollectSeconds => Some(c.collect_us as f64 / 1e6),
            Self::AccountMemoryBytes => a.map(|a| a.memory as f64),
            Self::AccountStorageBytes => a.map(|a| a.storage as f64),
            Self::AccountStreams => a.map(|a| a.streams as f64),
            Self::AccountConsumers => a.map(|a| a.consumers as f64),
            Self::AccountMemoryPercent => a.and_then(|a| percent(a.memory, a.max_memory)),
            Self::AccountStoragePercent => a.and_then(|a| percent(a.storage, a.max_storage)),
            Self::AccountStreamsPercent => a.and_then(|a| percent(a.streams, a.max_streams)),
            Self::AccountConsumersPercent => a.and_then(|a| percent(a.consumers, a.max_consumers)),
            _ => None,
        }
    }

    pub fn stream_value(self, s: &StreamSample) -> Option<f64> {
        match self {
            Self::StreamMessages => Some(s.messages as f64),
            Self::StreamBytes => Some(s.bytes as f64),
            Self::StreamFirstSequence => Some(s.first_seq as f64),
            Self::StreamLastSequence => Some(s.last_seq as f64),
            Self::StreamSubjects => Some(s.subjects as f64),
            Self::StreamConsumers => Some(s.consumer_count as f64),
            Self::StreamMessageRate => s.message_rate,
            Self::StreamByteRate => s.byte_rate,
            Self::StreamStoragePercent => percent(s.bytes, s.max_bytes),
            Self::StreamMessagesPercent => percent(s.messages, s.max_msgs),
            Self::StreamMirrorLag => s.mirror_lag.map(|l| l as f64),
            Self::StreamSourceLag => s.source_lag.map(|l| l as f64),
            Self::StreamMaxConsumerLag => Some(s.consumers.iter().map(|c| c.pending).max().unwrap_or(0) as f64),
            _ => None,
        }
    }

    pub fn consumer_value(self, c: &ConsumerSample, at_ms: i64) -> Option<f64> {
        match self {
            Self::ConsumerLag => Some(c.pending as f64),
            Self::ConsumerAckPending => Some(c.ack_pending as f64),
            Self::ConsumerRedelivered => Some(c.redelivered as f64),
            Self::ConsumerWaiting => Some(c.waiting as f64),
            Self::ConsumerDeliveredSequence => Some(c.delivered_stream_seq as f64),
            Self::ConsumerAckFloorSequence => Some(c.ack_floor_stream_seq as f64),
            Self::ConsumerDeliveryRate => c.delivery_rate,
            Self::ConsumerAckRate => c.ack_rate,
            Self::ConsumerRedeliveryRate => c.redelivery_rate,
            Self::ConsumerTimeToDrainSeconds => c.time_to_drain_s,
            Self::ConsumerIdleSeconds => {
                let since = c.last_active_ms.or(c.created_ms)?;
                Some(((at_ms - since).max(0)) as f64 / 1000.0)
            }
            _ => None,
        }
    }
}

/// One series: a metric of one cluster, stream or consumer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub metric: Metric,
    pub cluster_id: String,
    pub stream: Option<String>,
    pub consumer: Option<String>,
}

/// Why a series was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesError {
    #[error("{metric} is a {scope} metric: give {needs}")]
    Scope {
        metric: &'static str,
        scope: &'static str,
        needs: &'static str,
    },
}

impl SeriesKey {
    /// A series, checked: a stream metric names its stream, a consumer metric its stream
    /// and consumer, a cluster metric neither.
    pub fn new(
        metric: Metric,
        cluster_id: impl Into<String>,
        stream: Option<String>,
        consumer: Option<String>,
    ) -> Result<Self, SeriesError> {
        let ok = match metric.scope() {
            Scope::Cluster => stream.is_none() && consumer.is_none(),
            Scope::Stream => stream.is_some() && consumer.is_none(),
            Scope::Consumer => stream.is_some() && consumer.is_some(),
        };
        if !ok {
            let (scope, needs) = match metric.scope() {
                Scope::Cluster => ("cluster", "neither a stream nor a consumer"),
                Scope::Stream => ("stream", "a stream and no consumer"),
                Scope::Consumer => ("consumer", "a stream and a consumer"),
            };
            return Err(SeriesError::Scope {
                metric: metric.name(),
                scope,
                needs,
            });
        }
        Ok(Self {
            metric,
            cluster_id: cluster_id.into(),
            stream,
            consumer,
        })
    }

    /// The metrics stream subject that holds this series.
    pub fn subject(&self) -> String {
        match &self.stream {
            None => cluster_subject(&self.cluster_id),
            Some(s) => stream_subject(&self.cluster_id, s),
        }
    }

    /// The series' value in one record, with the record's time.
    pub fn value_in(&self, record: &Record) -> Option<(i64, f64)> {
        match (record, &self.stream) {
            (Record::Cluster(c), None) if c.cluster_id == self.cluster_id => {
                Some((c.at_ms, self.metric.cluster_value(c)?))
            }
            (Record::Stream(cluster, s), Some(name)) if *cluster == self.cluster_id && s.name == *name => {
                Some((s.at_ms, self.stream_value(s)?))
            }
            _ => None,
        }
    }

    fn stream_value(&self, s: &StreamSample) -> Option<f64> {
        match &self.consumer {
            None => self.metric.stream_value(s),
            Some(name) => {
                let c = s.consumers.iter().find(|c| c.name == *name)?;
                self.metric.consumer_value(c, s.at_ms)
            }
        }
    }

    /// The series' value in a whole sample.
    pub fn value_at(&self, snapshot: &Snapshot) -> Option<f64> {
        if snapshot.cluster.cluster_id != self.cluster_id {
            return None;
        }
        match &self.stream {
            None => self.metric.cluster_value(&snapshot.cluster),
            Some(name) => self.stream_value(snapshot.streams.get(name)?),
        }
    }
}

/// Every series a record holds, with its value and the record's time: a cluster record's
/// cluster metrics, a stream record's stream metrics and each of its consumers' metrics.
pub fn values_in(record: &Record) -> Vec<(SeriesKey, i64, f64)> {
    let of_scope = |scope: Scope| Metric::ALL.iter().copied().filter(move |m| m.scope() == scope);
    let key = |metric, cluster: &str, stream: Option<&str>, consumer: Option<&str>| SeriesKey {
        metric,
        cluster_id: cluster.to_string(),
        stream: stream.map(str::to_string),
        consumer: consumer.map(str::to_string),
    };
    let mut out = Vec::new();
    match record {
        Record::Cluster(c) => {
            for m in of_scope(Scope::Cluster) {
                if let Some(v) = m.cluster_value(c) {
                    out.push((key(m, &c.cluster_id, None, None), c.at_ms, v));
                }
            }
        }
        Record::Stream(cluster, s) => {
            for m in of_scope(Scope::Stream) {
                if let Some(v) = m.stream_value(s) {
                    out.push((key(m, cluster, Some(&s.name), None), s.at_ms, v));
                }
            }
            for c in &s.consumers {
                for m in of_scope(Scope::Consumer) {
                    if let Some(v) = m.consumer_value(c, s.at_ms) {
                        out.push((key(m, cluster, Some(&s.name), Some(&c.name)), s.at_ms, v));
                    }
                }
            }
        }
    }
    out
}

/// One bucket of a downsampled series: it starts at `at_ms` and lasts one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub at_ms: i64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub last: f64,
    /// Samples (or roll-up rows, weighted by theirs) in the bucket.
    pub count: u64,
}

/// Downsamples values into buckets of `step_ms` from `from_ms` on: one slot per bucket of
/// the range (the API allows a few thousand), indexed by time.
#[derive(Debug)]
pub struct Buckets {
    from_ms: i64,
    to_ms: i64,
    step_ms: i64,
    slots: Vec<Aggregate>,
}

/// Samples (or aggregates of them) summed into one bucket: what a point and a roll-up row
/// are made of.
#[derive(Debug, Clone, Copy)]
pub struct Aggregate {
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    /// When the last sample was taken, and its value.
    pub last_at: i64,
    pub last: f64,
    pub count: u64,
}

impl Aggregate {
    pub const EMPTY: Self = Self {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        sum: 0.0,
        last_at: i64::MIN,
        last: 0.0,
        count: 0,
    };

    /// Adds an aggregate of `count` samples whose last was taken at `at_ms`.
    pub fn add(&mut self, at_ms: i64, min: f64, max: f64, avg: f64, last: f64, count: u64) {
        self.min = self.min.min(min);
        self.max = self.max.max(max);
        self.sum += avg * count as f64;
        if at_ms >= self.last_at {
            self.last_at = at_ms;
            self.last = last;
        }
        self.count += count;
    }

    pub fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }
}

impl Buckets {
    pub fn new(from_ms: i64, to_ms: i64, step_ms: i64) -> Self {
        let step_ms = step_ms.max(1);
        let n = ((to_ms - from_ms).max(0) / step_ms + 1) as usize;
        Self {
            from_ms,
            to_ms,
            step_ms,
            slots: vec![Aggregate::EMPTY; n],
        }
    }

    /// Adds one sample.
    pub fn add(&mut self, at_ms: i64, value: f64) {
        self.add_aggregate(at_ms, value, value, value, value, 1);
    }

    /// Adds an aggregate of `count` samples (a roll-up row) whose last sample was at `at_ms`.
    pub fn add_aggregate(&mut self, at_ms: i64, min: f64, max: f64, avg: f64, last: f64, count: u64) {
        if at_ms < self.from_ms || at_ms > self.to_ms || !avg.is_finite() || count == 0 {
            return;
        }
        self.slots[((at_ms - self.from_ms) / self.step_ms) as usize].add(at_ms, min, max, avg, last, count);
    }

    pub fn finish(self) -> Vec<Point> {
        let (from_ms, step_ms) = (self.from_ms, self.step_ms);
        self.slots
            .into_iter()
            .enumerate()
            .filter(|(_, e)| e.count > 0)
            .map(|(i, e)| Point {
                at_ms: from_ms + i as i64 * step_ms,
                min: e.min,
                max: e.max,
                avg: e.avg(),
                last: e.last,
                count: e.count,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.name()), Some(*m));
        }
    }

    #[test]
    fn series_are_checked_against_their_scope() {
        assert!(SeriesKey::new(Metric::ConsumerLag, "c", Some("S".into()), None).is_err());
        assert!(SeriesKey::new(Metric::StreamBytes, "c", None, None).is_err());
        assert!(SeriesKey::new(Metric::ClusterUp, "c", Some("S".into()), None).is_err());
        let e = SeriesKey::new(Metric::ConsumerLag, "c", None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "consumer_lag is a consumer metric: give a stream and a consumer"
        );
        assert!(SeriesKey::new(Metric::ConsumerLag, "c", Some("S".into()), Some("C".into())).is_ok());
    }

    #[test]
    fn buckets_keep_min_max_mean_and_last() {
        let mut b = Buckets::new(0, 100_000, 60_000);
        b.add(1_000, 5.0);
        b.add(30_000, 1.0);
        b.add(20_000, 9.0);
        b.add(61_000, 2.0);
        b.add(200_000, 7.0); // outside the range
        let points = b.finish();
        assert_eq!(points.len(), 2);
        assert_eq!(
            points[0],
            Point {
                at_ms: 0,
                min: 1.0,
                max: 9.0,
                avg: 5.0,
                last: 1.0,
                count: 3
            }
        );
        assert_eq!(points[1].at_ms, 60_000);
        assert_eq!(points[1].last, 2.0);
    }

    #[test]
    fn aggregates_weigh_by_their_count() {
        let mut b = Buckets::new(0, 3_600_000, 3_600_000);
        b.add_aggregate(59_000, 1.0, 3.0, 2.0, 3.0, 6);
        b.add_aggregate(119_000, 0.0, 10.0, 8.0, 0.0, 2);
        let p = b.finish()[0];
        assert_eq!(p.avg, (2.0 * 6.0 + 8.0 * 2.0) / 8.0);
        assert_eq!((p.min, p.max, p.last, p.count), (0.0, 10.0, 0.0, 8));
    }
}
