//! Projections: idempotent, rebuildable from the stream.

use std::sync::Arc;

use jsc_projections::ClustersProjection;
use jsc_projector::{CHECKPOINT_KEY, KvProjection, Projector};
use jsc_testkit::{TestApp, cli};
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn view_contents(app: &TestApp) -> Vec<(String, serde_json::Value)> {
    let js = app.nats.jetstream().await;
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
    for i in 0..12 {
        ids.push(
            app.register_cluster(json!({"name": format!("c{i}"), "urls": ["nats://127.0.0.1:4222"]}))
                .await,
        );
    }
    for id in ids.iter().step_by(2) {
        app.update_cluster(id, json!({"tags": ["x"]})).await;
    }
    app.remove_cluster(&ids[2]).await;
    app.remove_cluster(&ids[7]).await;
    let live = view_contents(&app).await;
    assert_eq!(live.iter().filter(|(k, _)| k != "_checkpoint").count(), 10);

    // Stop the console, throw the view away, rebuild it from the stream alone, with room
    // for 4 views in memory: the others are written, dropped and read again as the
    // events after their first one come (an empty bucket at the start: only the views
    // the run wrote are read back).
    let mut app = app;
    app.shutdown().await;
    let nats_client = app.nats.client().await;
    let projector = Projector::new(nats_client, app.event_config()).with_view_cache(4);
    projector.reset(&ClustersProjection).await.unwrap();
    projector.prepare(&ClustersProjection).await.unwrap();
    let rebuild = || async {
        let token = CancellationToken::new();
        let runner = {
            let projector = projector.clone();
            let token = token.clone();
            tokio::spawn(async move { projector.run(Arc::new(ClustersProjection), token).await })
        };
        // Wait for the rebuild by watching the checkpoint reach the stream's last sequence.
        let last = app.last_sequence().await;
        app.wait_kv(&ClustersProjection.bucket(), CHECKPOINT_KEY, |v| {
            v.and_then(serde_json::Value::as_u64).is_some_and(|seq| seq >= last)
        })
        .await;
        token.cancel();
        runner.await.unwrap().unwrap();
        view_contents(&app).await
    };
    assert_eq!(rebuild().await, live);
    // From the first event again over the full bucket: every view is read before it is
    // changed, and nothing is applied twice.
    let kv = app
        .nats
        .jetstream()
        .await
        .get_key_value(ClustersProjection.bucket())
        .await
        .unwrap();
    kv.put(CHECKPOINT_KEY, "0".into()).await.unwrap();
    assert_eq!(rebuild().await, live);
}

#[tokio::test]
async fn jsconsole_replay_into_scratch_compares_with_the_live_view() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for n in ["a", "b", "c"] {
        ids.push(
            app.register_cluster(json!({"name": n, "urls": ["nats://127.0.0.1:4222"]}))
                .await,
        );
    }
    app.update_cluster(&ids[1], json!({"description": "changed"})).await;
    app.remove_cluster(&ids[2]).await;
    let base = ["replay", "--nats-url", app.nats.url(), "--projection", "clusters"];

    let (code, out, err) = cli(&base).await;
    assert_eq!(code, 0, "{out}{err}");
    // Three names claimed with their registrations, one released with the removal.
    assert!(out.contains(&format!("replayed {} events", app.baseline + 9)), "{out}");
    assert!(
        out.contains("identical to the live view view_clusters_v1 (2 entries)"),
        "{out}"
    );

    // Up to the third registration (with its claim, the sixth event): the removed cluster
    // is still there, the updated one is not yet.
    let third = (app.baseline + 6).to_string();
    let (code, out, _) = cli(&[&base[..], &["--to", &third, "--check"]].concat()).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("only in the replay: {}", ids[2])), "{out}");
    assert!(out.contains(&format!("different: {}", ids[1])), "{out}");

    let (code, _, err) = cli(&[&base[..], &["--into", "view_clusters_v1"]].concat()).await;
    assert_eq!(code, 2);
    assert!(err.contains("refusing to replay into the live bucket"), "{err}");
}
