//! One shape for every mutation: a single `input` of its own type, and a payload of its own
//! that names what changed, the request's correlation id, the client's `clientMutationId`
//! and the event stream sequence of the last event the mutation committed.

use jsc_testkit::{TestApp, code};
use serde_json::{Value, json};

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_mutation_takes_one_input_and_answers_a_payload_of_its_own() {
    let app = TestApp::spawn().await;
    let data = app
        .data(
            "{ __schema { mutationType { fields { name args { name type { kind ofType { kind name } } }
                type { kind ofType { kind name } } } }
                types { name kind fields { name } inputFields { name } } } }",
            json!({}),
        )
        .await;
    let types = data["__schema"]["types"].as_array().unwrap();
    let names = |t: &str, list: &str| -> Vec<String> {
        let t = types
            .iter()
            .find(|x| x["name"] == t)
            .unwrap_or_else(|| panic!("type {t}"));
        t[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    let fields = data["__schema"]["mutationType"]["fields"].as_array().unwrap();
    assert!(fields.len() >= 35, "every mutation: {}", fields.len());
    let mut payloads = std::collections::HashSet::new();
    for f in fields {
        let name = f["name"].as_str().unwrap();
        let args = f["args"].as_array().unwrap();
        assert_eq!(args.len(), 1, "{name} takes one argument: {args:?}");
        assert_eq!(args[0]["name"], "input", "{name}'s argument is `input`");
        let input = &args[0]["type"];
        assert_eq!(
            input["kind"], "NON_NULL",
            "{name}'s input is required (it may have a default)"
        );
        assert_eq!(input["ofType"]["kind"], "INPUT_OBJECT", "{name}");
        let input_type = format!("{}Input", upper_first(name));
        assert_eq!(
            input["ofType"]["name"],
            input_type.as_str(),
            "{name}'s input is its own"
        );
        assert!(
            names(&input_type, "inputFields").contains(&"clientMutationId".to_string()),
            "{input_type} has clientMutationId"
        );
        let answer = &f["type"];
        let payload = format!("{}Payload", upper_first(name));
        assert_eq!(answer["kind"], "NON_NULL", "{name}");
        assert_eq!(answer["ofType"]["kind"], "OBJECT", "{name}");
        assert_eq!(
            answer["ofType"]["name"],
            payload.as_str(),
            "{name} answers its own payload"
        );
        let payload_fields = names(&payload, "fields");
        for common in ["clientMutationId", "correlationId", "sequence"] {
            assert!(payload_fields.contains(&common.to_string()), "{payload} has {common}");
        }
        assert!(
            payload_fields.len() > 3,
            "{payload} says what changed: {payload_fields:?}"
        );
        assert!(payloads.insert(payload), "one payload per mutation");
    }
}

const HISTORY: &str = "query($id: ID!) { history(aggregateType: CLUSTER, id: $id, last: 1) { nodes { sequence correlationId eventType } } }";

async fn last_event(app: &TestApp, cluster: &str) -> Value {
    app.data(HISTORY, json!({"id": cluster})).await["history"]["nodes"][0].clone()
}

#[tokio::test]
async fn a_payload_names_the_event_its_mutation_committed_and_the_request() {
    let app = TestApp::spawn().await;
    let body = app
        .graphql_with_headers(
            "mutation($u: String!) { registerCluster(input: {name: \"shape\", urls: [$u], clientMutationId: \"mine-1\"}) {
                cluster { id version } clientMutationId correlationId sequence } }",
            json!({"u": app.nats.url()}),
            &[("x-request-id", "req-shape-1")],
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let p = &body["data"]["registerCluster"];
    assert_eq!(p["clientMutationId"], "mine-1", "echoed: {p}");
    assert_eq!(p["correlationId"], "req-shape-1", "the request's id: {p}");
    let id = p["cluster"]["id"].as_str().unwrap().to_string();
    let registered = last_event(&app, &id).await;
    assert_eq!(registered["eventType"], "ClusterRegistered");
    assert_eq!(
        p["sequence"], registered["sequence"],
        "the event it committed: {p} {registered}"
    );
    assert_eq!(registered["correlationId"], "req-shape-1");

    // Two mutations of one document: each payload names its own event; one request id.
    let both = app
        .data(
            "mutation($id: ID!) {
                a: updateCluster(input: {id: $id, description: \"first\"}) { sequence correlationId clientMutationId cluster { description } }
                b: updateCluster(input: {id: $id, description: \"second\"}) { sequence correlationId cluster { description } } }",
            json!({"id": id}),
        )
        .await;
    let (a, b) = (
        both["a"]["sequence"].as_u64().unwrap(),
        both["b"]["sequence"].as_u64().unwrap(),
    );
    assert!(
        registered["sequence"].as_u64().unwrap() < a && a < b,
        "in order: {registered} {both}"
    );
    assert_eq!(both["a"]["correlationId"], both["b"]["correlationId"]);
    assert_eq!(both["a"]["clientMutationId"], Value::Null, "left out: null");
    assert_eq!(both["b"]["cluster"]["description"], "second");
    assert_eq!(
        last_event(&app, &id).await["sequence"],
        b,
        "b's event is the cluster's last"
    );

    // A mutation that changes nothing commits nothing: no sequence.
    let me = app.data("{ me { id } }", json!({})).await["me"]["id"].clone();
    let team = app
        .data(
            "mutation { createTeam(input: {organizationId: \"default\", name: \"shape\"}) { team { id } sequence } }",
            json!({}),
        )
        .await["createTeam"]
        .clone();
    assert!(team["sequence"].as_u64().is_some(), "{team}");
    let add =
        "mutation($t: ID!, $u: ID!) { addTeamMember(input: {organizationId: \"default\", teamId: $t, userId: $u}) {
        sequence team { members { totalCount } } } }";
    let vars = json!({"t": team["team"]["id"], "u": me});
    let first = app.data(add, vars.clone()).await["addTeamMember"].clone();
    let again = app.data(add, vars).await["addTeamMember"].clone();
    assert!(
        first["sequence"].as_u64().unwrap() > team["sequence"].as_u64().unwrap(),
        "{first}"
    );
    assert_eq!(
        again["sequence"],
        Value::Null,
        "adding a member twice commits nothing: {again}"
    );
    assert_eq!(again["team"]["members"]["totalCount"], 1);
}

#[tokio::test]
async fn loose_arguments_and_a_missing_input_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let cluster = app
        .register_cluster(json!({"name": "loose", "urls": [app.nats.url()]}))
        .await;
    for (doc, says) in [
        (
            "mutation($c: ID!) { createStream(clusterId: $c, config: {name: \"LOOSE\"}) { stream { name } } }",
            "clusterId",
        ),
        ("mutation { createStream { stream { name } } }", "input"),
        (
            "mutation($c: ID!) { createStream(input: {clusterId: $c}) { stream { name } } }",
            "config",
        ),
    ] {
        let body = app.graphql(doc, json!({"c": cluster})).await;
        let messages: Vec<&str> = body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{doc} is refused: {body}"))
            .iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        assert!(
            messages.iter().any(|m| m.contains(&format!("\"{says}\""))),
            "{doc}: a message names `{says}`: {body}"
        );
        assert_eq!(code(&body), "VALIDATION", "{body}");
        assert!(body["data"].is_null(), "nothing ran: {body}");
    }
    let streams = app
        .data(
            "query($c: ID!) { streams(clusterId: $c) { totalCount } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(streams["streams"]["totalCount"], 0, "no stream was created: {streams}");
    // A use case's own refusal keeps its code, and names the field inside the input.
    let body = app
        .graphql(
            "mutation($c: ID!) { createStream(input: {clusterId: $c, config: {subjects: [\"x\"]}}) { stream { name } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code(&body), "VALIDATION", "{body}");
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("config.name"),
        "{body}"
    );
}

#[tokio::test]
async fn each_mutation_over_one_websocket_has_a_correlation_id_of_its_own() {
    let app = TestApp::spawn().await;
    let id = app
        .register_cluster(json!({"name": "socket", "urls": ["nats://127.0.0.1:1"]}))
        .await;
    let update = "mutation($id: ID!, $d: String!) { updateCluster(input: {id: $id, description: $d}) {
        correlationId sequence cluster { description } } }";
    let mut ws = app
        .subscribe("graphql-transport-ws", update, json!({"id": id, "d": "one"}))
        .await;
    let one = ws.next_data().await["updateCluster"].clone();
    assert_eq!(ws.next_frame_raw().await["type"], "complete");
    ws.start_with_id("2", update, json!({"id": id, "d": "two"})).await;
    let two = ws.next_data().await["updateCluster"].clone();
    assert_eq!(two["cluster"]["description"], "two");
    let (a, b) = (
        one["correlationId"].as_str().unwrap(),
        two["correlationId"].as_str().unwrap(),
    );
    assert_ne!(a, b, "one id per operation, not per connection");
    assert_eq!(
        a.rsplit_once('.').map(|p| p.0),
        b.rsplit_once('.').map(|p| p.0),
        "both name their connection: {a} {b}"
    );
    // The events carry them too.
    let history = app
        .data(
            "query($id: ID!) { history(aggregateType: CLUSTER, id: $id, last: 2) { nodes { sequence correlationId } } }",
            json!({"id": id}),
        )
        .await;
    let nodes = &history["history"]["nodes"];
    assert_eq!(nodes[0]["correlationId"], a, "{history}");
    assert_eq!(nodes[0]["sequence"], one["sequence"], "{history}");
    assert_eq!(nodes[1]["correlationId"], b, "{history}");
    assert_eq!(nodes[1]["sequence"], two["sequence"], "{history}");
}
