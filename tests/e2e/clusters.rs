//! Managed clusters through GraphQL alone, against real nats-servers.

use std::time::{Duration, Instant};

use jsc_testkit::{NatsServer, TestApp};
use serde_json::json;

const REGISTER: &str = r#"mutation($input: RegisterClusterInput!) {
  registerCluster(input: $input) { cluster { id name urls tags description version auth { kind username } tls { required hasClientKey } } }
}"#;

const TEST: &str = r#"mutation($id: ID!) {
  testClusterConnection(input: {id: $id}) { test { ok serverVersion serverName jetstream rttMs error account { streams consumers storage memory maxStorage maxStreams } } }
}"#;

#[tokio::test]
async fn a_new_user_registers_tests_watches_updates_and_removes_a_cluster() {
    let app = TestApp::spawn().await;
    let managed = NatsServer::start();

    // Register a cluster pointing at a second real nats-server.
    let headers = [("x-request-id", "req-register-1"), ("user-agent", "e2e-client/1.0")];
    let body = app
        .graphql_with_headers(
            REGISTER,
            json!({"input": {"name": "edge-1", "urls": [managed.url()], "tags": ["edge", "eu"], "description": "first"}}),
            &headers,
        )
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let cluster = &body["data"]["registerCluster"]["cluster"];
    let id = cluster["id"].as_str().unwrap().to_string();
    assert_eq!(cluster["name"], "edge-1");
    assert_eq!(cluster["urls"], json!([managed.url()]));
    assert_eq!(cluster["tags"], json!(["edge", "eu"]));
    assert_eq!(cluster["auth"]["kind"], "NONE");
    assert_eq!(cluster["version"], 1);

    // Test its connection: what the real server says about itself.
    let test = app.data(TEST, json!({"id": id})).await["testClusterConnection"]["test"].clone();
    assert_eq!(test["ok"], true);
    assert_eq!(test["serverVersion"], "2.15.1");
    assert_eq!(test["jetstream"], true);
    assert!(test["rttMs"].as_f64().unwrap() > 0.0);
    assert_eq!(test["account"]["streams"], 0);
    assert_eq!(test["account"]["maxStorage"], -1);

    // See it in `clusters` and `cluster(id)`, with the last test.
    let list = app
        .data(
            "{ clusters { nodes { id name lastConnectionTest { ok serverVersion } } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["clusters"]["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(list["clusters"]["nodes"][0]["id"], id.as_str());
    assert_eq!(
        list["clusters"]["nodes"][0]["lastConnectionTest"]["serverVersion"],
        "2.15.1"
    );
    let one = app
        .data(
            "query($id: ID!) { cluster(id: $id) { name createdBy version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(one["cluster"]["version"], 2);
    assert_eq!(one["cluster"]["createdBy"], app.owner_actor().as_str());

    // Watch `clusterChanged` fire on an update, over WebSocket.
    let mut sub = app
        .subscribe(
            "graphql-transport-ws",
            "subscription($id: ID) { clusterChanged(id: $id, includeCurrent: true) { kind clusterId sequence cluster { name description version } } }",
            json!({"id": id}),
        )
        .await;
    let current = sub.next_data().await;
    assert_eq!(current["clusterChanged"]["kind"], "CURRENT");
    let updated = app
        .data(
            "mutation($id: ID!) { updateCluster(input: {id: $id, description: \"second\", tags: [\"edge\"]}) { cluster { description tags version } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(updated["updateCluster"]["cluster"]["description"], "second");
    assert_eq!(updated["updateCluster"]["cluster"]["tags"], json!(["edge"]));
    let change = sub.next_data().await;
    assert_eq!(change["clusterChanged"]["kind"], "UPDATED");
    assert_eq!(change["clusterChanged"]["clusterId"], id.as_str());
    assert_eq!(change["clusterChanged"]["cluster"]["description"], "second");
    assert_eq!(change["clusterChanged"]["cluster"]["version"], 3);

    // Remove it: gone from the list, and the subscriber hears it.
    assert_eq!(app.remove_cluster(&id).await, id);
    let change = sub.next_data().await;
    assert_eq!(change["clusterChanged"]["kind"], "REMOVED");
    assert!(change["clusterChanged"]["cluster"].is_null());
    let list = app.data("{ clusters { nodes { id } } }", json!({})).await;
    assert_eq!(list["clusters"]["nodes"], json!([]));

    // Each step is an event in the stream, with its metadata; the name's claim is taken
    // with the registration and released with the removal, by the same person.
    let (claims, events): (Vec<_>, Vec<_>) = app
        .events_since(app.baseline)
        .await
        .into_iter()
        .partition(|e| e.aggregate_type == "claim");
    let claimed: Vec<(&str, &str, &str)> = claims
        .iter()
        .map(|e| (e.event_type.as_str(), e.aggregate_id.as_str(), e.actor()))
        .collect();
    let key = "cluster-name/default/edge-1";
    let owner = app.owner_actor();
    assert_eq!(
        claimed,
        vec![
            ("ClaimTaken", key, owner.as_str()),
            ("ClaimReleased", key, owner.as_str())
        ]
    );
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "ClusterRegistered",
            "ClusterConnectionTested",
            "ClusterUpdated",
            "ClusterRemoved"
        ]
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.aggregate_type, "cluster");
        assert_eq!(e.aggregate_id, id);
        assert_eq!(e.aggregate_sequence, i as u64 + 1);
        assert_eq!(e.event_version, "1.0");
        assert_eq!(e.metadata["actor"], app.owner_actor());
        assert_eq!(e.metadata["client_addr"], "127.0.0.1");
        assert!(!e.metadata["correlation_id"].is_empty());
        assert!(!e.metadata["causation_id"].is_empty());
    }
    assert_eq!(events[0].metadata["correlation_id"], "req-register-1");
    assert_eq!(events[0].metadata["user_agent"], "e2e-client/1.0");
    assert_eq!(events[2].payload["Updated"]["changes"]["description"], "second");
}

#[tokio::test]
async fn legacy_graphql_ws_subscriptions_see_registrations() {
    let app = TestApp::spawn().await;
    let first = app
        .data(
            REGISTER,
            json!({"input": {"name": "a", "urls": ["nats://127.0.0.1:4222"]}}),
        )
        .await["registerCluster"]["cluster"]
        .clone();
    let mut sub = app
        .subscribe(
            "graphql-ws",
            "subscription { clusterChanged(includeCurrent: true) { kind cluster { name } } }",
            json!({}),
        )
        .await;
    let current = sub.next_data().await;
    assert_eq!(current["clusterChanged"]["kind"], "CURRENT");
    assert_eq!(current["clusterChanged"]["cluster"]["name"], first["name"]);
    app.register_cluster(json!({"name": "b", "urls": ["nats://127.0.0.1:4223"]}))
        .await;
    let change = sub.next_data().await;
    assert_eq!(change["clusterChanged"]["kind"], "REGISTERED");
    assert_eq!(change["clusterChanged"]["cluster"]["name"], "b");
}

#[tokio::test]
async fn invalid_input_is_refused_with_a_clear_message_and_nothing_stored() {
    let app = TestApp::spawn().await;
    app.register_cluster(json!({"name": "prod", "urls": ["nats://127.0.0.1:4222"]}))
        .await;
    let cases = [
        (
            json!({"name": "  ", "urls": ["nats://127.0.0.1:4222"]}),
            "name: must not be empty",
        ),
        (
            json!({"name": "x", "urls": ["http://example.com"]}),
            "scheme must be nats, tls, ws or wss",
        ),
        (json!({"name": "x", "urls": []}), "give at least one server URL"),
        (
            json!({"name": "x", "urls": ["nats://:4222"]}),
            "is not a valid server URL",
        ),
        (
            json!({"name": "PROD", "urls": ["nats://127.0.0.1:4222"]}),
            "a cluster named 'PROD' already exists",
        ),
        (
            json!({"name": "x/y", "urls": ["nats://127.0.0.1:4222"]}),
            "name: contains '/'",
        ),
        (
            json!({"name": "x", "urls": ["nats://u:p@127.0.0.1:4222"]}),
            "remove the credentials from the URL",
        ),
        (
            json!({"name": "x", "urls": ["nats://127.0.0.1:4222"], "auth": {"kind": "USER_PASSWORD", "username": "u"}}),
            "auth.password: required",
        ),
        (
            json!({"name": "x", "urls": ["nats://127.0.0.1:4222"], "auth": {"kind": "CREDENTIALS", "credentials": "nope"}}),
            "not the content of a NATS .creds file",
        ),
    ];
    for (input, expected) in cases {
        let (code, message) = app.error(REGISTER, json!({"input": input})).await;
        assert_eq!(code, "VALIDATION", "{input}: {message}");
        assert!(message.contains(expected), "{input}: {message}");
    }
    assert_eq!(
        app.events_since(app.baseline).await.len(),
        2,
        "no refused command left an event: only prod's name claim and registration"
    );
    // A GraphQL type error (a missing required field) is a VALIDATION error too.
    let (code, _) = app.error(REGISTER, json!({"input": {"urls": []}})).await;
    assert_eq!(code, "VALIDATION");
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let app = TestApp::spawn().await;
    let missing = json!({"id": "does-not-exist"});
    let (code, _) = app
        .error("query($id: ID!) { cluster(id: $id) { name } }", missing.clone())
        .await;
    assert_eq!(code, "NOT_FOUND");
    let (code, _) = app
        .error(
            "mutation($id: ID!) { updateCluster(input: {id: $id, description: \"x\"}) { cluster { name } } }",
            missing.clone(),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let (code, _) = app.error(TEST, missing.clone()).await;
    assert_eq!(code, "NOT_FOUND");
    let c = app
        .register_cluster(json!({"name": "gone", "urls": ["nats://127.0.0.1:4222"]}))
        .await;
    app.remove_cluster(&c).await;
    let (code, _) = app
        .error(
            "mutation($id: ID!) { removeCluster(input: {id: $id}) { clusterId } }",
            json!({"id": c}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND", "removing twice");
    // The name of a removed cluster is free again.
    app.register_cluster(json!({"name": "gone", "urls": ["nats://127.0.0.1:4222"]}))
        .await;
}

#[tokio::test]
async fn an_unreachable_cluster_is_unavailable_quickly_and_the_attempt_is_recorded() {
    let app = TestApp::spawn().await;
    // A port that nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = app
        .register_cluster(json!({"name": "down", "urls": [format!("nats://127.0.0.1:{port}")]}))
        .await;
    let started = Instant::now();
    let (code, message) = app.error(TEST, json!({"id": c})).await;
    assert_eq!(code, "UNAVAILABLE");
    assert!(message.contains("could not reach"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no hang: {:?}",
        started.elapsed()
    );
    let view = app
        .data(
            "query($id: ID!) { cluster(id: $id) { lastConnectionTest { ok error } } }",
            json!({"id": c}),
        )
        .await;
    assert_eq!(view["cluster"]["lastConnectionTest"]["ok"], false);
    assert!(
        view["cluster"]["lastConnectionTest"]["error"]
            .as_str()
            .unwrap()
            .contains("could not reach")
    );
}

#[tokio::test]
async fn credentials_work_and_never_appear_in_clear() {
    let app = TestApp::spawn().await;
    let password = "pw-9f2c-super-secret";
    let token = "tok-71aa-super-secret";
    let with_user = NatsServer::start_with(&["--user", "alice", "--pass", password]);
    let with_token = NatsServer::start_with(&["--auth", token]);

    let registered = app
        .data(
            REGISTER,
            json!({"input": {"name": "userpass", "urls": [with_user.url()],
               "auth": {"kind": "USER_PASSWORD", "username": "alice", "password": password}}}),
        )
        .await;
    let good = &registered["registerCluster"]["cluster"];
    assert_eq!(good["auth"], json!({"kind": "USER_PASSWORD", "username": "alice"}));
    let good = good["id"].as_str().unwrap();
    let test = app.data(TEST, json!({"id": good})).await;
    assert_eq!(test["testClusterConnection"]["test"]["ok"], true);

    let tok = app
        .register_cluster(
            json!({"name": "token", "urls": [with_token.url()], "auth": {"kind": "TOKEN", "token": token}}),
        )
        .await;
    let test = app.data(TEST, json!({"id": tok})).await;
    assert_eq!(test["testClusterConnection"]["test"]["ok"], true);

    // A wrong password is refused by the server, and said so.
    let bad = app
        .register_cluster(json!({"name": "wrong", "urls": [with_user.url()],
               "auth": {"kind": "USER_PASSWORD", "username": "alice", "password": "not-it"}}))
        .await;
    let (code, message) = app.error(TEST, json!({"id": bad})).await;
    assert_eq!(code, "UNAVAILABLE");
    assert!(
        message.contains("refused the credentials") || message.contains("uthoriz"),
        "{message}"
    );

    // Changing only the user name keeps the stored password (no need to type it again).
    app.data(
        "mutation($id: ID!) { updateCluster(input: {id: $id, auth: {kind: USER_PASSWORD, username: \"alice\"}, description: \"kept\"}) { cluster { description } } }",
        json!({"id": good}),
    )
    .await;
    let test = app.data(TEST, json!({"id": good})).await;
    assert_eq!(test["testClusterConnection"]["test"]["ok"], true);

    // No secret in any event, in the views, or in any response.
    let mut raw = Vec::new();
    for event in app.raw_events().await {
        raw.extend_from_slice(&event.payload);
        for (_, values) in event.headers.iter() {
            for v in values {
                raw.extend_from_slice(v.as_str().as_bytes());
            }
        }
    }
    let kv = app
        .nats
        .jetstream()
        .await
        .get_key_value("view_clusters_v1")
        .await
        .unwrap();
    for id in [good, tok.as_str(), bad.as_str()] {
        raw.extend_from_slice(&kv.get(id).await.unwrap().unwrap());
    }
    let everything = app
        .data(
            "{ clusters { nodes { id name urls auth { kind username } tls { required hasClientKey caCertPem } description lastConnectionTest { error } } } }",
            json!({}),
        )
        .await
        .to_string();
    let raw = String::from_utf8_lossy(&raw);
    for secret in [password, token] {
        assert!(!raw.contains(secret), "a secret is stored in clear");
        assert!(!everything.contains(secret), "a secret is returned");
    }
    assert!(raw.contains("v1:"), "the secrets are stored sealed");
}

#[tokio::test]
async fn cluster_names_are_unique_within_an_organization_only() {
    let app = TestApp::spawn().await;
    let other = app
        .data(
            "mutation { createOrganization(input: {name: \"Other\"}) { organization { id } } }",
            json!({}),
        )
        .await["createOrganization"]["organization"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let input = |org: &str| json!({"organizationId": org, "name": "shared-name", "urls": ["nats://127.0.0.1:4222"]});
    let first = app.register_cluster(input("default")).await;
    // Another organization may use the name: a clash would tell it the first one exists.
    let second = app.register_cluster(input(&other)).await;
    assert_ne!(first, second);
    // Within one organization the name is taken.
    let (code, message) = app
        .error(
            "mutation($i: RegisterClusterInput!) { registerCluster(input: $i) { cluster { id } } }",
            json!({"i": input("default")}),
        )
        .await;
    assert_eq!(code, "VALIDATION", "{message}");
    assert!(
        message.contains("a cluster named 'shared-name' already exists"),
        "{message}"
    );
}
