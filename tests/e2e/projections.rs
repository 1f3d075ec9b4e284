//! Projections: idempotent, rebuildable from the stream.

use std::sync::Arc;

use jsc_projections::ClustersProjection;
use jsc_projector::{KvProjection, Projector};
use jsc_testkit::TestApp;
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn view_contents(app: &TestApp) -> Vec<(String, serde_json::Value)> {
    let js = async_nats::jetstream::new(app.nats.client().await);
    let kv = js.get_key_value(ClustersProjection.bucket()).await.unwrap();
    let mut keys: Vec<String> = futures::TryStreamExt::try_collect(kv.keys().await.unwrap())
        .await
        .unwrap();
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        let v = kv.get(&k).await.unwrap().unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&v).unwrap_or(json!(String::from_utf8_lossy(&v)));
        out.push((k, parsed));
    }
    out
}

#[tokio::test]
async fn a_rebuilt_view_equals_the_live_one() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = app
            .data(
                "mutation($n: String!) { registerCluster(input: {name: $n, urls: [\"nats://127.0.0.1:4222\"]}) { id } }",
                json!({"n": format!("c{i}")}),
            )
            .await;
        ids.push(c["registerCluster"]["id"].as_str().unwrap().to_string());
    }
    app.data(
        "mutation($id: ID!) { updateCluster(id: $id, input: {tags: [\"x\"]}) { id } }",
        json!({"id": ids[1]}),
    )
    .await;
    app.data("mutation($id: ID!) { removeCluster(id: $id) }", json!({"id": ids[2]}))
        .await;
    let live = view_contents(&app).await;
    assert_eq!(live.iter().filter(|(k, _)| k != "_checkpoint").count(), 4);

    // Stop the console, throw the view away, rebuild it from the stream alone.
    let mut app = app;
    app.shutdown().await;
    let nats_client = app.nats.client().await;
    let projector = Projector::new(nats_client, &jsc_eventstore::EventStoreConfig::default());
    projector.reset(&ClustersProjection).await.unwrap();
    projector.prepare(&ClustersProjection).await.unwrap();
    let token = CancellationToken::new();
    let runner = {
        let projector = projector.clone();
        let token = token.clone();
        tokio::spawn(async move { projector.run(Arc::new(ClustersProjection), token).await })
    };
    // Wait for the rebuild by watching the checkpoint reach the stream's last sequence.
    let js = async_nats::jetstream::new(app.nats.client().await);
    let last = js
        .get_stream("CONSOLE_EVENTS")
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap()
        .state
        .last_sequence;
    let kv = js.get_key_value(ClustersProjection.bucket()).await.unwrap();
    let mut watch = kv.watch_with_history("_checkpoint").await.unwrap();
    while let Some(entry) = futures::StreamExt::next(&mut watch).await {
        let entry = entry.unwrap();
        if String::from_utf8_lossy(&entry.value).parse::<u64>().unwrap() >= last {
            break;
        }
    }
    token.cancel();
    runner.await.unwrap().unwrap();
    let rebuilt = view_contents(&app).await;
    assert_eq!(rebuilt, live);
}

#[tokio::test]
async fn jsconsole_replay_into_scratch_compares_with_the_live_view() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for n in ["a", "b", "c"] {
        let c = app
            .data(
                "mutation($n: String!) { registerCluster(input: {name: $n, urls: [\"nats://127.0.0.1:4222\"]}) { id } }",
                json!({"n": n}),
            )
            .await;
        ids.push(c["registerCluster"]["id"].as_str().unwrap().to_string());
    }
    app.data(
        "mutation($id: ID!) { updateCluster(id: $id, input: {description: \"changed\"}) { id } }",
        json!({"id": ids[1]}),
    )
    .await;
    app.data("mutation($id: ID!) { removeCluster(id: $id) }", json!({"id": ids[2]}))
        .await;
    let run = |args: Vec<String>| async move {
        let mut argv = vec!["replay".to_string()];
        argv.extend(args);
        jsc_testkit::cli(&argv).await
    };
    let base = vec![
        "--nats-url".to_string(),
        app.nats.url().to_string(),
        "--projection".into(),
        "clusters".into(),
    ];

    let (code, out, err) = run(base.clone()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("replayed {} events", app.baseline + 5)), "{out}");
    assert!(
        out.contains("identical to the live view view_clusters_v1 (2 entries)"),
        "{out}"
    );

    // Up to the third event: the removed cluster is still there, the updated one is not yet.
    let mut upto = base.clone();
    let third = (app.baseline + 3).to_string();
    upto.extend(["--to".to_string(), third, "--check".to_string()]);
    let (code, out, _) = run(upto).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("only in the replay: {}", ids[2])), "{out}");
    assert!(out.contains(&format!("different: {}", ids[1])), "{out}");

    let mut live = base.clone();
    live.extend(["--into".to_string(), "view_clusters_v1".to_string()]);
    let (code, _, err) = run(live).await;
    assert_eq!(code, 2);
    assert!(err.contains("refusing to replay into the live bucket"), "{err}");
}
