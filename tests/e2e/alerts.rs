//! Alerting through GraphQL against a real nats-server: rules, notification channels, the
//! routing policy and silences, with their validation, their permissions, and secrets that
//! never come back out (not in answers, not in events).

use jsc_testkit::{TestApp, code, first_error};
use serde_json::{Value, json};

const CREATE_RULE: &str = "mutation($r: AlertRuleSpecInput!) { createAlertRule(input: {rule: $r}) {
    alertRule { id name severity for keepFiringFor enabled condition { kind threshold metadataKey }
    scope { streams consumers } labels { name value } annotations { name value } } sequence } }";
const CREATE_CHANNEL: &str =
    "mutation($c: NotificationChannelInput!) { createNotificationChannel(input: {channel: $c}) {
    channel { id name kind hint to sendResolved } signingSecret } }";

fn lag_rule() -> Value {
    json!({
        "name": "billing behind",
        "condition": {"kind": "CONSUMER_LAG", "threshold": 1000},
        "scope": {"streams": ["ORDERS*"], "consumers": ["billing"]},
        "severity": "CRITICAL",
        "for": "1m",
        "labels": [{"name": "team", "value": "payments"}],
        "annotations": [{"name": "summary", "value": "{{ consumer }} has {{ value }} pending"}]
    })
}

#[tokio::test]
async fn rules_are_created_checked_changed_and_kept_in_history() {
    let app = TestApp::spawn().await;
    let made = app.data(CREATE_RULE, json!({"r": lag_rule()})).await["createAlertRule"].clone();
    let rule = &made["alertRule"];
    assert_eq!(rule["name"], "billing behind");
    assert_eq!(rule["severity"], "CRITICAL");
    assert_eq!(rule["for"], "1m");
    assert_eq!(rule["keepFiringFor"], "0s");
    assert_eq!(rule["condition"]["kind"], "CONSUMER_LAG");
    assert_eq!(rule["condition"]["threshold"], 1000.0);
    assert_eq!(rule["condition"]["metadataKey"], "io.nats.monitor.unprocessed-critical");
    assert_eq!(rule["scope"]["streams"], json!(["ORDERS*"]));
    assert!(made["sequence"].as_u64().is_some());
    let id = rule["id"].as_str().unwrap().to_string();

    // Every field that breaks a rule is named.
    let bad = |f: &dyn Fn(&mut Value)| {
        let mut r = lag_rule();
        f(&mut r);
        r
    };
    for (rule, field) in [
        (bad(&|r| r["condition"]["threshold"] = json!(-5)), "condition.threshold"),
        (
            bad(&|r| r["condition"] = json!({"kind": "STREAM_STORAGE", "percent": 150})),
            "condition.percent",
        ),
        (
            bad(&|r| r["condition"] = json!({"kind": "MESSAGE_RATE_ABOVE"})),
            "condition.threshold",
        ),
        (
            bad(&|r| r["condition"] = json!({"kind": "CLUSTER_UNREACHABLE"})),
            "scope.streams",
        ),
        (bad(&|r| r["scope"]["streams"] = json!(["A B"])), "scope.streams[0]"),
        (
            bad(&|r| r["annotations"][0]["value"] = json!("{{ stram }} lags")),
            "annotations.summary",
        ),
        (bad(&|r| r["labels"][0]["name"] = json!("severity")), "labels.severity"),
        (bad(&|r| r["for"] = json!("45d")), "for"),
        (bad(&|r| r["name"] = json!("")), "name"),
    ] {
        let (c, message) = app.error(CREATE_RULE, json!({"r": rule})).await;
        assert_eq!(c, "VALIDATION", "{message}");
        assert!(message.starts_with(&format!("{field}:")), "{field}: {message}");
    }

    // Disabled, then replaced; each change is an event with its actor.
    let update = "mutation($id: ID!, $r: AlertRuleSpecInput, $e: Boolean) { updateAlertRule(input: {id: $id, rule: $r, enabled: $e}) {
        alertRule { enabled for condition { threshold } } } }";
    let off = app.data(update, json!({"id": id, "e": false})).await;
    assert_eq!(off["updateAlertRule"]["alertRule"]["enabled"], false);
    let mut changed = lag_rule();
    changed["condition"]["threshold"] = json!(5000);
    changed["enabled"] = json!(false);
    let on = app.data(update, json!({"id": id, "r": changed})).await;
    assert_eq!(on["updateAlertRule"]["alertRule"]["condition"]["threshold"], 5000.0);
    let (c, _) = app.error(update, json!({"id": id})).await;
    assert_eq!(c, "VALIDATION");

    let history = app
        .data(
            "query($id: ID!) { history(aggregateType: ALERT_RULE, id: $id) { nodes { eventType actor changes { path before after } } } }",
            json!({"id": id}),
        )
        .await;
    let nodes = history["history"]["nodes"].as_array().unwrap();
    let types: Vec<&str> = nodes.iter().map(|n| n["eventType"].as_str().unwrap()).collect();
    assert_eq!(types, ["AlertRuleCreated", "AlertRuleDisabled", "AlertRuleUpdated"]);
    assert_eq!(nodes[2]["actor"], app.owner_actor());
    let threshold = nodes[2]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "spec.condition.threshold")
        .expect("the threshold change is in the diff");
    assert_eq!(threshold["before"], 1000.0);
    assert_eq!(threshold["after"], 5000.0);

    let list = app
        .data("{ alertRules { totalCount nodes { id name } } }", json!({}))
        .await;
    assert_eq!(list["alertRules"]["nodes"][0]["id"], id);
    let deleted = app
        .data(
            "mutation($id: ID!) { deleteAlertRule(input: {id: $id}) { alertRule { id } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(deleted["deleteAlertRule"]["alertRule"]["id"], id);
    let gone = app
        .data("query($id: ID!) { alertRule(id: $id) { id } }", json!({"id": id}))
        .await;
    assert_eq!(gone["alertRule"], Value::Null);
    let list = app.data("{ alertRules { totalCount } }", json!({})).await;
    assert_eq!(list["alertRules"]["totalCount"], 0);
}

#[tokio::test]
async fn viewers_read_operators_silence_and_admins_manage() {
    let app = TestApp::spawn().await;
    let (_, viewer) = app.invite_member("default", "v@example.com", "VIEWER").await;
    let (_, operator) = app.invite_member("default", "o@example.com", "OPERATOR").await;
    let rule = app.data(CREATE_RULE, json!({"r": lag_rule()})).await;
    assert!(rule["createAlertRule"]["alertRule"]["id"].is_string());

    for token in [&viewer, &operator] {
        let body = app.graphql_as(Some(token), CREATE_RULE, json!({"r": lag_rule()})).await;
        assert_eq!(code(&body), "FORBIDDEN", "{body}");
        let body = app
            .graphql_as(
                Some(token),
                CREATE_CHANNEL,
                json!({"c": {"name": "am", "kind": "ALERTMANAGER", "url": "http://127.0.0.1:9093"}}),
            )
            .await;
        assert_eq!(code(&body), "FORBIDDEN", "{body}");
        let body = app
            .graphql_as(
                Some(token),
                "mutation { setAlertPolicy(input: {policy: {}}) { policy { groupBy } } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&body), "FORBIDDEN", "{body}");
        // Everyone in the organization sees the rules and the policy.
        let seen = app
            .data_as(
                Some(token),
                "{ alertRules { totalCount } alertPolicy { groupBy groupWait repeatInterval } }",
                json!({}),
            )
            .await;
        assert_eq!(seen["alertRules"]["totalCount"], 1);
        assert_eq!(seen["alertPolicy"]["groupBy"], json!(["alertname", "cluster"]));
        assert_eq!(seen["alertPolicy"]["groupWait"], "30s");
        assert_eq!(seen["alertPolicy"]["repeatInterval"], "4h");
    }

    let silence = "mutation($m: [LabelMatcherInput!]!, $e: DateTime!, $c: String!) { createSilence(input: {matchers: $m, endsAt: $e, comment: $c}) {
        silence { id active comment createdBy matchers { name op value } } } }";
    let ends = (chrono::Utc::now() + chrono::TimeDelta::hours(2)).to_rfc3339();
    let vars = json!({"m": [{"name": "stream", "value": "ORDERS"}], "e": ends, "c": "deploying"});
    let body = app.graphql_as(Some(&viewer), silence, vars.clone()).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let made = app.data_as(Some(&operator), silence, vars).await["createSilence"]["silence"].clone();
    assert_eq!(made["active"], true);
    assert_eq!(made["matchers"][0]["op"], "EQUAL");
    assert!(made["createdBy"].as_str().unwrap().starts_with("user:"));
    let (c, m) = app
        .error(
            silence,
            json!({"m": [], "e": (chrono::Utc::now() + chrono::TimeDelta::hours(2)).to_rfc3339(), "c": "x"}),
        )
        .await;
    assert_eq!(c, "VALIDATION");
    assert!(m.starts_with("matchers:"), "{m}");
    let (c, m) = app
        .error(
            silence,
            json!({"m": [{"name": "stream", "op": "REGEX", "value": "("}], "e": (chrono::Utc::now() + chrono::TimeDelta::hours(2)).to_rfc3339(), "c": "x"}),
        )
        .await;
    assert_eq!(c, "VALIDATION");
    assert!(m.starts_with("matchers[0].value:"), "{m}");

    let active = app.data("{ silences(active: true) { nodes { id } } }", json!({})).await;
    assert_eq!(active["silences"]["nodes"][0]["id"], made["id"]);
    let expired = app
        .data_as(
            Some(&operator),
            "mutation($id: ID!) { expireSilence(input: {id: $id}) { silence { active } } }",
            json!({"id": made["id"]}),
        )
        .await;
    assert_eq!(expired["expireSilence"]["silence"]["active"], false);
    let active = app.data("{ silences(active: true) { totalCount } }", json!({})).await;
    assert_eq!(active["silences"]["totalCount"], 0);

    // No alert fires here: the list is empty, and acknowledging an unknown alert is NOT_FOUND.
    let alerts = app.data("{ alerts { totalCount } }", json!({})).await;
    assert_eq!(alerts["alerts"]["totalCount"], 0);
    let body = app
        .graphql_as(
            Some(&operator),
            "mutation { acknowledgeAlert(input: {id: \"nope\"}) { alert { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
}

#[tokio::test]
async fn channel_secrets_are_sealed_never_returned_and_kept_on_update() {
    let app = TestApp::spawn().await;
    let slack_url = "https://hooks.slack.com/services/T000/B000/very-secret-path";
    let slack = app
        .data(
            CREATE_CHANNEL,
            json!({"c": {"name": "ops", "kind": "SLACK", "url": slack_url}}),
        )
        .await["createNotificationChannel"]
        .clone();
    assert_eq!(slack["channel"]["kind"], "SLACK");
    assert_eq!(slack["channel"]["hint"], "https://hooks.slack.com");
    assert_eq!(slack["signingSecret"], Value::Null);

    let hook = app
        .data(
            CREATE_CHANNEL,
            json!({"c": {"name": "hook", "kind": "WEBHOOK", "url": "http://127.0.0.1:9/hook?token=abc"}}),
        )
        .await["createNotificationChannel"]
        .clone();
    let secret = hook["signingSecret"]
        .as_str()
        .expect("a signing secret is made and shown once");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(hook["channel"]["hint"], "http://127.0.0.1:9");

    let routing_key = "R0123456789abcdef0123456789abcd";
    let pd = app
        .data(
            CREATE_CHANNEL,
            json!({"c": {"name": "pager", "kind": "PAGER_DUTY", "routingKey": routing_key, "eventsUrl": "http://127.0.0.1:9/v2/enqueue"}}),
        )
        .await["createNotificationChannel"]
        .clone();
    assert_eq!(pd["channel"]["hint"], "…abcd");
    let mail = app
        .data(
            CREATE_CHANNEL,
            json!({"c": {"name": "mail", "kind": "EMAIL", "smtpHost": "127.0.0.1", "smtpPort": 2525, "smtpSecurity": "NONE",
                   "smtpUsername": "console", "smtpPassword": "smtp-pass-secret", "from": "console@example.com", "to": ["ops@example.com"]}}),
        )
        .await["createNotificationChannel"]
        .clone();
    assert_eq!(mail["channel"]["to"], json!(["ops@example.com"]));

    // Bad settings name their field.
    for (c, field) in [
        (
            json!({"name": "x", "kind": "SLACK", "url": "not a url"}),
            "slack.webhookUrl",
        ),
        (json!({"name": "x", "kind": "SLACK"}), "slack.webhookUrl"),
        (
            json!({"name": "x", "kind": "WEBHOOK", "url": "ftp://h/x"}),
            "webhook.url",
        ),
        (
            json!({"name": "x", "kind": "WEBHOOK", "url": "http://h/x", "signingSecret": "short"}),
            "webhook.signingSecret",
        ),
        (
            json!({"name": "x", "kind": "ALERTMANAGER", "url": "alertmanager:9093"}),
            "alertmanager.url",
        ),
        (json!({"name": "x", "kind": "PAGER_DUTY"}), "pagerDuty.routingKey"),
        (
            json!({"name": "x", "kind": "EMAIL", "smtpHost": "h", "from": "a@b.c", "to": ["nope"]}),
            "email.to[0]",
        ),
    ] {
        let (code, message) = app.error(CREATE_CHANNEL, json!({"c": c})).await;
        assert_eq!(code, "VALIDATION", "{message}");
        assert!(message.starts_with(&format!("{field}:")), "{field}: {message}");
    }

    // Renamed without its URL: the stored URL stays (the hint too).
    let update = "mutation($id: ID!, $c: NotificationChannelInput!) { updateNotificationChannel(input: {id: $id, channel: $c}) { channel { name hint } } }";
    let renamed = app
        .data(
            update,
            json!({"id": slack["channel"]["id"], "c": {"name": "ops-2", "kind": "SLACK"}}),
        )
        .await;
    assert_eq!(renamed["updateNotificationChannel"]["channel"]["name"], "ops-2");
    assert_eq!(
        renamed["updateNotificationChannel"]["channel"]["hint"],
        "https://hooks.slack.com"
    );
    let (c, _) = app
        .error(
            update,
            json!({"id": slack["channel"]["id"], "c": {"name": "ops-3", "kind": "PAGER_DUTY"}}),
        )
        .await;
    assert_eq!(c, "VALIDATION", "a kind change needs its secrets");

    // No secret anywhere: not in answers, events or history.
    let listed = app
        .graphql(
            "{ notificationChannels { totalCount nodes { id name kind hint } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["data"]["notificationChannels"]["totalCount"], 4);
    let events: String = app
        .raw_events()
        .await
        .iter()
        .map(|e| String::from_utf8_lossy(&e.payload).into_owned())
        .collect();
    let history = app
        .graphql(
            "query($id: ID!) { history(aggregateType: NOTIFICATION_CHANNEL, id: $id) { nodes { payload changes { path before after } } } }",
            json!({"id": slack["channel"]["id"]}),
        )
        .await;
    assert!(
        history["data"]["history"]["nodes"].as_array().unwrap().len() == 2,
        "{history}"
    );
    for text in [listed.to_string(), events, history.to_string()] {
        for secret in ["very-secret-path", secret, routing_key, "smtp-pass-secret", "token=abc"] {
            assert!(!text.contains(secret), "'{secret}' leaked: {text}");
        }
    }

    // A channel the policy sends to cannot be deleted; one outside another organization's
    // policy is refused by name.
    let policy = "mutation($p: AlertPolicyInput!) { setAlertPolicy(input: {policy: $p}) { policy { channels routes { channels matchers { name value } minSeverity continue } groupWait } } }";
    let set = app
        .data(
            policy,
            json!({"p": {"channels": [slack["channel"]["id"]], "groupWait": "10s",
                   "routes": [{"matchers": [{"name": "team", "value": "payments"}], "minSeverity": "CRITICAL", "channels": [pd["channel"]["id"]], "continue": true}]}}),
        )
        .await;
    assert_eq!(set["setAlertPolicy"]["policy"]["groupWait"], "10s");
    assert_eq!(set["setAlertPolicy"]["policy"]["routes"][0]["continue"], true);
    let (c, m) = app
        .error(policy, json!({"p": {"routes": [{"channels": ["no-such-channel"]}]}}))
        .await;
    assert_eq!(c, "VALIDATION");
    assert!(m.starts_with("routes[0].channels[0]:"), "{m}");
    let delete = "mutation($id: ID!) { deleteNotificationChannel(input: {id: $id}) { channel { id } } }";
    let body = app.graphql(delete, json!({"id": pd["channel"]["id"]})).await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    assert!(first_error(&body).1.contains("take it out of the policy first"));
    let body = app.data(delete, json!({"id": mail["channel"]["id"]})).await;
    assert_eq!(
        body["deleteNotificationChannel"]["channel"]["id"],
        mail["channel"]["id"]
    );
}
