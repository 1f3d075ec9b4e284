//! Monitoring: time series of the managed clusters, their live values, and the busiest
//! streams, from the samples the collector takes (see jsc-metrics).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use jsc_app::Error;
use jsc_app::monitoring as uc;
use jsc_metrics::SeriesKey;

use crate::context::{caller, console};
use crate::scalars::Numbers;
use crate::streams::StreamObj;

type Result<T> = std::result::Result<T, Error>;

/// A series the console keeps: what each cluster, stream or consumer sample is read for.
/// A cluster metric names no stream; a stream metric names its stream; a consumer metric
/// names its stream and consumer.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "jsc_metrics::Metric")]
pub enum MetricName {
    /// 1 when the cluster answered the sample, else 0. (cluster metric)
    ClusterUp,
    /// 1 when JetStream answered the sample, else 0. (cluster metric)
    ClusterJetstream,
    /// Round trip to the server, seconds. (cluster metric)
    ClusterRttSeconds,
    /// How long reading the sample took, seconds. (cluster metric)
    CollectSeconds,
    /// JetStream memory the account uses, bytes. (cluster metric)
    AccountMemoryBytes,
    /// JetStream file storage the account uses, bytes. (cluster metric)
    AccountStorageBytes,
    /// Streams in the account. (cluster metric)
    AccountStreams,
    /// Consumers in the account. (cluster metric)
    AccountConsumers,
    /// Memory used, percent of the account's limit. (cluster metric)
    AccountMemoryPercent,
    /// Storage used, percent of the account's limit. (cluster metric)
    AccountStoragePercent,
    /// Streams, percent of the account's limit. (cluster metric)
    AccountStreamsPercent,
    /// Consumers, percent of the account's limit. (cluster metric)
    AccountConsumersPercent,
    /// Messages stored. (stream metric)
    StreamMessages,
    /// Bytes stored. (stream metric)
    StreamBytes,
    /// First sequence stored. (stream metric)
    StreamFirstSequence,
    /// Last sequence stored. (stream metric)
    StreamLastSequence,
    /// Distinct subjects stored. (stream metric)
    StreamSubjects,
    /// Consumers of the stream. (stream metric)
    StreamConsumers,
    /// Messages stored per second. (stream metric)
    StreamMessageRate,
    /// Bytes stored per second. (stream metric)
    StreamByteRate,
    /// Bytes stored, percent of the stream's max_bytes. (stream metric)
    StreamStoragePercent,
    /// Messages stored, percent of the stream's max_msgs. (stream metric)
    StreamMessagesPercent,
    /// Messages the mirror is behind its origin. (stream metric)
    StreamMirrorLag,
    /// Messages the stream is behind the streams it sources from. (stream metric)
    StreamSourceLag,
    /// The largest lag of the stream's consumers. (stream metric)
    StreamMaxConsumerLag,
    /// Messages not yet delivered (num_pending). (consumer metric)
    ConsumerLag,
    /// Messages delivered and not yet acknowledged. (consumer metric)
    ConsumerAckPending,
    /// Messages being redelivered. (consumer metric)
    ConsumerRedelivered,
    /// Pull requests waiting. (consumer metric)
    ConsumerWaiting,
    /// Last stream sequence delivered. (consumer metric)
    ConsumerDeliveredSequence,
    /// Stream sequence of the ack floor. (consumer metric)
    ConsumerAckFloorSequence,
    /// Deliveries per second, redeliveries included. (consumer metric)
    ConsumerDeliveryRate,
    /// Acknowledgements per second (the ack floor's progress). (consumer metric)
    ConsumerAckRate,
    /// Redeliveries per second. (consumer metric)
    ConsumerRedeliveryRate,
    /// Seconds to work off the lag at the current acknowledgement rate. (consumer metric)
    ConsumerTimeToDrainSeconds,
    /// Seconds since the consumer last delivered or was acknowledged. (consumer metric)
    ConsumerIdleSeconds,
}

/// One series to read: a metric, and the cluster (and stream, and consumer) it is of.
#[derive(InputObject, Clone)]
pub struct MetricSeriesInput {
    /// The metric.
    pub metric: MetricName,
    /// The id of the cluster.
    pub cluster_id: ID,
    /// The stream, for a stream or consumer metric.
    pub stream: Option<String>,
    /// The consumer, for a consumer metric.
    pub consumer: Option<String>,
}

impl MetricSeriesInput {
    fn key(self) -> Result<SeriesKey> {
        SeriesKey::new(self.metric.into(), self.cluster_id.0, self.stream, self.consumer)
            .map_err(|e| Error::validation(format!("series: {e}")))
    }
}

fn keys(series: Vec<MetricSeriesInput>) -> Result<Vec<SeriesKey>> {
    series.into_iter().map(MetricSeriesInput::key).collect()
}

/// Which samples a series is read from.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "uc::Resolution")]
pub enum MetricResolution {
    /// Every sample, as the collector took it (kept on the metrics stream for its retention,
    /// 24 hours by default).
    Raw,
    /// The 1-minute roll-up (min, max, mean and last of each minute; 14 days by default),
    /// then the raw samples of the hour not rolled up yet. Steps of 60 s or more.
    Minute,
    /// The 1-hour roll-up (400 days by default), then the 1-minute roll-up of the day not
    /// rolled up yet, then the raw samples. Steps of 3,600 s or more.
    Hour,
}

/// How a sample was read from its cluster.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "jsc_metrics::sample::Source")]
pub enum SampleSource {
    /// Paged `STREAM.LIST` and `CONSUMER.LIST` on the console's connection.
    List,
    /// `$SYS.REQ.SERVER.PING.JSZ` on the cluster's system account: every server reports the
    /// streams it leads.
    Jsz,
}

/// The console's latest sample of a cluster, as a whole.
#[derive(SimpleObject)]
pub struct ClusterSampleInfo {
    /// When it was taken.
    pub sampled_at: DateTime<Utc>,
    /// Whether the cluster answered.
    pub up: bool,
    /// Whether JetStream answered.
    pub jetstream: bool,
    /// How it was read.
    pub source: SampleSource,
    /// Seconds between samples of this cluster.
    pub interval: f64,
    /// How long reading it took, in seconds.
    pub collect_seconds: f64,
    /// Streams in it (the console's own left out).
    pub streams: u32,
    /// Why it is partial or empty, or how it was read instead (a system account that
    /// failed); null when whole.
    pub error: Option<String>,
}

impl From<&jsc_metrics::ClusterSample> for ClusterSampleInfo {
    fn from(c: &jsc_metrics::ClusterSample) -> Self {
        Self {
            sampled_at: time(c.at_ms),
            up: c.up,
            jetstream: c.jetstream,
            source: c.source.into(),
            interval: c.interval_ms as f64 / 1000.0,
            collect_seconds: c.collect_us as f64 / 1e6,
            streams: c.streams,
            error: c.error.clone(),
        }
    }
}

/// One bucket of a series: the samples taken from `at` for one step.
#[derive(SimpleObject)]
pub struct MetricPoint {
    /// The bucket's start.
    pub at: DateTime<Utc>,
    /// The mean of the bucket's samples.
    pub value: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
    /// The bucket's last sample.
    pub last: f64,
    /// Samples in the bucket.
    pub count: u64,
}

/// A series' points as `[MetricPoint!]!`, answered whole: each point's object is built
/// from the fields the query selects, without the future per point and per field (and the
/// extensions' hooks) that `Vec<MetricPoint>` goes through, which cost ten times the
/// points' own answer for 100,000s of them. The schema sees `MetricPoint`'s own type.
pub struct Points(std::sync::Arc<uc::SeriesData>);

#[derive(Clone, Copy)]
enum PointField {
    Typename,
    At,
    Value,
    Min,
    Max,
    Last,
    Count,
}

impl Points {
    /// The selection's fields in answer order, by answer name (its alias or its name), each
    /// once, through fragments. `@skip` and `@include` are applied before execution, and
    /// validation has refused any field `MetricPoint` does not have.
    fn fields(
        ctx: &async_graphql::ContextSelectionSet<'_>,
        set: &async_graphql::parser::types::SelectionSet,
        out: &mut Vec<(async_graphql::Name, PointField)>,
    ) {
        use async_graphql::parser::types::Selection;
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let f = &f.node;
                    let field = match f.name.node.as_str() {
                        "__typename" => PointField::Typename,
                        "at" => PointField::At,
                        "value" => PointField::Value,
                        "min" => PointField::Min,
                        "max" => PointField::Max,
                        "last" => PointField::Last,
                        "count" => PointField::Count,
                        _ => continue,
                    };
                    let key = f.alias.as_ref().map_or(&f.name.node, |a| &a.node);
                    if !out.iter().any(|(k, _)| k == key) {
                        out.push((key.clone(), field));
                    }
                }
                Selection::FragmentSpread(s) => {
                    if let Some(def) = ctx.query_env.fragments.get(&s.node.fragment_name.node) {
                        Self::fields(ctx, &def.node.selection_set.node, out);
                    }
                }
                Selection::InlineFragment(i) => Self::fields(ctx, &i.node.selection_set.node, out),
            }
        }
    }
}

impl async_graphql::OutputType for Points {
    fn type_name() -> std::borrow::Cow<'static, str> {
        <Vec<MetricPoint> as async_graphql::OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<MetricPoint> as async_graphql::OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut async_graphql::registry::Registry) -> String {
        <Vec<MetricPoint> as async_graphql::OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &async_graphql::ContextSelectionSet<'_>,
        _field: &async_graphql::Positioned<async_graphql::parser::types::Field>,
    ) -> async_graphql::ServerResult<async_graphql::Value> {
        use crate::scalars::{float, rfc3339};
        use async_graphql::Value;
        let mut fields = Vec::new();
        Self::fields(ctx, &ctx.item.node, &mut fields);
        let mut day = (0, String::new());
        let points = self.0.points.iter().map(|p| {
            Value::Object(
                fields
                    .iter()
                    .map(|(key, field)| {
                        let v = match field {
                            PointField::Typename => Value::String("MetricPoint".into()),
                            PointField::At => Value::String(rfc3339(p.at_ms, &mut day)),
                            PointField::Value => float(p.avg),
                            PointField::Min => float(p.min),
                            PointField::Max => float(p.max),
                            PointField::Last => float(p.last),
                            PointField::Count => Value::Number(p.count.into()),
                        };
                        (key.clone(), v)
                    })
                    .collect(),
            )
        });
        Ok(Value::List(points.collect()))
    }
}

/// Which series a value or list of points belongs to.
#[derive(SimpleObject)]
pub struct MetricSeriesKey {
    /// The metric.
    pub metric: MetricName,
    /// The id of the cluster.
    pub cluster_id: ID,
    /// The stream, for a stream or consumer metric.
    pub stream: Option<String>,
    /// The consumer, for a consumer metric.
    pub consumer: Option<String>,
}

impl From<SeriesKey> for MetricSeriesKey {
    fn from(k: SeriesKey) -> Self {
        Self {
            metric: k.metric.into(),
            cluster_id: ID(k.cluster_id),
            stream: k.stream,
            consumer: k.consumer,
        }
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A series over a time range, downsampled to a step. Buckets without samples (the
/// cluster was not sampled, or the value does not exist then, such as a rate before a
/// second sample) are left out.
pub struct MetricSeries(std::sync::Arc<uc::SeriesData>);

/// A series over a time range, downsampled to a step. Buckets without samples (the
/// cluster was not sampled, or the value does not exist then, such as a rate before a
/// second sample) are left out.
#[Object]
impl MetricSeries {
    /// Which series.
    async fn series(&self) -> MetricSeriesKey {
        self.0.key.clone().into()
    }
    /// Which samples it was read from.
    async fn resolution(&self) -> MetricResolution {
        self.0.resolution.into()
    }
    /// The range's start.
    async fn from(&self) -> DateTime<Utc> {
        time(self.0.from_ms)
    }
    /// The range's end.
    async fn to(&self) -> DateTime<Utc> {
        time(self.0.to_ms)
    }
    /// Seconds per bucket.
    async fn step(&self) -> i64 {
        self.0.step_ms / 1000
    }
    /// The buckets that have samples, oldest first.
    async fn points(&self) -> Points {
        Points(self.0.clone())
    }
    /// The same buckets as `points`, as one list per field (item i of each list is bucket
    /// i): far smaller and faster to answer and to parse for long ranges and many series,
    /// and what charts take.
    async fn columns(&self) -> MetricColumns {
        MetricColumns(self.0.clone())
    }
}

/// A series' buckets as columns (only the lists asked for are built).
pub struct MetricColumns(std::sync::Arc<uc::SeriesData>);

impl MetricColumns {
    fn column<T>(&self, f: impl Fn(&jsc_metrics::Point) -> T) -> Numbers<T> {
        Numbers(self.0.points.iter().map(f).collect())
    }
}

/// A series' buckets as columns, oldest first; item i of every list is bucket i.
#[Object]
impl MetricColumns {
    /// Each bucket's start, in milliseconds since the epoch (a Float: GraphQL's Int has 32
    /// bits).
    async fn at(&self) -> Numbers<f64> {
        self.column(|p| p.at_ms as f64)
    }
    /// The mean of each bucket's samples.
    async fn value(&self) -> Numbers<f64> {
        self.column(|p| p.avg)
    }
    /// The smallest sample of each bucket.
    async fn min(&self) -> Numbers<f64> {
        self.column(|p| p.min)
    }
    /// The largest sample of each bucket.
    async fn max(&self) -> Numbers<f64> {
        self.column(|p| p.max)
    }
    /// Each bucket's last sample.
    async fn last(&self) -> Numbers<f64> {
        self.column(|p| p.last)
    }
    /// Samples in each bucket.
    async fn count(&self) -> Numbers<i64> {
        self.column(|p| p.count as i64)
    }
}

/// A time range and step, as the shortcuts on streams, consumers and clusters take them.
pub(crate) struct Range {
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
    pub step: Option<i64>,
    /// Left out: the coarsest the step allows.
    pub resolution: Option<MetricResolution>,
}

impl Range {
    /// A shortcut's range (`Stream.throughput`, ...): the resolution the step allows.
    pub(crate) fn shortcut(from: DateTime<Utc>, to: Option<DateTime<Utc>>, step: Option<i64>) -> Self {
        Self {
            from,
            to,
            step,
            resolution: None,
        }
    }
}

/// Reads `series` over a range for the caller.
pub(crate) async fn read(ctx: &Context<'_>, series: Vec<SeriesKey>, range: Range) -> Result<Vec<MetricSeries>> {
    let to = range.to.unwrap_or_else(Utc::now);
    let step = range.step.map(|s| s.saturating_mul(1000));
    let data = console(ctx)
        .metrics(
            &caller(ctx)?,
            series,
            range.from.timestamp_millis(),
            to.timestamp_millis(),
            step,
            range.resolution.map(Into::into),
        )
        .await?;
    Ok(data.into_iter().map(|d| MetricSeries(d.into())).collect())
}

/// A stream's or consumer's series key, checked.
pub(crate) fn key(
    metric: jsc_metrics::Metric,
    cluster: &str,
    stream: Option<&str>,
    consumer: Option<&str>,
) -> SeriesKey {
    SeriesKey::new(
        metric,
        cluster,
        stream.map(str::to_string),
        consumer.map(str::to_string),
    )
    .expect("the shortcuts name series of their own scope")
}

/// What `topStreams` ranks by.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "jsc_app::monitoring::TopBy")]
pub enum TopStreamsBy {
    /// Messages stored per second.
    MessageRate,
    /// Bytes stored.
    Bytes,
    /// The largest lag of the stream's consumers.
    Lag,
    /// Bytes stored, percent of the stream's `maxBytes` (streams without it are left out).
    StoragePercent,
}

/// A stream in a top-N list.
pub struct TopStreamEntry(uc::TopStream);

/// A stream ranked by one of its latest values.
#[Object]
impl TopStreamEntry {
    /// The id of the cluster the stream is on.
    async fn cluster_id(&self) -> ID {
        ID(self.0.cluster_id.clone())
    }
    /// The stream's name.
    async fn stream_name(&self) -> &str {
        &self.0.stream
    }
    /// The value it is ranked by.
    async fn value(&self) -> f64 {
        self.0.value
    }
    /// When the sample holding the value was taken.
    async fn sampled_at(&self) -> DateTime<Utc> {
        time(self.0.at_ms)
    }
    /// The stream as the console records it; null if it is not (yet) in the console's view.
    async fn stream(&self, ctx: &Context<'_>) -> Result<Option<StreamObj>> {
        match console(ctx).stream(&caller(ctx)?, &self.0.cluster_id, &self.0.stream) {
            Ok(v) => Ok(Some(StreamObj(v))),
            Err(e) if e.code == jsc_app::Code::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[derive(Default)]
pub struct MetricsQuery;

/// A console process among the replicas on one home NATS.
#[derive(SimpleObject)]
pub struct ConsoleReplica {
    /// This replica's id (host, process id and a random part), the one that answered.
    id: String,
    /// The background roles one replica performs at a time, and who performs each now.
    roles: Vec<ConsoleRole>,
}

/// A background role performed by one replica at a time, under a lease in NATS KV.
#[derive(SimpleObject)]
pub struct ConsoleRole {
    /// `projections` (applies the event stream to the views), `audit-writer` (writes the
    /// audit trail's Parquet files), `watcher` (follows the managed clusters' advisories
    /// and reconciles them), `session-sweeper` (ends expired sessions), `metrics-collector`
    /// (samples every cluster), `metrics-rollups` (writes the Parquet roll-ups and deletes
    /// what is past retention) or `alerts` (evaluates the rules and notifies).
    name: String,
    /// The replica that holds the lease; null while none does (a holder died and its lease
    /// has not expired yet, or every replica runs with the role off).
    holder: Option<String>,
    /// When the holder took the lease (its clock).
    since: Option<DateTime<Utc>>,
    /// Whether the replica that answered performs the role.
    held_here: bool,
}

#[Object]
impl MetricsQuery {
    /// This console replica and which replica performs each background role (one at a
    /// time across every console on the home NATS; another takes over within a few seconds
    /// of its death). Needs admin in an organization (`FORBIDDEN` otherwise).
    async fn console_replica(&self, ctx: &Context<'_>) -> async_graphql::Result<ConsoleReplica> {
        let (id, roles) = console(ctx).replica(&caller(ctx)?).await?;
        let roles = roles
            .into_iter()
            .map(|r| ConsoleRole {
                name: r.role.to_string(),
                held_here: r.holder.as_ref().is_some_and(|h| h.holder == id),
                since: r
                    .holder
                    .as_ref()
                    .and_then(|h| DateTime::from_timestamp_millis(h.since_ms)),
                holder: r.holder.map(|h| h.holder),
            })
            .collect();
        Ok(ConsoleReplica { id, roles })
    }

    /// Time series of the managed clusters, their streams and consumers, from the samples
    /// the console takes of every cluster (every 10 s by default) and their 1-minute and
    /// 1-hour roll-ups, downsampled to `step`: each point holds the mean, min, max and last
    /// sample of its bucket. At most 100
    /// series and 2,000 points per series. Needs the viewer role on each series' cluster.
    /// Errors: `VALIDATION` (a series of the wrong scope, `from` not before `to`, a step
    /// too small for the range), `NOT_FOUND`, `UNAVAILABLE`.
    async fn metrics(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The series: 1 to 100.")] series: Vec<MetricSeriesInput>,
        #[graphql(desc = "The range's start.")] from: DateTime<Utc>,
        #[graphql(desc = "The range's end; left out, now.")] to: Option<DateTime<Utc>>,
        #[graphql(
            desc = "Seconds per point: at least 1; left out, about 300 points over the range and never finer than the sampling interval."
        )]
        step: Option<i64>,
        #[graphql(
            desc = "Which samples to read; left out, the coarsest the step allows: HOUR for steps of an hour or more, MINUTE for a minute or more (or a range older than the raw samples), else RAW."
        )]
        resolution: Option<MetricResolution>,
    ) -> Result<Vec<MetricSeries>> {
        read(
            ctx,
            keys(series)?,
            Range {
                from,
                to,
                step,
                resolution,
            },
        )
        .await
    }

    /// The streams with the largest latest value of `by`, over every cluster the caller can
    /// view (or one). Errors: `VALIDATION`, `NOT_FOUND`.
    async fn top_streams(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to rank by.")] by: TopStreamsBy,
        #[graphql(default = 10, desc = "How many: 1 to 500; 10 by default.")] first: i32,
        #[graphql(desc = "Only streams of this cluster.")] cluster_id: Option<ID>,
    ) -> Result<Vec<TopStreamEntry>> {
        let list = console(ctx).top_streams(
            &caller(ctx)?,
            by.into(),
            first.max(0) as usize,
            cluster_id.as_ref().map(|c| c.0.as_str()),
        )?;
        Ok(list.into_iter().map(TopStreamEntry).collect())
    }
}

/// One new value of a live series.
#[derive(SimpleObject)]
pub struct MetricValue {
    /// Which series.
    pub series: MetricSeriesKey,
    /// When the sample was taken.
    pub at: DateTime<Utc>,
    /// The value.
    pub value: f64,
}

#[derive(Default)]
pub struct MetricsSubscription;

#[Subscription]
impl MetricsSubscription {
    /// The latest value of each series, then each new value as the console samples its
    /// cluster. A series whose value does not exist in a sample (a rate before a second
    /// sample, a stream that is gone) sends nothing for it. Needs the viewer role on each
    /// series' cluster. Errors: `VALIDATION`, `NOT_FOUND`, `UNAUTHENTICATED` when the
    /// credential ends.
    async fn metrics_live(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The series: 1 to 100.")] series: Vec<MetricSeriesInput>,
    ) -> Result<impl futures::Stream<Item = async_graphql::Result<MetricValue>> + use<>> {
        use futures::StreamExt;
        let values = console(ctx).metrics_live(&caller(ctx)?, keys(series)?)?;
        let values = values.map(|v| MetricValue {
            series: v.key.into(),
            at: time(v.at_ms),
            value: v.value,
        });
        crate::context::guarded(ctx, values)
    }
}
