//! One replica at a time performs each background role (a lease in NATS KV): against a real
//! nats-server, the lease passes on when its holder dies (after its time to live) or stops
//! (at once), a holder whose lease was taken stops, and two consoles on one home NATS
//! sample the clusters once between them, the other taking over when the first stops.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use jsc_app::lease::{LEASES_BUCKET, Leases};
use jsc_testkit::{NatsServer, TestApp};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Runs `role` under `leases` in a task; every start and stop of the work is reported.
fn perform(
    leases: Leases,
    who: &'static str,
    shutdown: CancellationToken,
    events: mpsc::UnboundedSender<(&'static str, bool)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        leases
            .run("role", shutdown, |token| {
                let events = events.clone();
                async move {
                    events.send((who, true)).unwrap();
                    token.cancelled().await;
                    events.send((who, false)).unwrap();
                }
            })
            .await
    })
}

/// Waits until `holder` has renewed the lease `n` times (each renewal is a new revision).
async fn renewals(js: &jetstream::Context, holder: &str, n: usize) {
    let kv = js.get_key_value(LEASES_BUCKET).await.unwrap();
    let mut watch = kv.watch("role").await.unwrap();
    let mut seen = 0;
    while seen < n {
        let entry = watch.next().await.expect("the watch goes on").unwrap();
        let value: Value = serde_json::from_slice(&entry.value).unwrap_or(Value::Null);
        if value["holder"] == holder {
            seen += 1;
        }
    }
}

#[tokio::test]
async fn a_lease_passes_on_when_its_holder_dies_or_stops_and_a_holder_whose_lease_was_taken_stops() {
    let nats = NatsServer::start();
    let home = jsc_eventstore::HomeStorage::new(nats.client().await, 1);
    let js = home.jetstream().clone();
    let ttl = Duration::from_secs(2);
    let a = Leases::open(&home, ttl, "a").await.unwrap();
    // A later replica asks for another time to live: the bucket's wins, so all agree.
    let b = Leases::open(&home, Duration::from_secs(60), "b").await.unwrap();
    assert_eq!(b.ttl(), ttl);

    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop_a = CancellationToken::new();
    let task_a = perform(a, "a", stop_a.clone(), tx.clone());
    assert_eq!(rx.recv().await, Some(("a", true)));
    let stop_b = CancellationToken::new();
    let task_b = perform(b.clone(), "b", stop_b.clone(), tx.clone());
    // While a renews, b waits: after three renewals (a whole time to live) only a works.
    renewals(&js, "a", 3).await;
    assert!(rx.try_recv().is_err(), "b must not work while a holds the lease");
    assert_eq!(b.holder("role").await.map(|h| h.holder).as_deref(), Some("a"));

    // a dies (its task is gone without releasing): b takes over once the lease expired.
    task_a.abort();
    let died = Instant::now();
    assert_eq!(rx.recv().await, Some(("b", true)));
    let takeover = died.elapsed();
    println!("takeover after the holder died: {takeover:?} (time to live {ttl:?})");
    assert!(b.holder("role").await.is_some_and(|h| h.holder == "b"));

    // b stops: it releases the lease, and c takes over without waiting for it to expire.
    let c = Leases::open(&home, ttl, "c").await.unwrap();
    let stop_c = CancellationToken::new();
    let task_c = perform(c.clone(), "c", stop_c.clone(), tx.clone());
    stop_b.cancel();
    task_b.await.unwrap();
    assert_eq!(rx.recv().await, Some(("b", false)));
    assert_eq!(rx.recv().await, Some(("c", true)));

    // Someone overwrites c's lease: c stops at its next renewal, and works again once it
    // wins the lease back (after the intruder's value expired).
    let kv = js.get_key_value(LEASES_BUCKET).await.unwrap();
    kv.put("role", br#"{"holder":"intruder","since_ms":0}"#.to_vec().into())
        .await
        .unwrap();
    assert_eq!(rx.recv().await, Some(("c", false)));
    assert_eq!(rx.recv().await, Some(("c", true)));
    stop_c.cancel();
    task_c.await.unwrap();
    assert_eq!(rx.recv().await, Some(("c", false)));
    // Released: nobody holds it.
    assert!(c.holder("role").await.is_none());
    stop_a.cancel();
}

const REPLICA: &str = "{ consoleReplica { id roles { name holder since heldHere } } }";

fn role<'a>(data: &'a Value, name: &str) -> &'a Value {
    data["consoleReplica"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no role {name}: {data}"))
}

const LAST_SAMPLE: &str = "query($id: ID!) { cluster(id: $id) { lastSample { sampledAt } } }";

/// Waits until the cluster has a sample taken after `after` (an RFC 3339 time, or none).
async fn sample_after(app: &TestApp, cluster: &str, after: Option<&str>) -> String {
    let mut live = app
        .subscribe(
            "graphql-transport-ws",
            "subscription($s: [MetricSeriesInput!]!) { metricsLive(series: $s) { at } }",
            json!({"s": [{"metric": "CLUSTER_UP", "clusterId": cluster}]}),
        )
        .await;
    loop {
        let data = live.next_data().await;
        let at = data["metricsLive"]["at"].as_str().unwrap_or_default().to_string();
        if !at.is_empty() && after.is_none_or(|a| at.as_str() > a) {
            let sampled = app.data(LAST_SAMPLE, json!({"id": cluster})).await;
            assert!(sampled["cluster"]["lastSample"]["sampledAt"].is_string(), "{sampled}");
            return at;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consoles_on_one_home_nats_sample_once_between_them_and_the_other_takes_over() {
    let managed = NatsServer::start();
    // Replicas share their keys (`--secret-key`, `--signing-key`), as a deployment does.
    use base64::Engine;
    let key = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    let (secret, signing) = (key(7), key(9));
    let tweak = |c: &mut jsc_cli::Config| {
        c.monitoring.interval = Duration::from_millis(200);
        // Long enough that a loaded machine never misses a renewal; a stopping holder
        // releases its lease, so the takeover below does not wait for it.
        c.lease_ttl = Some(Duration::from_secs(5));
        c.secret_keys = vec![secret.clone()];
        c.signing_keys = vec![signing.clone()];
    };
    let mut first = TestApp::spawn_with(NatsServer::start(), tweak).await;
    let cluster = first
        .register_cluster(json!({"name": "shared", "urls": [managed.url()]}))
        .await;
    sample_after(&first, &cluster, None).await;
    let second = TestApp::spawn_with(first.nats.shared(), tweak).await;

    let one = first.data(REPLICA, json!({})).await;
    let two = second.data(REPLICA, json!({})).await;
    let (id1, id2) = (
        one["consoleReplica"]["id"].as_str().unwrap().to_string(),
        two["consoleReplica"]["id"].as_str().unwrap().to_string(),
    );
    assert_ne!(id1, id2, "each replica has its own id");
    for name in ["metrics-collector", "metrics-rollups"] {
        // Both see the same holder, and exactly one of them is it.
        assert_eq!(role(&one, name)["holder"], role(&two, name)["holder"], "{one} {two}");
        assert_eq!(
            role(&one, name)["holder"],
            id1.as_str(),
            "the first console took {name}: {one}"
        );
        assert_eq!(role(&one, name)["heldHere"], true);
        assert_eq!(role(&two, name)["heldHere"], false);
        assert!(role(&one, name)["since"].is_string());
    }
    // One sample per interval, not two: the cluster's samples come from one collector.
    let js = first.nats.jetstream().await;
    let stream = js.get_stream("CONSOLE_METRICS").await.unwrap();
    let subject = jsc_metrics::sample::cluster_subject(&cluster);
    let count = || async {
        let mut subjects = stream.info_with_subjects(&subject).await.unwrap();
        let mut n = 0;
        while let Some(s) = subjects.next().await {
            n += s.unwrap().1;
        }
        n
    };
    // Counted before the first sample is awaited: a sample published but not yet seen
    // when counting would otherwise be counted in `before` and seen among the ten.
    let before = count().await;
    let first_at = sample_after(&second, &cluster, None).await;
    let mut later = first_at.clone();
    for _ in 0..10 {
        later = sample_after(&second, &cluster, Some(&later)).await;
    }
    let published = count().await - before;
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
    let intervals = (at(&later) - at(&first_at)) as f64 / 200.0;
    // Over n intervals one collector publishes about n samples (fewer when it falls
    // behind), two about 2n.
    assert!(
        published >= 10 && (published as f64) <= intervals * 1.5 + 2.0,
        "{published} samples in {intervals:.1} intervals: one collector publishes one per interval"
    );

    // The first stops: the second takes over both roles, and samples go on.
    first.shutdown().await;
    let resumed = sample_after(&second, &cluster, Some(&later)).await;
    assert!(resumed > later);
    let two = second.data(REPLICA, json!({})).await;
    for name in ["metrics-collector", "metrics-rollups"] {
        assert_eq!(role(&two, name)["holder"], id2.as_str(), "{two}");
        assert_eq!(role(&two, name)["heldHere"], true);
    }
    // Only an admin may look.
    let (code, message) = second.error_as(None, REPLICA, json!({})).await;
    assert_eq!(code, "UNAUTHENTICATED", "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_replica_running_the_projections_and_the_watcher_dies_the_other_takes_them_over() {
    use base64::Engine;
    let managed = NatsServer::start();
    let key = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    let (secret, signing) = (key(7), key(9));
    let tweak = |c: &mut jsc_cli::Config| {
        c.lease_ttl = Some(Duration::from_secs(2));
        c.reconcile_interval = Duration::from_secs(1);
        c.secret_keys = vec![secret.clone()];
        c.signing_keys = vec![signing.clone()];
    };
    let mut first = TestApp::spawn_with(NatsServer::start(), tweak).await;
    let cluster = first
        .register_cluster(json!({"name": "watched", "urls": [managed.url()]}))
        .await;
    let second = TestApp::spawn_with(first.nats.shared(), tweak).await;
    let one = first.data(REPLICA, json!({})).await;
    let id1 = one["consoleReplica"]["id"].as_str().unwrap().to_string();
    let two = second.data(REPLICA, json!({})).await;
    let id2 = two["consoleReplica"]["id"].as_str().unwrap().to_string();
    for name in ["projections", "watcher", "audit-writer", "session-sweeper"] {
        assert_eq!(
            role(&two, name)["holder"],
            id1.as_str(),
            "the first console holds {name}: {two}"
        );
        assert_eq!(role(&two, name)["heldHere"], false);
    }
    // The second serves mutations on the views the first one's projections write.
    second
        .register_cluster(json!({"name": "via-second", "urls": [managed.url()]}))
        .await;

    // The first dies: nothing is released, its leases expire.
    first.kill();
    let died = Instant::now();
    // A stream made outside the console while nobody watches: the second, once it holds
    // the watcher, finds it, records it, and its projections show it.
    let outside = async_nats::ConnectOptions::new()
        .name("outside-client")
        .connect(managed.url())
        .await
        .unwrap();
    jetstream::new(outside)
        .create_stream(jetstream::stream::Config {
            name: "AFTER".into(),
            subjects: vec!["after.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    second
        .wait_kv("view_streams_v1", &format!("{cluster}.AFTER"), |v| v.is_some())
        .await;
    let recorded = died.elapsed();
    let two = second.data(REPLICA, json!({})).await;
    for name in ["projections", "watcher", "audit-writer", "session-sweeper"] {
        assert_eq!(
            role(&two, name)["holder"],
            id2.as_str(),
            "the second took {name} over: {two}"
        );
        assert_eq!(role(&two, name)["heldHere"], true);
    }
    println!("the outside change was in the second console's views {recorded:?} after the first died (lease 2 s)");
    // Recorded once, as outside the console; found by the reconcile, since its advisory
    // came while no replica watched.
    let events: Vec<_> = second
        .events_of("stream", &format!("{cluster}/AFTER"))
        .await
        .into_iter()
        .filter(|e| e.event_type == "StreamCreated")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    let origin = &events[0].payload["Created"]["origin"];
    assert_eq!(origin["kind"], "external", "{origin}");
    assert_eq!(origin["observed_via"], "reconcile", "{origin}");
    // And its own mutations show at once again.
    second
        .update_cluster(&cluster, json!({"description": "after the takeover"}))
        .await;
}
