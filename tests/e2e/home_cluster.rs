//! The console on a 3-node home NATS, started from the checked-in `infra/home-cluster`
//! configuration: its event stream and every bucket in three copies, and one node lost
//! under writers loses and doubles nothing while the API keeps serving. Real nats-servers,
//! a real console, real HTTP.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use futures::TryStreamExt;
use jsc_testkit::{NatsCluster, TestApp};
use serde_json::{Value, json};

const UPDATE: &str =
    "mutation($id: ID!, $d: String!) { updateCluster(input: {id: $id, description: $d}) { cluster { version } } }";

/// Every stream on the home NATS with its number of copies.
async fn replicas_of_every_stream(js: &jetstream::Context) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    let mut streams = js.streams();
    while let Some(info) = streams.try_next().await.expect("list the home streams") {
        out.insert(info.config.name.clone(), info.config.num_replicas);
    }
    out
}

/// The same deployment started again: the same keys.
fn same_keys(c: &mut jsc_cli::Config) {
    use base64::Engine;
    let key = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    c.secret_keys = vec![key(7)];
    c.signing_keys = vec![key(9)];
}

#[tokio::test]
async fn on_a_three_node_home_every_stream_and_bucket_of_the_console_is_kept_in_three_copies() {
    let cluster = NatsCluster::start().await;
    // A console that asked for one copy (an older console, or `--home-replicas 1`)...
    let first = TestApp::spawn_with(cluster.home(), |c| {
        same_keys(c);
        c.home_replicas = Some(1)
    })
    .await;
    let js = jetstream::new(cluster.client().await);
    let before = replicas_of_every_stream(&js).await;
    assert_eq!(before.get("CONSOLE_EVENTS"), Some(&1), "{before:?}");
    drop(first);

    // ...then one with the default, which sees a cluster of three and raises every one.
    let app = TestApp::spawn_with(cluster.home(), same_keys).await;
    let after = replicas_of_every_stream(&js).await;
    for name in [
        "CONSOLE_EVENTS",
        "KV_auth_login_limits",
        "KV_console_leases",
        "CONSOLE_METRICS",
        "CONSOLE_DEAD_LETTERS",
    ] {
        assert!(after.contains_key(name), "{name} is among the home streams: {after:?}");
    }
    let views = after.keys().filter(|n| n.starts_with("KV_")).count();
    assert!(views >= 10, "the views' buckets are there too: {after:?}");
    for (name, replicas) in &after {
        assert_eq!(*replicas, 3, "{name} is kept in three copies: {after:?}");
    }
    // And the console works on it.
    let id = app
        .register_cluster(json!({"name": "home", "urls": cluster.urls().split(',').collect::<Vec<_>>()}))
        .await;
    let v = app.graphql(UPDATE, json!({"id": id, "d": "on three nodes"})).await;
    assert!(v["data"]["updateCluster"]["cluster"]["version"].is_number(), "{v}");
}

#[tokio::test]
async fn losing_the_node_that_leads_the_event_stream_under_writers_loses_and_doubles_nothing_and_the_api_keeps_serving()
{
    const WRITERS: usize = 8;
    let mut cluster = NatsCluster::start().await;
    let app = Arc::new(TestApp::spawn_with(cluster.home(), |_| {}).await);
    let urls: Vec<String> = cluster.urls().split(',').map(str::to_string).collect();
    let mut ids = Vec::new();
    for i in 0..WRITERS {
        ids.push(
            app.register_cluster(json!({"name": format!("writer-{i}"), "urls": urls}))
                .await,
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));
    let ack_seen = Arc::new(tokio::sync::Notify::new());
    let mut writers = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (app, id, stop, acks, ack_seen) = (app.clone(), id.clone(), stop.clone(), acks.clone(), ack_seen.clone());
        writers.push(tokio::spawn(async move {
            // (description, answer) of every attempt
            let mut answers: Vec<(String, Value)> = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let d = format!("w{i}-{n}");
                let v = app.graphql(UPDATE, json!({"id": id, "d": d})).await;
                if v["data"]["updateCluster"]["cluster"]["version"].is_number() {
                    acks.fetch_add(1, Ordering::Relaxed);
                    ack_seen.notify_waiters();
                }
                answers.push((d, v));
                n += 1;
            }
            answers
        }));
    }
    let acked_at_least = |n: usize| {
        let (acks, ack_seen) = (acks.clone(), ack_seen.clone());
        async move {
            tokio::time::timeout(Duration::from_secs(60), async {
                loop {
                    let seen = ack_seen.notified();
                    if acks.load(Ordering::Relaxed) >= n {
                        return;
                    }
                    seen.await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{n} changes acknowledged within 60 s"))
        }
    };
    acked_at_least(100).await;

    // Kill the node leading the event stream: its copies elect a new leader.
    let js = jetstream::new(cluster.client().await);
    let info = js.get_stream("CONSOLE_EVENTS").await.unwrap().get_info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    let leader = info
        .cluster
        .and_then(|c| c.leader)
        .expect("the event stream has a leader");
    let killed = cluster.index_of(&leader);
    cluster.kill(killed);
    let at_kill = acks.load(Ordering::Relaxed);

    // The console goes on serving on the two nodes left.
    acked_at_least(at_kill + 100).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for w in writers {
        answers.extend(w.await.unwrap());
    }

    // Every acknowledged change is stored exactly once, by the owner; a refused one is
    // stored at most once, and never when the answer said it was not applied.
    let owner = app.owner_actor();
    let mut stored: HashMap<String, Vec<String>> = HashMap::new();
    for e in app.events(Some("cluster")).await {
        if let Some(d) = e
            .payload
            .pointer("/Updated/changes/description")
            .and_then(Value::as_str)
        {
            stored.entry(d.to_string()).or_default().push(e.actor().to_string());
        }
    }
    let (mut acked, mut refused) = (0, 0);
    for (d, v) in &answers {
        let landed = stored.get(d).map_or(0, Vec::len);
        assert!(landed <= 1, "'{d}' is stored once at most: {:?}", stored.get(d));
        if v["data"]["updateCluster"]["cluster"]["version"].is_number() {
            acked += 1;
            assert_eq!(landed, 1, "the acknowledged change '{d}' is stored");
            assert_eq!(stored[d], vec![owner.clone()], "'{d}' keeps its author");
        } else {
            refused += 1;
            let e = &v["errors"][0]["extensions"];
            assert_ne!(e["code"], "INTERNAL", "{v}");
            assert!(e["applied"].is_string(), "a refusal says whether it was applied: {v}");
            if e["applied"] == "NO" {
                assert_eq!(landed, 0, "'{d}' was refused as not applied, yet stored: {v}");
            }
        }
    }
    assert!(acked >= 200, "{acked} acknowledged, {refused} refused");

    // Still on two nodes: queries, new registrations and the event stream answer.
    let v = app
        .graphql("{ clusters(first: 50) { nodes { name } } }", json!({}))
        .await;
    assert_eq!(
        v["data"]["clusters"]["nodes"].as_array().map(Vec::len),
        Some(WRITERS),
        "{v}"
    );
    app.register_cluster(json!({"name": "after-the-loss", "urls": urls}))
        .await;
    cluster.restart(killed);
}

#[tokio::test]
async fn bad_home_settings_are_refused_with_what_to_do() {
    let nats = jsc_testkit::NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let data = data.path().to_str().unwrap();
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--data-dir", data, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };

    // A home NATS without JetStream: refused at once, saying how to enable it.
    let plain_dir = tempfile::tempdir().unwrap();
    let mut opts = jsc_fleet::embedded::ServerOptions::new(plain_dir.path());
    opts.jetstream = false;
    opts.binary = jsc_fleet::embedded::find_nats_server(&[std::path::Path::new(env!("CARGO_MANIFEST_DIR"))]);
    let plain = jsc_fleet::embedded::ServerProcess::start(&opts).unwrap();
    let (code, _, err) = jsc_testkit::cli(&serve(&["--nats-url", &plain.url()])).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("JetStream is not enabled on the home NATS") && err.contains("start nats-server with -js"),
        "{err}"
    );

    let urls = format!("{},not a url", nats.url());
    let (code, _, err) = jsc_testkit::cli(&serve(&["--nats-url", &urls])).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("--nats-url: 'not a url' is not a NATS URL; write nats://host:4222"),
        "{err}"
    );

    let (code, _, err) = jsc_testkit::cli(&serve(&["--nats-url", nats.url(), "--home-replicas", "9"])).await;
    assert_ne!(code, 0);
    assert!(err.contains("--home-replicas") && err.contains("1..=5"), "{err}");

    // Three copies asked of a single server: refused, saying why and what to pass.
    let (code, _, err) = jsc_testkit::cli(&serve(&["--nats-url", nats.url(), "--home-replicas", "3"])).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("the home NATS needs at least 3 JetStream servers; pass --home-replicas 1 on a single server"),
        "{err}"
    );
    let js = nats.jetstream().await;
    assert!(js.get_stream("CONSOLE_EVENTS").await.is_err(), "nothing was made");
}
