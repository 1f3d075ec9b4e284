//! Monitoring through GraphQL and `/metrics` against real managed nats-servers: the
//! collector samples them into the metrics stream; lag and rates follow real traffic, a
//! purge never makes a negative rate, a cluster that goes away is seen down, and the
//! Prometheus exposition carries the exporter's names with their labels.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use jsc_testkit::{NatsServer, TestApp, code};
use serde_json::{Value, json};

/// Sampling every 200 ms keeps the tests short; they wait for samples, never for time.
async fn console_on(managed: &NatsServer) -> (TestApp, String) {
    let app = TestApp::spawn_with(NatsServer::start(), |c| {
        c.monitoring.interval = Duration::from_millis(200);
        c.audit_max_age = Duration::from_millis(200);
    })
    .await;
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    (app, cluster)
}

const LIVE: &str = "subscription($s: [MetricSeriesInput!]!) {
  metricsLive(series: $s) { series { metric clusterId stream consumer } at value } }";

const METRICS: &str = "query($s: [MetricSeriesInput!]!, $from: DateTime!, $step: Int) {
  metrics(series: $s, from: $from, step: $step) {
    series { metric stream consumer } resolution step points { at value min max last count } } }";

fn series(metric: &str, cluster: &str, stream: Option<&str>, consumer: Option<&str>) -> Value {
    json!({"metric": metric, "clusterId": cluster, "stream": stream, "consumer": consumer})
}

/// Waits on a live subscription until `metric` has a value for which `pred` holds.
async fn until(sub: &mut jsc_testkit::Subscription, metric: &str, pred: impl Fn(f64) -> bool) -> f64 {
    for _ in 0..500 {
        let data = sub.next_data().await;
        let v = &data["metricsLive"];
        if v["series"]["metric"] == metric {
            let value = v["value"].as_f64().unwrap();
            if pred(value) {
                return value;
            }
        }
    }
    panic!("{metric} never reached the expected value");
}

pub(crate) async fn create_orders(js: &jetstream::Context) -> consumer::PullConsumer {
    let s = js
        .create_stream(stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            max_bytes: 1 << 20,
            ..Default::default()
        })
        .await
        .unwrap();
    s.create_consumer(consumer::pull::Config {
        durable_name: Some("worker".into()),
        ack_policy: consumer::AckPolicy::Explicit,
        ..Default::default()
    })
    .await
    .unwrap()
}

pub(crate) async fn publish(js: &jetstream::Context, n: usize) {
    for i in 0..n {
        js.publish("orders.new", format!("{{\"n\": {i}}}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

fn points(body: &Value, i: usize) -> Vec<Value> {
    body["metrics"][i]["points"].as_array().unwrap().clone()
}

fn field(points: &[Value], f: &str) -> Vec<f64> {
    points.iter().map(|p| p[f].as_f64().unwrap()).collect()
}

#[tokio::test]
async fn lag_and_rates_follow_real_traffic_and_a_purge_makes_no_negative_rate() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    let worker = create_orders(&js).await;
    let started = chrono::Utc::now() - chrono::Duration::seconds(1);
    let c = cluster.as_str();
    let mut live = app
        .subscribe(
            "graphql-transport-ws",
            LIVE,
            json!({"s": [
                series("CONSUMER_LAG", c, Some("ORDERS"), Some("worker")),
                series("STREAM_MESSAGES", c, Some("ORDERS"), None),
            ]}),
        )
        .await;

    // A sample of the empty stream first, so the next ones have a rate.
    until(&mut live, "STREAM_MESSAGES", |v| v == 0.0).await;
    publish(&js, 50).await;
    until(&mut live, "CONSUMER_LAG", |v| v == 50.0).await;
    // Work off 20 of them.
    let mut batch = worker.fetch().max_messages(20).messages().await.unwrap();
    let mut acked = 0;
    while let Some(m) = batch.next().await {
        m.unwrap().double_ack().await.unwrap();
        acked += 1;
    }
    assert_eq!(acked, 20);
    until(&mut live, "CONSUMER_LAG", |v| v == 30.0).await;

    let body = app
        .data(
            METRICS,
            json!({"from": started, "step": 1, "s": [
                series("CONSUMER_LAG", c, Some("ORDERS"), Some("worker")),
                series("STREAM_MESSAGE_RATE", c, Some("ORDERS"), None),
                series("CONSUMER_ACK_RATE", c, Some("ORDERS"), Some("worker")),
                series("STREAM_STORAGE_PERCENT", c, Some("ORDERS"), None),
            ]}),
        )
        .await;
    assert_eq!(body["metrics"][0]["resolution"], "RAW", "{body}");
    assert_eq!(body["metrics"][0]["step"], 1, "{body}");
    let lag = points(&body, 0);
    let max = field(&lag, "max");
    assert_eq!(max.iter().cloned().fold(0.0, f64::max), 50.0, "{body}");
    assert_eq!(lag.last().unwrap()["last"], 30.0, "{body}");
    let rate = field(&points(&body, 1), "max");
    assert!(rate.iter().any(|r| *r > 0.0), "messages were stored: {body}");
    let acks = field(&points(&body, 2), "max");
    assert!(acks.iter().any(|r| *r > 0.0), "messages were acknowledged: {body}");
    let storage = field(&points(&body, 3), "last");
    assert!(*storage.last().unwrap() > 0.0, "{body}");
    assert!(storage.iter().all(|p| *p < 100.0), "{body}");

    // A purge empties the stream; five more arrive. The rate stays at or above zero.
    js.get_stream("ORDERS").await.unwrap().purge().await.unwrap();
    publish(&js, 5).await;
    until(&mut live, "STREAM_MESSAGES", |v| v == 5.0).await;
    let body = app
        .data(
            METRICS,
            json!({"from": started, "step": 1, "s": [
                series("STREAM_MESSAGE_RATE", c, Some("ORDERS"), None),
                series("STREAM_BYTE_RATE", c, Some("ORDERS"), None),
            ]}),
        )
        .await;
    for i in 0..2 {
        let mins = field(&points(&body, i), "min");
        assert!(!mins.is_empty(), "{body}");
        assert!(
            mins.iter().all(|m| *m >= 0.0),
            "no negative rate across a purge: {body}"
        );
    }

    // The busiest streams by bytes, from the latest samples.
    let top = app
        .data(
            "query($c: ID) { topStreams(by: BYTES, first: 5, clusterId: $c) { streamName value sampledAt stream { name } } }",
            json!({"c": c}),
        )
        .await;
    assert_eq!(top["topStreams"][0]["streamName"], "ORDERS", "{top}");
    assert!(top["topStreams"][0]["value"].as_f64().unwrap() > 0.0, "{top}");

    // The shortcuts on the objects read the same series.
    let shortcut = app
        .data(
            "query($c: ID!, $from: DateTime!) { stream(clusterId: $c, name: \"ORDERS\") {
                throughput(from: $from, step: 1) { series { metric } points { max } }
                consumers { nodes { lag(from: $from, step: 1) { series { metric consumer } points { last } } } } }
              cluster(id: $c) { storage(from: $from) { series { metric } points { last } } } }",
            json!({"c": c, "from": started}),
        )
        .await;
    let tp = &shortcut["stream"]["throughput"];
    assert_eq!(tp[0]["series"]["metric"], "STREAM_MESSAGE_RATE", "{shortcut}");
    assert_eq!(tp[1]["series"]["metric"], "STREAM_BYTE_RATE", "{shortcut}");
    let lag = &shortcut["stream"]["consumers"]["nodes"][0]["lag"];
    assert_eq!(lag["series"]["consumer"], "worker", "{shortcut}");
    // After the purge: only the five new messages are pending.
    assert_eq!(
        lag["points"].as_array().unwrap().last().unwrap()["last"],
        5.0,
        "{shortcut}"
    );
    let storage = &shortcut["cluster"]["storage"];
    assert_eq!(storage[0]["series"]["metric"], "ACCOUNT_STORAGE_BYTES", "{shortcut}");
    assert!(!storage[0]["points"].as_array().unwrap().is_empty(), "{shortcut}");
}

#[tokio::test]
async fn a_cluster_that_goes_away_is_sampled_as_down() {
    let mut managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let mut live = app
        .subscribe(
            "graphql-transport-ws",
            LIVE,
            json!({"s": [series("CLUSTER_UP", &cluster, None, None)]}),
        )
        .await;
    until(&mut live, "CLUSTER_UP", |v| v == 1.0).await;
    managed.stop();
    until(&mut live, "CLUSTER_UP", |v| v == 0.0).await;
}

#[tokio::test]
async fn bad_series_and_ranges_are_refused_with_what_to_do() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let from = chrono::Utc::now() - chrono::Duration::hours(1);
    let c = cluster.as_str();
    let cases = [
        (
            json!({"from": from, "s": [series("CONSUMER_LAG", c, Some("ORDERS"), None)]}),
            "consumer_lag is a consumer metric: give a stream and a consumer",
        ),
        (
            json!({"from": from, "s": [series("CLUSTER_UP", c, Some("ORDERS"), None)]}),
            "cluster metric",
        ),
        (json!({"from": from, "s": []}), "name at least one series"),
        (
            json!({"from": from, "step": 1, "s": [series("CLUSTER_UP", c, None, None)]}),
            "at most 2000 points",
        ),
        (
            json!({"from": chrono::Utc::now() + chrono::Duration::hours(1), "s": [series("CLUSTER_UP", c, None, None)]}),
            "from: must be before to",
        ),
        (
            json!({"from": from, "step": 0, "s": [series("CLUSTER_UP", c, None, None)]}),
            "step: at least 1 second",
        ),
    ];
    for (vars, words) in cases {
        let (got, message) = app.error(METRICS, vars.clone()).await;
        assert_eq!(got, "VALIDATION", "{vars}: {message}");
        assert!(message.contains(words), "{vars}: {message}");
    }
    let (got, _) = app
        .error(
            METRICS,
            json!({"from": from, "s": [series("CLUSTER_UP", "no-such-cluster", None, None)]}),
        )
        .await;
    assert_eq!(got, "NOT_FOUND");
    let anonymous = app
        .graphql_as(
            None,
            METRICS,
            json!({"from": from, "s": [series("CLUSTER_UP", c, None, None)]}),
        )
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    let (got, message) = app
        .error("{ topStreams(by: LAG, first: 0) { streamName } }", json!({}))
        .await;
    assert_eq!(got, "VALIDATION", "{message}");
}

/// The exposition, once the console has sampled the managed cluster with ORDERS in it.
async fn scrape_when_sampled(app: &TestApp, token: &str) -> String {
    let mut live = app
        .subscribe(
            "graphql-transport-ws",
            LIVE,
            json!({"s": [series("STREAM_MESSAGES", &app_cluster(app).await, Some("ORDERS"), None)]}),
        )
        .await;
    until(&mut live, "STREAM_MESSAGES", |v| v == 3.0).await;
    let response = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    response.text().await.unwrap()
}

async fn app_cluster(app: &TestApp) -> String {
    let data = app
        .data("{ clusters(nameContains: \"managed\") { nodes { id } } }", json!({}))
        .await;
    data["clusters"]["nodes"][0]["id"].as_str().unwrap().to_string()
}

/// The line of `metric` whose labels include every one of `labels`.
fn line<'a>(text: &'a str, metric: &str, labels: &[&str]) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{metric}{{")) && labels.iter().all(|x| l.contains(x)))
        .unwrap_or_else(|| panic!("no {metric} with {labels:?} in\n{text}"))
}

#[tokio::test]
async fn metrics_endpoint_speaks_the_exporters_names_and_needs_a_credential() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create_orders(&js).await;
    publish(&js, 3).await;
    // The audit writer has put the registration in a file.
    let state = app.nats.jetstream().await.get_key_value("audit_state").await.unwrap();
    let mut flushed = state.watch_with_history("flushed").await.unwrap();
    while let Some(e) = flushed.next().await {
        if std::str::from_utf8(&e.unwrap().value).unwrap().parse::<u64>().unwrap() > 0 {
            break;
        }
    }

    let anonymous = app.get("/metrics").await;
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert!(body.to_string().contains("API key"), "{body}");
    let forged = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    let text = scrape_when_sampled(&app, app.token.as_deref().unwrap()).await;
    let stream = ["stream_name=\"ORDERS\"", "console_cluster=\"managed\""];
    assert!(line(&text, "jetstream_stream_total_messages", &stream).ends_with(" 3"));
    assert!(line(&text, "jetstream_stream_last_seq", &stream).ends_with(" 3"));
    for label in [
        "server_id=",
        "server_name=",
        "is_stream_leader=\"true\"",
        "stream_leader=",
    ] {
        assert!(line(&text, "jetstream_stream_total_messages", &stream).contains(label));
    }
    let consumer = ["stream_name=\"ORDERS\"", "consumer_name=\"worker\""];
    assert!(line(&text, "jetstream_consumer_num_pending", &consumer).ends_with(" 3"));
    assert!(line(&text, "jsconsole_consumer_lag", &consumer).ends_with(" 3"));
    assert!(
        line(
            &text,
            "jsconsole_cluster_up",
            &[&format!("console_cluster_id=\"{cluster}\"")]
        )
        .ends_with(" 1")
    );
    // The console's own metrics, for an organization's admin.
    assert!(text.contains("jsconsole_http_requests_total{"), "{text}");
    assert!(text.contains("jsconsole_graphql_operations_total{"), "{text}");
    assert!(text.contains("jsconsole_commits_total{"), "{text}");
    assert!(text.contains("jsconsole_collector_duration_seconds_bucket{"), "{text}");
    assert!(text.contains("jsconsole_projection_pending_events{"), "{text}");
    let audit_rows = text
        .lines()
        .find_map(|l| l.strip_prefix("jsconsole_audit_rows_written_total "))
        .unwrap_or_else(|| panic!("no audit rows counter in\n{text}"));
    assert!(audit_rows.parse::<f64>().unwrap() >= 1.0, "{audit_rows}");
    assert!(text.contains("jsconsole_audit_flushed_sequence "), "{text}");

    // promtool, where the tool step could install it, agrees it is valid exposition.
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // Exit 3 is lint advice only; the one piece allowed is about a name kept as
            // prometheus-nats-exporter has it, so that its dashboards work.
            let kept = "jetstream_stream_consumer_count non-histogram and non-summary metrics should not have \"_count\" suffix";
            let lint_only = out.status.code() == Some(3) && said.lines().all(|l| l.trim().is_empty() || l == kept);
            assert!(out.status.success() || lint_only, "promtool check metrics: {said}");
        }
        Err(e) => eprintln!("SKIPPED promtool check: promtool is not installed ({e}); `make test` installs it"),
    }
}

/// Kills a child process when dropped.
pub(crate) struct Child(pub(crate) std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_console_and_answers_with_the_labels() {
    if std::process::Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: prometheus is not installed; `make test` installs Debian's package");
        return;
    }
    let managed = NatsServer::start();
    let (app, _cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create_orders(&js).await;
    publish(&js, 3).await;
    let token = app.token.clone().unwrap();
    // The console has sampled ORDERS with its three messages before Prometheus starts.
    scrape_when_sampled(&app, &token).await;

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: jsconsole\n    metrics_path: /metrics\n    \
         authorization:\n      credentials: {token}\n    static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let _prometheus = Child(
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let query = |q: &'static str| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://127.0.0.1:{port}/api/v1/query"))
                .query(&[("query", q)])
                .send()
                .await
                .ok()?;
            let body: Value = r.json().await.ok()?;
            let first = body["data"]["result"].as_array()?.first()?.clone();
            Some(first)
        }
    };
    // Prometheus starts, then scrapes every second: ask until the series is there (no event
    // to wait for outside the process), for at most 60 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let stream = loop {
        if let Some(r) = query("jetstream_stream_total_messages{stream_name=\"ORDERS\"}").await {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "Prometheus never had the series");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(stream["value"][1], "3", "{stream}");
    let labels = &stream["metric"];
    assert_eq!(labels["console_cluster"], "managed", "{stream}");
    assert_eq!(labels["job"], "jsconsole", "{stream}");
    assert!(
        labels["server_name"].as_str().is_some_and(|s| !s.is_empty()),
        "{stream}"
    );
    assert_eq!(labels["is_stream_leader"], "true", "{stream}");
    let lag = query("jsconsole_consumer_lag{consumer_name=\"worker\"}").await.unwrap();
    assert_eq!(lag["value"][1], "3", "{lag}");
    assert_eq!(lag["metric"]["stream_name"], "ORDERS", "{lag}");
    let up = query("up{job=\"jsconsole\"}").await.unwrap();
    assert_eq!(up["value"][1], "1", "the scrape succeeded with the API key: {up}");
}

#[test]
fn the_grafana_dashboards_expressions_are_valid_promql() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/grafana/dashboards");
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let d: Value = serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                // Grafana's variables stand for label regexes.
                let expr = t["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$cluster", ".*")
                    .replace("$stream", ".*");
                rules.push_str(&format!(
                    "      - record: dashboard:expr{n}\n        expr: {}\n",
                    json!(expr)
                ));
                n += 1;
            }
        }
    }
    assert!(n > 10, "{rules}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &rules).unwrap();
    match std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(file.path())
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "promtool check rules:\n{}{}\n{rules}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("SKIPPED promtool check: promtool is not installed ({e}); `make test` installs it"),
    }
}

/// A managed nats-server with an application account (the console's) and a system account.
fn server_with_system_account() -> (NatsServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("accounts.conf");
    std::fs::write(
        &conf,
        r#"accounts {
  APP { jetstream: enabled, users: [{user: app, password: app-secret}] }
  SYS { users: [{user: sys, password: sys-secret}] }
}
system_account: SYS
"#,
    )
    .unwrap();
    (NatsServer::start_with(&["-c", conf.to_str().unwrap()]), dir)
}

const LAST_SAMPLE: &str = "query($id: ID!) { node(id: $id) { ... on Cluster {
  systemAuth metricsInterval lastSample { sampledAt up source interval streams error } } } }";

#[tokio::test]
async fn with_a_system_account_samples_come_from_every_servers_report_at_the_clusters_own_interval() {
    let (managed, _conf) = server_with_system_account();
    let app = TestApp::spawn_with(NatsServer::start(), |c| {
        c.monitoring.interval = Duration::from_secs(3600);
    })
    .await;
    let user = |name: &str, password: &str| json!({"kind": "USER_PASSWORD", "username": name, "password": password});
    let cluster = app
        .register_cluster(json!({"name": "with-sys", "urls": [managed.url()],
            "auth": user("app", "app-secret"), "systemAuth": user("sys", "sys-secret"),
            "metricsInterval": 1}))
        .await;
    let client = async_nats::ConnectOptions::with_user_and_password("app".into(), "app-secret".into())
        .connect(managed.url())
        .await
        .unwrap();
    let js = jetstream::new(client);
    create_orders(&js).await;
    let mut live = app
        .subscribe(
            "graphql-transport-ws",
            LIVE,
            json!({"s": [series("CONSUMER_LAG", &cluster, Some("ORDERS"), Some("worker"))]}),
        )
        .await;
    publish(&js, 5).await;
    // The console's interval is an hour: only the cluster's own (1 s) samples it again.
    until(&mut live, "CONSUMER_LAG", |v| v == 5.0).await;
    let got = app.data(LAST_SAMPLE, json!({"id": cluster})).await;
    let c = &got["node"];
    assert_eq!(c["systemAuth"], "USER_PASSWORD");
    assert_eq!(c["metricsInterval"], 1);
    let last = &c["lastSample"];
    assert_eq!(last["source"], "JSZ", "{got:#}");
    assert_eq!(
        (last["up"].clone(), last["interval"].clone()),
        (json!(true), json!(1.0))
    );
    assert_eq!(last["streams"], 1);
    assert!(last["error"].is_null(), "{got:#}");
    // No secret in any event (they are sealed) nor in the answer.
    let events = app.raw_events().await;
    assert!(!events.is_empty());
    for e in events {
        let text = String::from_utf8_lossy(&e.payload);
        assert!(!text.contains("sys-secret") && !text.contains("app-secret"), "{text}");
    }
    assert!(!got.to_string().contains("secret"), "{got}");

    // Wrong system credentials: samples go on, from the lists, and say why.
    app.data(
        "mutation($i: UpdateClusterInput!) { updateCluster(input: $i) { cluster { id } } }",
        json!({"i": {"id": cluster, "systemAuth": user("app", "app-secret")}}),
    )
    .await;
    let mut error = Value::Null;
    for _ in 0..100 {
        let got = app.data(LAST_SAMPLE, json!({"id": cluster})).await;
        let last = &got["node"]["lastSample"];
        if last["source"] == "LIST" {
            assert_eq!(last["streams"], 1);
            error = last["error"].clone();
            break;
        }
        live.next_data().await;
    }
    let error = error.as_str().expect("a sample from the lists, saying why");
    assert!(
        error.contains("give credentials of a user in the system account"),
        "{error}"
    );

    // Without a system account and back at the console's interval.
    let (code, message) = app
        .error(
            "mutation($i: UpdateClusterInput!) { updateCluster(input: $i) { cluster { id } } }",
            json!({"i": {"id": cluster, "metricsInterval": 7200}}),
        )
        .await;
    assert_eq!(code, "VALIDATION");
    assert!(message.contains("sample every 1 to 3600 seconds"), "{message}");
    let got = app
        .data(
            "mutation($i: UpdateClusterInput!) { updateCluster(input: $i) { cluster { systemAuth metricsInterval } } }",
            json!({"i": {"id": cluster, "metricsInterval": 0, "systemAuth": {"kind": "NONE"}}}),
        )
        .await;
    assert_eq!(
        got["updateCluster"]["cluster"],
        json!({"systemAuth": "NONE", "metricsInterval": null})
    );
}
