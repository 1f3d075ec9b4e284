//! Strict input: every bad value a client can send answers `VALIDATION` with the field it
//! names (`extensions.field`) and what to send instead, and changes nothing; no bad value
//! is quietly turned into another.

use jsc_testkit::TestApp;
use serde_json::{Value, json};

/// The request is refused with `VALIDATION` on `field`, with a message that has `says`.
fn refused(body: &Value, field: &str, says: &str) {
    let err = &body["errors"][0];
    assert_eq!(err["extensions"]["code"], "VALIDATION", "{body}");
    assert_eq!(err["extensions"]["field"], field, "{body}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains(says), "{says:?} in {message:?}");
}

const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBiTCCAS+gAwIBAgIUD/nCRazfMDD92o65KzdTNzR5x+8wCgYIKoZIzj0EAwIw
-----END CERTIFICATE-----";

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let cluster = app
        .register_cluster(json!({"name": "strict", "urls": [app.nats.url()], "tags": ["eu"]}))
        .await;
    app.create_stream(&cluster, "STRICT", &["strict.>"]).await;
    app.create_consumer(&cluster, "STRICT", "worker").await;
    let events = app.event_count().await;
    let vars = json!({"c": cluster});

    let update_stream = |config: &str| {
        let v = if config.contains("$v") { ", $v: String!" } else { "" };
        format!(
            "mutation($c: ID!{v}) {{ updateStream(input: {{clusterId: $c, name: \"STRICT\", config: {config}}}) {{ stream {{ name }} }} }}"
        )
    };
    let cases = [
        // An update that would empty a stream's subjects (JetStream would store it on its name).
        (update_stream("{subjects: []}"), json!({}), "subjects", "leave subjects out to keep them"),
        // Updates that change nothing.
        (update_stream("{name: \"STRICT\"}"), json!({}), "config", "nothing to change"),
        (
            "mutation($c: ID!) { updateConsumer(input: {clusterId: $c, stream: \"STRICT\", name: \"worker\", config: {}}) { consumer { name } } }".into(),
            json!({}),
            "config",
            "nothing to change",
        ),
        (
            "mutation($c: ID!) { updateCluster(input: {id: $c}) { cluster { name } } }".into(),
            json!({}),
            "input",
            "nothing to change",
        ),
        // A key given twice, control characters in metadata, tags and names.
        (
            update_stream("{metadata: [{key: \"team\", value: \"a\"}, {key: \"team\", value: \"b\"}]}"),
            json!({}),
            "config.metadata",
            "the key 'team' is given twice",
        ),
        (
            update_stream("{metadata: [{key: \"team\", value: $v}]}"),
            json!({"v": "pay\u{1b}[31mments"}),
            "metadata",
            "control character (U+001B)",
        ),
        (
            "mutation($c: ID!, $v: String!) { updateCluster(input: {id: $c, tags: [$v]}) { cluster { name } } }".into(),
            json!({"v": "eu\u{7}"}),
            "tags",
            "control character (U+0007)",
        ),
        (
            "mutation($c: ID!, $v: String!) { createStream(input: {clusterId: $c, config: {name: $v}}) { stream { name } } }".into(),
            json!({"v": "OR\u{0}DERS"}),
            "name",
            "control character (U+0000)",
        ),
        // An empty deliver subject or group (leaving it out is how to have none).
        (
            "mutation($c: ID!) { createConsumer(input: {clusterId: $c, stream: \"STRICT\", config: {durableName: \"push\", deliverSubject: \"\"}}) { consumer { name } } }".into(),
            json!({}),
            "config.deliverSubject",
            "leave it out for a pull consumer",
        ),
        (
            "mutation($c: ID!) { createConsumer(input: {clusterId: $c, stream: \"STRICT\", config: {durableName: \"push\", deliverSubject: \"push.out\", deliverGroup: \"\"}}) { consumer { name } } }".into(),
            json!({}),
            "config.deliverGroup",
            "leave it out for no queue group",
        ),
        // A condition field its kind does not read.
        (
            "mutation { createAlertRule(input: {rule: {name: \"lag\", condition: {kind: CONSUMER_LAG, threshold: 10, z: 3}, scope: {}}}) { alertRule { id } } }".into(),
            json!({}),
            "condition.z",
            "a CONSUMER_LAG condition does not read it (it reads threshold)",
        ),
        (
            "mutation { createAlertRule(input: {rule: {name: \"down\", condition: {kind: CLUSTER_UNREACHABLE, window: \"5m\"}, scope: {}}}) { alertRule { id } } }".into(),
            json!({}),
            "condition.window",
            "it reads no field",
        ),
    ];
    for (doc, mut vars, field, says) in cases {
        vars["c"] = json!(cluster);
        refused(&app.graphql(&doc, vars).await, field, says);
    }

    // A CA certificate that is not PEM, or empty (leaving it out is how to have none).
    for (ca, says) in [
        ("/etc/ssl/certs/ca.pem", "is not PEM"),
        ("", "must not be empty"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
            "holds a RSA PRIVATE KEY",
        ),
        (CERT, "cut short"),
    ] {
        let body = app
            .graphql(
                "mutation($c: ID!, $ca: String!) { updateCluster(input: {id: $c, tls: {caCertPem: $ca}}) { cluster { name } } }",
                json!({"c": cluster, "ca": ca}),
            )
            .await;
        refused(&body, "tls.caCertPem", says);
    }

    // Ranges and pages.
    let body = app
        .graphql(
            "{ auditTrail(filter: {from: \"2026-06-02T00:00:00Z\", to: \"2026-06-01T00:00:00Z\"}) { totalCount } }",
            json!({}),
        )
        .await;
    refused(&body, "filter.from", "give a from at or before to");
    // Each window of a comparison is named as its argument.
    let body = app
        .graphql(
            "query($c: ID!) { messageSchemaChanges(clusterId: $c, stream: \"STRICT\", before: {from: \"2026-06-02T00:00:00Z\", to: \"2026-06-01T00:00:00Z\"}, after: {}) { added } }",
            vars.clone(),
        )
        .await;
    refused(&body, "before.from", "give a time before before.to");
    for args in [
        "after: \"not-a-cursor\"",
        "first: 501",
        "first: -1",
        "subject: \"orders..new\"",
    ] {
        let doc = format!("query($c: ID!) {{ streams(clusterId: $c, {args}) {{ totalCount }} }}");
        let body = app.graphql(&doc, vars.clone()).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION", "{args}: {body}");
    }
    let body = app
        .graphql(
            "{ alertRules(organizationId: \"default\", first: 501) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION", "{body}");
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("500"),
        "the maximum the schema documents: {body}"
    );

    // A live-state interval shorter than the console polls.
    let mut sub = app
        .subscribe(
            "graphql-transport-ws",
            "subscription($c: ID!) { streamChanged(clusterId: $c, includeState: true, stateInterval: \"100ms\") { name } }",
            vars.clone(),
        )
        .await;
    let frame = sub.next_frame_raw().await;
    refused(&frame["payload"], "stateInterval", "must be at least 250ms");

    // Nothing changed: no event, the stream's subjects and the cluster's tags as they were.
    assert_eq!(app.event_count().await, events, "a refused request commits nothing");
    let d = app
        .data(
            "query($c: ID!) { cluster(id: $c) { tags tls { caCertPem } } stream(clusterId: $c, name: \"STRICT\") { config { subjects metadata { key } } } }",
            vars,
        )
        .await;
    assert_eq!(d["cluster"]["tags"], json!(["eu"]), "{d}");
    assert_eq!(d["cluster"]["tls"]["caCertPem"], Value::Null, "{d}");
    assert_eq!(d["stream"]["config"]["subjects"], json!(["strict.>"]), "{d}");
}

#[tokio::test]
async fn an_answer_is_bounded_however_many_errors_a_small_request_makes() {
    let app = TestApp::spawn().await;
    // One long value, echoed in the message of each of 60 fields that fail with it.
    let id = "x".repeat(8_000);
    let fields: String = (0..60).map(|i| format!(" f{i}: cluster(id: $id) {{ id }}")).collect();
    let query = format!("query($id: ID!) {{{fields} }}");
    let request = serde_json::to_string(&json!({"query": query, "variables": {"id": id}})).unwrap();
    let body = app.graphql(&query, json!({"id": id})).await;
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 20, "at most 20 errors: {}", errors.len());
    assert_eq!(errors[0]["extensions"]["code"], "NOT_FOUND", "{}", errors[0]);
    let last = &errors[19];
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .starts_with("41 more errors are not shown"),
        "{last}"
    );
    assert_eq!(last["extensions"]["omitted"], 41, "{last}");
    assert_eq!(last["extensions"]["code"], "NOT_FOUND", "{last}");
    for e in errors {
        let message = e["message"].as_str().unwrap();
        assert!(
            message.chars().count() <= 1_100,
            "a message is cut: {} characters",
            message.len()
        );
    }
    let answer = serde_json::to_string(&body).unwrap();
    assert!(
        answer.len() < 3 * request.len(),
        "the answer ({} bytes) is not many times its request ({} bytes)",
        answer.len(),
        request.len()
    );
}
