//! The alerting role: one replica at a time (the `alerts` lease) evaluates every enabled
//! rule against each whole sample as it arrives from the metrics stream, records each
//! alert's transitions as events (actor `system:alerts`), and notifies the channels the
//! organization's routing policy names, grouped and paced, with retries.
//!
//! Every delivery attempt is kept in the home stream `CONSOLE_ALERT_DELIVERIES` (one
//! subject per alert): the delivery log people read, and where a delivery that gave up
//! (dead-lettered) can be seen and sent again. What each channel was last told of each
//! alert is kept in the KV bucket `console_alert_notified`, so a restart, or another
//! replica taking over, does not send again what was sent.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use jsc_alerts::{ClusterInfo, Evaluator, Facts, Transition};
use jsc_domain::alerts::{Alert, AlertCommand, AlertStatus, ChannelConfig, ChannelSpec, SmtpTls};
use jsc_domain::identity::Role;
use jsc_eventstore::{CommandContext, HomeStorage};
use jsc_notify::group::{Destination, Grouper, Pacing};
use jsc_notify::{AlertNote, Message, Notifier, SendError, Status, Target};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{Caller, Console, Error, Result};

/// The home stream of delivery attempts.
pub const DELIVERIES_STREAM: &str = "CONSOLE_ALERT_DELIVERIES";
const DELIVERIES_PREFIX: &str = "jsc.alerts.deliveries";
/// What each channel was last told of each alert.
pub const NOTIFIED_BUCKET: &str = "console_alert_notified";
/// Delivery attempts kept per alert.
const DELIVERIES_PER_ALERT: i64 = 500;

/// How notifications are sent.
#[derive(Debug, Clone)]
pub struct AlertingOptions {
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Attempts before a delivery is given up (dead-lettered).
    pub attempts: u32,
    /// The first wait between attempts, doubled each time up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// The least time between two sends to one Slack channel (Slack takes about one a
    /// second).
    pub slack_interval: Duration,
}

impl Default for AlertingOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            slack_interval: Duration::from_secs(1),
        }
    }
}

/// The alerting parts of the console.
pub(crate) struct Alerting {
    pub notifier: Notifier,
    pub notified: kv::Store,
    pub options: AlertingOptions,
    /// When each channel was last sent to (for its rate limit).
    last_send: Mutex<HashMap<String, tokio::time::Instant>>,
}

/// One attempt to deliver one alert's notification to one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub alert_id: String,
    pub channel_id: String,
    pub channel_name: String,
    pub channel_kind: String,
    /// What the notification said of the alert: firing, resolved, acknowledged.
    pub status: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub ok: bool,
    /// The receiver's HTTP status (or SMTP code), if it answered.
    pub code: Option<u16>,
    pub error: Option<String>,
    /// Given up: no further attempt will be made unless someone retries it.
    pub dead: bool,
    pub at: DateTime<Utc>,
    /// A test notification (`testNotificationChannel`).
    #[serde(default)]
    pub test: bool,
}

/// What a channel was last told of an alert.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Notified {
    status: String,
    at: DateTime<Utc>,
}

pub(crate) async fn open(home: &HomeStorage, options: AlertingOptions) -> std::result::Result<Alerting, String> {
    home.stream(jetstream::stream::Config {
        name: DELIVERIES_STREAM.to_string(),
        subjects: vec![format!("{DELIVERIES_PREFIX}.>")],
        max_messages_per_subject: DELIVERIES_PER_ALERT,
        max_age: Duration::from_secs(30 * 24 * 3600),
        discard: jetstream::stream::DiscardPolicy::Old,
        allow_direct: true,
        ..Default::default()
    })
    .await?;
    let notified = jsc_projector::ensure_bucket(home.jetstream(), NOTIFIED_BUCKET, home.replicas())
        .await
        .map_err(|e| format!("cannot create the bucket {NOTIFIED_BUCKET}: {e}"))?;
    Ok(Alerting {
        notifier: Notifier::new(options.timeout),
        notified,
        options,
        last_send: Default::default(),
    })
}

fn notified_key(alert_id: &str, channel_id: &str) -> String {
    format!(
        "{}.{}",
        jsc_projector::kv_token(alert_id),
        jsc_projector::kv_token(channel_id)
    )
}

/// What the application knows besides the sample: metadata from the views, dead letters
/// counted from the dead-letter records.
struct ConsoleFacts<'a> {
    console: &'a Console,
    dead: &'a DeadLetterCounts,
}

impl Facts for ConsoleFacts<'_> {
    fn stream_metadata(&self, cluster_id: &str, stream: &str) -> Option<BTreeMap<String, String>> {
        let key = jsc_projections::stream_key(cluster_id, stream);
        self.console
            .views
            .streams
            .get(&key)
            .map(|v| v.view.config.metadata.clone())
    }

    fn consumer_metadata(&self, cluster_id: &str, stream: &str, consumer: &str) -> Option<BTreeMap<String, String>> {
        let key = jsc_projections::consumer_key(cluster_id, stream, consumer);
        self.console
            .views
            .consumers
            .get(&key)
            .map(|v| v.view.config.get().metadata)
    }

    fn dead_letters(&self, cluster_id: &str, stream: &str, consumer: &str, since_ms: i64) -> u64 {
        self.dead.count(cluster_id, stream, consumer, since_ms)
    }
}

/// Dead letters per consumer over the last day, read from the dead-letter records as they
/// are written (and the day before the role started).
#[derive(Default, Clone)]
struct DeadLetterCounts(Arc<Mutex<HashMap<ConsumerKey, VecDeque<i64>>>>);

/// (cluster, stream, consumer).
type ConsumerKey = (String, String, String);

impl DeadLetterCounts {
    fn add(&self, d: &crate::deadletters::DeadLetter) {
        let at = d.time.timestamp_millis();
        let mut m = self.0.lock().expect("dead letter counts");
        let q = m
            .entry((d.cluster_id.clone(), d.stream.clone(), d.consumer.clone()))
            .or_default();
        q.push_back(at);
        let day = at - 24 * 3_600_000;
        while q.front().is_some_and(|t| *t < day) {
            q.pop_front();
        }
    }

    fn count(&self, cluster_id: &str, stream: &str, consumer: &str, since_ms: i64) -> u64 {
        let m = self.0.lock().expect("dead letter counts");
        m.get(&(cluster_id.to_string(), stream.to_string(), consumer.to_string()))
            .map_or(0, |q| q.iter().filter(|t| **t >= since_ms).count() as u64)
    }

    /// Follows the dead-letter records from a day ago, until `shutdown`.
    async fn follow(self, js: jetstream::Context, shutdown: CancellationToken) {
        let start = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        let stream = match js.get_stream(crate::deadletters::DEAD_LETTERS_STREAM).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "alerts: cannot read the dead-letter records; dead-letter rules see none");
                return;
            }
        };
        let consumer = stream
            .create_consumer(jetstream::consumer::push::OrderedConfig {
                deliver_subject: js_inbox(),
                deliver_policy: jetstream::consumer::DeliverPolicy::ByStartTime { start_time: start },
                ..Default::default()
            })
            .await;
        let mut messages = match consumer {
            Ok(c) => match c.messages().await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "alerts: cannot follow the dead-letter records");
                    return;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "alerts: cannot follow the dead-letter records");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                m = messages.next() => match m {
                    Some(Ok(m)) => {
                        if let Ok(d) = serde_json::from_slice::<crate::deadletters::DeadLetter>(&m.payload) {
                            self.add(&d);
                        }
                    }
                    Some(Err(e)) => tracing::debug!(error = %e, "alerts: dead-letter records"),
                    None => return,
                }
            }
        }
    }
}

fn js_inbox() -> String {
    format!("_INBOX.jsc-alerts.{}", uuid::Uuid::new_v4().simple())
}

/// An alert change for the dispatcher.
struct Change {
    alert: Alert,
    status: Status,
}

/// Runs the alerting role until `shutdown` (or until the lease is lost).
pub(crate) async fn run(console: Console, shutdown: CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = console.monitoring.latest.caught_up() => {}
    }
    let js = jetstream::new(console.home.clone());
    let dead = DeadLetterCounts::default();
    let (tx, rx) = mpsc::channel::<Change>(4096);
    let dispatcher = dispatch(console.clone(), rx, shutdown.clone());
    let follower = dead.clone().follow(js, shutdown.clone());
    let evaluator = evaluate(console, dead, tx, shutdown.clone());
    tokio::join!(dispatcher, follower, evaluator);
}

fn notify_status(command: &AlertCommand) -> Option<Status> {
    match command {
        AlertCommand::Fire { .. } => Some(Status::Firing),
        AlertCommand::Resolve { .. } => Some(Status::Resolved),
        _ => None,
    }
}

async fn evaluate(console: Console, dead: DeadLetterCounts, tx: mpsc::Sender<Change>, shutdown: CancellationToken) {
    let mut evaluator = Evaluator::new();
    let now = Utc::now().timestamp_millis();
    let current: Vec<(String, Alert)> = console
        .views
        .alerts
        .list()
        .into_iter()
        .map(|v| (v.view.state.id.clone(), v.view.state))
        .collect();
    evaluator.resume(current.iter().map(|(id, a)| (id.as_str(), a)), now);
    tracing::info!(active = evaluator.active(), "alerts: evaluating rules on every sample");
    let mut samples = console.monitoring.latest.subscribe();
    // The enabled rules by organization, read again only when a rule changes (not once a
    // sample: thousands of rules would be copied for every cluster's every sample).
    let mut rule_changes = console.views.alert_rules.subscribe();
    let mut rules: Option<HashMap<String, Vec<jsc_domain::alerts::AlertRule>>> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            s = samples.recv() => match s {
                Ok(snapshot) => {
                    let Some(cluster) = console.views.clusters.get(&jsc_projector::kv_token(&snapshot.cluster.cluster_id)) else {
                        continue;
                    };
                    let info = ClusterInfo {
                        id: cluster.view.id.clone(),
                        name: cluster.view.name.clone(),
                        tags: cluster.view.tags.clone(),
                        organization: cluster.view.organization.clone(),
                    };
                    let by_org = rules.get_or_insert_with(|| {
                        let mut m: HashMap<String, Vec<jsc_domain::alerts::AlertRule>> = HashMap::new();
                        for r in console.enabled_alert_rules() {
                            m.entry(r.state.organization.clone()).or_default().push(r.state);
                        }
                        m
                    });
                    let refs: Vec<_> = by_org.get(&info.organization).into_iter().flatten().collect();
                    let facts = ConsoleFacts { console: &console, dead: &dead };
                    let started = std::time::Instant::now();
                    let transitions = evaluator.evaluate(&snapshot, &info, &refs, &facts);
                    metrics::histogram!("jsconsole_alert_evaluation_seconds").record(started.elapsed().as_secs_f64());
                    apply(&console, &info.organization, transitions, &tx).await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "alerts: the evaluator fell behind the samples and skipped some");
                }
                Err(_) => return,
            },
            change = rule_changes.recv() => {
                if matches!(change, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    return;
                }
                rules = None;
            }
            _ = tick.tick() => {
                let live: HashSet<String> = console.enabled_alert_rules().into_iter().map(|r| r.state.id).collect();
                let retired = evaluator.retire(&live, Utc::now().timestamp_millis());
                for t in retired {
                    let org = console.views.alerts.get(&jsc_projector::kv_token(&t.alert_id))
                        .and_then(|a| a.view.state.organization().map(str::to_string));
                    if let Some(org) = org {
                        apply(&console, &org, vec![t], &tx).await;
                    }
                }
                sweep_silences(&console).await;
            }
        }
    }
}

/// Records each transition; hands those that notify to the dispatcher.
async fn apply(console: &Console, org: &str, transitions: Vec<Transition>, tx: &mpsc::Sender<Change>) {
    if transitions.is_empty() {
        return;
    }
    let ctx = CommandContext::system("alerts").in_organization(Some(org));
    for t in transitions {
        let status = notify_status(&t.command);
        match console.run_in::<Alert>(&ctx, &t.alert_id, t.command).await {
            Ok(committed) => {
                if committed.events.is_empty() {
                    continue;
                }
                let alert = committed.state;
                metrics::counter!("jsconsole_alert_transitions_total", "status" => alert.status.as_str()).increment(1);
                if matches!(alert.status, AlertStatus::Firing | AlertStatus::Pending) {
                    set_silences(console, &ctx, &alert).await;
                }
                if let Some(status) = status
                    && tx.send(Change { alert, status }).await.is_err()
                {
                    return;
                }
            }
            Err(e) => tracing::warn!(alert = %t.alert_id, error = %e.message, "alerts: a transition was not recorded"),
        }
    }
}

/// Records which silences keep an alert quiet, when that changed.
async fn set_silences(console: &Console, ctx: &CommandContext, alert: &Alert) {
    let Some(o) = &alert.origin else { return };
    let mut now = console.silences_matching(&o.organization, &o.labels);
    now.sort();
    if now != alert.silenced_by {
        let cmd = AlertCommand::SetSilences {
            silences: now,
            at: Utc::now(),
        };
        if let Err(e) = console.run_in::<Alert>(ctx, &alert.id, cmd).await {
            tracing::warn!(alert = %alert.id, error = %e.message, "alerts: silences not recorded");
        }
    }
}

async fn sweep_silences(console: &Console) {
    let active: Vec<Alert> = console
        .views
        .alerts
        .filter(|a| matches!(a.state.status, AlertStatus::Firing | AlertStatus::Pending))
        .into_iter()
        .map(|v| v.view.state)
        .collect();
    for alert in active {
        let Some(org) = alert.organization().map(str::to_string) else {
            continue;
        };
        let ctx = CommandContext::system("alerts").in_organization(Some(&org));
        set_silences(console, &ctx, &alert).await;
    }
}

fn note(alert: &Alert, status: Status) -> Option<AlertNote> {
    let o = alert.origin.as_ref()?;
    Some(AlertNote {
        id: alert.id.clone(),
        status,
        rule: o.rule_name.clone(),
        severity: o.severity.as_str().to_string(),
        cluster: o.labels.get("cluster").cloned().unwrap_or_else(|| o.cluster_id.clone()),
        stream: o.stream.clone(),
        consumer: o.consumer.clone(),
        labels: o.labels.clone(),
        annotations: o.annotations.clone(),
        value: alert.value,
        threshold: o.threshold,
        starts_at: alert.fired_at.or(alert.since).unwrap_or_else(Utc::now),
        ends_at: (status == Status::Resolved).then(|| alert.since.unwrap_or_else(Utc::now)),
        acknowledged_by: alert.acknowledged.as_ref().map(|a| a.by.clone()),
    })
}

/// Groups changes by the organization's policy and sends each group when it is due.
async fn dispatch(console: Console, mut rx: mpsc::Receiver<Change>, shutdown: CancellationToken) {
    let mut grouper = Grouper::new();
    // The alerts firing now join their groups again (after a restart, or on taking over
    // from another replica), so that their resolution reaches the channels; what a channel
    // was already told is not sent to it again (see `deliver`).
    let firing: Vec<Alert> = console
        .views
        .alerts
        .filter(|a| a.state.status == AlertStatus::Firing)
        .into_iter()
        .map(|v| v.view.state)
        .collect();
    for alert in firing {
        route(
            &console,
            &mut grouper,
            Change {
                alert,
                status: Status::Firing,
            },
        );
    }
    let far = Duration::from_secs(3600);
    loop {
        let next = grouper.next_due().unwrap_or_else(|| tokio::time::Instant::now() + far);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            change = rx.recv() => {
                let Some(change) = change else { return };
                route(&console, &mut grouper, change);
            }
            _ = tokio::time::sleep_until(next) => {
                let quiet = |n: &AlertNote| {
                    console.views.alerts.get(&jsc_projector::kv_token(&n.id))
                        .is_some_and(|a| !a.view.state.silenced_by.is_empty())
                };
                for due in grouper.take_due(tokio::time::Instant::now(), &quiet) {
                    let c = console.clone();
                    tokio::spawn(async move { c.deliver(&due.channel, due.message, false).await; });
                }
            }
        }
    }
}

/// Where the policy sends a change: each channel's group.
fn route(console: &Console, grouper: &mut Grouper, change: Change) {
    let Some(o) = change.alert.origin.as_ref() else { return };
    let Some(n) = note(&change.alert, change.status) else {
        return;
    };
    let policy = console.alert_policy_spec(&o.organization);
    for d in policy.deliveries(&o.labels, o.severity) {
        for channel in &d.channels {
            let Some(spec) = console.channel_for_delivery(channel) else {
                continue;
            };
            let group_labels = d
                .group_by
                .iter()
                .map(|l| (l.clone(), o.labels.get(l).cloned().unwrap_or_default()))
                .collect();
            let to = Destination {
                channel: channel.clone(),
                route: d.route.map_or_else(|| "default".to_string(), |i| format!("route-{i}")),
                group_labels,
                pacing: Pacing {
                    group_wait: Duration::from_secs(d.group_wait_s),
                    group_interval: Duration::from_secs(d.group_interval_s),
                    repeat_interval: Duration::from_secs(d.repeat_interval_s),
                },
                send_resolved: spec.send_resolved,
            };
            grouper.add(n.clone(), &to, tokio::time::Instant::now());
        }
    }
}

impl Console {
    fn alerting(&self) -> &Alerting {
        &self.alerting
    }

    /// A channel's target with its secrets unsealed, for one send.
    fn target(&self, spec: &ChannelSpec) -> std::result::Result<Target, String> {
        let open = |s: &jsc_domain::Sealed| {
            self.fleet
                .secrets()
                .unseal(s)
                .map_err(|_| "the channel's secret cannot be read with this console's key; set it again".to_string())
        };
        Ok(match &spec.config {
            ChannelConfig::Email {
                host,
                port,
                tls,
                username,
                password,
                from,
                to,
            } => Target::Email {
                host: host.clone(),
                port: *port,
                security: match tls {
                    SmtpTls::StartTls => jsc_notify::SmtpSecurity::StartTls,
                    SmtpTls::Tls => jsc_notify::SmtpSecurity::Tls,
                    SmtpTls::None => jsc_notify::SmtpSecurity::None,
                },
                username: username.clone(),
                password: password.as_ref().map(open).transpose()?,
                from: from.clone(),
                to: to.clone(),
            },
            ChannelConfig::Slack { webhook_url } => Target::Slack {
                url: open(webhook_url)?,
            },
            ChannelConfig::Webhook {
                webhook_url,
                signing_secret,
            } => Target::Webhook {
                url: open(webhook_url)?,
                secret: open(signing_secret)?,
            },
            ChannelConfig::PagerDuty {
                routing_key,
                events_url,
            } => Target::PagerDuty {
                routing_key: open(routing_key)?,
                events_url: events_url.clone(),
            },
            ChannelConfig::Alertmanager { url } => Target::Alertmanager { url: url.clone() },
        })
    }

    /// Waits until the channel may be sent to again (Slack: about once a second).
    async fn rate_limit(&self, channel_id: &str, target: &Target) {
        let gap = match target {
            Target::Slack { .. } => self.alerting().options.slack_interval,
            _ => return,
        };
        let wait = {
            let mut last = self.alerting().last_send.lock().expect("rate limits");
            let now = tokio::time::Instant::now();
            let next = last.get(channel_id).map_or(now, |t| (*t + gap).max(now));
            last.insert(channel_id.to_string(), next);
            next
        };
        tokio::time::sleep_until(wait).await;
    }

    /// Sends `message` to a channel, retrying with backoff; records every attempt.
    /// Alerts the channel was already told of (by this replica or one before it) are left
    /// out, so a restart does not send them again. Answers the last attempt of each alert.
    pub(crate) async fn deliver(&self, channel_id: &str, mut message: Message, retry: bool) -> Vec<DeliveryAttempt> {
        let Some(spec) = self.channel_for_delivery(channel_id) else {
            return Vec::new();
        };
        if !retry && !message.test {
            let repeat = chrono::TimeDelta::seconds(
                self.channel_repeat_interval(channel_id)
                    .unwrap_or(jsc_domain::alerts::REPEAT_INTERVAL_S) as i64,
            );
            let mut keep = Vec::new();
            for a in message.alerts {
                let told = self
                    .alerting()
                    .notified
                    .get(notified_key(&a.id, channel_id))
                    .await
                    .ok()
                    .flatten()
                    .and_then(|b| serde_json::from_slice::<Notified>(&b).ok());
                let fresh = match &told {
                    Some(t) if t.status == a.status.as_str() => {
                        a.status == Status::Firing && Utc::now() - t.at >= repeat
                    }
                    Some(_) => true,
                    // Never told it fired: a resolution says nothing to this channel.
                    None => a.status == Status::Firing,
                };
                if fresh {
                    keep.push(a);
                }
            }
            message.alerts = keep;
            if message.alerts.is_empty() {
                return Vec::new();
            }
        }
        let base = |attempt: u32| DeliveryAttempt {
            alert_id: String::new(),
            channel_id: channel_id.to_string(),
            channel_name: spec.name.clone(),
            channel_kind: spec.config.kind().to_string(),
            status: String::new(),
            attempt,
            ok: false,
            code: None,
            error: None,
            dead: false,
            at: Utc::now(),
            test: message.test,
        };
        let target = match self.target(&spec) {
            Ok(t) => t,
            Err(why) => {
                let mut a = base(1);
                a.error = Some(why);
                a.dead = true;
                return self.record(&message, a).await;
            }
        };
        let options = self.alerting().options.clone();
        let mut attempt = 1;
        loop {
            self.rate_limit(channel_id, &target).await;
            let result = self.alerting().notifier.send(&target, &message).await;
            let mut a = base(attempt);
            match &result {
                Ok(sent) => {
                    a.ok = true;
                    a.code = sent.status;
                }
                Err(e) => {
                    a.code = e.status();
                    a.error = Some(e.to_string());
                    a.dead = !e.retryable() || attempt >= options.attempts;
                }
            }
            metrics::counter!("jsconsole_alert_deliveries_total", "kind" => spec.config.kind(), "ok" => if a.ok { "true" } else { "false" })
                .increment(1);
            let done = a.ok || a.dead;
            let recorded = self.record(&message, a).await;
            if result.is_ok() && !message.test {
                for n in &message.alerts {
                    let told = Notified {
                        status: n.status.as_str().to_string(),
                        at: Utc::now(),
                    };
                    let _ = self
                        .alerting()
                        .notified
                        .put(
                            notified_key(&n.id, channel_id),
                            serde_json::to_vec(&told).expect("serializes").into(),
                        )
                        .await;
                }
            }
            if done {
                if let Err(SendError::Permanent { message: m, .. } | SendError::Retryable { message: m, .. }) = &result
                {
                    tracing::warn!(channel = %channel_id, attempts = attempt, error = %m, "alerts: a notification was given up");
                }
                return recorded;
            }
            let jitter = (Utc::now().timestamp_subsec_nanos() % 1000) as f64 / 1000.0;
            tokio::time::sleep(jsc_notify::backoff(
                attempt,
                options.backoff_base,
                options.backoff_cap,
                jitter,
            ))
            .await;
            attempt += 1;
        }
    }

    /// The repeat interval the policy gives a channel's default route (for the restart check).
    fn channel_repeat_interval(&self, channel_id: &str) -> Option<u64> {
        let org = self
            .views
            .channels
            .get(&jsc_projector::kv_token(channel_id))?
            .view
            .state
            .organization;
        let p = self.alert_policy_spec(&org);
        p.routes
            .iter()
            .find(|r| r.channels.iter().any(|c| c == channel_id))
            .and_then(|r| r.repeat_interval_s)
            .or(Some(p.repeat_interval_s))
    }

    /// Keeps one attempt per alert of `message` in the delivery log.
    async fn record(&self, message: &Message, attempt: DeliveryAttempt) -> Vec<DeliveryAttempt> {
        let js = jetstream::new(self.home.clone());
        let mut out = Vec::new();
        let alerts: Vec<(String, &'static str)> = if message.alerts.is_empty() {
            vec![("test".to_string(), "test")]
        } else {
            message
                .alerts
                .iter()
                .map(|a| (a.id.clone(), a.status.as_str()))
                .collect()
        };
        for (id, status) in alerts {
            let mut a = attempt.clone();
            a.alert_id = id.clone();
            a.status = status.to_string();
            let subject = format!(
                "{DELIVERIES_PREFIX}.{}",
                jsc_domain::ids::encode_token(&id, jsc_domain::ids::TokenKind::Subject)
            );
            let body = serde_json::to_vec(&a).expect("serializes");
            match js.publish(subject, body.into()).await {
                Ok(ack) => {
                    if let Err(e) = ack.await {
                        tracing::warn!(error = %e, "alerts: a delivery attempt was not logged");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "alerts: a delivery attempt was not logged"),
            }
            out.push(a);
        }
        out
    }

    /// The delivery log of an alert, oldest first (viewer).
    pub async fn alert_deliveries(&self, caller: &Caller, alert_id: &str) -> Result<Vec<DeliveryAttempt>> {
        self.alert(caller, alert_id)?;
        self.deliveries_of(alert_id).await
    }

    async fn deliveries_of(&self, alert_id: &str) -> Result<Vec<DeliveryAttempt>> {
        let subject = format!(
            "{DELIVERIES_PREFIX}.{}",
            jsc_domain::ids::encode_token(alert_id, jsc_domain::ids::TokenKind::Subject)
        );
        let records = self
            .home_records::<DeliveryAttempt>(DELIVERIES_STREAM, &subject, "the delivery log")
            .await?;
        Ok(records.into_iter().map(|(_, a)| a).collect())
    }

    /// Sends an alert again to every channel whose last delivery of it gave up
    /// (operator). Answers the new attempts.
    pub async fn retry_alert_deliveries(&self, caller: &Caller, alert_id: &str) -> Result<Vec<DeliveryAttempt>> {
        let alert = self.alert(caller, alert_id)?;
        let org = alert.state.organization().unwrap_or_default().to_string();
        self.require_org(&caller.principal, &org, Role::Operator)?;
        let log = self.deliveries_of(alert_id).await?;
        let mut last: BTreeMap<&str, &DeliveryAttempt> = BTreeMap::new();
        for a in log.iter().filter(|a| !a.test) {
            last.insert(&a.channel_id, a);
        }
        let dead: Vec<(&str, &str)> = last
            .iter()
            .filter(|(_, a)| a.dead)
            .map(|(c, a)| (*c, a.status.as_str()))
            .collect();
        if dead.is_empty() {
            return Err(Error::new(
                crate::Code::Conflict,
                "no delivery of this alert has given up: there is nothing to send again",
            ));
        }
        let mut out = Vec::new();
        for (channel, status) in dead {
            let status = match status {
                "resolved" => Status::Resolved,
                "acknowledged" => Status::Acknowledged,
                _ => Status::Firing,
            };
            let Some(n) = note(&alert.state, status) else { continue };
            let message = Message {
                group_key: format!("retry/{channel}/{alert_id}"),
                group_labels: BTreeMap::from([("alertname".to_string(), n.rule.clone())]),
                alerts: vec![n],
                test: false,
            };
            out.extend(self.deliver(channel, message, true).await);
        }
        Ok(out)
    }

    /// Sends a test notification to a channel, once, and answers how it went (admin).
    pub async fn test_channel(&self, caller: &Caller, channel_id: &str) -> Result<DeliveryAttempt> {
        let channel = self.channel(caller, channel_id)?;
        self.require_org(&caller.principal, &channel.state.organization, Role::Admin)?;
        let spec = channel.state.spec.expect("a channel in the view has a spec");
        let target = self.target(&spec).map_err(Error::validation)?;
        let now = Utc::now();
        let message = Message {
            group_key: format!("test/{channel_id}"),
            group_labels: BTreeMap::from([("alertname".to_string(), "JetStream Console test".to_string())]),
            alerts: vec![AlertNote {
                id: format!("test-{}", uuid::Uuid::now_v7().simple()),
                status: Status::Firing,
                rule: "JetStream Console test".into(),
                severity: "info".into(),
                cluster: "test".into(),
                stream: None,
                consumer: None,
                labels: BTreeMap::from([
                    ("alertname".to_string(), "JetStream Console test".to_string()),
                    ("severity".to_string(), "info".to_string()),
                ]),
                annotations: BTreeMap::from([(
                    "summary".to_string(),
                    format!("A test notification to '{}': it works.", spec.name),
                )]),
                value: None,
                threshold: None,
                starts_at: now,
                ends_at: None,
                acknowledged_by: None,
            }],
            test: true,
        };
        let result = self.alerting().notifier.send(&target, &message).await;
        let attempt = DeliveryAttempt {
            alert_id: String::new(),
            channel_id: channel_id.to_string(),
            channel_name: spec.name.clone(),
            channel_kind: spec.config.kind().to_string(),
            status: "test".into(),
            attempt: 1,
            ok: result.is_ok(),
            code: match &result {
                Ok(s) => s.status,
                Err(e) => e.status(),
            },
            error: result.as_ref().err().map(|e| e.to_string()),
            dead: false,
            at: now,
            test: true,
        };
        Ok(attempt)
    }

    /// Tells the channels that take acknowledgements (PagerDuty, webhooks) that an alert
    /// was acknowledged; on this replica, at once.
    pub(crate) async fn notify_acknowledged(&self, alert: &Alert) {
        let Some(o) = alert.origin.as_ref() else { return };
        let Some(n) = note(alert, Status::Acknowledged) else {
            return;
        };
        let policy = self.alert_policy_spec(&o.organization);
        let mut seen = HashSet::new();
        for d in policy.deliveries(&o.labels, o.severity) {
            for channel in d.channels {
                if !seen.insert(channel.clone()) {
                    continue;
                }
                let Some(spec) = self.channel_for_delivery(&channel) else {
                    continue;
                };
                if !self.target(&spec).is_ok_and(|t| t.takes_acknowledgements()) {
                    continue;
                }
                let message = Message {
                    group_key: format!("ack/{channel}/{}", alert.id),
                    group_labels: BTreeMap::from([("alertname".to_string(), n.rule.clone())]),
                    alerts: vec![n.clone()],
                    test: false,
                };
                let c = self.clone();
                tokio::spawn(async move {
                    c.deliver(&channel, message, false).await;
                });
            }
        }
    }

    /// Holds the alerting role while this replica has the lease (see [`crate::lease`]).
    pub(crate) fn alerting_worker(&self, shutdown: CancellationToken) -> crate::Worker {
        let c = self.clone();
        crate::Worker {
            name: "alerts",
            run: Box::pin(async move {
                let leases = c.leases.clone();
                leases.run(crate::lease::ALERTS, shutdown, |t| run(c.clone(), t)).await;
                Ok(())
            }),
        }
    }
}

/// When a draft rule would have fired on one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewFiring {
    pub cluster_id: String,
    pub stream: Option<String>,
    pub consumer: Option<String>,
    /// When the condition started to hold.
    pub pending_at: DateTime<Utc>,
    /// When it would have fired (after `for`); `None` if it stopped holding first.
    pub fired_at: Option<DateTime<Utc>>,
    /// When it stopped (after `keep_firing_for`); `None` if it still held at the end.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The value when it fired (or started to hold).
    pub value: f64,
}

/// What a draft rule would have done over a stretch of history.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// The stretch the samples covered (the raw samples go back as far as the metrics
    /// stream keeps them).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub samples: u64,
    pub clusters: u64,
    pub firings: Vec<PreviewFiring>,
}

impl Console {
    /// Evaluates a draft rule of `org` against the raw samples of `from..to` (viewer), as
    /// the evaluator would have: when it would have gone pending, fired and resolved on
    /// each resource. Dead-letter conditions are not previewed (their counts are not in the
    /// samples).
    pub async fn preview_alert_rule(
        &self,
        caller: &Caller,
        org: &str,
        spec: jsc_domain::alerts::RuleSpec,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Preview> {
        self.require_org(&caller.principal, org, Role::Viewer)?;
        let spec = spec.checked().map_err(|e| Error::validation(e.to_string()))?;
        if from >= to {
            return Err(Error::validation("from: must be before to"));
        }
        if matches!(spec.condition, jsc_domain::alerts::Condition::DeadLetters { .. }) {
            return Err(Error::validation(
                "rule.condition.kind: dead-letter conditions cannot be previewed (the samples do not hold dead letters)",
            ));
        }
        let rule = jsc_domain::alerts::AlertRule {
            id: "preview".into(),
            organization: org.to_string(),
            spec: Some(spec.clone()),
            deleted: false,
        };
        let clusters: Vec<ClusterInfo> = self
            .views
            .clusters
            .filter(|c| c.organization == org && spec.scope.has_cluster(&c.id, &c.name, &c.tags))
            .into_iter()
            .filter(|c| self.cluster_role(&caller.principal, &c.view.id).is_some())
            .map(|c| ClusterInfo {
                id: c.view.id,
                name: c.view.name,
                tags: c.view.tags,
                organization: c.view.organization,
            })
            .collect();
        let dead = DeadLetterCounts::default();
        let facts = ConsoleFacts {
            console: self,
            dead: &dead,
        };
        let (mut first, mut last, mut samples) = (i64::MAX, i64::MIN, 0u64);
        let mut firings = Vec::new();
        for cluster in &clusters {
            let records = jsc_metrics::store::read_range(
                &self.monitoring.stream,
                &jsc_metrics::store::cluster_filter(&cluster.id),
                from.timestamp_millis(),
                to.timestamp_millis(),
            )
            .await
            .map_err(|e| Error::unavailable(e.to_string()))?;
            let mut assembler = jsc_metrics::Assembler::default();
            let mut evaluator = Evaluator::new();
            let mut open: HashMap<String, PreviewFiring> = HashMap::new();
            for record in records {
                let Some(snapshot) = assembler.push(record) else {
                    continue;
                };
                samples += 1;
                first = first.min(snapshot.cluster.at_ms);
                last = last.max(snapshot.cluster.at_ms);
                for t in evaluator.evaluate(&snapshot, cluster, &[&rule], &facts) {
                    let fires = matches!(t.command, AlertCommand::Fire { .. });
                    match t.command {
                        AlertCommand::Pend { origin, value, at } | AlertCommand::Fire { origin, value, at } => {
                            let entry = open.entry(t.alert_id).or_insert_with(|| PreviewFiring {
                                cluster_id: cluster.id.clone(),
                                stream: origin.stream.clone(),
                                consumer: origin.consumer.clone(),
                                pending_at: at,
                                fired_at: None,
                                resolved_at: None,
                                value,
                            });
                            if fires {
                                entry.fired_at = Some(at);
                                entry.value = value;
                            }
                        }
                        AlertCommand::Clear { at, .. } | AlertCommand::Resolve { at, .. } => {
                            if let Some(mut f) = open.remove(&t.alert_id) {
                                f.resolved_at = Some(at);
                                firings.push(f);
                            }
                        }
                        _ => {}
                    }
                }
            }
            firings.extend(open.into_values());
        }
        firings.sort_by_key(|f| f.pending_at);
        let at = |ms: i64, or: DateTime<Utc>| DateTime::from_timestamp_millis(ms).unwrap_or(or);
        Ok(Preview {
            from: if samples > 0 { at(first, from) } else { from },
            to: if samples > 0 { at(last, to) } else { to },
            samples,
            clusters: clusters.len() as u64,
            firings,
        })
    }
}
