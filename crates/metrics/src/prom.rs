//! The Prometheus exposition: the console's own metrics (a process-wide recorder that every
//! part of the console records into with the `metrics` macros) and the watched clusters'
//! series, rendered from their latest samples into a recorder made for each scrape, so a
//! stream or consumer that is gone is gone from the next scrape.
//!
//! Cluster series use prometheus-nats-exporter's names and labels
//! (`jetstream_stream_total_messages{server_id, server_name, cluster, domain, meta_leader,
//! is_meta_leader, account, account_id, stream_name, stream_leader, is_stream_leader}`, ...)
//! so dashboards made for it work, plus `console_cluster_id` and `console_cluster`; what
//! the exporter lacks (lag, time to drain, rates, mirror and source lag, percent of limits)
//! is under `jsconsole_<metric>`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::Label;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::sample::Snapshot;
use crate::series::{Metric, Scope};

/// Histogram buckets, seconds: from a fast command to a slow export.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .expect("the buckets are not empty")
}

/// The console's own recorder, installed process-wide on first use (several consoles in one
/// process share it). Its upkeep runs every 5 s once a runtime asks for it.
pub fn console_recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; the console's own metrics stay empty");
        }
        describe();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let h = handle.clone();
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    h.run_upkeep();
                }
            });
        }
        handle
    })
}

/// What kind of metric one of the console's own is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Seconds, with buckets.
    Histogram,
}

/// The console's own metrics: name, kind, help.
pub const CONSOLE_METRICS: &[(&str, Kind, &str)] = &[
    (
        "jsconsole_http_requests_total",
        Kind::Counter,
        "HTTP requests answered, by method, route and status.",
    ),
    (
        "jsconsole_http_request_duration_seconds",
        Kind::Histogram,
        "Time to answer an HTTP request, by method and route.",
    ),
    (
        "jsconsole_graphql_operations_total",
        Kind::Counter,
        "GraphQL operations, by operation name and outcome code.",
    ),
    (
        "jsconsole_graphql_operation_duration_seconds",
        Kind::Histogram,
        "Time to run a GraphQL query or mutation, by operation name.",
    ),
    (
        "jsconsole_command_duration_seconds",
        Kind::Histogram,
        "Time from a command to its committed events, by aggregate.",
    ),
    (
        "jsconsole_commits_total",
        Kind::Counter,
        "Commands committed, by aggregate.",
    ),
    (
        "jsconsole_command_conflicts_total",
        Kind::Counter,
        "Commands refused for a concurrent change, by aggregate.",
    ),
    (
        "jsconsole_command_failures_total",
        Kind::Counter,
        "Commands refused, by aggregate and code.",
    ),
    (
        "jsconsole_projection_pending_events",
        Kind::Gauge,
        "Events each view has yet to apply.",
    ),
    (
        "jsconsole_websocket_connections",
        Kind::Gauge,
        "Open WebSocket connections.",
    ),
    ("jsconsole_subscriptions", Kind::Gauge, "Running GraphQL subscriptions."),
    (
        "jsconsole_collector_duration_seconds",
        Kind::Histogram,
        "Time to read one sample of a cluster.",
    ),
    (
        "jsconsole_collector_samples_total",
        Kind::Counter,
        "Samples taken, by cluster and outcome (ok, partial, lost).",
    ),
    (
        "jsconsole_audit_rows_written_total",
        Kind::Counter,
        "Events the audit writer has put in Parquet files.",
    ),
    (
        "jsconsole_audit_files_written_total",
        Kind::Counter,
        "Parquet files the audit writer has written.",
    ),
    (
        "jsconsole_audit_flushed_sequence",
        Kind::Gauge,
        "The last event-stream sequence in an audit file.",
    ),
    (
        "jsconsole_metrics_rollups_written_total",
        Kind::Counter,
        "Metrics roll-up files written, by resolution (1m, 1h).",
    ),
    (
        "jsconsole_lease_held",
        Kind::Gauge,
        "1 while this replica holds the role's lease and performs it, by role.",
    ),
    (
        "jsconsole_lease_acquired_total",
        Kind::Counter,
        "Times this replica took a role's lease, by role.",
    ),
    (
        "jsconsole_alert_evaluation_seconds",
        Kind::Histogram,
        "Time to check every rule of an organization against one sample of a cluster.",
    ),
    (
        "jsconsole_alert_transitions_total",
        Kind::Counter,
        "Alert transitions recorded, by the state entered.",
    ),
    (
        "jsconsole_alert_deliveries_total",
        Kind::Counter,
        "Notification attempts, by channel kind and outcome.",
    ),
];

/// The watched clusters' series under prometheus-nats-exporter's names: name, help.
pub const EXPORTER_SERIES: &[(&str, &str)] = &[
    ("jetstream_server_jetstream_disabled", "JetStream disabled or not"),
    ("jetstream_server_total_streams", "Total number of streams in JetStream"),
    (
        "jetstream_server_total_consumers",
        "Total number of consumers in JetStream",
    ),
    (
        "jetstream_server_total_messages",
        "Total number of stored messages in JetStream",
    ),
    (
        "jetstream_server_total_message_bytes",
        "Total number of bytes stored in JetStream",
    ),
    (
        "jetstream_stream_total_messages",
        "Total number of messages from a stream",
    ),
    ("jetstream_stream_total_bytes", "Total stored bytes from a stream"),
    ("jetstream_stream_first_seq", "First sequence from a stream"),
    ("jetstream_stream_last_seq", "Last sequence from a stream"),
    (
        "jetstream_stream_consumer_count",
        "Total number of consumers from a stream",
    ),
    (
        "jetstream_consumer_delivered_consumer_seq",
        "Latest sequence number of a stream consumer",
    ),
    (
        "jetstream_consumer_delivered_stream_seq",
        "Latest sequence number of a stream",
    ),
    (
        "jetstream_consumer_num_ack_pending",
        "Number of pending acks from a consumer",
    ),
    (
        "jetstream_consumer_num_redelivered",
        "Number of redelivered messages from a consumer",
    ),
    (
        "jetstream_consumer_num_waiting",
        "Number of inflight fetch requests from a pull consumer",
    ),
    (
        "jetstream_consumer_num_pending",
        "Number of pending messages from a consumer",
    ),
    (
        "jetstream_consumer_ack_floor_stream_seq",
        "Number of ack floor stream seq from a consumer",
    ),
    (
        "jetstream_consumer_ack_floor_consumer_seq",
        "Number of ack floor consumer seq from a consumer",
    ),
];

const SAMPLE_AGE: &str = "jsconsole_sample_age_seconds";

/// Every series name `/metrics` can expose (a histogram as its `_bucket`, `_sum` and
/// `_count` series): what dashboards may refer to.
pub fn exposed_names() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, kind, _) in CONSOLE_METRICS {
        match kind {
            Kind::Histogram => out.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}"))),
            _ => out.push(name.to_string()),
        }
    }
    out.extend(EXPORTER_SERIES.iter().map(|(n, _)| n.to_string()));
    out.push(SAMPLE_AGE.to_string());
    out.extend(Metric::ALL.iter().map(|m| prom_name(*m)));
    out
}

/// Help texts of the console's own metrics.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    for (name, kind, help) in CONSOLE_METRICS {
        match kind {
            Kind::Counter => describe_counter!(*name, *help),
            Kind::Gauge => describe_gauge!(*name, *help),
            Kind::Histogram => describe_histogram!(*name, Unit::Seconds, *help),
        }
    }
}

/// The watched clusters' series, from their latest samples (each with its console name),
/// in the Prometheus text format.
pub fn render_clusters(snapshots: &[(Arc<Snapshot>, String)], now_ms: i64) -> String {
    let recorder: PrometheusRecorder = builder().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        describe_clusters();
        for (s, name) in snapshots {
            record(s, name, now_ms);
        }
    });
    recorder.handle().render()
}

fn describe_clusters() {
    for (name, help) in EXPORTER_SERIES {
        metrics::describe_gauge!(*name, *help);
    }
    metrics::describe_gauge!(SAMPLE_AGE, "Seconds since the cluster's latest sample was taken.");
    for m in Metric::ALL {
        metrics::describe_gauge!(prom_name(*m), m.describe());
    }
}

/// The exposition name of one of the console's series.
pub fn prom_name(m: Metric) -> String {
    format!("jsconsole_{}", m.name())
}

fn set(name: &'static str, labels: &[Label], v: f64) {
    metrics::gauge!(name, labels.to_vec()).set(v);
}

fn set_ours(m: Metric, labels: &[Label], v: Option<f64>) {
    if let Some(v) = v.filter(|v| v.is_finite()) {
        metrics::gauge!(prom_name(m), labels.to_vec()).set(v);
    }
}

fn record(s: &Snapshot, console_name: &str, now_ms: i64) {
    let c = &s.cluster;
    let clustered = !c.server.cluster.is_empty();
    let console = [
        Label::new("console_cluster_id", c.cluster_id.clone()),
        Label::new("console_cluster", console_name.to_string()),
    ];
    let server: Vec<Label> = [
        Label::new("server_id", c.server.id.clone()),
        Label::new("server_name", c.server.name.clone()),
        Label::new("cluster", c.server.cluster.clone()),
        Label::new("domain", c.server.domain.clone()),
        Label::new("meta_leader", String::new()),
        Label::new("is_meta_leader", if clustered { "" } else { "true" }.to_string()),
    ]
    .into_iter()
    .chain(console.iter().cloned())
    .collect();
    set(
        "jsconsole_sample_age_seconds",
        &console,
        ((now_ms - c.at_ms).max(0)) as f64 / 1000.0,
    );
    for m in Metric::ALL.iter().filter(|m| m.scope() == Scope::Cluster) {
        set_ours(*m, &console, m.cluster_value(c));
    }
    if !c.up {
        return;
    }
    set(
        "jetstream_server_jetstream_disabled",
        &server,
        if c.jetstream { 0.0 } else { 1.0 },
    );
    if let Some(a) = &c.account {
        set("jetstream_server_total_streams", &server, a.streams as f64);
        set("jetstream_server_total_consumers", &server, a.consumers as f64);
    }
    let (messages, bytes) = s
        .streams
        .values()
        .fold((0u64, 0u64), |(m, b), st| (m + st.messages, b + st.bytes));
    set("jetstream_server_total_messages", &server, messages as f64);
    set("jetstream_server_total_message_bytes", &server, bytes as f64);
    for st in s.streams.values() {
        let leader = st
            .leader
            .as_ref()
            .map_or_else(|| c.server.name.clone(), |l| l.to_string());
        let is_leader = (leader == c.server.name).to_string();
        let mut stream: Vec<Label> = server.clone();
        stream.extend([
            Label::new("account", String::new()),
            Label::new("account_id", String::new()),
            Label::new("stream_name", st.name.clone()),
            Label::new("stream_leader", leader),
            Label::new("is_stream_leader", is_leader),
        ]);
        set("jetstream_stream_total_messages", &stream, st.messages as f64);
        set("jetstream_stream_total_bytes", &stream, st.bytes as f64);
        set("jetstream_stream_first_seq", &stream, st.first_seq as f64);
        set("jetstream_stream_last_seq", &stream, st.last_seq as f64);
        set("jetstream_stream_consumer_count", &stream, st.consumer_count as f64);
        let ours: Vec<Label> = console
            .iter()
            .cloned()
            .chain([Label::new("stream_name", st.name.clone())])
            .collect();
        for m in Metric::ALL.iter().filter(|m| m.scope() == Scope::Stream) {
            set_ours(*m, &ours, m.stream_value(st));
        }
        for co in &st.consumers {
            let leader = co
                .leader
                .as_ref()
                .map_or_else(|| c.server.name.clone(), |l| l.to_string());
            let is_leader = (leader == c.server.name).to_string();
            let created = co
                .created_ms
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            let mut consumer = stream.clone();
            consumer.extend([
                Label::new("consumer_name", co.name.clone()),
                Label::new("consumer_leader", leader),
                Label::new("is_consumer_leader", is_leader),
                Label::new("consumer_desc", co.description.clone().unwrap_or_default()),
                Label::new("consumer_created", created),
            ]);
            set(
                "jetstream_consumer_delivered_consumer_seq",
                &consumer,
                co.delivered_consumer_seq as f64,
            );
            set(
                "jetstream_consumer_delivered_stream_seq",
                &consumer,
                co.delivered_stream_seq as f64,
            );
            set("jetstream_consumer_num_ack_pending", &consumer, co.ack_pending as f64);
            set("jetstream_consumer_num_redelivered", &consumer, co.redelivered as f64);
            set("jetstream_consumer_num_waiting", &consumer, co.waiting as f64);
            set("jetstream_consumer_num_pending", &consumer, co.pending as f64);
            set(
                "jetstream_consumer_ack_floor_stream_seq",
                &consumer,
                co.ack_floor_stream_seq as f64,
            );
            set(
                "jetstream_consumer_ack_floor_consumer_seq",
                &consumer,
                co.ack_floor_consumer_seq as f64,
            );
            let mut ours_c = ours.clone();
            ours_c.push(Label::new("consumer_name", co.name.clone()));
            for m in Metric::ALL.iter().filter(|m| m.scope() == Scope::Consumer) {
                set_ours(*m, &ours_c, m.consumer_value(co, st.at_ms));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{AccountUsage, ClusterSample, ConsumerSample, StreamSample};

    /// A sample in which every value exists.
    fn rich() -> Snapshot {
        let mut s = Snapshot {
            cluster: ClusterSample {
                cluster_id: "c1".into(),
                at_ms: 10_000,
                up: true,
                jetstream: true,
                rtt_us: Some(100),
                account: Some(AccountUsage {
                    memory: 1,
                    storage: 2,
                    streams: 1,
                    consumers: 1,
                    max_memory: 10,
                    max_storage: 10,
                    max_streams: 10,
                    max_consumers: 10,
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        s.streams.insert(
            "S".into(),
            StreamSample {
                name: "S".into(),
                at_ms: 10_000,
                max_bytes: 100,
                max_msgs: 100,
                mirror_lag: Some(1),
                source_lag: Some(2),
                message_rate: Some(1.0),
                byte_rate: Some(1.0),
                consumers: vec![ConsumerSample {
                    name: "C".into(),
                    last_active_ms: Some(1),
                    delivery_rate: Some(1.0),
                    ack_rate: Some(1.0),
                    redelivery_rate: Some(0.0),
                    time_to_drain_s: Some(3.0),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        s
    }

    #[test]
    fn every_cluster_series_named_as_exposed_is_rendered() {
        let text = render_clusters(&[(Arc::new(rich()), "prod".into())], 11_000);
        let console: Vec<String> = exposed_names()
            .into_iter()
            .filter(|n| !CONSOLE_METRICS.iter().any(|(c, _, _)| n.starts_with(c)))
            .collect();
        for name in console {
            assert!(text.contains(&format!("\n{name}{{")), "{name} is not rendered:\n{text}");
        }
    }

    /// The series names a dashboard expression refers to.
    fn referenced(expr: &str) -> Vec<String> {
        let mut out = Vec::new();
        for prefix in ["jetstream_", "jsconsole_"] {
            let mut rest = expr;
            while let Some(i) = rest.find(prefix) {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                out.push(tail[..end].to_string());
                rest = &tail[end..];
            }
        }
        out
    }

    #[test]
    fn the_grafana_dashboards_are_valid_and_name_only_exposed_series() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/grafana/dashboards");
        let exposed = exposed_names();
        let mut dashboards = 0;
        for entry in std::fs::read_dir(&dir).expect("infra/grafana/dashboards") {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let d: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()), "{}", path.display());
            assert!(d["title"].is_string(), "{}", path.display());
            let panels = d["panels"].as_array().expect("panels");
            assert!(!panels.is_empty(), "{}", path.display());
            let mut exprs: Vec<String> = Vec::new();
            for p in panels {
                assert!(p["gridPos"]["w"].is_u64() && p["datasource"].is_object(), "{p}");
                let targets = p["targets"].as_array().expect("targets");
                assert!(!targets.is_empty(), "{p}");
                exprs.extend(targets.iter().map(|t| t["expr"].as_str().expect("expr").to_string()));
            }
            if let Some(vars) = d["templating"]["list"].as_array() {
                exprs.extend(vars.iter().filter_map(|v| v["query"].as_str()).map(str::to_string));
            }
            for e in &exprs {
                let names = referenced(e);
                for n in names {
                    assert!(
                        exposed.contains(&n),
                        "{}: {n} is not a series /metrics exposes ({e})",
                        path.display()
                    );
                }
            }
            assert!(exprs.iter().any(|e| !referenced(e).is_empty()), "{}", path.display());
            dashboards += 1;
        }
        assert_eq!(dashboards, 2, "the health and the JetStream dashboards");
    }

    #[test]
    fn cluster_series_use_the_exporters_names_and_labels() {
        let mut s = Snapshot {
            cluster: ClusterSample {
                cluster_id: "c1".into(),
                at_ms: 1_000,
                up: true,
                jetstream: true,
                ..Default::default()
            },
            ..Default::default()
        };
        s.cluster.server.name = "n1".into();
        s.streams.insert(
            "ORDERS".into(),
            StreamSample {
                name: "ORDERS".into(),
                at_ms: 1_000,
                messages: 5,
                consumers: vec![ConsumerSample {
                    name: "worker".into(),
                    pending: 3,
                    time_to_drain_s: None,
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        let text = render_clusters(&[(Arc::new(s), "prod".into())], 3_000);
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
                .to_string()
        };
        let stream = line("jetstream_stream_total_messages{");
        assert!(
            stream.contains("stream_name=\"ORDERS\"") && stream.ends_with(" 5"),
            "{stream}"
        );
        assert!(stream.contains("console_cluster=\"prod\""), "{stream}");
        let pending = line("jetstream_consumer_num_pending{");
        assert!(
            pending.contains("consumer_name=\"worker\"") && pending.ends_with(" 3"),
            "{pending}"
        );
        assert!(line("jsconsole_consumer_lag{").ends_with(" 3"));
        assert!(line("jsconsole_sample_age_seconds{").ends_with(" 2"));
        // No time to drain while nothing is acknowledged: the series is left out, not +Inf.
        assert!(!text.contains("jsconsole_consumer_time_to_drain_seconds{"), "{text}");
        assert!(text.contains("# HELP jetstream_stream_total_messages"));
    }
}
