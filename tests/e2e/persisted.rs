//! Automatic persisted queries over HTTP POST, HTTP GET and WebSocket; queries only over
//! GET; and a console that runs only registered operations.

use jsc_testkit::{NatsServer, TestApp, code};
use serde_json::{Value, json};

const CLUSTERS: &str = "query Clusters { clusters { nodes { id name } } }";

fn sha256(text: &str) -> String {
    jsc_domain::sha256_hex(text.as_bytes())
}

fn persisted(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

async fn post(app: &TestApp, body: Value) -> Value {
    app.http
        .post(app.url("/graphql"))
        .bearer_auth(app.token.as_deref().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn get(app: &TestApp, params: &[(&str, String)]) -> (u16, Value) {
    let res = app
        .http
        .get(app.url("/graphql"))
        .bearer_auth(app.token.as_deref().unwrap())
        .query(params)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test]
async fn a_persisted_query_misses_registers_and_then_runs_by_hash_over_post() {
    let app = TestApp::spawn().await;
    let hash = sha256(CLUSTERS);
    let miss = post(&app, json!({"extensions": persisted(&hash)})).await;
    assert_eq!(code(&miss), "PERSISTED_QUERY_NOT_FOUND", "{miss}");
    assert_eq!(miss["errors"][0]["message"], "PersistedQueryNotFound");

    let wrong = post(
        &app,
        json!({"query": CLUSTERS, "extensions": persisted(&"0".repeat(64))}),
    )
    .await;
    assert_eq!(code(&wrong), "VALIDATION", "a hash that is not the query's: {wrong}");

    let register = post(&app, json!({"query": CLUSTERS, "extensions": persisted(&hash)})).await;
    assert!(register.get("errors").is_none(), "{register}");
    assert!(register["data"]["clusters"]["nodes"].is_array());

    let hit = post(&app, json!({"extensions": persisted(&hash)})).await;
    assert!(hit.get("errors").is_none(), "{hit}");
    assert_eq!(hit["data"], register["data"]);

    // Kept in NATS KV, so every replica knows it.
    let kv = app
        .nats
        .jetstream()
        .await
        .get_key_value(jsc_app::persisted::PERSISTED_QUERIES_BUCKET)
        .await
        .unwrap();
    let stored = kv.get(&hash).await.unwrap().expect("registered in KV");
    assert_eq!(std::str::from_utf8(&stored).unwrap(), CLUSTERS);
}

#[tokio::test]
async fn over_get_persisted_queries_run_and_mutations_are_refused() {
    let app = TestApp::spawn().await;
    let hash = sha256(CLUSTERS);
    let ext = persisted(&hash).to_string();
    let (status, miss) = get(&app, &[("extensions", ext.clone())]).await;
    assert_eq!(status, 200);
    assert_eq!(code(&miss), "PERSISTED_QUERY_NOT_FOUND", "{miss}");
    let (_, register) = get(&app, &[("query", CLUSTERS.into()), ("extensions", ext.clone())]).await;
    assert!(register.get("errors").is_none(), "{register}");
    let (_, hit) = get(&app, &[("extensions", ext)]).await;
    assert!(hit.get("errors").is_none(), "{hit}");
    assert_eq!(hit["data"], register["data"]);

    // A plain query over GET runs too; a mutation does not, and changes nothing.
    let (_, plain) = get(&app, &[("query", "{ clusters { nodes { name } } }".into())]).await;
    assert!(plain.get("errors").is_none(), "{plain}");
    let events = app.event_count().await;
    let mutation =
        "mutation { registerCluster(input: {name: \"via-get\", urls: [\"nats://127.0.0.1:1\"]}) { cluster { id } } }";
    let (_, refused) = get(&app, &[("query", mutation.into())]).await;
    assert_eq!(code(&refused), "VALIDATION", "{refused}");
    assert!(
        refused["errors"][0]["message"].as_str().unwrap().contains("POST"),
        "{refused}"
    );
    assert_eq!(app.event_count().await, events, "nothing was recorded");

    let (status, _) = get(&app, &[("variables", "{not json".into()), ("query", CLUSTERS.into())]).await;
    assert_eq!(status, 400, "a query string that is not a request is refused");
}

#[tokio::test]
async fn over_websocket_persisted_queries_miss_register_and_hit() {
    let app = TestApp::spawn().await;
    let query = "query WsClusters { clusters { nodes { id } } }";
    let hash = sha256(query);
    let token = app.token.clone().unwrap();
    let mut ws = jsc_testkit::Subscription::connect(
        app.addr,
        "graphql-transport-ws",
        json!({"authorization": format!("Bearer {token}")}),
    )
    .await;
    assert_eq!(ws.next_frame_raw().await["type"], "connection_ack");
    ws.send_raw(json!({"id": "1", "type": "subscribe", "payload": {"query": "", "extensions": persisted(&hash)}}))
        .await;
    // A result whose errors say so, as over HTTP, then the operation completes.
    let miss = ws.next_frame_raw().await;
    assert_eq!(miss["type"], "next", "{miss}");
    assert_eq!(code(&miss["payload"]), "PERSISTED_QUERY_NOT_FOUND", "{miss}");
    assert_eq!(miss["payload"]["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(ws.next_frame_raw().await["type"], "complete");

    ws.send_raw(json!({"id": "2", "type": "subscribe", "payload": {"query": query, "extensions": persisted(&hash)}}))
        .await;
    let registered = ws.next_frame_raw().await;
    assert_eq!(registered["type"], "next", "{registered}");
    assert!(
        registered["payload"]["data"]["clusters"]["nodes"].is_array(),
        "{registered}"
    );
    assert_eq!(ws.next_frame_raw().await["type"], "complete");

    ws.send_raw(json!({"id": "3", "type": "subscribe", "payload": {"query": "", "extensions": persisted(&hash)}}))
        .await;
    let hit = ws.next_frame_raw().await;
    assert_eq!(hit["type"], "next", "{hit}");
    assert_eq!(hit["payload"]["data"], registered["payload"]["data"]);
}

#[tokio::test]
async fn a_console_that_runs_only_registered_operations_refuses_the_rest() {
    let nats = NatsServer::start();
    // Registered at deploy time, before the console starts: the sign-in the tests use and
    // one query.
    let dir = tempfile::tempdir().unwrap();
    let (login, clusters) = (dir.path().join("login.graphql"), dir.path().join("clusters.graphql"));
    std::fs::write(&login, jsc_testkit::gql::LOGIN).unwrap();
    std::fs::write(&clusters, CLUSTERS).unwrap();
    let (status, out, err) = jsc_testkit::cli(&[
        "queries",
        "register",
        "--nats-url",
        nats.url(),
        login.to_str().unwrap(),
        clusters.to_str().unwrap(),
    ])
    .await;
    assert_eq!(status, 0, "{err}");
    assert!(out.contains(&sha256(CLUSTERS)), "the hashes are printed: {out}");
    let (status, _, err) =
        jsc_testkit::cli(&["queries", "register", "--nats-url", nats.url(), "/nonexistent.graphql"]).await;
    assert_eq!(status, 2);
    assert!(err.contains("cannot read /nonexistent.graphql"), "{err}");

    let app = TestApp::spawn_with(nats, |c| c.persisted_queries_only = true).await;
    assert!(app.token.is_some(), "the registered sign-in ran");
    let by_hash = post(&app, json!({"extensions": persisted(&sha256(CLUSTERS))})).await;
    assert!(by_hash.get("errors").is_none(), "{by_hash}");
    let by_text = post(&app, json!({"query": CLUSTERS})).await;
    assert!(
        by_text.get("errors").is_none(),
        "a registered text runs as it is: {by_text}"
    );

    let other = "{ organizations { id } }";
    let refused = post(&app, json!({"query": other})).await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let refused = post(&app, json!({"query": other, "extensions": persisted(&sha256(other))})).await;
    assert_eq!(code(&refused), "FORBIDDEN", "registering is refused too: {refused}");
}
