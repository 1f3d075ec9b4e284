//! Monitoring use cases: time series of the managed clusters (`metrics`), their live values
//! (`metrics_live`), the busiest streams (`top_streams`), and the Prometheus exposition.
//!
//! The collector (jsc-metrics) samples every cluster into the `CONSOLE_METRICS` stream;
//! every replica keeps the latest sample of each cluster from that stream. A caller sees
//! the series of the clusters it may view, nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{Stream, StreamExt, TryStreamExt};
use jsc_domain::identity::Role;
use jsc_domain::stream::ServiceError;
use jsc_fleet::Admin;
use jsc_metrics::collector::{Sink, Targets};
use jsc_metrics::{Latest, Metric, Point, SeriesKey, Snapshot};

use crate::{Caller, Console, Error, Result};

/// At most this many series per request.
pub const MAX_SERIES: usize = 100;
/// At most this many points per series.
pub const MAX_POINTS: i64 = 2_000;
/// A default step gives about this many points.
const DEFAULT_POINTS: i64 = 300;

/// How the console samples its clusters.
#[derive(Debug, Clone, Copy)]
pub struct MonitoringOptions {
    /// Whether this console samples the clusters. Off, it serves the samples that another
    /// console takes (one sampling replica beside serving ones).
    pub collect: bool,
    /// How often every cluster is sampled.
    pub interval: Duration,
    /// How long and how much of the raw samples the metrics stream keeps.
    pub raw: jsc_metrics::store::RawRetention,
    /// How long the 1-minute and 1-hour roll-ups are kept.
    pub rollups: jsc_metrics::rollup::RollupRetention,
}

impl Default for MonitoringOptions {
    fn default() -> Self {
        Self {
            collect: true,
            interval: Duration::from_secs(10),
            raw: Default::default(),
            rollups: Default::default(),
        }
    }
}

/// The console's monitoring parts.
pub(crate) struct Monitoring {
    pub latest: Latest,
    pub stream: async_nats::jetstream::stream::Stream,
    /// Recent samples of the subjects queried lately (see [`jsc_metrics::store::TailCache`]).
    pub tail: jsc_metrics::store::TailCache,
    pub rollups: Arc<jsc_metrics::rollup::Rollups>,
    pub options: MonitoringOptions,
}

/// Which samples a series was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resolution {
    /// Every sample, from the metrics stream.
    Raw,
    /// The 1-minute roll-up, then the raw samples not rolled up yet.
    Minute,
    /// The 1-hour roll-up, then the 1-minute one, then the raw samples.
    Hour,
}

impl Resolution {
    fn rollup(self) -> Option<jsc_metrics::rollup::Resolution> {
        match self {
            Self::Raw => None,
            Self::Minute => Some(jsc_metrics::rollup::Resolution::Minute),
            Self::Hour => Some(jsc_metrics::rollup::Resolution::Hour),
        }
    }

    fn bucket_ms(self) -> i64 {
        self.rollup().map_or(1000, |r| r.bucket_ms())
    }

    /// The coarsest resolution a step can use: an hour for a step of an hour or more, a
    /// minute for a minute or more; the raw samples for finer steps within their retention.
    fn for_step(step_ms: i64, from_ms: i64, raw_from_ms: i64) -> Self {
        if step_ms >= 3_600_000 {
            Self::Hour
        } else if step_ms >= 60_000 || from_ms < raw_from_ms {
            Self::Minute
        } else {
            Self::Raw
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Raw => "RAW",
            Self::Minute => "MINUTE",
            Self::Hour => "HOUR",
        }
    }
}

/// One series over a time range.
#[derive(Debug, Clone)]
pub struct SeriesData {
    pub key: SeriesKey,
    pub resolution: Resolution,
    pub from_ms: i64,
    pub to_ms: i64,
    pub step_ms: i64,
    pub points: Vec<Point>,
}

/// One value of a live series.
#[derive(Debug, Clone)]
pub struct LiveValue {
    pub key: SeriesKey,
    pub at_ms: i64,
    pub value: f64,
}

/// What `top_streams` ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    MessageRate,
    Bytes,
    Lag,
    StoragePercent,
}

impl TopBy {
    fn metric(self) -> Metric {
        match self {
            Self::MessageRate => Metric::StreamMessageRate,
            Self::Bytes => Metric::StreamBytes,
            Self::Lag => Metric::StreamMaxConsumerLag,
            Self::StoragePercent => Metric::StreamStoragePercent,
        }
    }
}

/// One stream of a top-N list, with the value it is ranked by.
#[derive(Debug, Clone)]
pub struct TopStream {
    pub cluster_id: String,
    pub stream: String,
    pub value: f64,
    pub at_ms: i64,
}

/// The clusters the collector samples: every registered cluster, at the console's interval.
struct ConsoleTargets(Console);

impl Targets for ConsoleTargets {
    fn clusters(&self) -> Vec<(String, Duration)> {
        let every = self.0.monitoring.options.interval;
        self.0
            .views
            .clusters
            .list()
            .into_iter()
            .map(|c| {
                let own = c.view.metrics_interval_secs.map(|s| Duration::from_secs(s.into()));
                (c.view.id, own.unwrap_or(every))
            })
            .collect()
    }

    fn admin(&self, cluster_id: &str) -> BoxFuture<'_, std::result::Result<Admin, ServiceError>> {
        let id = cluster_id.to_string();
        Box::pin(async move { self.0.live.managed().admin(&id).await })
    }

    fn system(&self, cluster_id: &str) -> BoxFuture<'_, Option<std::result::Result<Admin, ServiceError>>> {
        let id = cluster_id.to_string();
        Box::pin(async move { self.0.live.managed().system_admin(&id).await })
    }

    fn previous(&self, cluster_id: &str) -> Option<Arc<Snapshot>> {
        self.0.monitoring.latest.get(cluster_id)
    }

    fn skip_stream(&self, name: &str) -> bool {
        self.0.is_internal_stream(name)
    }
}

/// Samples go to the metrics stream, and to this replica's latest samples as they are
/// (one copy, shared with the collector, rather than a second one read back).
struct StreamSink(async_nats::jetstream::Context, Latest);

impl Sink for StreamSink {
    fn publish(&self, snapshot: Arc<Snapshot>) -> BoxFuture<'_, std::result::Result<(), String>> {
        Box::pin(async move {
            self.1.publishing(&snapshot);
            let published = jsc_metrics::store::publish(&self.0, &snapshot).await;
            self.1.published(snapshot, published.is_ok());
            published.map_err(|e| e.to_string())
        })
    }
}

/// Runs the collector until `shutdown`.
pub(crate) async fn run_collector(console: Console, shutdown: tokio_util::sync::CancellationToken) {
    let js = async_nats::jetstream::new(console.home.clone());
    // Rates continue from the last samples taken before a restart.
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = console.monitoring.latest.caught_up() => {}
    }
    let sink = StreamSink(js, console.monitoring.latest.clone());
    jsc_metrics::collector::run(Arc::new(ConsoleTargets(console)), Arc::new(sink), shutdown).await;
}

impl Console {
    fn check_series(&self, caller: &Caller, series: &[SeriesKey]) -> Result<()> {
        if series.is_empty() {
            return Err(Error::validation("series: name at least one series"));
        }
        if series.len() > MAX_SERIES {
            return Err(Error::validation(format!(
                "series: at most {MAX_SERIES} series per request; ask for fewer or split the request"
            )));
        }
        for s in series {
            self.require_cluster(&caller.principal, &s.cluster_id, Role::Viewer)?;
        }
        Ok(())
    }

    /// Series over `from_ms..=to_ms`, downsampled into buckets of `step_ms` (by default
    /// about 300 points, never finer than the sampling interval), read at `resolution` or,
    /// by default, the coarsest one the step allows: the 1-hour roll-up for the days it
    /// holds, then the 1-minute roll-up for the hours it holds, then the raw samples.
    pub async fn metrics(
        &self,
        caller: &Caller,
        series: Vec<SeriesKey>,
        from_ms: i64,
        to_ms: i64,
        step_ms: Option<i64>,
        resolution: Option<Resolution>,
    ) -> Result<Vec<SeriesData>> {
        self.check_series(caller, &series)?;
        if from_ms >= to_ms {
            return Err(Error::validation("from: must be before to"));
        }
        let range = to_ms - from_ms;
        let interval = self.monitoring.options.interval.as_millis() as i64;
        let step = match step_ms {
            Some(s) if s < 1000 => return Err(Error::validation("step: at least 1 second")),
            Some(s) => s,
            None => (range / DEFAULT_POINTS).max(interval).max(1000),
        };
        if range / step > MAX_POINTS {
            return Err(Error::validation(format!(
                "step: at most {MAX_POINTS} points per series; for this range use a step of at least {} s",
                (range / MAX_POINTS + 999) / 1000
            )));
        }
        let raw_from =
            to_ms.min(chrono::Utc::now().timestamp_millis()) - self.monitoring.options.raw.max_age.as_millis() as i64;
        let resolution = resolution.unwrap_or_else(|| Resolution::for_step(step, from_ms, raw_from));
        if step < resolution.bucket_ms() {
            return Err(Error::validation(format!(
                "step: at least {} s at resolution {}; give a larger step or a finer resolution",
                resolution.bucket_ms() / 1000,
                resolution.name()
            )));
        }
        let mut buckets: Vec<jsc_metrics::Buckets> = series
            .iter()
            .map(|_| jsc_metrics::Buckets::new(from_ms, to_ms, step))
            .collect();
        // Per cluster, the coarsest roll-up first; each finer one (and the raw samples last)
        // from where the coarser one ends for that cluster (clusters' roll-ups may reach
        // different hours: one cluster's reach must not make another's rows count twice).
        let mut by_cluster: BTreeMap<&str, (Vec<SeriesKey>, Vec<usize>)> = BTreeMap::new();
        for (i, s) in series.iter().enumerate() {
            let (keys, indexes) = by_cluster.entry(&s.cluster_id).or_default();
            keys.push(s.clone());
            indexes.push(i);
        }
        let mut cursor_of: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
        for (cluster, (keys, indexes)) in &by_cluster {
            let mut cursor = from_ms;
            for level in [Resolution::Hour, Resolution::Minute] {
                let Some(r) = level.rollup().filter(|_| level <= resolution) else {
                    continue;
                };
                let reach = self
                    .monitoring
                    .rollups
                    .read_each(r, keys, cursor, to_ms, |j, row| {
                        buckets[indexes[j]].add_aggregate(
                            row.last_at_ms,
                            row.min,
                            row.max,
                            row.avg,
                            row.last,
                            row.count,
                        );
                    })
                    .await
                    .map_err(|e| Error::unavailable(e.to_string()))?;
                cursor = cursor.max(reach);
            }
            cursor_of.insert(cluster, cursor);
        }
        let unavailable = |e: jsc_metrics::store::StoreError| Error::unavailable(e.to_string());
        // Each subject (a cluster, or one stream) is read once for every series it holds,
        // from where its cluster's roll-ups end, through the cache of recent samples.
        let mut by_subject: BTreeMap<String, (i64, Vec<usize>)> = BTreeMap::new();
        for (i, s) in series.iter().enumerate() {
            let cursor = cursor_of.get(s.cluster_id.as_str()).copied().unwrap_or(from_ms);
            by_subject
                .entry(s.subject())
                .or_insert_with(|| (cursor, Vec::new()))
                .1
                .push(i);
        }
        // The subjects are read side by side (each read is a round trip per batch).
        let reads = by_subject.into_iter().filter(|(_, (cursor, _))| *cursor <= to_ms).map(
            |(subject, (cursor, indexes))| async move {
                self.monitoring
                    .tail
                    .read(&self.monitoring.stream, &subject, cursor, to_ms)
                    .await
                    .map(|records| (records, indexes))
            },
        );
        let read = futures::stream::iter(reads)
            .buffer_unordered(8)
            .try_collect::<Vec<_>>()
            .await;
        for (records, indexes) in read.map_err(unavailable)? {
            for r in &records {
                for &i in &indexes {
                    if let Some((at, v)) = series[i].value_in(r) {
                        buckets[i].add(at, v);
                    }
                }
            }
        }
        Ok(series
            .into_iter()
            .zip(buckets)
            .map(|(key, b)| SeriesData {
                key,
                resolution,
                from_ms,
                to_ms,
                step_ms: step,
                points: b.finish(),
            })
            .collect())
    }

    /// The latest value of each series, then every new one as samples arrive. A caller who
    /// can no longer view a cluster stops receiving its values.
    pub fn metrics_live(
        &self,
        caller: &Caller,
        series: Vec<SeriesKey>,
    ) -> Result<impl Stream<Item = LiveValue> + Send + use<>> {
        self.check_series(caller, &series)?;
        let rx = self.monitoring.latest.subscribe();
        let current: Vec<Arc<Snapshot>> = self.monitoring.latest.all();
        let values = |snapshot: &Snapshot, series: &[SeriesKey]| -> Vec<LiveValue> {
            series
                .iter()
                .filter_map(|k| {
                    Some(LiveValue {
                        key: k.clone(),
                        at_ms: snapshot.cluster.at_ms,
                        value: k.value_at(snapshot)?,
                    })
                })
                .collect()
        };
        let first: Vec<LiveValue> = current.iter().flat_map(|s| values(s, &series)).collect();
        let (console, principal) = (self.clone(), caller.principal.clone());
        let live = crate::changes::broadcast_stream(rx, "metricsLive").flat_map(move |snapshot| {
            let allowed = console
                .require_cluster(&principal, &snapshot.cluster.cluster_id, Role::Viewer)
                .is_ok();
            let out = if allowed {
                values(&snapshot, &series)
            } else {
                Vec::new()
            };
            futures::stream::iter(out)
        });
        Ok(futures::stream::iter(first).chain(live))
    }

    /// The `first` streams with the largest value of `by`, over the clusters the caller can
    /// view (or one of them), from their latest samples.
    pub fn top_streams(
        &self,
        caller: &Caller,
        by: TopBy,
        first: usize,
        cluster_id: Option<&str>,
    ) -> Result<Vec<TopStream>> {
        if first == 0 || first > crate::MAX_PAGE {
            return Err(Error::validation(format!("first: between 1 and {}", crate::MAX_PAGE)));
        }
        if let Some(id) = cluster_id {
            self.require_cluster(&caller.principal, id, Role::Viewer)?;
        }
        let metric = by.metric();
        let mut out: Vec<TopStream> = Vec::new();
        for snapshot in self.monitoring.latest.all() {
            let id = &snapshot.cluster.cluster_id;
            if cluster_id.is_some_and(|c| c != id) || self.require_cluster(&caller.principal, id, Role::Viewer).is_err()
            {
                continue;
            }
            for s in snapshot.streams.values() {
                if let Some(value) = metric.stream_value(s) {
                    out.push(TopStream {
                        cluster_id: id.clone(),
                        stream: s.name.clone(),
                        value,
                        at_ms: s.at_ms,
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            b.value
                .total_cmp(&a.value)
                .then_with(|| a.cluster_id.cmp(&b.cluster_id))
                .then_with(|| a.stream.cmp(&b.stream))
        });
        out.truncate(first);
        Ok(out)
    }

    /// The latest sample of a cluster the caller can view.
    pub fn latest_sample(&self, caller: &Caller, cluster_id: &str) -> Result<Option<Arc<Snapshot>>> {
        self.require_cluster(&caller.principal, cluster_id, Role::Viewer)?;
        Ok(self.monitoring.latest.get(cluster_id))
    }

    /// Whether the latest samples have been read from the metrics stream.
    pub async fn metrics_caught_up(&self) {
        self.monitoring.latest.caught_up().await
    }

    /// The Prometheus exposition for `caller`: the series of every cluster it can view, and
    /// the console's own metrics when it administers an organization.
    pub async fn prometheus(&self, caller: &Caller) -> String {
        let mut visible = self.cluster_roles(&caller.principal);
        let names: BTreeMap<String, String> = self
            .views
            .clusters
            .list()
            .into_iter()
            .filter(|c| visible(&c.view).is_some())
            .map(|c| (c.view.id.clone(), c.view.name.clone()))
            .collect();
        let snapshots: Vec<(Arc<Snapshot>, String)> = self
            .monitoring
            .latest
            .all()
            .into_iter()
            .filter_map(|s| {
                let name = names.get(&s.cluster.cluster_id)?.clone();
                Some((s, name))
            })
            .collect();
        let mut out = String::new();
        if !self.organizations_with(&caller.principal, Role::Admin).is_empty() {
            if let Ok(list) = self.projections().await {
                for p in list {
                    metrics::gauge!("jsconsole_projection_pending_events", "view" => p.name.to_string())
                        .set(p.pending as f64);
                }
            }
            out.push_str(&jsc_metrics::prom::console_recorder().render());
        }
        out.push_str(&jsc_metrics::prom::render_clusters(
            &snapshots,
            chrono::Utc::now().timestamp_millis(),
        ));
        out
    }
}
