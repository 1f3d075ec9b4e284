//! Metrics roll-ups against a real home NATS and real Parquet files: the 1-minute and
//! 1-hour roll-ups give what the raw samples give, a restart in the middle of a roll-up
//! resumes where the files end and rewrites nothing, rolling a range again writes the same
//! file, retention deletes old files, and `metrics` reads each resolution through GraphQL.
//!
//! The samples are published by the collector's own publish into the metrics stream, two
//! days in the past (the sample time is the sample's, not the message's), so the console's
//! own roll-up (24 h of raw samples) never reaches them and the test's roll-ups (72 h) do.

use std::time::Duration;

use jsc_metrics::rollup::{GRACE_MS, Resolution, RollupRetention, Rollups, file_path};
use jsc_metrics::{ClusterSample, ConsumerSample, Snapshot, StreamSample};
use jsc_testkit::{NatsServer, TestApp};
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

const QUERY: &str =
    "query($s: [MetricSeriesInput!]!, $from: DateTime!, $to: DateTime, $step: Int, $r: MetricResolution) {
  metrics(series: $s, from: $from, to: $to, step: $step, resolution: $r) {
    series { metric stream consumer } resolution step points { at value min max last count }
    columns { at value min max last count } } }";

/// One synthetic sample every 10 s: ORDERS grows by 7 messages a sample, its consumer's lag
/// moves up and down, and the cluster's round trip varies.
fn snapshot(cluster_id: &str, at_ms: i64, i: u64) -> Snapshot {
    let mut s = Snapshot {
        cluster: ClusterSample {
            cluster_id: cluster_id.into(),
            at_ms,
            interval_ms: 10_000,
            up: true,
            jetstream: true,
            rtt_us: Some(100 + (i * 37) % 900),
            ..Default::default()
        },
        ..Default::default()
    };
    s.streams.insert(
        "ORDERS".into(),
        StreamSample {
            name: "ORDERS".into(),
            at_ms,
            messages: 7 * i,
            bytes: 700 * i,
            last_seq: 7 * i,
            message_rate: (i > 0).then_some(0.7),
            consumer_count: 2,
            max_bytes: -1,
            max_msgs: -1,
            // Two consumers, one queried: a roll-up file holds rows of both, and a query
            // must find the rows of its own series only.
            consumers: vec![
                ConsumerSample {
                    name: "archive".into(),
                    pending: 1000 + (i * 7) % 53,
                    ..Default::default()
                },
                ConsumerSample {
                    name: "worker".into(),
                    pending: (i * 13) % 101,
                    ack_pending: i % 5,
                    ..Default::default()
                },
            ],
            ..Default::default()
        },
    );
    s
}

fn series(app_cluster: &str) -> Value {
    json!([
        {"metric": "CONSUMER_LAG", "clusterId": app_cluster, "stream": "ORDERS", "consumer": "worker"},
        {"metric": "STREAM_MESSAGES", "clusterId": app_cluster, "stream": "ORDERS"},
        {"metric": "CLUSTER_RTT_SECONDS", "clusterId": app_cluster},
    ])
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339()
}

async fn read(app: &TestApp, cluster: &str, from: i64, to: i64, step: i64, resolution: &str) -> Value {
    app.data(
        QUERY,
        json!({"s": series(cluster), "from": time(from), "to": time(to), "step": step, "r": resolution}),
    )
    .await
}

/// `columns` holds `points`, one list per field (`at` in milliseconds since the epoch).
fn assert_columns_are_the_points(series: &Value) {
    let (points, columns) = (series["points"].as_array().unwrap(), &series["columns"]);
    for f in ["at", "value", "min", "max", "last", "count"] {
        let column = columns[f]
            .as_array()
            .unwrap_or_else(|| panic!("no column {f}: {series}"));
        assert_eq!(column.len(), points.len(), "{f}");
        for (c, p) in column.iter().zip(points) {
            let want = match f {
                "at" => {
                    let at = chrono::DateTime::parse_from_rfc3339(p["at"].as_str().unwrap()).unwrap();
                    json!(at.timestamp_millis() as f64)
                }
                _ => p[f].clone(),
            };
            assert_eq!(c.as_f64(), want.as_f64(), "{f} of {}", series["series"]);
        }
    }
}

/// The points of every series, with the mean compared to 1e-9 (a mean of means is the
/// mean, up to rounding) and everything else exactly.
fn assert_same_points(raw: &Value, rolled: &Value, resolution: &str) {
    for series in raw["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rolled["metrics"].as_array().unwrap())
    {
        assert_columns_are_the_points(series);
    }
    let (raw, rolled) = (
        raw["metrics"].as_array().unwrap(),
        rolled["metrics"].as_array().unwrap(),
    );
    assert_eq!(raw.len(), rolled.len());
    for (a, b) in raw.iter().zip(rolled) {
        assert_eq!(a["series"], b["series"]);
        assert_eq!(a["resolution"], "RAW");
        assert_eq!(b["resolution"], resolution);
        let (pa, pb) = (a["points"].as_array().unwrap(), b["points"].as_array().unwrap());
        assert!(!pa.is_empty(), "no raw points for {}", a["series"]);
        assert_eq!(pa.len(), pb.len(), "{}", a["series"]);
        for (x, y) in pa.iter().zip(pb) {
            for f in ["at", "min", "max", "last", "count"] {
                assert_eq!(x[f], y[f], "{f} of {} at {}", a["series"], x["at"]);
            }
            let (vx, vy) = (x["value"].as_f64().unwrap(), y["value"].as_f64().unwrap());
            assert!((vx - vy).abs() <= 1e-9 * vx.abs().max(1.0), "mean {vx} vs {vy}");
        }
    }
}

#[tokio::test]
async fn rollups_equal_the_raw_samples_resume_after_a_restart_and_age_out() {
    let managed = NatsServer::start();
    // This console does not sample: the only samples are the test's.
    let app = TestApp::spawn_with(NatsServer::start(), |c| c.monitoring.collect = false).await;
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    let home = app.nats.client().await;
    let js = async_nats::jetstream::new(home.clone());
    let stream =
        jsc_metrics::store::ensure_stream(&jsc_eventstore::HomeStorage::new(home.clone(), 1), Default::default())
            .await
            .unwrap();

    // Three hours of samples at the end of the day before yesterday.
    let now = chrono::Utc::now().timestamp_millis();
    let day = now.div_euclid(DAY) * DAY - 2 * DAY;
    let from = day + 21 * HOUR;
    let n = 3 * 360;
    // Published late, all at once, and out of order by up to 60 s (each run of 7 samples
    // backwards), as concurrent publishes of a backlog may be: within the publish margin,
    // every sample counts in its own hour.
    let order: Vec<u64> = (0..n)
        .collect::<Vec<_>>()
        .chunks(7)
        .flat_map(|c| c.iter().rev().copied())
        .collect();
    for i in order {
        jsc_metrics::store::publish(&js, &snapshot(&cluster, from + i as i64 * 10_000 + 3_000, i))
            .await
            .unwrap();
    }
    let dir = app.data_dir.path().join("audit-store");
    let store = jsc_cli::open_object_store(&format!("file://{}", dir.display()), &[]).unwrap();
    let rollups = |retention| Rollups::new(store.clone(), stream.clone(), Duration::from_secs(72 * 3600), retention);

    // The first hour is rolled, then the console stops.
    let first = rollups(RollupRetention::default());
    let report = first.catch_up(from + HOUR + GRACE_MS).await.unwrap();
    let hour_21 = file_path(Resolution::Minute, &cluster, from, from + HOUR);
    assert_eq!(report.written, vec![hour_21.clone()]);
    drop(first);

    // After the restart, the rest: the next two hours, then the day in hours. Nothing that
    // is already in a file is rolled again.
    let second = rollups(RollupRetention::default());
    let report = second.catch_up(now).await.unwrap();
    assert_eq!(
        report.written,
        vec![
            file_path(Resolution::Minute, &cluster, from + HOUR, from + 2 * HOUR),
            file_path(Resolution::Minute, &cluster, from + 2 * HOUR, from + 3 * HOUR),
            file_path(Resolution::Hour, &cluster, day, day + DAY),
        ]
    );
    assert!(second.catch_up(now).await.unwrap().written.is_empty());

    // Rolling a range again writes the same file.
    let on_disk = |p: &object_store::path::Path| std::fs::read(dir.join(p.as_ref())).unwrap();
    let before = on_disk(&hour_21);
    std::fs::remove_file(dir.join(hour_21.as_ref())).unwrap();
    assert_eq!(
        second.roll_minutes(&cluster, from).await.unwrap(),
        Some(hour_21.clone())
    );
    assert_eq!(on_disk(&hour_21), before);

    // Through GraphQL: each roll-up gives what the raw samples give.
    let to = from + 3 * HOUR;
    let raw = read(&app, &cluster, from, to, 60, "RAW").await;
    let lag = &raw["metrics"][0]["points"];
    assert_eq!(lag.as_array().unwrap().len(), 180, "one point a minute: {lag}");
    assert_eq!(lag[0]["count"], 6);
    // Points answered whole still follow the selection: aliases, fragments, `__typename`,
    // `@skip`, a field asked twice.
    let shaped = app
        .data(
            "query($s: [MetricSeriesInput!]!, $from: DateTime!, $to: DateTime, $no: Boolean!) {
              metrics(series: $s, from: $from, to: $to, step: 60, resolution: RAW) {
                points { __typename t: at ...P ... on MetricPoint { count } value @skip(if: $no) min @include(if: $no) } } }
             fragment P on MetricPoint { v: value at count }",
            json!({"s": series(&cluster), "from": time(from), "to": time(to), "no": true}),
        )
        .await;
    let shaped = shaped["metrics"][0]["points"].as_array().unwrap();
    assert_eq!(shaped.len(), 180);
    for (s, p) in shaped.iter().zip(lag.as_array().unwrap()) {
        let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["__typename", "at", "count", "min", "t", "v"], "{s}");
        assert_eq!(s["__typename"], "MetricPoint");
        assert_eq!((&s["t"], &s["at"], &s["v"]), (&p["at"], &p["at"], &p["value"]));
        assert_eq!((&s["count"], &s["min"]), (&p["count"], &p["min"]));
    }
    assert_same_points(&raw, &read(&app, &cluster, from, to, 60, "MINUTE").await, "MINUTE");
    let raw_hours = read(&app, &cluster, from, to, 3600, "RAW").await;
    // A whole Float is written without a fraction (as graphql-js writes it).
    assert_eq!(raw_hours["metrics"][1]["points"][2]["last"], json!(7 * (n - 1)));
    assert_same_points(&raw_hours, &read(&app, &cluster, from, to, 3600, "HOUR").await, "HOUR");

    // Left to choose, a range older than the raw samples' retention reads the roll-ups.
    let chosen = app
        .data(
            QUERY,
            json!({"s": series(&cluster), "from": time(from), "to": time(to), "step": 600}),
        )
        .await;
    assert_eq!(chosen["metrics"][0]["resolution"], "MINUTE");
    let chosen = app
        .data(
            QUERY,
            json!({"s": series(&cluster), "from": time(day), "to": time(day + DAY)}),
        )
        .await;
    assert_eq!(chosen["metrics"][0]["resolution"], "MINUTE", "a day at 288 s steps");
    let (code, message) = app
        .error(
            QUERY,
            json!({"s": series(&cluster), "from": time(from), "to": time(to), "step": 10, "r": "MINUTE"}),
        )
        .await;
    assert_eq!(code, "VALIDATION");
    assert!(
        message.contains("step: at least 60 s at resolution MINUTE"),
        "{message}"
    );

    // Retention: minutes kept a day are deleted; hours kept longer stay and still answer.
    let short = rollups(RollupRetention {
        minute: Duration::from_secs(86_400),
        hour: Duration::from_secs(30 * 86_400),
    });
    let report = short.catch_up(now).await.unwrap();
    assert_eq!(report.deleted.len(), 3, "{report:?}");
    assert!(report.deleted.iter().all(|p| p.as_ref().contains("resolution=1m")));
    assert!(!dir.join(hour_21.as_ref()).exists());
    let files = short.files().await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].resolution, Resolution::Hour);
    assert_same_points(&raw_hours, &read(&app, &cluster, from, to, 3600, "HOUR").await, "HOUR");
    // The three hours rolled per minute again, and a second cluster with the same samples and
    // no roll-up, asked for in the same query: each cluster is read from where its own
    // roll-ups end, so neither counts twice.
    for h in 0..3 {
        assert!(second.roll_minutes(&cluster, from + h * HOUR).await.unwrap().is_some());
    }
    let other = app
        .register_cluster(json!({"name": "other", "urls": [managed.url()]}))
        .await;
    for i in 0..n {
        jsc_metrics::store::publish(&js, &snapshot(&other, from + i as i64 * 10_000 + 3_000, i))
            .await
            .unwrap();
    }
    let both: Vec<Value> = series(&cluster)
        .as_array()
        .unwrap()
        .iter()
        .chain(series(&other).as_array().unwrap())
        .cloned()
        .collect();
    let together = app
        .data(
            QUERY,
            json!({"s": both, "from": time(from), "to": time(to), "step": 60, "r": "MINUTE"}),
        )
        .await;
    let alone = read(&app, &cluster, from, to, 60, "MINUTE").await;
    let other_raw = read(&app, &other, from, to, 60, "RAW").await;
    for i in 0..3 {
        assert_eq!(together["metrics"][i]["points"], alone["metrics"][i]["points"], "{i}");
        assert_eq!(
            together["metrics"][i + 3]["points"],
            other_raw["metrics"][i]["points"],
            "{i} of the other cluster"
        );
    }
}

#[tokio::test]
async fn a_repeated_query_reads_on_from_where_it_stopped_and_counts_each_sample_once() {
    let managed = NatsServer::start();
    let app = TestApp::spawn_with(NatsServer::start(), |c| c.monitoring.collect = false).await;
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    let js = async_nats::jetstream::new(app.nats.client().await);
    let start = (chrono::Utc::now().timestamp_millis() - HOUR).div_euclid(60_000) * 60_000;
    let publish = |from: u64, to: u64| {
        let (js, cluster) = (js.clone(), cluster.clone());
        async move {
            for i in from..to {
                jsc_metrics::store::publish(&js, &snapshot(&cluster, start + i as i64 * 10_000 + 3_000, i))
                    .await
                    .unwrap();
            }
        }
    };
    let counts = |v: &Value| -> Vec<u64> {
        v["metrics"][0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["count"].as_u64().unwrap())
            .collect()
    };
    let to = start + 30 * 60_000;
    publish(0, 60).await;
    let first = read(&app, &cluster, start, to, 60, "RAW").await;
    assert_eq!(counts(&first), vec![6; 10], "{first}");
    // More samples: the same query (now served from what it read, plus the new ones) and one
    // from earlier than anything it kept give the same, each sample once.
    publish(60, 90).await;
    let second = read(&app, &cluster, start, to, 60, "RAW").await;
    assert_eq!(counts(&second), vec![6; 15], "{second}");
    let earlier = read(&app, &cluster, start - HOUR, to, 60, "RAW").await;
    assert_eq!(counts(&earlier), vec![6; 15]);
    assert_eq!(earlier["metrics"][0]["points"], second["metrics"][0]["points"]);
    // Nothing new: the same answer again.
    assert_eq!(read(&app, &cluster, start, to, 60, "RAW").await, second);
}
