//! The evaluator driven with samples: time is the samples' own.

use std::collections::{BTreeMap, HashSet};

use jsc_domain::alerts::*;
use jsc_metrics::{ClusterSample, ConsumerSample, Snapshot, StreamSample};

use super::*;

struct NoFacts {
    metadata: BTreeMap<String, String>,
    dead: u64,
}

impl Facts for NoFacts {
    fn stream_metadata(&self, _: &str, _: &str) -> Option<BTreeMap<String, String>> {
        None
    }
    fn consumer_metadata(&self, _: &str, _: &str, _: &str) -> Option<BTreeMap<String, String>> {
        Some(self.metadata.clone())
    }
    fn dead_letters(&self, _: &str, _: &str, _: &str, _: i64) -> u64 {
        self.dead
    }
}

const FACTS: NoFacts = NoFacts {
    metadata: BTreeMap::new(),
    dead: 0,
};

fn cluster() -> ClusterInfo {
    ClusterInfo {
        id: "c1".into(),
        name: "prod".into(),
        tags: vec!["eu".into()],
        organization: "acme".into(),
    }
}

fn rule(condition: Condition, for_s: u64, keep_s: u64) -> AlertRule {
    AlertRule {
        id: "r1".into(),
        organization: "acme".into(),
        spec: Some(RuleSpec {
            name: "lagging".into(),
            description: String::new(),
            condition,
            scope: Scope {
                streams: vec![Glob("ORDERS*".into())],
                ..Default::default()
            },
            severity: Severity::Critical,
            for_s,
            keep_firing_for_s: keep_s,
            labels: BTreeMap::from([("team".into(), "payments".into())]),
            annotations: BTreeMap::from([("summary".into(), "{{ consumer }} has {{ value }} pending".into())]),
            enabled: true,
        }),
        deleted: false,
    }
}

/// A sample at `t` seconds: stream ORDERS with consumer billing at `pending`.
fn sample(t: i64, pending: u64, ack_floor: u64, rate: Option<f64>) -> Snapshot {
    let consumer = ConsumerSample {
        name: "billing".into(),
        pending,
        ack_floor_stream_seq: ack_floor,
        ..Default::default()
    };
    let stream = StreamSample {
        name: "ORDERS".into(),
        at_ms: t * 1000,
        messages: 100,
        bytes: 900,
        max_bytes: 1000,
        max_msgs: -1,
        message_rate: rate,
        consumers: vec![consumer],
        ..Default::default()
    };
    Snapshot {
        cluster: ClusterSample {
            cluster_id: "c1".into(),
            at_ms: t * 1000,
            up: true,
            jetstream: true,
            ..Default::default()
        },
        streams: BTreeMap::from([("ORDERS".to_string(), stream)]),
    }
}

fn kinds(ts: &[Transition]) -> Vec<&'static str> {
    ts.iter()
        .map(|t| match t.command {
            AlertCommand::Pend { .. } => "pend",
            AlertCommand::Fire { .. } => "fire",
            AlertCommand::Clear { .. } => "clear",
            AlertCommand::Resolve { .. } => "resolve",
            _ => "other",
        })
        .collect()
}

#[test]
fn lag_pends_fires_after_for_and_resolves() {
    let r = rule(Condition::ConsumerLag { threshold: Some(100.0) }, 30, 0);
    let mut e = Evaluator::new();
    let c = cluster();
    assert!(e.evaluate(&sample(0, 50, 0, None), &c, &[&r], &FACTS).is_empty());
    let t = e.evaluate(&sample(10, 500, 0, None), &c, &[&r], &FACTS);
    assert_eq!(kinds(&t), ["pend"]);
    let AlertCommand::Pend { origin, value, .. } = &t[0].command else {
        unreachable!()
    };
    assert_eq!(*value, 500.0);
    assert_eq!(origin.threshold, Some(100.0));
    assert_eq!(origin.labels["alertname"], "lagging");
    assert_eq!(origin.labels["consumer"], "billing");
    assert_eq!(origin.labels["team"], "payments");
    assert_eq!(origin.annotations["summary"], "billing has 500 pending");
    assert_eq!(t[0].alert_id, alert_id("r1", "c1", Some("ORDERS"), Some("billing")));
    // 20 s into `for` (30 s): still pending.
    assert!(e.evaluate(&sample(30, 600, 0, None), &c, &[&r], &FACTS).is_empty());
    assert_eq!(
        kinds(&e.evaluate(&sample(40, 700, 0, None), &c, &[&r], &FACTS)),
        ["fire"]
    );
    assert!(
        e.evaluate(&sample(50, 800, 0, None), &c, &[&r], &FACTS).is_empty(),
        "fires once"
    );
    assert_eq!(
        kinds(&e.evaluate(&sample(60, 10, 0, None), &c, &[&r], &FACTS)),
        ["resolve"]
    );
    assert!(e.evaluate(&sample(70, 10, 0, None), &c, &[&r], &FACTS).is_empty());
}

#[test]
fn a_blip_shorter_than_for_clears_and_keep_firing_for_holds_on() {
    let r = rule(Condition::ConsumerLag { threshold: Some(100.0) }, 30, 20);
    let (mut e, c) = (Evaluator::new(), cluster());
    assert_eq!(
        kinds(&e.evaluate(&sample(0, 500, 0, None), &c, &[&r], &FACTS)),
        ["pend"]
    );
    assert_eq!(
        kinds(&e.evaluate(&sample(10, 5, 0, None), &c, &[&r], &FACTS)),
        ["clear"]
    );
    assert_eq!(
        kinds(&e.evaluate(&sample(20, 500, 0, None), &c, &[&r], &FACTS)),
        ["pend"]
    );
    assert_eq!(
        kinds(&e.evaluate(&sample(50, 500, 0, None), &c, &[&r], &FACTS)),
        ["fire"]
    );
    // Below the threshold, but within keep_firing_for (20 s): still firing.
    assert!(e.evaluate(&sample(60, 5, 0, None), &c, &[&r], &FACTS).is_empty());
    assert_eq!(
        kinds(&e.evaluate(&sample(70, 5, 0, None), &c, &[&r], &FACTS)),
        ["resolve"]
    );
}

#[test]
fn thresholds_come_from_metadata_when_the_rule_leaves_them_out() {
    let r = rule(Condition::ConsumerLag { threshold: None }, 0, 0);
    let c = cluster();
    let mut e = Evaluator::new();
    assert!(
        e.evaluate(&sample(0, 5000, 0, None), &c, &[&r], &FACTS).is_empty(),
        "no metadata: not checked"
    );
    let facts = NoFacts {
        metadata: BTreeMap::from([("io.nats.monitor.unprocessed-critical".into(), "1000".into())]),
        dead: 0,
    };
    let t = e.evaluate(&sample(10, 5000, 0, None), &c, &[&r], &facts);
    assert_eq!(kinds(&t), ["fire"], "for 0 fires at once");
    let AlertCommand::Fire { origin, .. } = &t[0].command else {
        unreachable!()
    };
    assert_eq!(origin.threshold, Some(1000.0));
}

#[test]
fn a_stalled_consumer_is_one_whose_ack_floor_stands_still_with_work_pending() {
    let r = rule(Condition::ConsumerStalled { stalled_for_s: 30 }, 0, 0);
    let (mut e, c) = (Evaluator::new(), cluster());
    assert!(e.evaluate(&sample(0, 10, 5, None), &c, &[&r], &FACTS).is_empty());
    assert!(e.evaluate(&sample(20, 10, 5, None), &c, &[&r], &FACTS).is_empty());
    assert_eq!(
        kinds(&e.evaluate(&sample(30, 10, 5, None), &c, &[&r], &FACTS)),
        ["fire"]
    );
    // The floor moves: resolved.
    assert_eq!(
        kinds(&e.evaluate(&sample(40, 10, 6, None), &c, &[&r], &FACTS)),
        ["resolve"]
    );
    // Idle with nothing pending is not stalled.
    assert!(e.evaluate(&sample(100, 0, 6, None), &c, &[&r], &FACTS).is_empty());
}

#[test]
fn rates_zero_and_anomalous_against_their_own_history() {
    let zero = rule(Condition::MessageRateZero { window_s: 60 }, 0, 0);
    let (mut e, c) = (Evaluator::new(), cluster());
    assert!(
        e.evaluate(&sample(0, 0, 0, Some(0.0)), &c, &[&zero], &FACTS).is_empty(),
        "never had traffic"
    );
    assert!(
        e.evaluate(&sample(10, 0, 0, Some(50.0)), &c, &[&zero], &FACTS)
            .is_empty()
    );
    assert_eq!(
        kinds(&e.evaluate(&sample(20, 0, 0, Some(0.0)), &c, &[&zero], &FACTS)),
        ["fire"]
    );

    let mut anomaly = rule(Condition::MessageRateAnomaly { z: 3.0, window_s: 600 }, 0, 0);
    anomaly.id = "r2".into();
    let mut e = Evaluator::new();
    for (i, r) in [100.0, 102.0, 98.0, 101.0, 99.0, 100.0].into_iter().enumerate() {
        let t = e.evaluate(&sample(i as i64 * 10, 0, 0, Some(r)), &c, &[&anomaly], &FACTS);
        assert!(t.is_empty(), "{i}: {t:?}");
    }
    let t = e.evaluate(&sample(60, 0, 0, Some(400.0)), &c, &[&anomaly], &FACTS);
    assert_eq!(kinds(&t), ["fire"]);
}

#[test]
fn storage_cluster_health_and_scope() {
    let c = cluster();
    let mut storage = rule(Condition::StreamStorage { percent: 80.0 }, 0, 0);
    let mut e = Evaluator::new();
    let t = e.evaluate(&sample(0, 0, 0, None), &c, &[&storage], &FACTS);
    assert_eq!(kinds(&t), ["fire"], "900 of 1000 bytes is 90 %");
    // Out of scope: a rule for another cluster tag sees nothing, and the alert resolves.
    storage.spec.as_mut().unwrap().scope.cluster_tags = vec!["us".into()];
    let t = e.evaluate(&sample(10, 0, 0, None), &c, &[&storage], &FACTS);
    assert_eq!(kinds(&t), ["resolve"]);

    let down = rule(Condition::ClusterUnreachable, 20, 0);
    let down = AlertRule {
        spec: down.spec.map(|mut s| {
            s.scope.streams.clear();
            s
        }),
        ..down
    };
    let mut e = Evaluator::new();
    let mut s = sample(0, 0, 0, None);
    s.cluster.up = false;
    assert_eq!(kinds(&e.evaluate(&s, &c, &[&down], &FACTS)), ["pend"]);
    s.cluster.at_ms = 20_000;
    assert_eq!(kinds(&e.evaluate(&s, &c, &[&down], &FACTS)), ["fire"]);
    assert_eq!(
        kinds(&e.evaluate(&sample(30, 0, 0, None), &c, &[&down], &FACTS)),
        ["resolve"]
    );
}

#[test]
fn a_deleted_rule_or_a_gone_consumer_resolves_its_alerts_and_resume_keeps_for() {
    let r = rule(Condition::ConsumerLag { threshold: Some(1.0) }, 0, 0);
    let (mut e, c) = (Evaluator::new(), cluster());
    assert_eq!(kinds(&e.evaluate(&sample(0, 5, 0, None), &c, &[&r], &FACTS)), ["fire"]);
    let t = e.retire(&HashSet::new(), 10_000);
    assert_eq!(kinds(&t), ["resolve"]);
    assert_eq!(e.active(), 0);

    assert_eq!(kinds(&e.evaluate(&sample(20, 5, 0, None), &c, &[&r], &FACTS)), ["fire"]);
    let mut gone = sample(30, 5, 0, None);
    gone.streams.get_mut("ORDERS").unwrap().consumers.clear();
    assert_eq!(kinds(&e.evaluate(&gone, &c, &[&r], &FACTS)), ["resolve"]);

    // A new evaluator resumes a pending alert from the view: `for` is not started again.
    let slow = rule(Condition::ConsumerLag { threshold: Some(1.0) }, 60, 0);
    let mut first = Evaluator::new();
    let t = first.evaluate(&sample(0, 5, 0, None), &c, &[&slow], &FACTS);
    let mut alert = Alert::default();
    if let AlertCommand::Pend { origin, value, at } = t[0].command.clone() {
        alert.status = AlertStatus::Pending;
        alert.since = Some(at);
        alert.value = Some(value);
        alert.origin = Some(*origin);
    }
    let mut second = Evaluator::new();
    second.resume([(t[0].alert_id.as_str(), &alert)], 30_000);
    assert!(
        second
            .evaluate(&sample(30, 5, 0, None), &c, &[&slow], &FACTS)
            .is_empty()
    );
    assert_eq!(
        kinds(&second.evaluate(&sample(60, 5, 0, None), &c, &[&slow], &FACTS)),
        ["fire"]
    );
}

#[test]
fn dead_letters_in_a_window() {
    let r = rule(
        Condition::DeadLetters {
            threshold: 3.0,
            window_s: 300,
        },
        0,
        0,
    );
    let c = cluster();
    let mut e = Evaluator::new();
    let few = NoFacts {
        metadata: BTreeMap::new(),
        dead: 2,
    };
    assert!(e.evaluate(&sample(0, 0, 0, None), &c, &[&r], &few).is_empty());
    let many = NoFacts {
        metadata: BTreeMap::new(),
        dead: 7,
    };
    let t = e.evaluate(&sample(10, 0, 0, None), &c, &[&r], &many);
    assert_eq!(kinds(&t), ["fire"]);
}
