//! The rules of the alerting aggregates: rules, channels, policies, silences and alerts.

use std::collections::BTreeMap;

use chrono::{TimeDelta, Utc};
use cqrs_es::test::TestFramework;

use crate::alerts::*;
use crate::{DomainError, ErrorKind, Sealed};

fn lag_rule() -> RuleSpec {
    RuleSpec {
        name: "billing behind".into(),
        description: String::new(),
        condition: Condition::ConsumerLag {
            threshold: Some(1000.0),
        },
        scope: Scope {
            streams: vec![Glob("ORDERS*".into())],
            consumers: vec![Glob("billing".into())],
            ..Default::default()
        },
        severity: Severity::Critical,
        for_s: 60,
        keep_firing_for_s: 0,
        labels: BTreeMap::from([("team".into(), "payments".into())]),
        annotations: BTreeMap::from([("summary".into(), "{{ consumer }} has {{ value }} pending".into())]),
        enabled: true,
    }
}

fn created() -> AlertRuleEvent {
    AlertRuleEvent::Created {
        id: "r1".into(),
        organization: "acme".into(),
        spec: lag_rule(),
    }
}

fn invalid_field(e: AlertError) -> String {
    assert_eq!(e.kind(), ErrorKind::Validation, "{e}");
    match e {
        AlertError::Invalid { field, .. } => field,
        other => panic!("expected a validation error, got {other}"),
    }
}

fn rule_error(spec: RuleSpec) -> String {
    let r = TestFramework::<AlertRule>::with(())
        .given_no_previous_events()
        .when(AlertRuleCommand::Create {
            id: "r1".into(),
            organization: "acme".into(),
            spec,
        })
        .inspect_result();
    invalid_field(r.expect_err("the rule should be refused"))
}

#[test]
fn a_rule_is_created_checked_and_trimmed() {
    let mut spec = lag_rule();
    spec.name = "  billing behind ".into();
    TestFramework::<AlertRule>::with(())
        .given_no_previous_events()
        .when(AlertRuleCommand::Create {
            id: "r1".into(),
            organization: "acme".into(),
            spec,
        })
        .then_expect_events(vec![created()]);
}

#[test]
fn bad_rules_name_the_field() {
    let with = |f: fn(&mut RuleSpec)| {
        let mut s = lag_rule();
        f(&mut s);
        rule_error(s)
    };
    assert_eq!(
        with(|s| s.condition = Condition::ConsumerLag { threshold: Some(-1.0) }),
        "condition.threshold"
    );
    assert_eq!(
        with(|s| s.condition = Condition::StreamStorage { percent: 120.0 }),
        "condition.percent"
    );
    assert_eq!(
        with(|s| s.condition = Condition::MessageRateAnomaly { z: 3.0, window_s: 5 }),
        "condition.window"
    );
    assert_eq!(with(|s| s.condition = Condition::ClusterUnreachable), "scope.streams");
    assert_eq!(
        with(|s| s.condition = Condition::StreamStorage { percent: 90.0 }),
        "scope.consumers"
    );
    assert_eq!(with(|s| s.scope.streams = vec![Glob("A B".into())]), "scope.streams[0]");
    assert_eq!(with(|s| s.for_s = 31 * 24 * 3600), "for");
    assert_eq!(with(|s| s.name = " ".into()), "name");
    assert_eq!(
        with(|s| {
            s.labels.insert("severity".into(), "x".into());
        }),
        "labels.severity"
    );
    assert_eq!(
        with(|s| {
            s.labels.insert("bad-name".into(), "x".into());
        }),
        "labels.bad-name"
    );
    assert_eq!(
        with(|s| {
            s.annotations.insert("summary".into(), "{{ consumr }}".into());
        }),
        "annotations.summary"
    );
}

#[test]
fn a_rule_is_updated_enabled_and_deleted() {
    let mut changed = lag_rule();
    changed.for_s = 120;
    TestFramework::<AlertRule>::with(())
        .given(vec![created()])
        .when(AlertRuleCommand::Update { spec: changed.clone() })
        .then_expect_events(vec![AlertRuleEvent::Updated { spec: changed }]);
    TestFramework::<AlertRule>::with(())
        .given(vec![created()])
        .when(AlertRuleCommand::Update { spec: lag_rule() })
        .then_expect_events(vec![]);
    TestFramework::<AlertRule>::with(())
        .given(vec![created()])
        .when(AlertRuleCommand::SetEnabled { enabled: false })
        .then_expect_events(vec![AlertRuleEvent::Disabled]);
    TestFramework::<AlertRule>::with(())
        .given(vec![created(), AlertRuleEvent::Disabled])
        .when(AlertRuleCommand::SetEnabled { enabled: false })
        .then_expect_events(vec![]);
    TestFramework::<AlertRule>::with(())
        .given(vec![created(), AlertRuleEvent::Deleted])
        .when(AlertRuleCommand::Update { spec: lag_rule() })
        .then_expect_error(AlertError::NotFound("alert rule"));
}

fn sealed(v: &str) -> Sealed {
    Sealed::from_sealed_string(v.into())
}

fn slack(url: Sealed) -> ChannelSpec {
    ChannelSpec {
        name: "ops".into(),
        config: ChannelConfig::Slack { webhook_url: url },
        hint: "https://hooks.slack.com".into(),
        send_resolved: true,
    }
}

#[test]
fn a_channel_keeps_its_secret_when_told_to() {
    let given = ChannelEvent::Created {
        id: "c1".into(),
        organization: "acme".into(),
        spec: slack(sealed("v1:k:old")),
    };
    let mut renamed = slack(Sealed::keep());
    renamed.name = "ops-2".into();
    renamed.hint = String::new();
    let mut expected = slack(sealed("v1:k:old"));
    expected.name = "ops-2".into();
    TestFramework::<NotificationChannel>::with(())
        .given(vec![given.clone()])
        .when(ChannelCommand::Update { spec: renamed })
        .then_expect_events(vec![ChannelEvent::Updated { spec: expected }]);
    // Keeping a secret of another kind of channel is refused.
    let webhook = ChannelSpec {
        name: "hook".into(),
        config: ChannelConfig::Webhook {
            webhook_url: Sealed::keep(),
            signing_secret: sealed("v1:k:s"),
        },
        hint: String::new(),
        send_resolved: true,
    };
    let r = TestFramework::<NotificationChannel>::with(())
        .given(vec![given])
        .when(ChannelCommand::Update { spec: webhook })
        .inspect_result();
    assert_eq!(invalid_field(r.unwrap_err()), "webhook");
    // A new channel cannot keep what it does not have.
    let r = TestFramework::<NotificationChannel>::with(())
        .given_no_previous_events()
        .when(ChannelCommand::Create {
            id: "c1".into(),
            organization: "acme".into(),
            spec: slack(Sealed::keep()),
        })
        .inspect_result();
    assert_eq!(invalid_field(r.unwrap_err()), "slack");
}

#[test]
fn channel_settings_are_checked() {
    let email = |to: Vec<&str>, from: &str| ChannelSpec {
        name: "mail".into(),
        config: ChannelConfig::Email {
            host: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::StartTls,
            username: None,
            password: None,
            from: from.into(),
            to: to.into_iter().map(String::from).collect(),
        },
        hint: String::new(),
        send_resolved: true,
    };
    let create = |spec| {
        TestFramework::<NotificationChannel>::with(())
            .given_no_previous_events()
            .when(ChannelCommand::Create {
                id: "c1".into(),
                organization: "acme".into(),
                spec,
            })
            .inspect_result()
    };
    assert!(create(email(vec!["ops@example.com"], "console@example.com")).is_ok());
    assert_eq!(invalid_field(create(email(vec![], "a@b.c")).unwrap_err()), "email.to");
    assert_eq!(
        invalid_field(create(email(vec!["nope"], "a@b.c")).unwrap_err()),
        "email.to[0]"
    );
    assert_eq!(
        invalid_field(create(email(vec!["a@b.c"], "x y@b.c")).unwrap_err()),
        "email.from"
    );
    let am = |url: &str| ChannelSpec {
        name: "am".into(),
        config: ChannelConfig::Alertmanager { url: url.into() },
        hint: String::new(),
        send_resolved: true,
    };
    assert!(create(am("http://127.0.0.1:9093")).is_ok());
    assert_eq!(invalid_field(create(am("ftp://x")).unwrap_err()), "alertmanager.url");
    assert_eq!(
        check_url("url", "https://hooks.slack.com/services/T/B/X").unwrap(),
        "https://hooks.slack.com"
    );
    assert!(check_url("url", "https://user:pw@example.com/").is_err());
    assert!(check_webhook_secret("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
    assert!(check_webhook_secret("secret", "whsec_short").is_err());
}

fn matcher(name: &str, value: &str) -> Matcher {
    Matcher {
        name: name.into(),
        op: MatchOp::Equal,
        value: value.into(),
    }
}

#[test]
fn silences_need_matchers_a_reason_and_a_future_end() {
    let now = Utc::now();
    let spec = |matchers: Vec<Matcher>, ends: TimeDelta, comment: &str| SilenceSpec {
        matchers,
        starts_at: now,
        ends_at: now + ends,
        comment: comment.into(),
    };
    let create = |spec: SilenceSpec| {
        TestFramework::<Silence>::with(())
            .given_no_previous_events()
            .when(SilenceCommand::Create {
                id: "s1".into(),
                organization: "acme".into(),
                created_by: "user:u1".into(),
                spec,
                now,
            })
            .inspect_result()
    };
    assert!(create(spec(vec![matcher("stream", "ORDERS")], TimeDelta::hours(2), "deploy")).is_ok());
    assert_eq!(
        invalid_field(create(spec(vec![], TimeDelta::hours(2), "x")).unwrap_err()),
        "matchers"
    );
    assert_eq!(
        invalid_field(create(spec(vec![matcher("stream", "O")], TimeDelta::hours(-2), "x")).unwrap_err()),
        "endsAt"
    );
    assert_eq!(
        invalid_field(create(spec(vec![matcher("stream", "O")], TimeDelta::hours(2), " ")).unwrap_err()),
        "comment"
    );
    let made = SilenceEvent::Created {
        id: "s1".into(),
        organization: "acme".into(),
        created_by: "user:u1".into(),
        spec: spec(vec![matcher("stream", "O")], TimeDelta::hours(2), "deploy"),
    };
    TestFramework::<Silence>::with(())
        .given(vec![made.clone()])
        .when(SilenceCommand::Expire { now })
        .then_expect_events(vec![SilenceEvent::Expired { at: now }]);
    TestFramework::<Silence>::with(())
        .given(vec![made, SilenceEvent::Expired { at: now }])
        .when(SilenceCommand::Expire { now })
        .then_expect_events(vec![]);
}

#[test]
fn a_policy_routes_by_labels_and_severity() {
    let spec = PolicySpec {
        channels: vec!["default".into()],
        routes: vec![
            Route {
                matchers: vec![matcher("team", "payments")],
                min_severity: Some(Severity::Critical),
                channels: vec!["pager".into()],
                group_wait_s: Some(0),
                r#continue: true,
                ..Default::default()
            },
            Route {
                matchers: vec![matcher("team", "payments")],
                channels: vec!["slack".into()],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let known = ["default", "pager", "slack"];
    let spec = spec.checked(|id| known.contains(&id)).unwrap();
    let labels = BTreeMap::from([("team".to_string(), "payments".to_string())]);
    let critical = spec.deliveries(&labels, Severity::Critical);
    assert_eq!(critical.len(), 2);
    assert_eq!(critical[0].channels, vec!["pager".to_string()]);
    assert_eq!(critical[0].group_wait_s, 0);
    assert_eq!(critical[1].channels, vec!["slack".to_string()]);
    assert_eq!(critical[1].group_wait_s, GROUP_WAIT_S);
    let warning = spec.deliveries(&labels, Severity::Warning);
    assert_eq!(warning.len(), 1);
    assert_eq!(warning[0].channels, vec!["slack".to_string()]);
    let other = spec.deliveries(&BTreeMap::new(), Severity::Critical);
    assert_eq!(other[0].channels, vec!["default".to_string()]);
    assert_eq!(other[0].route, None);
    let e = PolicySpec {
        routes: vec![Route {
            channels: vec!["gone".into()],
            ..Default::default()
        }],
        ..Default::default()
    }
    .checked(|id| known.contains(&id))
    .unwrap_err();
    assert_eq!(invalid_field(e), "routes[0].channels[0]");
}

fn origin() -> Box<AlertOrigin> {
    Box::new(AlertOrigin {
        organization: "acme".into(),
        rule_id: "r1".into(),
        rule_name: "billing behind".into(),
        severity: Severity::Critical,
        cluster_id: "local".into(),
        stream: Some("ORDERS".into()),
        consumer: Some("billing".into()),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        threshold: Some(1000.0),
    })
}

#[test]
fn an_alert_moves_pending_firing_resolved_once_each() {
    let at = Utc::now();
    let pending = AlertEvent::Pending {
        origin: origin(),
        value: 1500.0,
        at,
    };
    let firing = AlertEvent::Firing {
        origin: origin(),
        value: 1800.0,
        at,
    };
    TestFramework::<Alert>::with(())
        .given_no_previous_events()
        .when(AlertCommand::Pend {
            origin: origin(),
            value: 1500.0,
            at,
        })
        .then_expect_events(vec![pending.clone()]);
    TestFramework::<Alert>::with(())
        .given(vec![pending.clone()])
        .when(AlertCommand::Fire {
            origin: origin(),
            value: 1800.0,
            at,
        })
        .then_expect_events(vec![firing.clone()]);
    // Firing twice, or pending again while firing, changes nothing.
    TestFramework::<Alert>::with(())
        .given(vec![pending.clone(), firing.clone()])
        .when(AlertCommand::Fire {
            origin: origin(),
            value: 1900.0,
            at,
        })
        .then_expect_events(vec![]);
    TestFramework::<Alert>::with(())
        .given(vec![pending.clone()])
        .when(AlertCommand::Resolve { value: Some(10.0), at })
        .then_expect_events(vec![AlertEvent::Cleared { value: Some(10.0), at }]);
    TestFramework::<Alert>::with(())
        .given(vec![pending.clone(), firing.clone()])
        .when(AlertCommand::Resolve { value: Some(10.0), at })
        .then_expect_events(vec![AlertEvent::Resolved { value: Some(10.0), at }]);
}

#[test]
fn only_a_firing_alert_is_acknowledged() {
    let at = Utc::now();
    let pending = AlertEvent::Pending {
        origin: origin(),
        value: 1500.0,
        at,
    };
    let ack = AlertCommand::Acknowledge {
        by: "user:u1".into(),
        comment: "on it".into(),
        at,
    };
    TestFramework::<Alert>::with(())
        .given(vec![pending.clone()])
        .when(ack.clone())
        .then_expect_error(AlertError::Conflict(
            "the alert is pending, not firing: only a firing alert can be acknowledged".into(),
        ));
    let firing = AlertEvent::Firing {
        origin: origin(),
        value: 1500.0,
        at,
    };
    TestFramework::<Alert>::with(())
        .given(vec![pending, firing])
        .when(ack)
        .then_expect_events(vec![AlertEvent::Acknowledged(Acknowledgement {
            by: "user:u1".into(),
            comment: "on it".into(),
            at,
        })]);
}

#[test]
fn alert_ids_are_stable_per_rule_and_resource() {
    let a = alert_id("r1", "local", Some("ORDERS"), Some("billing"));
    assert_eq!(a, alert_id("r1", "local", Some("ORDERS"), Some("billing")));
    assert_ne!(a, alert_id("r1", "local", Some("ORDERS"), Some("billing2")));
    assert_ne!(
        alert_id("r1", "local", Some("a"), None),
        alert_id("r1", "local", None, Some("a"))
    );
    assert_eq!(a.len(), 32);
}
