//! Scenarios 13 and 14: alerts.
//!
//! 13. From the sample that crosses a lag threshold to the webhook arriving at a local
//!     receiver (`for` 0, `groupWait` 0, one group per consumer), beside the raw path: the
//!     bench process publishes on NATS, a subscriber of its own takes the message and posts
//!     it to the same receiver.
//! 14. The evaluator's CPU for 10,000 rules over 5,000 consumer series (1,000 streams × 5
//!     consumers), in this process, beside decoding the same sample's 1,000 stream records
//!     from the metrics stream's encoding (what any reader of a sample pays first).

use std::collections::BTreeMap;

use jsc_domain::alerts::{AlertRule, Condition, Glob, RuleSpec, Scope, Severity};

use super::*;

const CONSUMERS: usize = 20;

type Arrivals = tokio::sync::mpsc::UnboundedSender<(i64, Value)>;

/// A receiver in this process: every POST is timestamped on arrival.
async fn receiver() -> anyhow::Result<(String, tokio::sync::mpsc::UnboundedReceiver<(i64, Value)>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    async fn take(axum::extract::State(tx): axum::extract::State<Arrivals>, body: String) -> &'static str {
        let now = chrono::Utc::now().timestamp_micros();
        let _ = tx.send((now, serde_json::from_str(&body).unwrap_or(Value::Null)));
        "ok"
    }
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(take))
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, rx))
}

/// Waits for `n` notifications of `kind`; answers each one's latency in ms from the
/// sample time its alert carries.
async fn arrivals(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(i64, Value)>,
    kind: &str,
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while out.len() < n {
        let (at_us, body) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .map_err(|_| anyhow::anyhow!("{} of {n} {kind} notifications within 60 s", out.len()))?
            .ok_or_else(|| anyhow::anyhow!("the receiver stopped"))?;
        if body["type"] != kind {
            continue;
        }
        for a in body["data"]["alerts"].as_array().into_iter().flatten() {
            let field = if kind == "alert.firing" { "starts_at" } else { "ends_at" };
            let sampled = chrono::DateTime::parse_from_rfc3339(a[field].as_str().unwrap_or_default())?;
            out.push((at_us - sampled.timestamp_micros()) as f64 / 1e3);
        }
    }
    Ok(out)
}

pub(super) async fn alerts(args: &Args, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let mut rows = notification_latency(args, sizes).await?;
    rows.extend(evaluation_cpu(sizes)?);
    Ok(rows)
}

async fn notification_latency(args: &Args, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let home = Server::start()?;
    let managed = Server::start()?;
    let client = managed.client().await?;
    let js = jetstream::new(client.clone());
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: "ALERTED".into(),
            subjects: vec!["alerted.>".into()],
            ..Default::default()
        })
        .await?;
    for c in 0..CONSUMERS {
        stream
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some(format!("C{c}")),
                ..Default::default()
            })
            .await?;
    }
    let (url, mut rx) = receiver().await?;
    let console = Child::start_with(&args.jsconsole, &home.process.url(), &["--metrics-interval", "1"]).await?;
    let http = authed_client(&console.token)?;
    gql(
        &http,
        &console.base,
        "mutation($u: String!) { registerCluster(input: {name: \"managed\", urls: [$u]}) { cluster { id } } }",
        json!({"u": managed.process.url()}),
    )
    .await?;
    let channel = gql(
        &http,
        &console.base,
        "mutation($u: String!) { createNotificationChannel(input: {channel: {name: \"bench\", kind: WEBHOOK, url: $u}}) { channel { id } } }",
        json!({"u": url}),
    )
    .await?["createNotificationChannel"]["channel"]["id"]
        .clone();
    gql(
        &http,
        &console.base,
        "mutation($c: ID!) { setAlertPolicy(input: {policy: {channels: [$c], groupBy: [\"consumer\"], groupWait: \"0s\", groupInterval: \"1s\"}}) { policy { channels } } }",
        json!({"c": channel}),
    )
    .await?;
    gql(
        &http,
        &console.base,
        "mutation { createAlertRule(input: {rule: {name: \"lag\", condition: {kind: CONSUMER_LAG, threshold: 5}, scope: {streams: [\"ALERTED\"]}}}) { alertRule { id } } }",
        json!({}),
    )
    .await?;
    let rounds = if args.quick { 3 } else { sizes.runs.max(5) };
    let mut fired = Vec::new();
    for _ in 0..rounds {
        for i in 0..10 {
            js.publish(format!("alerted.{i}"), "x".into()).await?.await?;
        }
        let mut lat = arrivals(&mut rx, "alert.firing", CONSUMERS).await?;
        lat.sort_by(|a, b| a.total_cmp(b));
        fired.push(lat);
        js.get_stream("ALERTED").await?.purge().await?;
        arrivals(&mut rx, "alert.resolved", CONSUMERS).await?;
    }
    drop(console);

    // Raw: a NATS hop and the same HTTP POST, from this process.
    let nats = home.client().await?;
    let mut sub = nats.subscribe("bench.alerts.raw").await?;
    let poster = reqwest::Client::new();
    let mut raw = Vec::new();
    for _ in 0..rounds {
        let mut lat = Vec::new();
        for _ in 0..CONSUMERS {
            let sent = chrono::Utc::now();
            nats.publish("bench.alerts.raw", sent.to_rfc3339().into()).await?;
            let m = sub.next().await.ok_or_else(|| anyhow::anyhow!("no message"))?;
            let body = json!({"type": "alert.firing", "data": {"alerts": [{"starts_at": String::from_utf8_lossy(&m.payload)}]}});
            poster.post(&url).json(&body).send().await?;
            lat.extend(arrivals(&mut rx, "alert.firing", 1).await?);
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        raw.push(lat);
    }
    let p = |runs: &[Vec<f64>], q: f64| runs.iter().map(|r| percentile(r, q)).collect::<Vec<_>>();
    let note = format!(
        "{CONSUMERS} consumers of one stream cross a lag threshold of 5 in the same sample (sampled every 1 s); `for` 0, \
         `groupWait` 0, one group per consumer; latency from the sample's time (the alert's startsAt) to the webhook \
         request arriving at a receiver in the bench process; {rounds} rounds. The sample time is taken before the \
         cluster is read, so the figure includes reading it"
    );
    let row = |metric: &str, console: Vec<f64>, raw: Vec<f64>, target: Target| Row {
        scenario: "13. alert notification latency".into(),
        metric: metric.into(),
        unit: "ms".into(),
        console: Measured::of(console),
        raw: Some(Measured::of(raw)),
        raw_label: "NATS publish → subscriber → the same HTTP POST, in the bench process".into(),
        better: Better::Lower,
        target,
        note: note.clone(),
    };
    Ok(vec![
        row("sample → webhook, p50", p(&fired, 50.0), p(&raw, 50.0), Target::None),
        row(
            "sample → webhook, p99",
            p(&fired, 99.0),
            p(&raw, 99.0),
            Target::AbsoluteAtMost { value: 200.0 },
        ),
    ])
}

/// 10,000 rules: 9,000 on the lag of one consumer of one stream each, 500 on one stream's
/// storage, 500 with wildcard stream patterns; 1,000 streams × 5 consumers.
fn rules() -> Vec<AlertRule> {
    let spec = |condition: Condition, streams: Vec<String>, consumers: Vec<String>| RuleSpec {
        name: "bench".into(),
        description: String::new(),
        condition,
        scope: Scope {
            streams: streams.into_iter().map(Glob).collect(),
            consumers: consumers.into_iter().map(Glob).collect(),
            ..Default::default()
        },
        severity: Severity::Warning,
        for_s: 60,
        keep_firing_for_s: 0,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        enabled: true,
    };
    (0..10_000)
        .map(|i| {
            let s = if i < 9_000 {
                spec(
                    Condition::ConsumerLag { threshold: Some(900.0) },
                    vec![format!("S{}", i % 1_000)],
                    vec![format!("C{}", (i / 1_000) % 5)],
                )
            } else if i < 9_500 {
                spec(
                    Condition::StreamStorage { percent: 90.0 },
                    vec![format!("S{}", i % 1_000)],
                    vec![],
                )
            } else {
                spec(
                    Condition::ConsumerLag { threshold: Some(990.0) },
                    vec![format!("S{}*", i % 10)],
                    vec![],
                )
            };
            AlertRule {
                id: format!("r{i}"),
                organization: "bench".into(),
                spec: Some(s),
                deleted: false,
            }
        })
        .collect()
}

fn sample(t: i64) -> jsc_metrics::Snapshot {
    let streams = (0..1_000)
        .map(|s| {
            let name = format!("S{s}");
            let sample = jsc_metrics::StreamSample {
                name: name.clone(),
                at_ms: t,
                messages: 1_000,
                bytes: (s as u64 * 7 + t as u64) % 1_000,
                max_bytes: 1_000,
                message_rate: Some(10.0),
                consumers: (0..5)
                    .map(|c| jsc_metrics::ConsumerSample {
                        name: format!("C{c}"),
                        pending: ((s * 31 + c * 17) as u64 + t as u64 / 1_000) % 1_000,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            (name, sample)
        })
        .collect();
    jsc_metrics::Snapshot {
        cluster: jsc_metrics::ClusterSample {
            cluster_id: "c".into(),
            at_ms: t,
            up: true,
            jetstream: true,
            streams: 1_000,
            ..Default::default()
        },
        streams,
    }
}

struct NoFacts;

impl jsc_alerts::Facts for NoFacts {
    fn stream_metadata(&self, _: &str, _: &str) -> Option<BTreeMap<String, String>> {
        None
    }
    fn consumer_metadata(&self, _: &str, _: &str, _: &str) -> Option<BTreeMap<String, String>> {
        None
    }
    fn dead_letters(&self, _: &str, _: &str, _: &str, _: i64) -> u64 {
        0
    }
}

fn evaluation_cpu(sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let rules = rules();
    let refs: Vec<&AlertRule> = rules.iter().collect();
    let cluster = jsc_alerts::ClusterInfo {
        id: "c".into(),
        name: "c".into(),
        tags: vec![],
        organization: "bench".into(),
    };
    let samples: Vec<jsc_metrics::Snapshot> = (0..20).map(|i| sample(i * 10_000)).collect();
    let mut console = Vec::new();
    let mut raw = Vec::new();
    let mut transitions = 0;
    for _ in 0..sizes.runs.max(3) {
        let mut evaluator = jsc_alerts::Evaluator::new();
        let start = Instant::now();
        for s in &samples {
            transitions += evaluator.evaluate(s, &cluster, &refs, &NoFacts).len();
        }
        console.push(start.elapsed().as_secs_f64() * 1e3 / samples.len() as f64);
        // Raw: the sample's records as the metrics stream holds them, decoded.
        let encoded: Vec<(String, Vec<u8>)> = samples[0]
            .streams
            .values()
            .map(|s| {
                (
                    format!("jsc.metrics.c.stream.{}", s.name),
                    jsc_metrics::sample::encode(s),
                )
            })
            .collect();
        let start = Instant::now();
        for _ in &samples {
            for (subject, payload) in &encoded {
                jsc_metrics::Record::decode(subject, payload)?;
            }
        }
        raw.push(start.elapsed().as_secs_f64() * 1e3 / samples.len() as f64);
    }
    anyhow::ensure!(transitions > 0, "the rules never fired: the benchmark checks nothing");
    Ok(vec![Row {
        scenario: "14. alert evaluation, 10,000 rules over 5,000 series".into(),
        metric: "time per sample (one core)".into(),
        unit: "ms".into(),
        console: Measured::of(console),
        raw: Some(Measured::of(raw)),
        raw_label: "decoding the same sample's 1,000 stream records".into(),
        better: Better::Lower,
        target: Target::AbsoluteAtMost { value: 20.0 },
        note: "9,000 lag rules on one consumer each, 500 storage rules on one stream each, 500 lag rules with a \
               wildcard stream pattern; 1,000 streams × 5 consumers; 20 samples in a row, the evaluator in the bench \
               process (single-threaded, so wall time is its CPU)"
            .into(),
    }])
}
