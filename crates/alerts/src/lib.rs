//! The alert evaluator: every enabled rule is checked against each whole sample of a
//! cluster as it arrives from the metrics stream, and the evaluator says which alerts move
//! (pending, firing, cleared, resolved), with the value that moved them.
//!
//! Pure: it knows time only from the samples' own timestamps (so a test drives `for`,
//! `keep_firing_for` and windows with samples, not clocks), and reads what else it needs
//! (metadata thresholds, dead-letter counts) through [`Facts`]. The application runs one
//! evaluator at a time (a lease) and turns its transitions into commands on the `Alert`
//! aggregate, which refuses any that would repeat one already made.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use jsc_domain::alerts::template;
use jsc_domain::alerts::{AlertCommand, AlertOrigin, AlertRule, AlertStatus, Condition, RuleSpec, Target, alert_id};
use jsc_metrics::{ConsumerSample, Snapshot, StreamSample};

/// A cluster as rules see it: its id, name, tags and organization.
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub organization: String,
}

/// What the evaluator reads besides the sample.
pub trait Facts {
    /// A stream's metadata (`io.nats.monitor.*`), if known.
    fn stream_metadata(&self, cluster_id: &str, stream: &str) -> Option<BTreeMap<String, String>>;
    /// A consumer's metadata, if known.
    fn consumer_metadata(&self, cluster_id: &str, stream: &str, consumer: &str) -> Option<BTreeMap<String, String>>;
    /// Messages a consumer gave up on (max deliveries, terminated) since `since_ms`.
    fn dead_letters(&self, cluster_id: &str, stream: &str, consumer: &str, since_ms: i64) -> u64;
}

/// An alert to move, and the command that moves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub alert_id: String,
    pub command: AlertCommand,
}

/// What the evaluator remembers of one alert between samples.
#[derive(Debug, Clone)]
struct Track {
    /// The alert's id (the aggregate's), made once when the alert starts.
    id: String,
    status: AlertStatus,
    rule_id: String,
    cluster_id: String,
    stream: Option<String>,
    consumer: Option<String>,
    /// When the condition started to hold (pending since).
    holding_since: i64,
    /// When it last held (for `keep_firing_for`).
    last_held: i64,
}

/// One check of one rule on one resource (names borrowed from the sample: most checks
/// change nothing, and cost no allocation).
struct Observation<'a> {
    stream: Option<&'a str>,
    consumer: Option<&'a str>,
    value: f64,
    threshold: Option<f64>,
    holds: bool,
}

/// Longest window kept per stream for rate rules (the domain caps windows at 30 days; a
/// day of 10 s samples is 8,640 points per stream).
const MAX_HISTORY_MS: i64 = 24 * 3_600_000;

/// Alert states, the evaluator's memory of stalls and rates, across samples.
#[derive(Default)]
pub struct Evaluator {
    /// Pending and firing alerts, by a fast key of (rule, cluster, stream, consumer); the
    /// track holds the names, so a key collision is seen and never mixes two alerts.
    tracks: KeyMap<Track>,
    /// (cluster, stream) → (sample time, messages per second), oldest first; kept only for
    /// streams a windowed rule watches.
    rates: HashMap<(String, String), VecDeque<(i64, f64)>>,
    /// cluster → (stream, consumer) by a fast key → (ack floor, since when it has not moved).
    floors: HashMap<String, KeyMap<(u64, i64)>>,
}

/// FNV-1a: a fast, stable hash of a name (keys of the evaluator's own maps, never stored).
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The evaluator's keys are hashes already: its maps use them as they are.
#[derive(Default, Clone, Copy)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type KeyMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<Prehashed>>;
type KeySet = HashSet<u64, std::hash::BuildHasherDefault<Prehashed>>;

fn mix(h: u64, part: u64) -> u64 {
    (h ^ part).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
}

/// The key of a resource under one rule on one cluster (`base` from [`base_key`]).
fn key(base: u64, stream: Option<&str>, consumer: Option<&str>) -> u64 {
    mix(mix(base, stream.map_or(1, fnv)), consumer.map_or(2, fnv))
}

fn base_key(rule_id: &str, cluster_id: &str) -> u64 {
    mix(fnv(rule_id), fnv(cluster_id))
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn metadata_threshold(meta: Option<BTreeMap<String, String>>, key: &str) -> Option<f64> {
    meta?
        .get(key)?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
}

fn storage_percent(s: &StreamSample) -> Option<f64> {
    let p = |used: u64, limit: i64| (limit > 0).then(|| used as f64 * 100.0 / limit as f64);
    match (p(s.bytes, s.max_bytes), p(s.messages, s.max_msgs)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

impl Evaluator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Picks up where the alerts stood (after a restart, or on taking over from another
    /// replica): `alerts` as (id, alert) from the alerts view. A pending alert keeps its
    /// `since`, so `for` is not started again; a firing one counts as holding now.
    pub fn resume<'a>(
        &mut self,
        alerts: impl IntoIterator<Item = (&'a str, &'a jsc_domain::alerts::Alert)>,
        now_ms: i64,
    ) {
        for (id, a) in alerts {
            let Some(o) = &a.origin else { continue };
            if !matches!(a.status, AlertStatus::Pending | AlertStatus::Firing) {
                continue;
            }
            let since = a.since.map_or(now_ms, |s| s.timestamp_millis());
            let k = key(
                base_key(&o.rule_id, &o.cluster_id),
                o.stream.as_deref(),
                o.consumer.as_deref(),
            );
            self.tracks.insert(
                k,
                Track {
                    id: id.to_string(),
                    status: a.status,
                    rule_id: o.rule_id.clone(),
                    cluster_id: o.cluster_id.clone(),
                    stream: o.stream.clone(),
                    consumer: o.consumer.clone(),
                    holding_since: since,
                    last_held: now_ms,
                },
            );
        }
    }

    /// How many alerts are pending or firing.
    pub fn active(&self) -> usize {
        self.tracks.len()
    }

    /// Checks `rules` (those of the cluster's organization) against one whole sample of a
    /// cluster; answers the transitions to make, in order.
    pub fn evaluate(
        &mut self,
        snapshot: &Snapshot,
        cluster: &ClusterInfo,
        rules: &[&AlertRule],
        facts: &dyn Facts,
    ) -> Vec<Transition> {
        let now = snapshot.cluster.at_ms;
        self.remember_rates(snapshot, cluster, rules);
        self.remember_floors(snapshot, cluster);
        let mut out = Vec::new();
        let mut seen = KeySet::default();
        let mut buf = Vec::new();
        for rule in rules {
            let Some(spec) = rule.spec.as_ref().filter(|s| s.enabled && !rule.deleted) else {
                continue;
            };
            if rule.organization != cluster.organization
                || !spec.scope.has_cluster(&cluster.id, &cluster.name, &cluster.tags)
            {
                continue;
            }
            let base = base_key(&rule.id, &cluster.id);
            self.observe(&mut buf, snapshot, cluster, spec, facts);
            for obs in buf.drain(..) {
                let k = key(base, obs.stream, obs.consumer);
                if let Some(t) = self.step(k, rule, spec, cluster, &obs, now) {
                    out.push(t);
                }
                if self.tracks.contains_key(&k) {
                    seen.insert(k);
                }
            }
        }
        // Alerts of this cluster that nothing observed any more (a rule deleted, disabled or
        // narrowed; a stream or consumer gone): resolved.
        out.extend(self.end_where(now, |k, t| t.cluster_id == cluster.id && !seen.contains(&k)));
        out
    }

    /// Resolves every alert of rules not in `rule_ids` (deleted or disabled rules), on every
    /// cluster, at `now_ms`.
    pub fn retire(&mut self, rule_ids: &HashSet<String>, now_ms: i64) -> Vec<Transition> {
        self.end_where(now_ms, |_, t| !rule_ids.contains(&t.rule_id))
    }

    /// Ends the alerts `which` picks: a pending one clears, a firing one resolves.
    fn end_where(&mut self, now_ms: i64, which: impl Fn(u64, &Track) -> bool) -> Vec<Transition> {
        let gone: Vec<u64> = self
            .tracks
            .iter()
            .filter(|(k, t)| which(**k, t))
            .map(|(k, _)| *k)
            .collect();
        gone.into_iter()
            .map(|k| {
                let t = self.tracks.remove(&k).expect("listed");
                let at = time(now_ms);
                Transition {
                    alert_id: t.id,
                    command: match t.status {
                        AlertStatus::Pending => AlertCommand::Clear { value: None, at },
                        _ => AlertCommand::Resolve { value: None, at },
                    },
                }
            })
            .collect()
    }

    /// The state machine of one alert: Normal → Pending (→ Firing after `for`) → Resolved
    /// (after `keep_firing_for` of not holding).
    fn step(
        &mut self,
        k: u64,
        rule: &AlertRule,
        spec: &RuleSpec,
        cluster: &ClusterInfo,
        obs: &Observation,
        now: i64,
    ) -> Option<Transition> {
        let for_ms = spec.for_s as i64 * 1000;
        let keep_ms = spec.keep_firing_for_s as i64 * 1000;
        let origin = || Box::new(origin(rule, spec, cluster, obs));
        let same = |t: &Track| {
            t.rule_id == rule.id
                && t.cluster_id == cluster.id
                && t.stream.as_deref() == obs.stream
                && t.consumer.as_deref() == obs.consumer
        };
        if self.tracks.get(&k).is_some_and(|t| !same(t)) {
            // Two resources with one key (a 64-bit collision): the first keeps it.
            return None;
        }
        let (id, command) = match (self.tracks.get_mut(&k), obs.holds) {
            (None, true) => {
                let status = if for_ms == 0 {
                    AlertStatus::Firing
                } else {
                    AlertStatus::Pending
                };
                let id = alert_id(&rule.id, &cluster.id, obs.stream, obs.consumer);
                self.tracks.insert(
                    k,
                    Track {
                        id: id.clone(),
                        status,
                        rule_id: rule.id.clone(),
                        cluster_id: cluster.id.clone(),
                        stream: obs.stream.map(str::to_string),
                        consumer: obs.consumer.map(str::to_string),
                        holding_since: now,
                        last_held: now,
                    },
                );
                let command = if status == AlertStatus::Firing {
                    AlertCommand::Fire {
                        origin: origin(),
                        value: obs.value,
                        at: time(now),
                    }
                } else {
                    AlertCommand::Pend {
                        origin: origin(),
                        value: obs.value,
                        at: time(now),
                    }
                };
                (id, command)
            }
            (None, false) => return None,
            (Some(t), true) => {
                t.last_held = now;
                if t.status == AlertStatus::Pending && now - t.holding_since >= for_ms {
                    t.status = AlertStatus::Firing;
                    let command = AlertCommand::Fire {
                        origin: origin(),
                        value: obs.value,
                        at: time(now),
                    };
                    (t.id.clone(), command)
                } else {
                    return None;
                }
            }
            (Some(t), false) => match t.status {
                AlertStatus::Pending => {
                    let t = self.tracks.remove(&k).expect("present");
                    let command = AlertCommand::Clear {
                        value: Some(obs.value),
                        at: time(now),
                    };
                    (t.id, command)
                }
                _ if now - t.last_held >= keep_ms => {
                    let t = self.tracks.remove(&k).expect("present");
                    let command = AlertCommand::Resolve {
                        value: Some(obs.value),
                        at: time(now),
                    };
                    (t.id, command)
                }
                _ => return None,
            },
        };
        Some(Transition { alert_id: id, command })
    }

    /// Every check of `spec` on this sample.
    fn observe<'a>(
        &self,
        out: &mut Vec<Observation<'a>>,
        snapshot: &'a Snapshot,
        cluster: &ClusterInfo,
        spec: &RuleSpec,
        facts: &dyn Facts,
    ) {
        let c = &snapshot.cluster;
        let now = c.at_ms;
        let above = |value: f64, threshold: Option<f64>| Observation {
            stream: None,
            consumer: None,
            value,
            threshold,
            holds: threshold.is_some_and(|t| value > t),
        };
        match spec.condition.target() {
            Target::Cluster => {
                let obs = match &spec.condition {
                    Condition::ClusterUnreachable => Some(Observation {
                        holds: !c.up,
                        ..above(if c.up { 0.0 } else { 1.0 }, None)
                    }),
                    // While the cluster is down, its JetStream is not what is wrong.
                    Condition::JetstreamUnhealthy => c.up.then(|| Observation {
                        holds: !c.jetstream,
                        ..above(if c.jetstream { 0.0 } else { 1.0 }, None)
                    }),
                    Condition::AccountStorage { percent } => c.account.as_ref().and_then(|a| {
                        let p = |used: u64, limit: i64| (limit > 0).then(|| used as f64 * 100.0 / limit as f64);
                        let worst = [
                            p(a.storage, a.max_storage),
                            p(a.memory, a.max_memory),
                            p(a.streams, a.max_streams),
                            p(a.consumers, a.max_consumers),
                        ]
                        .into_iter()
                        .flatten()
                        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
                        worst.map(|v| above(v, Some(*percent)))
                    }),
                    _ => None,
                };
                out.extend(obs);
            }
            Target::Stream | Target::Consumer => {
                // A sample of a cluster that did not answer says nothing of its streams.
                if !c.up || !c.jetstream {
                    return;
                }
                // A scope that names its streams outright is looked up, not matched
                // against every stream of the cluster.
                let mut named: Vec<(&'a String, &'a StreamSample)> = Vec::new();
                if spec.scope.streams_are_literal() {
                    named.extend(
                        spec.scope
                            .streams
                            .iter()
                            .filter_map(|g| snapshot.streams.get_key_value(g.0.as_str())),
                    );
                } else {
                    named.extend(snapshot.streams.iter().filter(|(name, _)| spec.scope.has_stream(name)));
                }
                for (name, s) in named {
                    if spec.condition.target() == Target::Stream {
                        if let Some(mut o) = self.stream_obs(&spec.condition, cluster, s, now) {
                            o.stream = Some(name.as_str());
                            out.push(o);
                        }
                        continue;
                    }
                    for con in &s.consumers {
                        if !spec.scope.has_consumer(&con.name) {
                            continue;
                        }
                        if let Some(mut o) = self.consumer_obs(&spec.condition, cluster, name, con, now, facts) {
                            o.stream = Some(name.as_str());
                            o.consumer = Some(con.name.as_str());
                            out.push(o);
                        }
                    }
                }
            }
        }
    }

    fn stream_obs<'a>(
        &self,
        condition: &Condition,
        cluster: &ClusterInfo,
        s: &StreamSample,
        now: i64,
    ) -> Option<Observation<'a>> {
        let obs = |value: f64, threshold: Option<f64>, holds: bool| Observation {
            stream: None,
            consumer: None,
            value,
            threshold,
            holds,
        };
        let rate = s.message_rate;
        let history = || {
            self.rates
                .get(&(cluster.id.clone(), s.name.clone()))
                .map(|h| h.iter().copied().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        match condition {
            Condition::MessageRateAbove { threshold } => rate.map(|r| obs(r, Some(*threshold), r > *threshold)),
            Condition::MessageRateBelow { threshold } => rate.map(|r| obs(r, Some(*threshold), r < *threshold)),
            Condition::MessageRateZero { window_s } => {
                let r = rate?;
                let from = now - *window_s as i64 * 1000;
                let had = history().iter().any(|(at, v)| *at >= from && *at < now && *v > 0.0);
                Some(obs(r, Some(0.0), r == 0.0 && had))
            }
            Condition::MessageRateAnomaly { z, window_s } => {
                let r = rate?;
                let from = now - *window_s as i64 * 1000;
                let before: Vec<f64> = history()
                    .iter()
                    .filter(|(at, _)| *at >= from && *at < now)
                    .map(|(_, v)| *v)
                    .collect();
                // Too few points to know what is normal.
                if before.len() < 5 {
                    return None;
                }
                let (mean, std) = mean_std(&before);
                let score = if std > 0.0 {
                    (r - mean).abs() / std
                } else if (r - mean).abs() > f64::EPSILON {
                    f64::INFINITY
                } else {
                    0.0
                };
                Some(obs(r, Some(*z), score > *z))
            }
            Condition::StreamStorage { percent } => storage_percent(s).map(|p| obs(p, Some(*percent), p > *percent)),
            _ => None,
        }
    }

    fn consumer_obs<'a>(
        &self,
        condition: &Condition,
        cluster: &ClusterInfo,
        stream: &str,
        c: &ConsumerSample,
        now: i64,
        facts: &dyn Facts,
    ) -> Option<Observation<'a>> {
        let threshold = |given: Option<f64>| {
            given.or_else(|| {
                condition
                    .metadata_key()
                    .and_then(|k| metadata_threshold(facts.consumer_metadata(&cluster.id, stream, &c.name), k))
            })
        };
        let obs = |value: f64, threshold: Option<f64>| Observation {
            stream: None,
            consumer: None,
            value,
            threshold,
            holds: threshold.is_some_and(|t| value > t),
        };
        match condition {
            Condition::ConsumerLag { threshold: t } => {
                let t = threshold(*t)?;
                Some(obs(c.pending as f64, Some(t)))
            }
            Condition::RedeliveryRate { threshold: t } => {
                let t = threshold(*t)?;
                Some(obs(c.redelivery_rate?, Some(t)))
            }
            Condition::ConsumerStalled { stalled_for_s } => {
                let since = self
                    .floors
                    .get(&cluster.id)
                    .and_then(|f| f.get(&key(0, Some(stream), Some(&c.name))))
                    .map_or(now, |(_, since)| *since);
                let still = ((now - since).max(0) as f64) / 1000.0;
                Some(Observation {
                    holds: c.pending > 0 && still >= *stalled_for_s as f64,
                    ..obs(still, Some(*stalled_for_s as f64))
                })
            }
            Condition::DeadLetters { threshold: t, window_s } => {
                let n = facts.dead_letters(&cluster.id, stream, &c.name, now - *window_s as i64 * 1000);
                Some(obs(n as f64, Some(*t)))
            }
            _ => None,
        }
    }

    /// Keeps each stream's message rate for as long as the longest windowed rule that
    /// watches it needs.
    fn remember_rates(&mut self, snapshot: &Snapshot, cluster: &ClusterInfo, rules: &[&AlertRule]) {
        let now = snapshot.cluster.at_ms;
        let windowed: Vec<(&RuleSpec, i64)> = rules
            .iter()
            .filter_map(|r| r.spec.as_ref().filter(|s| s.enabled && !r.deleted))
            .filter(|s| s.scope.has_cluster(&cluster.id, &cluster.name, &cluster.tags))
            .filter_map(|s| match s.condition {
                Condition::MessageRateZero { window_s } | Condition::MessageRateAnomaly { window_s, .. } => {
                    Some((s, (window_s as i64 * 1000).min(MAX_HISTORY_MS)))
                }
                _ => None,
            })
            .collect();
        for (name, s) in &snapshot.streams {
            let keep = windowed
                .iter()
                .filter(|(spec, _)| spec.scope.has_stream(name))
                .map(|(_, w)| *w)
                .max();
            let key = (cluster.id.clone(), name.clone());
            let (Some(keep), Some(rate)) = (keep, s.message_rate) else {
                self.rates.remove(&key);
                continue;
            };
            let h = self.rates.entry(key).or_default();
            h.push_back((now, rate));
            while h.front().is_some_and(|(at, _)| *at < now - keep) {
                h.pop_front();
            }
        }
        self.rates
            .retain(|(c, s), _| c != &cluster.id || snapshot.streams.contains_key(s));
    }

    /// Keeps when each consumer's ack floor last moved.
    fn remember_floors(&mut self, snapshot: &Snapshot, cluster: &ClusterInfo) {
        let now = snapshot.cluster.at_ms;
        if !snapshot.cluster.up || !snapshot.cluster.jetstream {
            return;
        }
        // Only the consumers in this sample are kept: a gone consumer is forgotten.
        let old = self.floors.remove(&cluster.id).unwrap_or_default();
        let mut now_floors = KeyMap::with_capacity_and_hasher(old.len(), Default::default());
        for (stream, s) in &snapshot.streams {
            for c in &s.consumers {
                let k = key(0, Some(stream), Some(&c.name));
                let floor = c.ack_floor_stream_seq;
                let entry = match old.get(&k) {
                    Some(f) if f.0 == floor && c.pending > 0 => *f,
                    _ => (floor, now),
                };
                now_floors.insert(k, entry);
            }
        }
        self.floors.insert(cluster.id.clone(), now_floors);
    }
}

/// The alert as the rule describes it on this resource: labels (the rule's and the
/// console's) and annotations rendered.
fn origin(rule: &AlertRule, spec: &RuleSpec, cluster: &ClusterInfo, obs: &Observation) -> AlertOrigin {
    let mut labels = spec.labels.clone();
    labels.insert("alertname".into(), spec.name.clone());
    labels.insert("severity".into(), spec.severity.as_str().into());
    labels.insert("cluster".into(), cluster.name.clone());
    labels.insert("rule_id".into(), rule.id.clone());
    if let Some(s) = obs.stream {
        labels.insert("stream".into(), s.to_string());
    }
    if let Some(c) = obs.consumer {
        labels.insert("consumer".into(), c.to_string());
    }
    let number = |v: f64| {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v:.2}")
        }
    };
    let mut vars = BTreeMap::new();
    vars.insert("rule", spec.name.clone());
    vars.insert("severity", spec.severity.as_str().to_string());
    vars.insert("cluster", cluster.name.clone());
    vars.insert("stream", obs.stream.unwrap_or_default().to_string());
    vars.insert("consumer", obs.consumer.unwrap_or_default().to_string());
    vars.insert("value", number(obs.value));
    vars.insert("threshold", obs.threshold.map(number).unwrap_or_default());
    vars.insert("state", if obs.holds { "firing" } else { "normal" }.to_string());
    let mut annotations: BTreeMap<String, String> = spec
        .annotations
        .iter()
        .map(|(k, t)| (k.clone(), template::render(t, &vars, &labels)))
        .collect();
    annotations.entry("summary".into()).or_insert_with(|| {
        let what = match (obs.stream, obs.consumer) {
            (Some(s), Some(c)) => format!("{s} > {c} on {}", cluster.name),
            (Some(s), None) => format!("{s} on {}", cluster.name),
            _ => cluster.name.clone(),
        };
        format!("{}: {what} ({} {})", spec.name, spec.condition.kind(), vars["value"])
    });
    AlertOrigin {
        organization: rule.organization.clone(),
        rule_id: rule.id.clone(),
        rule_name: spec.name.clone(),
        severity: spec.severity,
        cluster_id: cluster.id.clone(),
        stream: obs.stream.map(str::to_string),
        consumer: obs.consumer.map(str::to_string),
        labels,
        annotations,
        threshold: obs.threshold,
    }
}

#[cfg(test)]
mod tests;
