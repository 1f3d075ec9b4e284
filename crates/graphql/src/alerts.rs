//! Alerting: rules, notification channels, the routing policy, silences and alerts.
//! Viewers read them all (never a channel's secrets), operators acknowledge alerts and make
//! silences, admins manage rules, channels and the policy.

use std::collections::BTreeMap;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::Stream;
use jsc_app::Error;
use jsc_app::alerts::{AlertFilter, ChannelInput, ChannelSettings};
use jsc_domain::alerts::{
    self as al, ChannelConfig, Condition, Glob, Matcher, PolicySpec, Route, RuleSpec, Scope, SilenceSpec, SmtpTls,
};
use jsc_domain::identity::Role;
use jsc_projections::alerts::{AlertRuleView, AlertView, ChannelView, SilenceView};

use crate::connection::{connection, paging};
use crate::context::{caller, console, guarded};
use crate::mutation::{Outcome, input, payload};
use crate::scalars::Duration;

type Result<T> = std::result::Result<T, Error>;

const NS: i64 = 1_000_000_000;

fn secs(d: Option<Duration>, field: &str) -> Result<u64> {
    match d {
        None => Ok(0),
        Some(Duration(ns)) if ns < 0 => Err(Error::validation(format!("{field}: must not be negative"))),
        // Rules count whole seconds: 500ms would have become 0 (at once).
        Some(Duration(ns)) if ns % NS != 0 => Err(Error::validation(format!(
            "{field}: must be whole seconds, such as 30s or 5m; round it to a second"
        ))),
        Some(Duration(ns)) => Ok((ns / NS) as u64),
    }
}

fn dur(s: u64) -> Duration {
    Duration(s as i64 * NS)
}

/// How urgent an alert is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "jsc_domain::alerts::Severity")]
pub enum AlertSeverity {
    /// For the record; nobody needs to act.
    Info,
    /// Someone should look during working hours.
    Warning,
    /// Someone should act now.
    Critical,
}

/// Where an alert is in its life.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "jsc_domain::alerts::AlertStatus")]
pub enum AlertState {
    /// The condition does not hold.
    Normal,
    /// The condition holds, not yet for the rule's `for`.
    Pending,
    /// The condition has held for the rule's `for`: notifications go out.
    Firing,
    /// It fired, and the condition no longer holds.
    Resolved,
}

/// What a rule watches.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AlertConditionKind {
    /// A consumer's lag (messages not yet delivered) above `threshold`, or above its
    /// `io.nats.monitor.unprocessed-critical` metadata when `threshold` is left out.
    ConsumerLag,
    /// A consumer with messages pending whose ack floor has not moved for `stalledFor`.
    ConsumerStalled,
    /// A consumer's redeliveries per second above `threshold` (or its
    /// `io.nats.monitor.redelivery-critical` metadata).
    RedeliveryRate,
    /// A stream's messages stored per second above `threshold`.
    MessageRateAbove,
    /// A stream's messages stored per second below `threshold`.
    MessageRateBelow,
    /// A stream that had traffic within `window` and now has none.
    MessageRateZero,
    /// A stream's message rate more than `z` standard deviations away from its mean over
    /// the trailing `window`.
    MessageRateAnomaly,
    /// A stream's bytes or messages above `percent` of its `maxBytes` or `maxMsgs`.
    StreamStorage,
    /// The account's JetStream storage, memory, streams or consumers above `percent` of
    /// its limits.
    AccountStorage,
    /// The cluster does not answer the console's samples.
    ClusterUnreachable,
    /// The cluster answers but JetStream does not.
    JetstreamUnhealthy,
    /// More than `threshold` messages a consumer gave up on (max deliveries, terminated)
    /// within the trailing `window`.
    DeadLetters,
}

/// A rule's condition: the kind and the fields it reads.
#[derive(InputObject)]
pub struct AlertConditionInput {
    /// What to watch; decides which of the other fields are read.
    kind: AlertConditionKind,
    /// The threshold, for the kinds that compare with one.
    threshold: Option<f64>,
    /// Percent of a limit (above 0, at most 100), for `STREAM_STORAGE` and `ACCOUNT_STORAGE`.
    percent: Option<f64>,
    /// Standard deviations (3 is usual), for `MESSAGE_RATE_ANOMALY`.
    z: Option<f64>,
    /// The trailing window, for `MESSAGE_RATE_ZERO`, `MESSAGE_RATE_ANOMALY` and
    /// `DEAD_LETTERS`.
    window: Option<Duration>,
    /// How long the ack floor stays still, for `CONSUMER_STALLED`.
    stalled_for: Option<Duration>,
}

impl AlertConditionKind {
    /// The kind as the schema spells it, and the condition fields it reads.
    fn reads(self) -> (&'static str, &'static [&'static str]) {
        use AlertConditionKind as K;
        match self {
            K::ConsumerLag => ("CONSUMER_LAG", &["threshold"]),
            K::ConsumerStalled => ("CONSUMER_STALLED", &["stalledFor"]),
            K::RedeliveryRate => ("REDELIVERY_RATE", &["threshold"]),
            K::MessageRateAbove => ("MESSAGE_RATE_ABOVE", &["threshold"]),
            K::MessageRateBelow => ("MESSAGE_RATE_BELOW", &["threshold"]),
            K::MessageRateZero => ("MESSAGE_RATE_ZERO", &["window"]),
            K::MessageRateAnomaly => ("MESSAGE_RATE_ANOMALY", &["z", "window"]),
            K::StreamStorage => ("STREAM_STORAGE", &["percent"]),
            K::AccountStorage => ("ACCOUNT_STORAGE", &["percent"]),
            K::ClusterUnreachable => ("CLUSTER_UNREACHABLE", &[]),
            K::JetstreamUnhealthy => ("JETSTREAM_UNHEALTHY", &[]),
            K::DeadLetters => ("DEAD_LETTERS", &["threshold", "window"]),
        }
    }
}

impl AlertConditionInput {
    fn into_domain(self) -> Result<Condition> {
        use AlertConditionKind as K;
        // A field the kind does not read is a mistake (the wrong kind, or a field meant for
        // another rule), not something to drop quietly.
        let (kind, reads) = self.kind.reads();
        let given = [
            ("threshold", self.threshold.is_some()),
            ("percent", self.percent.is_some()),
            ("z", self.z.is_some()),
            ("window", self.window.is_some()),
            ("stalledFor", self.stalled_for.is_some()),
        ];
        for (field, set) in given {
            if set && !reads.contains(&field) {
                let hint = if reads.is_empty() {
                    "it reads no field".to_string()
                } else {
                    format!("it reads {}", reads.join(" and "))
                };
                return Err(Error::validation(format!(
                    "condition.{field}: a {kind} condition does not read it ({hint}); leave it out, or choose the kind that reads it"
                )));
            }
        }
        let need = |v: Option<f64>, f: &str| {
            v.ok_or_else(|| Error::validation(format!("condition.{f}: required for this kind of condition")))
        };
        let window = |w: Option<Duration>| -> Result<u64> {
            match w {
                None => Err(Error::validation(
                    "condition.window: required for this kind of condition",
                )),
                w => secs(w, "condition.window"),
            }
        };
        Ok(match self.kind {
            K::ConsumerLag => Condition::ConsumerLag {
                threshold: self.threshold,
            },
            K::ConsumerStalled => Condition::ConsumerStalled {
                stalled_for_s: match self.stalled_for {
                    None => return Err(Error::validation("condition.stalledFor: required for CONSUMER_STALLED")),
                    d => secs(d, "condition.stalledFor")?,
                },
            },
            K::RedeliveryRate => Condition::RedeliveryRate {
                threshold: self.threshold,
            },
            K::MessageRateAbove => Condition::MessageRateAbove {
                threshold: need(self.threshold, "threshold")?,
            },
            K::MessageRateBelow => Condition::MessageRateBelow {
                threshold: need(self.threshold, "threshold")?,
            },
            K::MessageRateZero => Condition::MessageRateZero {
                window_s: window(self.window)?,
            },
            K::MessageRateAnomaly => Condition::MessageRateAnomaly {
                z: need(self.z, "z")?,
                window_s: window(self.window)?,
            },
            K::StreamStorage => Condition::StreamStorage {
                percent: need(self.percent, "percent")?,
            },
            K::AccountStorage => Condition::AccountStorage {
                percent: need(self.percent, "percent")?,
            },
            K::ClusterUnreachable => Condition::ClusterUnreachable,
            K::JetstreamUnhealthy => Condition::JetstreamUnhealthy,
            K::DeadLetters => Condition::DeadLetters {
                threshold: need(self.threshold, "threshold")?,
                window_s: window(self.window)?,
            },
        })
    }
}

/// A rule's condition as stored.
#[derive(SimpleObject)]
pub struct AlertCondition {
    /// What the rule watches.
    kind: AlertConditionKind,
    /// The threshold the rule gives; null when it comes from the resource's metadata (see
    /// `metadataKey`) or the kind has none.
    threshold: Option<f64>,
    /// Percent of a limit, for the storage kinds.
    percent: Option<f64>,
    /// Standard deviations, for `MESSAGE_RATE_ANOMALY`.
    z: Option<f64>,
    /// The trailing window, for the kinds that have one.
    window: Option<Duration>,
    /// How long the ack floor stays still, for `CONSUMER_STALLED`.
    stalled_for: Option<Duration>,
    /// The stream or consumer metadata key that gives the threshold when the rule does not.
    metadata_key: Option<&'static str>,
}

impl From<&Condition> for AlertCondition {
    fn from(c: &Condition) -> Self {
        use AlertConditionKind as K;
        let mut out = AlertCondition {
            kind: K::ClusterUnreachable,
            threshold: None,
            percent: None,
            z: None,
            window: None,
            stalled_for: None,
            metadata_key: c.metadata_key(),
        };
        out.kind = match c {
            Condition::ConsumerLag { threshold } => {
                out.threshold = *threshold;
                K::ConsumerLag
            }
            Condition::ConsumerStalled { stalled_for_s } => {
                out.stalled_for = Some(dur(*stalled_for_s));
                K::ConsumerStalled
            }
            Condition::RedeliveryRate { threshold } => {
                out.threshold = *threshold;
                K::RedeliveryRate
            }
            Condition::MessageRateAbove { threshold } => {
                out.threshold = Some(*threshold);
                K::MessageRateAbove
            }
            Condition::MessageRateBelow { threshold } => {
                out.threshold = Some(*threshold);
                K::MessageRateBelow
            }
            Condition::MessageRateZero { window_s } => {
                out.window = Some(dur(*window_s));
                K::MessageRateZero
            }
            Condition::MessageRateAnomaly { z, window_s } => {
                out.z = Some(*z);
                out.window = Some(dur(*window_s));
                K::MessageRateAnomaly
            }
            Condition::StreamStorage { percent } => {
                out.percent = Some(*percent);
                K::StreamStorage
            }
            Condition::AccountStorage { percent } => {
                out.percent = Some(*percent);
                K::AccountStorage
            }
            Condition::ClusterUnreachable => K::ClusterUnreachable,
            Condition::JetstreamUnhealthy => K::JetstreamUnhealthy,
            Condition::DeadLetters { threshold, window_s } => {
                out.threshold = Some(*threshold);
                out.window = Some(dur(*window_s));
                K::DeadLetters
            }
        };
        out
    }
}

/// Which resources a rule watches. Name patterns take `*` (any run of characters) and `?`
/// (one character); an empty list takes every name.
#[derive(InputObject, SimpleObject, Default)]
#[graphql(input_name = "AlertScopeInput")]
pub struct AlertScope {
    /// Cluster ids or names.
    #[graphql(default)]
    clusters: Vec<String>,
    /// Stream names (not for cluster conditions).
    #[graphql(default)]
    streams: Vec<String>,
    /// Consumer names (consumer conditions only).
    #[graphql(default)]
    consumers: Vec<String>,
    /// Tags every watched cluster has.
    #[graphql(default)]
    cluster_tags: Vec<String>,
}

impl AlertScope {
    fn into_domain(self) -> Scope {
        let g = |v: Vec<String>| v.into_iter().map(Glob).collect();
        Scope {
            clusters: g(self.clusters),
            streams: g(self.streams),
            consumers: g(self.consumers),
            cluster_tags: self.cluster_tags,
        }
    }

    fn of(s: &Scope) -> Self {
        let g = |v: &[Glob]| v.iter().map(|g| g.0.clone()).collect();
        Self {
            clusters: g(&s.clusters),
            streams: g(&s.streams),
            consumers: g(&s.consumers),
            cluster_tags: s.cluster_tags.clone(),
        }
    }
}

/// A label or annotation: a name and a value.
#[derive(InputObject, SimpleObject, Clone)]
#[graphql(input_name = "LabelInput")]
pub struct Label {
    /// The name: letters, digits and `_`, not starting with a digit.
    name: String,
    /// The value (for an annotation, a template such as `{{ stream }} has {{ value }}
    /// pending`; variables: rule, severity, cluster, stream, consumer, value, threshold,
    /// state, labels.<name>).
    value: String,
}

fn labels_in(v: Vec<Label>, field: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for l in v {
        if out.insert(l.name.clone(), l.value).is_some() {
            return Err(Error::validation(format!("{field}: '{}' is given twice", l.name)));
        }
    }
    Ok(out)
}

fn labels_out(m: &BTreeMap<String, String>) -> Vec<Label> {
    m.iter()
        .map(|(k, v)| Label {
            name: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// Everything a rule says.
#[derive(InputObject)]
pub struct AlertRuleSpecInput {
    /// A name of 1 to 64 characters (the alert's `alertname` label).
    name: String,
    /// What the rule is for, at most 1024 bytes.
    #[graphql(default)]
    description: String,
    /// What to watch.
    condition: AlertConditionInput,
    /// Which clusters, streams and consumers; left out, all of the organization's.
    #[graphql(default)]
    scope: AlertScope,
    /// How urgent its alerts are. Defaults to `WARNING`.
    #[graphql(default_with = "AlertSeverity::Warning")]
    severity: AlertSeverity,
    /// How long the condition must hold before the alert fires (Alertmanager's `for`);
    /// left out, it fires at once.
    r#for: Option<Duration>,
    /// How long an alert keeps firing after the condition stops holding; left out, none.
    keep_firing_for: Option<Duration>,
    /// Labels every alert of the rule carries (routes and silences match them).
    #[graphql(default)]
    labels: Vec<Label>,
    /// Templates rendered for each alert, such as `summary` and `description`.
    #[graphql(default)]
    annotations: Vec<Label>,
    /// Whether the rule is evaluated. Defaults to true.
    #[graphql(default = true)]
    enabled: bool,
}

impl AlertRuleSpecInput {
    fn into_domain(self) -> Result<RuleSpec> {
        Ok(RuleSpec {
            name: self.name,
            description: self.description,
            condition: self.condition.into_domain()?,
            scope: self.scope.into_domain(),
            severity: self.severity.into(),
            for_s: secs(self.r#for, "for")?,
            keep_firing_for_s: secs(self.keep_firing_for, "keepFiringFor")?,
            labels: labels_in(self.labels, "labels")?,
            annotations: labels_in(self.annotations, "annotations")?,
            enabled: self.enabled,
        })
    }
}

pub struct AlertRuleObj(pub(crate) AlertRuleView);

impl AlertRuleObj {
    fn spec(&self) -> &RuleSpec {
        self.0.state.spec.as_ref().expect("a rule in the view has a spec")
    }
}

/// A rule: a condition over the metrics of some clusters, streams or consumers, and what an
/// alert it raises looks like.
#[Object(name = "AlertRule")]
impl AlertRuleObj {
    /// The rule's unique ID.
    async fn id(&self) -> ID {
        ID(self.0.state.id.clone())
    }
    /// The organization it belongs to.
    async fn organization_id(&self) -> ID {
        ID(self.0.state.organization.clone())
    }
    /// Its name (the `alertname` label of its alerts).
    async fn name(&self) -> &str {
        &self.spec().name
    }
    /// What it is for.
    async fn description(&self) -> &str {
        &self.spec().description
    }
    /// What it watches.
    async fn condition(&self) -> AlertCondition {
        (&self.spec().condition).into()
    }
    /// Which resources it watches.
    async fn scope(&self) -> AlertScope {
        AlertScope::of(&self.spec().scope)
    }
    /// How urgent its alerts are.
    async fn severity(&self) -> AlertSeverity {
        self.spec().severity.into()
    }
    /// How long the condition must hold before an alert fires.
    async fn r#for(&self) -> Duration {
        dur(self.spec().for_s)
    }
    /// How long an alert keeps firing after the condition stops holding.
    async fn keep_firing_for(&self) -> Duration {
        dur(self.spec().keep_firing_for_s)
    }
    /// Labels its alerts carry.
    async fn labels(&self) -> Vec<Label> {
        labels_out(&self.spec().labels)
    }
    /// Annotation templates.
    async fn annotations(&self) -> Vec<Label> {
        labels_out(&self.spec().annotations)
    }
    /// Whether it is evaluated.
    async fn enabled(&self) -> bool {
        self.spec().enabled
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Who created it (an actor such as `user:<id>`).
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Who last changed it.
    async fn updated_by(&self) -> &str {
        &self.0.updated_by
    }
    /// Its history, oldest first: every event with what it changed (one page).
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The first `first` events (after `after`): 0 to 1,000; 50 by default.")] first: Option<i32>,
        #[graphql(desc = "Only events after this cursor.")] after: Option<String>,
        #[graphql(desc = "The last `last` events (before `before`): 0 to 1,000.")] last: Option<i32>,
        #[graphql(desc = "Only events before this cursor.")] before: Option<String>,
    ) -> async_graphql::Result<crate::history::HistoryEntryConnection> {
        crate::history::history_page(
            ctx,
            jsc_domain::AggregateKind::AlertRule,
            &self.0.state.id,
            paging(first, after, last, before),
        )
        .await
    }
}

connection!(AlertRuleConnection, AlertRuleEdge, AlertRuleObj, "alert rules");

/// The kind of a notification channel.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Email over SMTP.
    Email,
    /// A Slack incoming webhook.
    Slack,
    /// An HTTP POST signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`).
    Webhook,
    /// PagerDuty Events v2: trigger, acknowledge and resolve with a stable `dedup_key`.
    PagerDuty,
    /// An existing Alertmanager (`/api/v2/alerts`).
    Alertmanager,
}

/// How an SMTP connection is secured.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "jsc_domain::alerts::SmtpTls")]
pub enum SmtpSecurity {
    /// STARTTLS, required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only for a relay on the same host or network.
    None,
}

/// A channel's settings. Give the fields its kind reads; secrets (SMTP password, webhook
/// URLs, signing secret, routing key) are encrypted before they are stored and never
/// returned. On update a secret left out keeps the stored one.
#[derive(InputObject)]
pub struct NotificationChannelInput {
    /// A name of 1 to 64 characters.
    name: String,
    /// The kind; decides which of the other fields are read.
    kind: ChannelKind,
    /// Whether resolved alerts are sent too. Defaults to true.
    #[graphql(default = true)]
    send_resolved: bool,
    /// `EMAIL`: the SMTP server's host.
    smtp_host: Option<String>,
    /// `EMAIL`: the SMTP port. Defaults to 587 (465 with `TLS`, 25 with `NONE`).
    smtp_port: Option<u16>,
    /// `EMAIL`: how the connection is secured. Defaults to `START_TLS`.
    smtp_security: Option<SmtpSecurity>,
    /// `EMAIL`: the user to sign in as, if the server wants one.
    smtp_username: Option<String>,
    /// `EMAIL`: that user's password (secret).
    smtp_password: Option<String>,
    /// `EMAIL`: the sender address.
    from: Option<String>,
    /// `EMAIL`: the recipients, 1 to 50.
    to: Option<Vec<String>>,
    /// `SLACK` and `WEBHOOK`: the URL to post to (secret); `ALERTMANAGER`: its base URL.
    url: Option<String>,
    /// `WEBHOOK`: the signing secret, `whsec_` and base64 of 24 to 64 bytes (secret);
    /// left out on create, one is made and answered once.
    signing_secret: Option<String>,
    /// `PAGER_DUTY`: the integration's routing key (secret).
    routing_key: Option<String>,
    /// `PAGER_DUTY`: the Events v2 endpoint; PagerDuty's own by default.
    events_url: Option<String>,
}

impl NotificationChannelInput {
    fn into_app(self) -> Result<ChannelInput> {
        let settings = match self.kind {
            ChannelKind::Email => {
                let tls = self.smtp_security.map_or(SmtpTls::StartTls, Into::into);
                ChannelSettings::Email {
                    host: self
                        .smtp_host
                        .ok_or_else(|| Error::validation("smtpHost: required for EMAIL"))?,
                    port: self.smtp_port.unwrap_or(match tls {
                        SmtpTls::StartTls => 587,
                        SmtpTls::Tls => 465,
                        SmtpTls::None => 25,
                    }),
                    tls,
                    username: self.smtp_username,
                    password: self.smtp_password,
                    from: self.from.ok_or_else(|| Error::validation("from: required for EMAIL"))?,
                    to: self.to.unwrap_or_default(),
                }
            }
            ChannelKind::Slack => ChannelSettings::Slack { webhook_url: self.url },
            ChannelKind::Webhook => ChannelSettings::Webhook {
                url: self.url,
                signing_secret: self.signing_secret,
            },
            ChannelKind::PagerDuty => ChannelSettings::PagerDuty {
                routing_key: self.routing_key,
                events_url: self.events_url,
            },
            ChannelKind::Alertmanager => ChannelSettings::Alertmanager {
                url: self
                    .url
                    .ok_or_else(|| Error::validation("url: required for ALERTMANAGER"))?,
            },
        };
        Ok(ChannelInput {
            name: self.name,
            send_resolved: self.send_resolved,
            settings,
        })
    }
}

pub struct ChannelObj(pub(crate) ChannelView);

impl ChannelObj {
    fn spec(&self) -> &al::ChannelSpec {
        self.0.state.spec.as_ref().expect("a channel in the view has a spec")
    }
}

/// Where alerts are sent. Its secrets are never shown: `hint` tells channels apart.
#[Object(name = "NotificationChannel")]
impl ChannelObj {
    /// The channel's unique ID.
    async fn id(&self) -> ID {
        ID(self.0.state.id.clone())
    }
    /// The organization it belongs to.
    async fn organization_id(&self) -> ID {
        ID(self.0.state.organization.clone())
    }
    /// Its name.
    async fn name(&self) -> &str {
        &self.spec().name
    }
    /// Its kind.
    async fn kind(&self) -> ChannelKind {
        match self.spec().config {
            ChannelConfig::Email { .. } => ChannelKind::Email,
            ChannelConfig::Slack { .. } => ChannelKind::Slack,
            ChannelConfig::Webhook { .. } => ChannelKind::Webhook,
            ChannelConfig::PagerDuty { .. } => ChannelKind::PagerDuty,
            ChannelConfig::Alertmanager { .. } => ChannelKind::Alertmanager,
        }
    }
    /// What may be shown of where it sends: a URL's scheme and host, the last characters of
    /// a routing key, an SMTP server.
    async fn hint(&self) -> &str {
        &self.spec().hint
    }
    /// `EMAIL`: the recipients.
    async fn to(&self) -> Option<Vec<String>> {
        match &self.spec().config {
            ChannelConfig::Email { to, .. } => Some(to.clone()),
            _ => None,
        }
    }
    /// Whether resolved alerts are sent too.
    async fn send_resolved(&self) -> bool {
        self.spec().send_resolved
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Who created it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

connection!(
    NotificationChannelConnection,
    NotificationChannelEdge,
    ChannelObj,
    "notification channels"
);

/// How a matcher compares a label.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "jsc_domain::alerts::MatchOp")]
pub enum MatchOperator {
    /// `=`: the label equals the value (a missing label is the empty string).
    Equal,
    /// `!=`: it does not.
    NotEqual,
    /// `=~`: the label matches the regular expression, anchored at both ends.
    Regex,
    /// `!~`: it does not.
    NotRegex,
}

/// A condition on an alert's labels, as Alertmanager's matchers.
#[derive(InputObject, SimpleObject, Clone)]
#[graphql(input_name = "LabelMatcherInput")]
pub struct LabelMatcher {
    /// The label's name.
    name: String,
    /// How to compare. Defaults to `EQUAL`.
    #[graphql(default_with = "MatchOperator::Equal")]
    op: MatchOperator,
    /// The value or regular expression.
    value: String,
}

impl From<LabelMatcher> for Matcher {
    fn from(m: LabelMatcher) -> Self {
        Matcher {
            name: m.name,
            op: m.op.into(),
            value: m.value,
        }
    }
}

impl From<&Matcher> for LabelMatcher {
    fn from(m: &Matcher) -> Self {
        LabelMatcher {
            name: m.name.clone(),
            op: m.op.into(),
            value: m.value.clone(),
        }
    }
}

/// One route of the policy: alerts matching it go to its channels.
#[derive(InputObject, SimpleObject, Clone)]
#[graphql(input_name = "AlertRouteInput")]
pub struct AlertRoute {
    /// Labels the alert must match (all of them); empty matches every alert.
    #[graphql(default)]
    matchers: Vec<LabelMatcher>,
    /// The least severity it takes; left out, any.
    min_severity: Option<AlertSeverity>,
    /// IDs of the channels to send to (at least one).
    channels: Vec<ID>,
    /// Labels that split alerts into groups sent together; the policy's when left out.
    group_by: Option<Vec<String>>,
    /// How long to wait before the first notification of a new group; the policy's when
    /// left out.
    group_wait: Option<Duration>,
    /// How long to wait before notifying of changes in a group.
    group_interval: Option<Duration>,
    /// How long before the same firing alerts are sent again.
    repeat_interval: Option<Duration>,
    /// Also try the routes after this one. Defaults to false.
    #[graphql(name = "continue", default)]
    continue_: bool,
}

/// An organization's routing policy: where alerts go and how often.
#[derive(InputObject, SimpleObject)]
#[graphql(input_name = "AlertPolicyInput")]
pub struct AlertPolicy {
    /// Where alerts that no route takes go (may be empty: recorded, not sent).
    #[graphql(default)]
    channels: Vec<ID>,
    /// Labels that split alerts into groups. Defaults to `alertname` and `cluster`.
    #[graphql(default_with = "vec![\"alertname\".to_string(), \"cluster\".to_string()]")]
    group_by: Vec<String>,
    /// Wait before the first notification of a new group. Defaults to 30s.
    #[graphql(default_with = "dur(al::GROUP_WAIT_S)")]
    group_wait: Duration,
    /// Wait before notifying of changes in a group. Defaults to 5m.
    #[graphql(default_with = "dur(al::GROUP_INTERVAL_S)")]
    group_interval: Duration,
    /// Wait before sending the same firing alerts again. Defaults to 4h.
    #[graphql(default_with = "dur(al::REPEAT_INTERVAL_S)")]
    repeat_interval: Duration,
    /// Routes, tried in order.
    #[graphql(default)]
    routes: Vec<AlertRoute>,
}

fn opt_secs(d: Option<Duration>, field: &str) -> Result<Option<u64>> {
    d.map(|d| secs(Some(d), field)).transpose()
}

impl AlertPolicy {
    fn into_domain(self) -> Result<PolicySpec> {
        let ids = |v: Vec<ID>| v.into_iter().map(|i| i.0).collect();
        let mut routes = Vec::with_capacity(self.routes.len());
        for (i, r) in self.routes.into_iter().enumerate() {
            routes.push(Route {
                matchers: r.matchers.into_iter().map(Into::into).collect(),
                min_severity: r.min_severity.map(Into::into),
                channels: ids(r.channels),
                group_by: r.group_by,
                group_wait_s: opt_secs(r.group_wait, &format!("routes[{i}].groupWait"))?,
                group_interval_s: opt_secs(r.group_interval, &format!("routes[{i}].groupInterval"))?,
                repeat_interval_s: opt_secs(r.repeat_interval, &format!("routes[{i}].repeatInterval"))?,
                r#continue: r.continue_,
            });
        }
        Ok(PolicySpec {
            channels: ids(self.channels),
            group_by: self.group_by,
            group_wait_s: secs(Some(self.group_wait), "groupWait")?,
            group_interval_s: secs(Some(self.group_interval), "groupInterval")?,
            repeat_interval_s: secs(Some(self.repeat_interval), "repeatInterval")?,
            routes,
        })
    }

    fn of(p: &PolicySpec) -> Self {
        let ids = |v: &[String]| v.iter().map(|i| ID(i.clone())).collect();
        AlertPolicy {
            channels: ids(&p.channels),
            group_by: p.group_by.clone(),
            group_wait: dur(p.group_wait_s),
            group_interval: dur(p.group_interval_s),
            repeat_interval: dur(p.repeat_interval_s),
            routes: p
                .routes
                .iter()
                .map(|r| AlertRoute {
                    matchers: r.matchers.iter().map(Into::into).collect(),
                    min_severity: r.min_severity.map(Into::into),
                    channels: ids(&r.channels),
                    group_by: r.group_by.clone(),
                    group_wait: r.group_wait_s.map(dur),
                    group_interval: r.group_interval_s.map(dur),
                    repeat_interval: r.repeat_interval_s.map(dur),
                    continue_: r.r#continue,
                })
                .collect(),
        }
    }
}

pub struct SilenceObj(pub(crate) SilenceView);

/// A silence: alerts whose labels match are recorded but not sent, from `startsAt` to
/// `endsAt`.
#[Object(name = "Silence")]
impl SilenceObj {
    /// The silence's unique ID.
    async fn id(&self) -> ID {
        ID(self.0.state.id.clone())
    }
    /// The labels an alert must match (all of them).
    async fn matchers(&self) -> Vec<LabelMatcher> {
        self.0
            .state
            .spec
            .iter()
            .flat_map(|s| s.matchers.iter().map(Into::into))
            .collect()
    }
    /// When it starts.
    async fn starts_at(&self) -> Option<DateTime<Utc>> {
        self.0.state.spec.as_ref().map(|s| s.starts_at)
    }
    /// When it ends (or ended).
    async fn ends_at(&self) -> Option<DateTime<Utc>> {
        let s = &self.0.state;
        match (s.expired_at, s.spec.as_ref()) {
            (Some(e), Some(sp)) => Some(e.min(sp.ends_at)),
            (_, sp) => sp.map(|s| s.ends_at),
        }
    }
    /// Why.
    async fn comment(&self) -> &str {
        self.0.state.spec.as_ref().map_or("", |s| &s.comment)
    }
    /// Who made it.
    async fn created_by(&self) -> &str {
        &self.0.state.created_by
    }
    /// Whether it is in force now.
    async fn active(&self) -> bool {
        self.0.state.active_at(Utc::now())
    }
}

connection!(SilenceConnection, SilenceEdge, SilenceObj, "silences");

pub struct AlertObj(pub(crate) AlertView);

impl AlertObj {
    fn origin(&self) -> &al::AlertOrigin {
        self.0
            .state
            .origin
            .as_ref()
            .expect("an alert in the view has an origin")
    }
}

/// Who acknowledged a firing alert.
#[derive(SimpleObject)]
pub struct AlertAcknowledgement {
    /// The actor (`user:<id>`, `apikey:<id>`).
    by: String,
    /// What they said.
    comment: String,
    /// When.
    at: DateTime<Utc>,
}

/// An alert: one rule on one cluster, stream or consumer.
#[Object(name = "Alert")]
impl AlertObj {
    /// The alert's unique ID (stable for the rule and the resource).
    async fn id(&self) -> ID {
        ID(self.0.state.id.clone())
    }
    /// Where it is in its life.
    async fn state(&self) -> AlertState {
        self.0.state.status.into()
    }
    /// When that state began.
    async fn since(&self) -> Option<DateTime<Utc>> {
        self.0.state.since
    }
    /// When it last started firing.
    async fn fired_at(&self) -> Option<DateTime<Utc>> {
        self.0.state.fired_at
    }
    /// The value that caused the last change of state.
    async fn value(&self) -> Option<f64> {
        self.0.state.value
    }
    /// The threshold in force (the rule's, or the resource's metadata).
    async fn threshold(&self) -> Option<f64> {
        self.origin().threshold
    }
    /// How urgent it is.
    async fn severity(&self) -> AlertSeverity {
        self.origin().severity.into()
    }
    /// The rule's ID.
    async fn rule_id(&self) -> ID {
        ID(self.origin().rule_id.clone())
    }
    /// The rule's name when the alert last changed.
    async fn rule_name(&self) -> &str {
        &self.origin().rule_name
    }
    /// The cluster's ID.
    async fn cluster_id(&self) -> ID {
        ID(self.origin().cluster_id.clone())
    }
    /// The stream, for stream and consumer alerts.
    async fn stream(&self) -> Option<&str> {
        self.origin().stream.as_deref()
    }
    /// The consumer, for consumer alerts.
    async fn consumer(&self) -> Option<&str> {
        self.origin().consumer.as_deref()
    }
    /// Its labels (the rule's, and `alertname`, `severity`, `cluster`, `stream`, `consumer`).
    async fn labels(&self) -> Vec<Label> {
        labels_out(&self.origin().labels)
    }
    /// Its rendered annotations.
    async fn annotations(&self) -> Vec<Label> {
        labels_out(&self.origin().annotations)
    }
    /// Who acknowledged it, if someone did since it last fired.
    async fn acknowledgement(&self) -> Option<AlertAcknowledgement> {
        self.0.state.acknowledged.as_ref().map(|a| AlertAcknowledgement {
            by: a.by.clone(),
            comment: a.comment.clone(),
            at: a.at,
        })
    }
    /// IDs of the silences that keep it quiet now (empty: none).
    async fn silenced_by(&self) -> Vec<ID> {
        self.0.state.silenced_by.iter().map(|s| ID(s.clone())).collect()
    }
    /// How many times it has fired.
    async fn fired_count(&self) -> u64 {
        self.0.state.fired_count
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Every attempt to notify a channel of it, oldest first (at most the last 500): status
    /// codes, errors, and those given up (`dead`), which `retryAlertDeliveries` sends again.
    async fn deliveries(&self, ctx: &Context<'_>) -> Result<Vec<AlertDelivery>> {
        let log = console(ctx).alert_deliveries(&caller(ctx)?, &self.0.state.id).await?;
        Ok(log.into_iter().map(AlertDelivery).collect())
    }
    /// Its transitions, oldest first: every event with what it changed (one page).
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The first `first` events (after `after`): 0 to 1,000; 50 by default.")] first: Option<i32>,
        #[graphql(desc = "Only events after this cursor.")] after: Option<String>,
        #[graphql(desc = "The last `last` events (before `before`): 0 to 1,000.")] last: Option<i32>,
        #[graphql(desc = "Only events before this cursor.")] before: Option<String>,
    ) -> async_graphql::Result<crate::history::HistoryEntryConnection> {
        crate::history::history_page(
            ctx,
            jsc_domain::AggregateKind::Alert,
            &self.0.state.id,
            paging(first, after, last, before),
        )
        .await
    }
}

connection!(AlertConnection, AlertEdge, AlertObj, "alerts");

pub struct AlertDelivery(jsc_app::alerting::DeliveryAttempt);

/// One attempt to notify a channel.
#[Object]
impl AlertDelivery {
    /// The channel's ID.
    async fn channel_id(&self) -> ID {
        ID(self.0.channel_id.clone())
    }
    /// The channel's name when it was sent.
    async fn channel_name(&self) -> &str {
        &self.0.channel_name
    }
    /// The channel's kind (`email`, `slack`, `webhook`, `pager_duty`, `alertmanager`).
    async fn channel_kind(&self) -> &str {
        &self.0.channel_kind
    }
    /// What it said of the alert: `firing`, `resolved`, `acknowledged` or `test`.
    async fn status(&self) -> &str {
        &self.0.status
    }
    /// 1 for the first attempt.
    async fn attempt(&self) -> u32 {
        self.0.attempt
    }
    /// Whether the receiver took it.
    async fn ok(&self) -> bool {
        self.0.ok
    }
    /// The receiver's HTTP status or SMTP code, if it answered.
    async fn code(&self) -> Option<u16> {
        self.0.code
    }
    /// Why it failed, if it did.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// Given up: no more attempts unless someone retries it.
    async fn dead(&self) -> bool {
        self.0.dead
    }
    /// When.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}

/// What a draft rule would have done.
#[derive(SimpleObject)]
pub struct AlertRulePreview {
    /// The first sample evaluated (or `from` when there was none).
    from: DateTime<Utc>,
    /// The last sample evaluated (or `to`).
    to: DateTime<Utc>,
    /// Samples evaluated, over every cluster in scope.
    samples: u64,
    /// Clusters in scope.
    clusters: u64,
    /// Each time the condition held on a resource, oldest first.
    firings: Vec<PreviewFiring>,
}

/// One stretch during which a draft rule's condition held on one resource.
#[derive(SimpleObject)]
pub struct PreviewFiring {
    /// The cluster's ID.
    cluster_id: ID,
    /// The stream, for stream and consumer conditions.
    stream: Option<String>,
    /// The consumer, for consumer conditions.
    consumer: Option<String>,
    /// When the condition started to hold.
    pending_at: DateTime<Utc>,
    /// When it would have fired (after `for`); null if it stopped holding before.
    fired_at: Option<DateTime<Utc>>,
    /// When it would have resolved; null if it still held at the end.
    resolved_at: Option<DateTime<Utc>>,
    /// The value when it fired (or started to hold).
    value: f64,
}

#[derive(Default)]
pub struct AlertQuery;

#[Object]
impl AlertQuery {
    /// An organization's alert rules, by name (viewer).
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn alert_rules(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization; may be left out when you belong to exactly one.")] organization_id: Option<
            ID,
        >,
        #[graphql(desc = "The first `first` rules (after `after`): 0 to 500; 50 by default.")] first: Option<i32>,
        #[graphql(desc = "Only rules after this cursor.")] after: Option<String>,
        #[graphql(desc = "The last `last` rules (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(desc = "Only rules before this cursor.")] before: Option<String>,
    ) -> Result<AlertRuleConnection> {
        let caller = caller(ctx)?;
        let c = console(ctx);
        let org = c.organization_for(
            &caller.principal,
            organization_id.map(|o| o.0),
            Role::Viewer,
            "listing alert rules",
        )?;
        let page = c.alert_rules(&caller, &org, &paging(first, after, last, before))?;
        Ok(AlertRuleConnection::new(page, AlertRuleObj))
    }

    /// One alert rule; null if there is none you may see.
    async fn alert_rule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The rule's ID.")] id: ID,
    ) -> Result<Option<AlertRuleObj>> {
        match console(ctx).alert_rule(&caller(ctx)?, &id) {
            Ok(v) => Ok(Some(AlertRuleObj(v))),
            Err(e) if e.code == jsc_app::Code::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An organization's notification channels, by name (viewer; secrets never shown).
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn notification_channels(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization; may be left out when you belong to exactly one.")] organization_id: Option<
            ID,
        >,
        #[graphql(desc = "The first `first` channels (after `after`): 0 to 500; 50 by default.")] first: Option<i32>,
        #[graphql(desc = "Only channels after this cursor.")] after: Option<String>,
        #[graphql(desc = "The last `last` channels (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(desc = "Only channels before this cursor.")] before: Option<String>,
    ) -> Result<NotificationChannelConnection> {
        let caller = caller(ctx)?;
        let c = console(ctx);
        let org = c.organization_for(
            &caller.principal,
            organization_id.map(|o| o.0),
            Role::Viewer,
            "listing notification channels",
        )?;
        let page = c.channels(&caller, &org, &paging(first, after, last, before))?;
        Ok(NotificationChannelConnection::new(page, ChannelObj))
    }

    /// An organization's routing policy (viewer): the defaults until an admin sets one.
    async fn alert_policy(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization; may be left out when you belong to exactly one.")] organization_id: Option<
            ID,
        >,
    ) -> Result<AlertPolicy> {
        let caller = caller(ctx)?;
        let c = console(ctx);
        let org = c.organization_for(
            &caller.principal,
            organization_id.map(|o| o.0),
            Role::Viewer,
            "reading the alert policy",
        )?;
        let (spec, _) = c.alert_policy(&caller, &org)?;
        Ok(AlertPolicy::of(&spec))
    }

    /// An organization's silences, newest first (viewer).
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn silences(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization; may be left out when you belong to exactly one.")] organization_id: Option<
            ID,
        >,
        #[graphql(desc = "Only the silences in force now. Defaults to false.", default)] active: bool,
        #[graphql(desc = "The first `first` silences (after `after`): 0 to 500; 50 by default.")] first: Option<i32>,
        #[graphql(desc = "Only silences after this cursor.")] after: Option<String>,
        #[graphql(desc = "The last `last` silences (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(desc = "Only silences before this cursor.")] before: Option<String>,
    ) -> Result<SilenceConnection> {
        let caller = caller(ctx)?;
        let c = console(ctx);
        let org = c.organization_for(
            &caller.principal,
            organization_id.map(|o| o.0),
            Role::Viewer,
            "listing silences",
        )?;
        let page = c.silences(&caller, &org, active, &paging(first, after, last, before))?;
        Ok(SilenceConnection::new(page, SilenceObj))
    }

    /// An organization's alerts, most recently changed first (viewer): by default those
    /// pending or firing.
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization; may be left out when you belong to exactly one.")] organization_id: Option<
            ID,
        >,
        #[graphql(desc = "Only alerts in these states; `[PENDING, FIRING]` when left out.")] state: Option<
            Vec<AlertState>,
        >,
        #[graphql(desc = "Only alerts of this severity.")] severity: Option<AlertSeverity>,
        #[graphql(desc = "Only alerts whose labels match all of these.", default)] labels: Vec<LabelMatcher>,
        #[graphql(desc = "Only alerts of this rule.")] rule_id: Option<ID>,
        #[graphql(desc = "The first `first` alerts (after `after`): 0 to 500; 50 by default.")] first: Option<i32>,
        #[graphql(desc = "Only alerts after this cursor.")] after: Option<String>,
        #[graphql(desc = "The last `last` alerts (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(desc = "Only alerts before this cursor.")] before: Option<String>,
    ) -> Result<AlertConnection> {
        let caller = caller(ctx)?;
        let c = console(ctx);
        let org = c.organization_for(
            &caller.principal,
            organization_id.map(|o| o.0),
            Role::Viewer,
            "listing alerts",
        )?;
        let filter = AlertFilter {
            status: state.map(|v| v.into_iter().map(Into::into).collect()),
            severity: severity.map(Into::into),
            matchers: labels.into_iter().map(Into::into).collect(),
            rule_id: rule_id.map(|r| r.0),
        };
        let page = c.alerts(&caller, &org, &filter, &paging(first, after, last, before))?;
        Ok(AlertConnection::new(page, AlertObj))
    }

    /// What a draft rule would have done over the raw samples of `from..to` (viewer): when
    /// it would have gone pending, fired and resolved on each cluster, stream or consumer.
    /// The raw samples go back as far as the metrics stream keeps them (24 h by default);
    /// `from` and `to` of the answer say what was covered.
    async fn preview_alert_rule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization; may be left out when you belong to exactly one.")] organization_id: Option<
            ID,
        >,
        #[graphql(desc = "The draft rule.")] rule: AlertRuleSpecInput,
        #[graphql(desc = "Start of the stretch; an hour before `to` when left out.")] from: Option<DateTime<Utc>>,
        #[graphql(desc = "End of the stretch; now when left out.")] to: Option<DateTime<Utc>>,
    ) -> Result<AlertRulePreview> {
        let caller = caller(ctx)?;
        let c = console(ctx);
        let org = c.organization_for(
            &caller.principal,
            organization_id.map(|o| o.0),
            Role::Viewer,
            "previewing an alert rule",
        )?;
        let to = to.unwrap_or_else(Utc::now);
        let from = from.unwrap_or(to - chrono::TimeDelta::hours(1));
        let p = c
            .preview_alert_rule(&caller, &org, rule.into_domain()?, from, to)
            .await?;
        Ok(AlertRulePreview {
            from: p.from,
            to: p.to,
            samples: p.samples,
            clusters: p.clusters,
            firings: p
                .firings
                .into_iter()
                .map(|f| PreviewFiring {
                    cluster_id: ID(f.cluster_id),
                    stream: f.stream,
                    consumer: f.consumer,
                    pending_at: f.pending_at,
                    fired_at: f.fired_at,
                    resolved_at: f.resolved_at,
                    value: f.value,
                })
                .collect(),
        })
    }

    /// One alert; null if there is none you may see. Its transitions are in
    /// `history(aggregateType: ALERT, id: ...)`.
    async fn alert(&self, ctx: &Context<'_>, #[graphql(desc = "The alert's ID.")] id: ID) -> Result<Option<AlertObj>> {
        match console(ctx).alert(&caller(ctx)?, &id) {
            Ok(v) => Ok(Some(AlertObj(v))),
            Err(e) if e.code == jsc_app::Code::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

input! {
    /// Creates an alert rule (mutation createAlertRule).
    CreateAlertRuleInput {
        /// The organization; may be left out when you administer exactly one.
        organization_id: Option<ID>,
        /// The rule.
        rule: AlertRuleSpecInput,
    }
}

payload! {
    /// What mutation createAlertRule answers.
    CreateAlertRulePayload {
        /// The new rule.
        alert_rule: AlertRuleObj,
    }
}

input! {
    /// Changes an alert rule (mutation updateAlertRule): its whole `rule`, `enabled`, or both.
    UpdateAlertRuleInput {
        /// The rule's ID.
        id: ID,
        /// The rule as it should be, replacing what it says now.
        rule: Option<AlertRuleSpecInput>,
        /// Turns the rule on or off.
        enabled: Option<bool>,
    }
}

payload! {
    /// What mutation updateAlertRule answers.
    UpdateAlertRulePayload {
        /// The rule as it is now.
        alert_rule: AlertRuleObj,
    }
}

payload! {
    /// What mutation deleteAlertRule answers.
    DeleteAlertRulePayload {
        /// The rule as it was.
        alert_rule: AlertRuleObj,
    }
}

input! {
    /// Deletes an alert rule (mutation deleteAlertRule); its alerts resolve.
    DeleteAlertRuleInput {
        /// The rule's ID.
        id: ID,
    }
}

input! {
    /// Creates a notification channel (mutation createNotificationChannel).
    CreateNotificationChannelInput {
        /// The organization; may be left out when you administer exactly one.
        organization_id: Option<ID>,
        /// The channel.
        channel: NotificationChannelInput,
    }
}

payload! {
    /// What mutation createNotificationChannel answers.
    CreateNotificationChannelPayload {
        /// The new channel.
        channel: ChannelObj,
        /// For a webhook made without a signing secret: the secret that was made, shown
        /// this once (receivers verify `webhook-signature` with it).
        signing_secret: Option<String>,
    }
}

input! {
    /// Replaces a notification channel's settings (mutation updateNotificationChannel); a
    /// secret left out keeps the stored one.
    UpdateNotificationChannelInput {
        /// The channel's ID.
        id: ID,
        /// The channel as it should be.
        channel: NotificationChannelInput,
    }
}

payload! {
    /// What mutation updateNotificationChannel answers.
    UpdateNotificationChannelPayload {
        /// The channel as it is now.
        channel: ChannelObj,
    }
}

payload! {
    /// What mutation deleteNotificationChannel answers.
    DeleteNotificationChannelPayload {
        /// The channel as it was.
        channel: ChannelObj,
    }
}

input! {
    /// Deletes a notification channel the routing policy no longer names (mutation
    /// deleteNotificationChannel).
    DeleteNotificationChannelInput {
        /// The channel's ID.
        id: ID,
    }
}

input! {
    /// Replaces an organization's routing policy (mutation setAlertPolicy).
    SetAlertPolicyInput {
        /// The organization; may be left out when you administer exactly one.
        organization_id: Option<ID>,
        /// The policy.
        policy: AlertPolicy,
    }
}

payload! {
    /// What mutation setAlertPolicy answers.
    SetAlertPolicyPayload {
        /// The policy as it is now.
        policy: AlertPolicy,
    }
}

input! {
    /// Creates a silence (mutation createSilence).
    CreateSilenceInput {
        /// The organization; may be left out when you belong to exactly one.
        organization_id: Option<ID>,
        /// Labels an alert must match (all of them), at least one.
        matchers: Vec<LabelMatcher>,
        /// When it starts; now when left out.
        starts_at: Option<DateTime<Utc>>,
        /// When it ends, in the future and at most a year after it starts.
        ends_at: DateTime<Utc>,
        /// Why (1 to 1024 bytes).
        comment: String,
    }
}

input! {
    /// Changes a silence that has not ended (mutation updateSilence).
    UpdateSilenceInput {
        /// The silence's ID.
        id: ID,
        /// The matchers, replacing the stored ones.
        matchers: Vec<LabelMatcher>,
        /// When it starts.
        starts_at: DateTime<Utc>,
        /// When it ends, in the future.
        ends_at: DateTime<Utc>,
        /// Why.
        comment: String,
    }
}

input! {
    /// Ends a silence now (mutation expireSilence).
    ExpireSilenceInput {
        /// The silence's ID.
        id: ID,
    }
}

payload! {
    /// What mutation createSilence answers.
    CreateSilencePayload {
        /// The silence as it is now.
        silence: SilenceObj,
    }
}

payload! {
    /// What mutation updateSilence answers.
    UpdateSilencePayload {
        /// The silence as it is now.
        silence: SilenceObj,
    }
}

payload! {
    /// What mutation expireSilence answers.
    ExpireSilencePayload {
        /// The silence as it is now.
        silence: SilenceObj,
    }
}

input! {
    /// Sends a test notification to a channel (mutation testNotificationChannel).
    TestNotificationChannelInput {
        /// The channel's ID.
        id: ID,
    }
}

payload! {
    /// What mutation testNotificationChannel answers: how the send went.
    TestNotificationChannelPayload {
        /// The attempt: `ok`, the receiver's `code`, the `error`.
        delivery: AlertDelivery,
    }
}

input! {
    /// Sends an alert again to the channels whose delivery of it gave up (mutation
    /// retryAlertDeliveries).
    RetryAlertDeliveriesInput {
        /// The alert's ID.
        id: ID,
    }
}

payload! {
    /// What mutation retryAlertDeliveries answers.
    RetryAlertDeliveriesPayload {
        /// The new attempts.
        deliveries: Vec<AlertDelivery>,
    }
}

input! {
    /// Acknowledges a firing alert (mutation acknowledgeAlert): someone is on it.
    AcknowledgeAlertInput {
        /// The alert's ID.
        id: ID,
        /// What you are doing about it. Defaults to empty.
        comment: Option<String>,
    }
}

payload! {
    /// What mutation acknowledgeAlert answers.
    AcknowledgeAlertPayload {
        /// The alert, acknowledged.
        alert: AlertObj,
    }
}

#[derive(Default)]
pub struct AlertMutation;

#[Object]
impl AlertMutation {
    /// Creates an alert rule (admin). A field that breaks a rule answers `VALIDATION`
    /// naming it (`rule.condition.threshold`).
    async fn create_alert_rule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The rule and its organization.")] input: CreateAlertRuleInput,
    ) -> Result<CreateAlertRulePayload> {
        let caller = caller(ctx)?;
        let c = console(ctx);
        let org = c.organization_for(
            &caller.principal,
            input.organization_id.map(|o| o.0),
            Role::Admin,
            "creating an alert rule",
        )?;
        let spec = input.rule.into_domain()?;
        let view = c.create_alert_rule(&caller, &org, spec).await?;
        Ok(CreateAlertRulePayload {
            alert_rule: AlertRuleObj(view),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Replaces an alert rule, or turns it on or off (admin).
    async fn update_alert_rule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The rule and what changes.")] input: UpdateAlertRuleInput,
    ) -> Result<UpdateAlertRulePayload> {
        let caller = caller(ctx)?;
        let spec = input.rule.map(AlertRuleSpecInput::into_domain).transpose()?;
        let view = console(ctx)
            .update_alert_rule(&caller, &input.id, spec, input.enabled)
            .await?;
        Ok(UpdateAlertRulePayload {
            alert_rule: AlertRuleObj(view),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Deletes an alert rule (admin).
    async fn delete_alert_rule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The rule.")] input: DeleteAlertRuleInput,
    ) -> Result<DeleteAlertRulePayload> {
        let caller = caller(ctx)?;
        let view = console(ctx).delete_alert_rule(&caller, &input.id).await?;
        Ok(DeleteAlertRulePayload {
            alert_rule: AlertRuleObj(view),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Creates a notification channel (admin). Its secrets are encrypted and never shown.
    async fn create_notification_channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The channel and its organization.")] input: CreateNotificationChannelInput,
    ) -> Result<CreateNotificationChannelPayload> {
        let caller = caller(ctx)?;
        let c = console(ctx);
        let org = c.organization_for(
            &caller.principal,
            input.organization_id.map(|o| o.0),
            Role::Admin,
            "creating a notification channel",
        )?;
        let (view, signing_secret) = c.create_channel(&caller, &org, input.channel.into_app()?).await?;
        Ok(CreateNotificationChannelPayload {
            channel: ChannelObj(view),
            signing_secret,
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Replaces a notification channel's settings (admin); secrets left out are kept.
    async fn update_notification_channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The channel and its new settings.")] input: UpdateNotificationChannelInput,
    ) -> Result<UpdateNotificationChannelPayload> {
        let caller = caller(ctx)?;
        let view = console(ctx)
            .update_channel(&caller, &input.id, input.channel.into_app()?)
            .await?;
        Ok(UpdateNotificationChannelPayload {
            channel: ChannelObj(view),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Deletes a notification channel (admin); `CONFLICT` while the routing policy names it.
    async fn delete_notification_channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The channel.")] input: DeleteNotificationChannelInput,
    ) -> Result<DeleteNotificationChannelPayload> {
        let caller = caller(ctx)?;
        let view = console(ctx).delete_channel(&caller, &input.id).await?;
        Ok(DeleteNotificationChannelPayload {
            channel: ChannelObj(view),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Replaces an organization's routing policy (admin). Channels must be the
    /// organization's (`VALIDATION` naming the route otherwise).
    async fn set_alert_policy(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The policy and its organization.")] input: SetAlertPolicyInput,
    ) -> Result<SetAlertPolicyPayload> {
        let caller = caller(ctx)?;
        let c = console(ctx);
        let org = c.organization_for(
            &caller.principal,
            input.organization_id.map(|o| o.0),
            Role::Admin,
            "setting the alert policy",
        )?;
        let spec = c.set_alert_policy(&caller, &org, input.policy.into_domain()?).await?;
        Ok(SetAlertPolicyPayload {
            policy: AlertPolicy::of(&spec),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Creates a silence (operator).
    async fn create_silence(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The silence.")] input: CreateSilenceInput,
    ) -> Result<CreateSilencePayload> {
        let caller = caller(ctx)?;
        let c = console(ctx);
        let org = c.organization_for(
            &caller.principal,
            input.organization_id.map(|o| o.0),
            Role::Operator,
            "creating a silence",
        )?;
        let spec = SilenceSpec {
            matchers: input.matchers.into_iter().map(Into::into).collect(),
            starts_at: input.starts_at.unwrap_or_else(Utc::now),
            ends_at: input.ends_at,
            comment: input.comment,
        };
        let view = c.create_silence(&caller, &org, spec).await?;
        Ok(CreateSilencePayload {
            silence: SilenceObj(view),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Changes a silence that has not ended (operator).
    async fn update_silence(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The silence and its new settings.")] input: UpdateSilenceInput,
    ) -> Result<UpdateSilencePayload> {
        let caller = caller(ctx)?;
        let spec = SilenceSpec {
            matchers: input.matchers.into_iter().map(Into::into).collect(),
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            comment: input.comment,
        };
        let view = console(ctx).update_silence(&caller, &input.id, spec).await?;
        Ok(UpdateSilencePayload {
            silence: SilenceObj(view),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Ends a silence now (operator); ending an ended one changes nothing.
    async fn expire_silence(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The silence.")] input: ExpireSilenceInput,
    ) -> Result<ExpireSilencePayload> {
        let caller = caller(ctx)?;
        let view = console(ctx).expire_silence(&caller, &input.id).await?;
        Ok(ExpireSilencePayload {
            silence: SilenceObj(view),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Sends a test notification to a channel, once, now (admin), and answers how it went:
    /// a receiver that fails answers `ok: false` with its code and error.
    async fn test_notification_channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The channel.")] input: TestNotificationChannelInput,
    ) -> Result<TestNotificationChannelPayload> {
        let caller = caller(ctx)?;
        let attempt = console(ctx).test_channel(&caller, &input.id).await?;
        Ok(TestNotificationChannelPayload {
            delivery: AlertDelivery(attempt),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Sends an alert again to every channel whose delivery of it gave up (operator);
    /// `CONFLICT` when none did.
    async fn retry_alert_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The alert.")] input: RetryAlertDeliveriesInput,
    ) -> Result<RetryAlertDeliveriesPayload> {
        let caller = caller(ctx)?;
        let log = console(ctx).retry_alert_deliveries(&caller, &input.id).await?;
        Ok(RetryAlertDeliveriesPayload {
            deliveries: log.into_iter().map(AlertDelivery).collect(),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Acknowledges a firing alert (operator); `CONFLICT` for one that is not firing.
    async fn acknowledge_alert(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The alert.")] input: AcknowledgeAlertInput,
    ) -> Result<AcknowledgeAlertPayload> {
        let caller = caller(ctx)?;
        let view = console(ctx)
            .acknowledge_alert(&caller, &input.id, input.comment.unwrap_or_default())
            .await?;
        Ok(AcknowledgeAlertPayload {
            alert: AlertObj(view),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }
}

/// A change to an alert.
#[derive(SimpleObject)]
pub struct AlertChange {
    /// The alert as it is now.
    alert: AlertObj,
    /// Sequence, in the console's event stream, of the event behind the change.
    sequence: u64,
}

#[derive(Default)]
pub struct AlertSubscription;

#[Subscription]
impl AlertSubscription {
    /// Every change to an alert of the caller's organizations (pending, firing, resolved,
    /// acknowledged, silenced), as the alerts view applies it. Ends with `UNAUTHENTICATED`
    /// when the caller's credential does.
    async fn alert_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only alerts of this organization.")] organization_id: Option<ID>,
        #[graphql(desc = "Only alerts in these states; every state when left out.")] state: Option<Vec<AlertState>>,
    ) -> Result<impl Stream<Item = async_graphql::Result<AlertChange>> + use<>> {
        let c = console(ctx).clone();
        let p = caller(ctx)?.principal;
        let only = organization_id.map(|o| o.0);
        let states: Option<Vec<jsc_domain::alerts::AlertStatus>> =
            state.map(|v| v.into_iter().map(Into::into).collect());
        let changes = futures::StreamExt::filter_map(c.alert_changes(), move |change| {
            let out = change.value.and_then(|v| {
                let org = v.view.state.organization()?.to_string();
                let wanted = only.as_ref().is_none_or(|o| o == &org)
                    && c.org_role(&p, &org).is_some()
                    && states.as_ref().is_none_or(|s| s.contains(&v.view.state.status));
                wanted.then_some(AlertChange {
                    sequence: v.last_sequence,
                    alert: AlertObj(std::sync::Arc::unwrap_or_clone(v).view),
                })
            });
            futures::future::ready(out)
        });
        guarded(ctx, changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_durations_are_whole_seconds() {
        assert_eq!(secs(Some(Duration(90 * NS)), "for").unwrap(), 90);
        assert_eq!(secs(None, "for").unwrap(), 0);
        for ns in [NS / 2, NS + 1] {
            let e = secs(Some(Duration(ns)), "for").unwrap_err();
            assert!(e.message.starts_with("for: must be whole seconds"), "{}", e.message);
        }
    }
}
