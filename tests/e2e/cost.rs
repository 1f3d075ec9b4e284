//! Query cost: every answer reports what it cost and what is left of the caller's budget;
//! a caller who has spent it is told to wait, and nothing runs.

use jsc_testkit::{NatsServer, TestApp, code};
use serde_json::{Value, json};

/// One cluster's id and name: a few points (a connection's fields count once per item it
/// may return, so `first: 1` keeps it as cheap as a single object).
const CLUSTERS: &str = "{ clusters(first: 1) { nodes { id name } } }";

async fn small_budget(max: u64) -> TestApp {
    TestApp::spawn_with(NatsServer::start(), |c| {
        c.query_budget = Some(jsc_graphql::Budget {
            max,
            refill_per_second: 1,
        });
    })
    .await
}

fn cost(body: &Value) -> &Value {
    &body["extensions"]["cost"]
}

#[tokio::test]
async fn every_answer_reports_its_cost_and_the_budget_goes_down() {
    let app = small_budget(200).await;
    let first = app.graphql(CLUSTERS, json!({})).await;
    assert!(first.get("errors").is_none(), "{first}");
    let c = cost(&first);
    let requested = c["requested"].as_u64().expect("requested");
    assert!(requested >= 3, "clusters, id and name: {c}");
    assert!(c["actual"].as_u64().unwrap() >= 1, "{c}");
    assert_eq!(c["budget"]["max"], 200);
    assert_eq!(c["budget"]["refillPerSecond"], 1);
    let before = c["budget"]["remaining"].as_u64().unwrap();
    assert!(before < 200, "the login and this query were charged: {c}");
    let second = app.graphql(CLUSTERS, json!({})).await;
    let after = cost(&second)["budget"]["remaining"].as_u64().unwrap();
    assert!(after < before, "the second query was charged too: {before} -> {after}");
}

#[tokio::test]
async fn a_spent_budget_is_rate_limited_with_retry_after_and_nothing_runs() {
    let app = small_budget(40).await;
    // Spend it: each clusters query costs a few points, the budget refills one a second.
    let mut refused = None;
    for _ in 0..40 {
        let res = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(app.token.as_deref().unwrap())
            .json(&json!({"query": CLUSTERS}))
            .send()
            .await
            .unwrap();
        let retry_after = res
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = res.json().await.unwrap();
        if body.get("errors").is_some() {
            refused = Some((body, retry_after));
            break;
        }
    }
    let (body, retry_after) = refused.expect("the budget ran out within 40 queries");
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
    let wait = body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .expect("retryAfter");
    assert!(wait >= 1, "{body}");
    assert_eq!(retry_after.as_deref(), Some(wait.to_string().as_str()));
    assert!(body["data"].is_null(), "nothing ran: {body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("retry in") && message.contains("points"), "{message}");

    // A mutation refused for cost changes nothing (it asks for more than the few points
    // left, which refill at one a second).
    let events = app.event_count().await;
    let mutation = app
        .graphql(
            "mutation { registerCluster(input: {name: \"x\", urls: [\"nats://127.0.0.1:1\"]}) { cluster { id name urls tags description createdAt createdBy updatedAt updatedBy version } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&mutation), "RATE_LIMITED", "{mutation}");
    assert_eq!(app.event_count().await, events);

    // Another caller has a budget of their own.
    let anonymous = app.graphql_as(None, CLUSTERS, json!({})).await;
    assert_eq!(
        code(&anonymous),
        "UNAUTHENTICATED",
        "charged to its own budget, then refused for auth"
    );
}

#[tokio::test]
async fn websocket_answers_report_their_cost_too() {
    let app = small_budget(500).await;
    let mut ws = app.subscribe("graphql-transport-ws", CLUSTERS, json!({})).await;
    let frame = ws.next_frame_raw().await;
    assert_eq!(frame["type"], "next", "{frame}");
    let c = &frame["payload"]["extensions"]["cost"];
    assert!(c["requested"].as_u64().unwrap() >= 3, "{frame}");
    assert!(c["budget"]["remaining"].as_u64().unwrap() < 500, "{frame}");
}
