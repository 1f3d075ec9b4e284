//! History with diffs and time travel, through GraphQL, checked against a replay by hand.

use cqrs_es::Aggregate;
use jsc_domain::cluster::{Cluster, ClusterEvent};
use jsc_testkit::TestApp;
use serde_json::{Value, json};

const HISTORY: &str = "query($id: ID!) { history(aggregateType: CLUSTER, id: $id) { nodes {
    sequence aggregateSequence eventType actor correlationId timestamp payload changes { path before after } } } }";

/// A cluster registered with a password, then changed twice (the second time its password):
/// three events. Returns its id.
async fn setup(app: &TestApp) -> String {
    let id = app
        .register_cluster(
            json!({"name": "h", "urls": ["nats://127.0.0.1:1"], "description": "first",
            "auth": {"kind": "USER_PASSWORD", "username": "u", "password": "pw-secret-123"}}),
        )
        .await;
    for (d, pw) in [("second", None), ("third", Some("pw-secret-456"))] {
        let auth = pw.map(|p| json!({"kind": "USER_PASSWORD", "username": "u", "password": p}));
        let mut input = json!({"description": d});
        if let Some(a) = auth {
            input["auth"] = a;
        }
        app.update_cluster(&id, input).await;
    }
    id
}

#[tokio::test]
async fn history_lists_every_event_with_what_it_changed_and_no_secret() {
    let app = TestApp::spawn().await;
    let id = setup(&app).await;
    let body = app.graphql(HISTORY, json!({"id": id})).await;
    let text = body.to_string();
    assert!(
        !text.contains("pw-secret") && !text.contains("v1:"),
        "no credential, not even sealed: {text}"
    );
    let h = body["data"]["history"]["nodes"].as_array().unwrap().clone();
    let types: Vec<&str> = h.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["ClusterRegistered", "ClusterUpdated", "ClusterUpdated"]);
    assert_eq!(h[1]["aggregateSequence"], 2);
    assert_eq!(h[1]["actor"], app.owner_actor().as_str());
    let change = |entry: &Value, path: &str| -> Value {
        entry["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == path)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        change(&h[1], "spec.description"),
        json!({"path": "spec.description", "before": "first", "after": "second"})
    );
    assert_eq!(
        h[1]["changes"].as_array().unwrap().len(),
        1,
        "only the description changed"
    );
    // The password changed: the change is shown, its values are not.
    assert_eq!(
        change(&h[2], "spec.auth.password"),
        json!({"path": "spec.auth.password", "before": "<redacted>", "after": "<redacted>"})
    );
    assert_eq!(h[0]["payload"]["Registered"]["spec"]["auth"]["password"], "<redacted>");
}

#[tokio::test]
async fn state_at_a_time_or_sequence_matches_a_replay_by_hand() {
    let app = TestApp::spawn().await;
    let id = setup(&app).await;
    let h = app.data(HISTORY, json!({"id": id})).await["history"]["nodes"].clone();

    // By hand: read the events straight from the stream and apply them.
    let records = app.events(Some("cluster")).await;
    let mut by_hand = Cluster::default();
    by_hand.apply(serde_json::from_value::<ClusterEvent>(records[0].payload.clone()).unwrap());
    by_hand.apply(serde_json::from_value::<ClusterEvent>(records[1].payload.clone()).unwrap());
    let mut expected = serde_json::to_value(&by_hand).unwrap();
    expected["spec"]["auth"]["password"] = "<redacted>".into();

    let query = "query($id: ID!, $at: DateTime, $seq: Int) { stateAt(aggregateType: CLUSTER, id: $id, at: $at, sequence: $seq) { version asOfSequence state } }";
    let by_seq = app.data(query, json!({"id": id, "seq": h[1]["sequence"]})).await["stateAt"].clone();
    assert_eq!(by_seq["version"], 2);
    assert_eq!(by_seq["state"], expected);
    let by_time = app.data(query, json!({"id": id, "at": h[1]["timestamp"]})).await["stateAt"].clone();
    assert_eq!(by_time["state"], expected);
    assert_eq!(by_time["asOfSequence"], h[1]["sequence"]);
    // Before the first event there is no state yet.
    let before = app.data(query, json!({"id": id, "at": "2000-01-01T00:00:00Z"})).await["stateAt"].clone();
    assert_eq!(before["version"], 0);
    assert!(before["state"].is_null());
}

#[tokio::test]
async fn history_input_errors() {
    let app = TestApp::spawn().await;
    let (code, _) = app
        .error(
            "{ history(aggregateType: CLUSTER, id: \"nope\") { nodes { sequence } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let (code, message) = app
        .error(
            "{ history(aggregateType: PLANET, id: \"x\") { nodes { sequence } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "VALIDATION", "{message}");
    let (code, _) = app
        .error(
            "{ stateAt(aggregateType: CLUSTER, id: \"x\", at: \"2026-01-01T00:00:00Z\", sequence: 3) { version } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "VALIDATION");
}
