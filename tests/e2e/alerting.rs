//! Alerts end to end against real nats-servers and real receivers (local HTTP servers as
//! Slack, a Standard Webhooks endpoint and PagerDuty): a consumer that really stops
//! consuming fires a lag rule after `for`, each channel hears of it once, acknowledgement
//! reaches PagerDuty, and catching up resolves it; failing receivers are retried and given
//! up; a silenced alert sends nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use futures::StreamExt;
use jsc_testkit::{NatsServer, TestApp, code};

use crate::monitoring::{create_orders, publish};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Value,
}

/// A local HTTP server standing in for Slack, a webhook endpoint and PagerDuty. Each path
/// answers the status set for it (200 by default), after an optional delay.
struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<Received>,
    answers: Arc<Mutex<std::collections::HashMap<String, (u16, Duration)>>>,
}

impl Receiver {
    async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let answers: Arc<Mutex<std::collections::HashMap<String, (u16, Duration)>>> = Default::default();
        let state = (tx, answers.clone());
        type St = (
            mpsc::UnboundedSender<Received>,
            Arc<Mutex<std::collections::HashMap<String, (u16, Duration)>>>,
        );
        async fn take(
            State((tx, answers)): State<St>,
            Path(path): Path<String>,
            headers: HeaderMap,
            body: String,
        ) -> StatusCode {
            let (status, delay) = answers
                .lock()
                .unwrap()
                .get(&path)
                .copied()
                .unwrap_or((if path == "pd" { 202 } else { 200 }, Duration::ZERO));
            tokio::time::sleep(delay).await;
            let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
            let _ = tx.send(Received { path, headers, body });
            StatusCode::from_u16(status).unwrap()
        }
        let app = axum::Router::new()
            .route("/{path}", axum::routing::post(take))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, rx, answers }
    }

    fn answer(&self, path: &str, status: u16, delay: Duration) {
        self.answers.lock().unwrap().insert(path.into(), (status, delay));
    }

    /// The next request to `path` (others are kept aside in `seen`).
    async fn next(&mut self, path: &str, seen: &mut Vec<Received>) -> Received {
        if let Some(i) = seen.iter().position(|r| r.path == path) {
            return seen.remove(i);
        }
        loop {
            let r = tokio::time::timeout(Duration::from_secs(30), self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no request to /{path} within 30 s; others: {seen:?}"))
                .expect("the receiver runs");
            if r.path == path {
                return r;
            }
            seen.push(r);
        }
    }

    /// Everything received within `wait` (to check that nothing more came).
    async fn drain(&mut self, wait: Duration) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(Some(r)) = tokio::time::timeout(wait, self.rx.recv()).await {
            out.push(r);
        }
        out
    }
}

/// Verifies a Standard Webhooks signature the way the specification says a receiver does.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let id = headers["webhook-id"].to_str().unwrap();
    let ts = headers["webhook-timestamp"].to_str().unwrap();
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
    if age.abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

async fn console_on(managed: &NatsServer) -> (TestApp, String) {
    let app = TestApp::spawn_with(NatsServer::start(), |c| {
        c.monitoring.interval = Duration::from_millis(200);
        c.alerting.backoff_base = Duration::from_millis(50);
        c.alerting.backoff_cap = Duration::from_millis(200);
        c.alerting.attempts = 3;
        c.alerting.timeout = Duration::from_millis(500);
        c.alerting.slack_interval = Duration::from_millis(10);
    })
    .await;
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    (app, cluster)
}

const CHANNEL: &str = "mutation($c: NotificationChannelInput!) { createNotificationChannel(input: {channel: $c}) {
    channel { id } signingSecret } }";
const POLICY: &str = "mutation($p: AlertPolicyInput!) { setAlertPolicy(input: {policy: $p}) { policy { channels } } }";
const RULE: &str = "mutation($r: AlertRuleSpecInput!) { createAlertRule(input: {rule: $r}) { alertRule { id } } }";
const ALERTS: &str = "{ alerts(state: [PENDING, FIRING, RESOLVED]) { nodes { id state value threshold consumer labels { name value }
    annotations { name value } acknowledgement { by } deliveries { channelKind status attempt ok code error dead } } } }";

fn lag_rule(threshold: u64) -> Value {
    json!({
        "name": "worker behind",
        "condition": {"kind": "CONSUMER_LAG", "threshold": threshold},
        "scope": {"streams": ["ORDERS"]},
        "severity": "CRITICAL",
        "for": "1s",
        "annotations": [{"name": "summary", "value": "{{ consumer }} on {{ stream }} has {{ value }} pending"}]
    })
}

/// Waits until the alerts query shows an alert in `state`.
async fn alert_in(app: &TestApp, state: &str) -> Value {
    for _ in 0..300 {
        let data = app.data(ALERTS, json!({})).await;
        if let Some(a) = data["alerts"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["state"] == state)
        {
            return a.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no alert became {state}");
}

#[tokio::test]
async fn a_consumer_that_stops_fires_notifies_each_channel_once_and_resolves_when_it_catches_up() {
    let managed = NatsServer::start();
    let (app, _cluster) = console_on(&managed).await;
    let mut rx = Receiver::start().await;
    let hook = app
        .data(
            CHANNEL,
            json!({"c": {"name": "hook", "kind": "WEBHOOK", "url": format!("{}/hook", rx.url)}}),
        )
        .await["createNotificationChannel"]
        .clone();
    let secret = hook["signingSecret"].as_str().unwrap().to_string();
    let slack = app
        .data(
            CHANNEL,
            json!({"c": {"name": "slack", "kind": "SLACK", "url": format!("{}/slack", rx.url)}}),
        )
        .await["createNotificationChannel"]["channel"]["id"]
        .clone();
    let pd = app
        .data(
            CHANNEL,
            json!({"c": {"name": "pager", "kind": "PAGER_DUTY", "routingKey": "R0KEY0000000000000000000000000XY", "eventsUrl": format!("{}/pd", rx.url)}}),
        )
        .await["createNotificationChannel"]["channel"]["id"]
        .clone();
    app.data(
        POLICY,
        json!({"p": {"channels": [hook["channel"]["id"], slack, pd], "groupWait": "0s", "groupInterval": "1s"}}),
    )
    .await;
    let mut live = app
        .subscribe(
            "graphql-transport-ws",
            "subscription { alertChanged(state: [FIRING]) { alert { id state consumer } sequence } }",
            json!({}),
        )
        .await;
    app.data(RULE, json!({"r": lag_rule(5)})).await;

    // A consumer that consumes nothing while 20 messages arrive.
    let js = managed.jetstream().await;
    let worker = create_orders(&js).await;
    publish(&js, 20).await;

    let pending = alert_in(&app, "PENDING").await;
    assert_eq!(pending["consumer"], "worker");
    let firing = alert_in(&app, "FIRING").await;
    assert_eq!(firing["value"], 20.0);
    assert_eq!(firing["threshold"], 5.0);
    let id = firing["id"].as_str().unwrap().to_string();
    let summary = firing["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "summary")
        .unwrap()["value"]
        .clone();
    assert_eq!(summary, "worker on ORDERS has 20 pending");
    let change = live.next_data().await;
    assert_eq!(change["alertChanged"]["alert"]["id"], id.as_str());
    assert_eq!(change["alertChanged"]["alert"]["state"], "FIRING");
    assert!(change["alertChanged"]["sequence"].as_u64().is_some());

    let mut seen = Vec::new();
    let w = rx.next("hook", &mut seen).await;
    let bytes = serde_json::to_vec(&w.body).unwrap();
    assert!(
        verify(&secret, &w.headers, &bytes),
        "the webhook signature verifies: {:?}",
        w.headers
    );
    assert_eq!(w.body["type"], "alert.firing");
    assert_eq!(w.body["data"]["alerts"][0]["id"], id.as_str());
    assert_eq!(w.body["data"]["alerts"][0]["labels"]["consumer"], "worker");
    let s = rx.next("slack", &mut seen).await;
    assert!(
        s.body["text"].as_str().unwrap().contains("[FIRING:1] worker behind"),
        "{}",
        s.body
    );
    let p = rx.next("pd", &mut seen).await;
    assert_eq!(p.body["event_action"], "trigger");
    assert_eq!(p.body["dedup_key"], id.as_str());
    assert_eq!(p.body["routing_key"], "R0KEY0000000000000000000000000XY");
    assert_eq!(p.body["payload"]["severity"], "critical");
    assert_eq!(p.body["payload"]["summary"], "worker on ORDERS has 20 pending");

    // Still lagging, samples keep coming: nobody hears of it again.
    let more: Vec<Received> = seen
        .drain(..)
        .chain(rx.drain(Duration::from_millis(1500)).await)
        .collect();
    assert!(more.is_empty(), "each channel is told once: {more:?}");

    // Acknowledged: PagerDuty and the webhook hear of it (Slack does not).
    let ack = app
        .data(
            "mutation($id: ID!) { acknowledgeAlert(input: {id: $id, comment: \"looking\"}) { alert { acknowledgement { by } } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        ack["acknowledgeAlert"]["alert"]["acknowledgement"]["by"],
        app.owner_actor()
    );
    let p = rx.next("pd", &mut seen).await;
    assert_eq!(p.body["event_action"], "acknowledge");
    assert_eq!(p.body["dedup_key"], id.as_str());
    let w = rx.next("hook", &mut seen).await;
    assert_eq!(w.body["type"], "alert.acknowledged");

    // The worker catches up: resolved, and each channel hears that.
    let mut batch = worker.fetch().max_messages(50).messages().await.unwrap();
    let mut got = 0;
    while let Some(m) = batch.next().await {
        m.unwrap().double_ack().await.unwrap();
        got += 1;
    }
    assert_eq!(got, 20);
    alert_in(&app, "RESOLVED").await;
    let w = rx.next("hook", &mut seen).await;
    assert_eq!(w.body["type"], "alert.resolved");
    assert!(verify(&secret, &w.headers, &serde_json::to_vec(&w.body).unwrap()));
    let p = rx.next("pd", &mut seen).await;
    assert_eq!(p.body["event_action"], "resolve");
    assert_eq!(p.body["dedup_key"], id.as_str());
    let s = rx.next("slack", &mut seen).await;
    assert!(
        s.body["text"].as_str().unwrap().contains("[RESOLVED] worker behind"),
        "{}",
        s.body
    );

    // Every transition is in the alert's history, made by the console itself; every
    // delivery is in its log.
    let history = app
        .data(
            "query($id: ID!) { history(aggregateType: ALERT, id: $id) { nodes { eventType actor } } }",
            json!({"id": id}),
        )
        .await;
    let events: Vec<(String, String)> = history["history"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["eventType"].as_str().unwrap().into(),
                n["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        types,
        ["AlertPending", "AlertFiring", "AlertAcknowledged", "AlertResolved"]
    );
    assert_eq!(events[1].1, "system:alerts");
    assert_eq!(events[2].1, app.owner_actor());
    let resolved = alert_in(&app, "RESOLVED").await;
    let log = resolved["deliveries"].as_array().unwrap();
    let firing_ok = log
        .iter()
        .filter(|d| d["status"] == "firing" && d["ok"] == true)
        .count();
    assert_eq!(firing_ok, 3, "one firing delivery per channel: {log:?}");
    assert!(log.iter().all(|d| d["ok"] == true), "{log:?}");

    // The same rule as a draft, over the same stretch: it would have fired once and
    // resolved; with a threshold above the lag it would not have fired.
    let preview = "query($r: AlertRuleSpecInput!) { previewAlertRule(rule: $r) { samples clusters
        firings { consumer pendingAt firedAt resolvedAt value } } }";
    let p = app.data(preview, json!({"r": lag_rule(5)})).await["previewAlertRule"].clone();
    assert!(p["samples"].as_u64().unwrap() > 5, "{p}");
    assert_eq!(p["clusters"], 1);
    let firings = p["firings"].as_array().unwrap();
    assert_eq!(firings.len(), 1, "{p}");
    assert_eq!(firings[0]["consumer"], "worker");
    assert_eq!(firings[0]["value"], 20.0);
    assert!(
        firings[0]["firedAt"].is_string() && firings[0]["resolvedAt"].is_string(),
        "{p}"
    );
    let p = app.data(preview, json!({"r": lag_rule(50)})).await["previewAlertRule"].clone();
    assert_eq!(p["firings"], json!([]), "{p}");
    let mut bad = lag_rule(5);
    bad["condition"] = json!({"kind": "DEAD_LETTERS", "threshold": 1, "window": "5m"});
    let (c, m) = app.error(preview, json!({"r": bad})).await;
    assert_eq!(c, "VALIDATION");
    assert!(m.contains("cannot be previewed"), "{m}");
}

#[tokio::test]
async fn failing_receivers_are_retried_then_given_up_and_retried_by_hand() {
    let managed = NatsServer::start();
    let (app, _cluster) = console_on(&managed).await;
    let mut rx = Receiver::start().await;
    rx.answer("hook", 500, Duration::ZERO);
    rx.answer("slow", 200, Duration::from_secs(2));
    // Nothing listens on this port: connections are refused.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut ids = Vec::new();
    for (name, url) in [
        ("failing", format!("{}/hook", rx.url)),
        ("slow", format!("{}/slow", rx.url)),
        ("refused", format!("http://{refused}/hook")),
    ] {
        let made = app
            .data(CHANNEL, json!({"c": {"name": name, "kind": "WEBHOOK", "url": url}}))
            .await;
        ids.push(made["createNotificationChannel"]["channel"]["id"].clone());
    }
    // A test send says how it went without retrying.
    let test = app
        .data(
            "mutation($id: ID!) { testNotificationChannel(input: {id: $id}) { delivery { ok code error } } }",
            json!({"id": ids[0]}),
        )
        .await;
    assert_eq!(test["testNotificationChannel"]["delivery"]["ok"], false);
    assert_eq!(test["testNotificationChannel"]["delivery"]["code"], 500);
    let t = rx.drain(Duration::from_millis(200)).await;
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].body["type"], "alert.test");

    app.data(POLICY, json!({"p": {"channels": ids, "groupWait": "0s"}}))
        .await;
    app.data(RULE, json!({"r": lag_rule(5)})).await;
    let js = managed.jetstream().await;
    let _worker = create_orders(&js).await;
    publish(&js, 10).await;
    let firing = alert_in(&app, "FIRING").await;
    let id = firing["id"].as_str().unwrap().to_string();

    // Three attempts each, then given up.
    let mut log = Vec::new();
    for _ in 0..100 {
        let data = app
            .data(
                "query($id: ID!) { alert(id: $id) { deliveries { channelName attempt ok code error dead } } }",
                json!({"id": id}),
            )
            .await;
        log = data["alert"]["deliveries"].as_array().unwrap().clone();
        if log.iter().filter(|d| d["dead"] == true).count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for name in ["failing", "slow", "refused"] {
        let mine: Vec<&Value> = log.iter().filter(|d| d["channelName"] == name).collect();
        assert_eq!(mine.len(), 3, "{name}: {log:?}");
        assert_eq!(
            mine.iter().map(|d| d["attempt"].as_u64().unwrap()).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(mine[2]["dead"].as_bool().unwrap(), "{name}: {mine:?}");
        assert!(mine.iter().all(|d| d["ok"] == false));
    }
    let failing: Vec<&Value> = log.iter().filter(|d| d["channelName"] == "failing").collect();
    assert_eq!(failing[0]["code"], 500);
    let slow: Vec<&Value> = log.iter().filter(|d| d["channelName"] == "slow").collect();
    assert!(
        slow[0]["error"].as_str().unwrap().contains("did not answer"),
        "{slow:?}"
    );
    let refused_log: Vec<&Value> = log.iter().filter(|d| d["channelName"] == "refused").collect();
    assert!(
        refused_log[0]["error"].as_str().unwrap().contains("could not connect"),
        "{refused_log:?}"
    );

    // The receiver is fixed: a retry by hand sends to the channels that gave up.
    rx.answer("hook", 200, Duration::ZERO);
    rx.answer("slow", 200, Duration::ZERO);
    let _ = rx.drain(Duration::from_millis(100)).await;
    let retried = app
        .data(
            "mutation($id: ID!) { retryAlertDeliveries(input: {id: $id}) { deliveries { channelName ok } } }",
            json!({"id": id}),
        )
        .await;
    let again = retried["retryAlertDeliveries"]["deliveries"].as_array().unwrap();
    let ok: Vec<&str> = again
        .iter()
        .filter(|d| d["ok"] == true)
        .map(|d| d["channelName"].as_str().unwrap())
        .collect();
    assert_eq!(ok.len(), 2, "{again:?}");
    assert!(ok.contains(&"failing") && ok.contains(&"slow"));
    let (_, viewer) = app.invite_member("default", "v@example.com", "VIEWER").await;
    let body = app
        .graphql_as(
            Some(&viewer),
            "mutation($id: ID!) { retryAlertDeliveries(input: {id: $id}) { deliveries { ok } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
}

#[tokio::test]
async fn a_silenced_alert_fires_but_sends_nothing() {
    let managed = NatsServer::start();
    let (app, _cluster) = console_on(&managed).await;
    let mut rx = Receiver::start().await;
    let hook = app
        .data(
            CHANNEL,
            json!({"c": {"name": "hook", "kind": "WEBHOOK", "url": format!("{}/hook", rx.url)}}),
        )
        .await["createNotificationChannel"]["channel"]["id"]
        .clone();
    app.data(POLICY, json!({"p": {"channels": [hook], "groupWait": "0s"}}))
        .await;
    let ends = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let silence = app
        .data(
            "mutation($e: DateTime!) { createSilence(input: {matchers: [{name: \"consumer\", value: \"worker\"}], endsAt: $e, comment: \"maintenance\"}) { silence { id } } }",
            json!({"e": ends}),
        )
        .await["createSilence"]["silence"]["id"]
        .clone();
    app.data(RULE, json!({"r": lag_rule(5)})).await;
    let js = managed.jetstream().await;
    let _worker = create_orders(&js).await;
    publish(&js, 10).await;
    let firing = alert_in(&app, "FIRING").await;
    // It fires and is recorded as silenced, but nothing is sent.
    let mut silenced = Value::Null;
    for _ in 0..100 {
        let a = app
            .data(
                "query($id: ID!) { alert(id: $id) { silencedBy } }",
                json!({"id": firing["id"]}),
            )
            .await;
        silenced = a["alert"]["silencedBy"].clone();
        if silenced.as_array().is_some_and(|s| !s.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(silenced, json!([silence]));
    let got = rx.drain(Duration::from_millis(1500)).await;
    assert!(got.is_empty(), "a silenced alert sends nothing: {got:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_listening(port: u16, what: &str) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not listen on {port}");
}

/// Fires the lag rule of `app` by publishing to a consumer that never consumes.
async fn fire(app: &TestApp, managed: &NatsServer, channel: &Value) -> String {
    app.data(
        POLICY,
        json!({"p": {"channels": [channel], "groupWait": "0s", "groupInterval": "1s"}}),
    )
    .await;
    app.data(RULE, json!({"r": lag_rule(5)})).await;
    let js = managed.jetstream().await;
    let _worker = create_orders(&js).await;
    publish(&js, 10).await;
    alert_in(app, "FIRING").await["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn email_reaches_a_real_smtp_server() {
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/smtp/bin/python");
    let python = std::env::var_os("JSC_TEST_SMTP_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or(default);
    assert!(
        python.is_file(),
        "aiosmtpd's python not found at {}: run `make tools`",
        python.display()
    );
    let port = free_port();
    // aiosmtpd's Debugging handler prints every message it takes.
    let mut smtp = tokio::process::Command::new(&python)
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Debugging",
            "stdout",
        ])
        .env("PYTHONUNBUFFERED", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_listening(port, "aiosmtpd").await;
    let managed = NatsServer::start();
    let (app, _cluster) = console_on(&managed).await;
    let mail = app
        .data(
            CHANNEL,
            json!({"c": {"name": "mail", "kind": "EMAIL", "smtpHost": "127.0.0.1", "smtpPort": port, "smtpSecurity": "NONE",
                   "from": "console@example.com", "to": ["ops@example.com", "oncall@example.com"]}}),
        )
        .await["createNotificationChannel"]["channel"]["id"]
        .clone();
    let id = fire(&app, &managed, &mail).await;

    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(smtp.stdout.take().unwrap()).lines();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !text.contains("END MESSAGE") {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no email within 30 s: {text}"))
            .unwrap()
            .expect("aiosmtpd runs");
        text.push_str(&line);
        text.push('\n');
    }
    assert!(text.contains("Subject: [FIRING:1] worker behind (managed)"), "{text}");
    assert!(
        text.contains("From: \"JetStream Console\" <console@example.com>"),
        "{text}"
    );
    assert!(
        text.contains("ops@example.com") && text.contains("oncall@example.com"),
        "{text}"
    );
    assert!(text.contains("worker on ORDERS has 10 pending"), "{text}");
    let log = app
        .data(
            "query($id: ID!) { alert(id: $id) { deliveries { channelKind ok code } } }",
            json!({"id": id}),
        )
        .await;
    let d = &log["alert"]["deliveries"][0];
    assert_eq!(d["channelKind"], "email");
    assert_eq!(d["ok"], true);
    assert_eq!(d["code"], 250);
}

#[tokio::test]
async fn alerts_are_forwarded_to_a_real_alertmanager() {
    if std::process::Command::new("prometheus-alertmanager")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: prometheus-alertmanager is not installed; `make test` installs Debian's package");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n",
    )
    .unwrap();
    let _am = crate::monitoring::Child(
        std::process::Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                dir.path().join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port, "alertmanager").await;
    let managed = NatsServer::start();
    let (app, _cluster) = console_on(&managed).await;
    let am = app
        .data(
            CHANNEL,
            json!({"c": {"name": "am", "kind": "ALERTMANAGER", "url": format!("http://127.0.0.1:{port}")}}),
        )
        .await["createNotificationChannel"]["channel"]["id"]
        .clone();
    fire(&app, &managed, &am).await;
    let http = reqwest::Client::new();
    let mut alerts = Value::Null;
    for _ in 0..200 {
        alerts = http
            .get(format!("http://127.0.0.1:{port}/api/v2/alerts"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if alerts.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = &alerts[0];
    assert_eq!(a["labels"]["alertname"], "worker behind", "{alerts}");
    assert_eq!(a["labels"]["consumer"], "worker");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["annotations"]["summary"], "worker on ORDERS has 10 pending");
    assert_eq!(a["status"]["state"], "active");
}

#[tokio::test]
async fn two_replicas_notify_once_and_the_one_that_takes_over_sends_nothing_twice() {
    let managed = NatsServer::start();
    use base64::Engine;
    let key = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    let (secret, signing) = (key(7), key(9));
    let tweak = |c: &mut jsc_cli::Config| {
        c.monitoring.interval = Duration::from_millis(200);
        c.lease_ttl = Some(Duration::from_secs(5));
        c.secret_keys = vec![secret.clone()];
        c.signing_keys = vec![signing.clone()];
    };
    let mut first = TestApp::spawn_with(NatsServer::start(), tweak).await;
    first
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    let second = TestApp::spawn_with(first.nats.shared(), tweak).await;
    let mut rx = Receiver::start().await;
    let hook = first
        .data(
            CHANNEL,
            json!({"c": {"name": "hook", "kind": "WEBHOOK", "url": format!("{}/hook", rx.url)}}),
        )
        .await["createNotificationChannel"]["channel"]["id"]
        .clone();
    fire(&first, &managed, &hook).await;
    let mut seen = Vec::new();
    let w = rx.next("hook", &mut seen).await;
    assert_eq!(w.body["type"], "alert.firing");
    let more = rx.drain(Duration::from_millis(1500)).await;
    assert!(more.is_empty(), "two replicas, one notification: {more:?}");

    // The holder stops; the other takes the role over, picks the firing alert up from the
    // view and what the channel was told, and sends it nothing again.
    first.shutdown().await;
    let role = "{ consoleReplica { id roles { name holder } } }";
    let mine = second.data(role, json!({})).await;
    let id = mine["consoleReplica"]["id"].clone();
    let mut took_over = false;
    for _ in 0..100 {
        let r = second.data(role, json!({})).await;
        let alerts = r["consoleReplica"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "alerts")
            .cloned()
            .unwrap_or_default();
        if alerts["holder"] == id {
            took_over = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(took_over, "the second replica took the alerts role over");
    let more = rx.drain(Duration::from_millis(1500)).await;
    assert!(more.is_empty(), "taking over sends nothing twice: {more:?}");
    // It still watches: the consumer catches up and the resolution is sent, once.
    let js = managed.jetstream().await;
    let worker = js
        .get_stream("ORDERS")
        .await
        .unwrap()
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>("worker")
        .await
        .unwrap();
    let mut batch = worker.fetch().max_messages(50).messages().await.unwrap();
    while let Some(m) = batch.next().await {
        m.unwrap().double_ack().await.unwrap();
    }
    let w = rx.next("hook", &mut seen).await;
    assert_eq!(w.body["type"], "alert.resolved");
    let more = rx.drain(Duration::from_millis(1000)).await;
    assert!(more.is_empty(), "{more:?}");
}

#[tokio::test]
async fn messages_a_consumer_gives_up_on_fire_a_dead_letter_rule() {
    let managed = NatsServer::start();
    let (app, _cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    let worker = create_orders(&js).await;
    app.data(
        RULE,
        json!({"r": {"name": "giving up", "condition": {"kind": "DEAD_LETTERS", "threshold": 1, "window": "5m"},
                     "scope": {"streams": ["ORDERS"], "consumers": ["worker"]}}}),
    )
    .await;
    publish(&js, 2).await;
    // The handler terminates both: two MSG_TERMINATED advisories, two dead letters.
    let mut batch = worker.fetch().max_messages(2).messages().await.unwrap();
    while let Some(m) = batch.next().await {
        m.unwrap().ack_with(async_nats::jetstream::AckKind::Term).await.unwrap();
    }
    let firing = alert_in(&app, "FIRING").await;
    assert_eq!(firing["consumer"], "worker");
    assert_eq!(firing["value"], 2.0);
    assert_eq!(firing["threshold"], 1.0);
}
