//! Live state (message counts, lag) at scale: a query answers from the last state read and
//! never waits for a cluster-wide refresh, which runs in the background.

use std::time::Duration;

use jsc_testkit::{NatsServer, TestApp};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// A real TCP proxy to a nats-server whose answers (server → console) can be held, as a
/// managed server that answers slowly would.
async fn holding_proxy(upstream: String) -> (String, watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("nats://{}", listener.local_addr().unwrap());
    let (hold, held) = watch::channel(false);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (upstream, mut held) = (upstream.clone(), held.clone());
            tokio::spawn(async move {
                let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let ((mut cr, mut cw), (mut sr, mut sw)) = (client.into_split(), server.into_split());
                let to_server = async move { tokio::io::copy(&mut cr, &mut sw).await };
                let to_client = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = sr.read(&mut buf).await?;
                        if n == 0 || held.wait_for(|h| !*h).await.is_err() {
                            return Ok::<_, std::io::Error>(());
                        }
                        cw.write_all(&buf[..n]).await?;
                    }
                };
                let _ = tokio::join!(to_server, to_client);
            });
        }
    });
    (url, hold)
}

const PAGE: &str =
    "query($c: ID!) { streams(clusterId: $c, first: 50) { nodes { name state { messages sampledAt } } } }";

#[tokio::test]
async fn a_page_query_answers_from_the_last_state_while_the_cluster_is_slow_to_list() {
    let managed = NatsServer::start();
    let (url, hold) = holding_proxy(managed.url().trim_start_matches("nats://").to_string()).await;
    let ttl = Duration::from_millis(200);
    let app = TestApp::spawn_with(NatsServer::start(), |c| c.live_ttl = ttl).await;
    let cluster = app.register_cluster(json!({"name": "slow", "urls": [url]})).await;
    app.create_stream(&cluster, "ORDERS", &["orders.>"]).await;
    let js = managed.jetstream().await;
    for _ in 0..3 {
        js.publish("orders.new", "x".into()).await.unwrap().await.unwrap();
    }
    let messages = |page: &serde_json::Value| page["streams"]["nodes"][0]["state"]["messages"].clone();
    let sampled = |page: &serde_json::Value| {
        let at = page["streams"]["nodes"][0]["state"]["sampledAt"]
            .as_str()
            .unwrap()
            .to_string();
        chrono::DateTime::parse_from_rfc3339(&at).unwrap()
    };
    // The console changed the cluster (it created the stream): the first query reads the
    // state it needs, with the messages published before it, and says when it read it.
    let before = chrono::Utc::now();
    let first = app.data(PAGE, json!({"c": cluster})).await;
    assert_eq!(messages(&first), 3);
    assert!(
        sampled(&first) >= before && sampled(&first) <= chrono::Utc::now(),
        "{first}"
    );

    // The cluster stops answering; the state read ages past its time-to-live. A query still
    // answers at once, with the last state, while the refresh waits on the cluster.
    hold.send(true).unwrap();
    tokio::time::sleep(ttl * 2).await;
    for _ in 0..3 {
        js.publish("orders.new", "x".into()).await.unwrap().await.unwrap();
    }
    let page = tokio::time::timeout(Duration::from_secs(20), app.data(PAGE, json!({"c": cluster})))
        .await
        .expect("a page query waited for the cluster's list");
    assert_eq!(messages(&page), 3, "the last state read: {page}");
    assert_eq!(sampled(&page), sampled(&first), "and its age: {page}");

    // The cluster answers again: the background refresh brings the new count.
    hold.send(false).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = app.data(PAGE, json!({"c": cluster})).await;
        if messages(&page) == 6 {
            assert!(sampled(&page) > sampled(&first), "{page}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the state was never refreshed: {page}"
        );
        tokio::time::sleep(ttl).await;
    }
}

#[tokio::test]
async fn a_change_made_through_the_console_shows_at_once_without_listing_the_cluster() {
    let managed = NatsServer::start();
    // Nothing else lists the cluster meanwhile: no collector, no reconcile after the first,
    // and a state kept for an hour.
    let app = TestApp::spawn_with(NatsServer::start(), |c| {
        c.monitoring.collect = false;
        c.reconcile_interval = Duration::from_secs(3600);
        c.live_ttl = Duration::from_secs(3600);
    })
    .await;
    let cluster = app
        .register_cluster(json!({"name": "big", "urls": [managed.url()]}))
        .await;
    app.create_stream(&cluster, "ORDERS", &["orders.>"]).await;
    app.create_stream(&cluster, "AUDIT", &["audit.>"]).await;
    let js = managed.jetstream().await;
    for _ in 0..3 {
        js.publish("orders.new", "x".into()).await.unwrap().await.unwrap();
    }
    let state = |page: &serde_json::Value, name: &str| {
        let nodes = page["streams"]["nodes"].as_array().unwrap();
        nodes.iter().find(|n| n["name"] == name).unwrap()["state"]["messages"].clone()
    };
    let page = app.data(PAGE, json!({"c": cluster})).await;
    assert_eq!((state(&page, "ORDERS"), state(&page, "AUDIT")), (json!(3), json!(0)));

    // The requests the console makes of the managed server from here on.
    let watcher = managed.client().await;
    let mut requests = watcher.subscribe("$JS.API.STREAM.>").await.unwrap();
    watcher.flush().await.unwrap();
    js.publish("audit.x", "x".into()).await.unwrap().await.unwrap();
    let purged = app
        .data(
            "mutation($c: ID!) { purgeStream(input: {clusterId: $c, name: \"ORDERS\"}) { purged } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(purged["purgeStream"]["purged"], 3);
    // The purge shows at once; the other stream keeps the state read before (its new
    // message shows at the next refresh): only the changed stream was read again.
    let page = app.data(PAGE, json!({"c": cluster})).await;
    assert_eq!((state(&page, "ORDERS"), state(&page, "AUDIT")), (json!(0), json!(0)));
    watcher.flush().await.unwrap();
    let mut subjects = Vec::new();
    while let Ok(Some(m)) =
        tokio::time::timeout(Duration::from_millis(1), futures::StreamExt::next(&mut requests)).await
    {
        subjects.push(m.subject.to_string());
    }
    assert!(
        subjects.iter().any(|s| s == "$JS.API.STREAM.INFO.ORDERS"),
        "{subjects:?}"
    );
    assert!(
        !subjects.iter().any(|s| s.starts_with("$JS.API.STREAM.LIST")),
        "{subjects:?}"
    );
}

/// Waits until `n` messages arrived on `sub` (events, each subject one commit here).
async fn receive(sub: &mut async_nats::Subscriber, n: usize, what: &str) -> Vec<async_nats::Message> {
    use futures::StreamExt;
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), sub.next()).await {
            Ok(Some(m)) => got.push(m),
            _ => panic!("{what}: {} of {n} arrived", got.len()),
        }
    }
    got
}

/// Registers `managed` on `app` with a stream made before (`PRE`), and returns the
/// cluster's id once the console has it: from then on its watcher listens.
async fn watched(app: &TestApp, js: &async_nats::jetstream::Context, managed: &NatsServer) -> String {
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "PRE".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let cluster = app
        .register_cluster(json!({"name": "watched", "urls": [managed.url()]}))
        .await;
    app.wait_kv("view_streams_v1", &format!("{cluster}.PRE"), |v| v.is_some())
        .await;
    cluster
}

/// A console whose reconcile waits an hour, so that only the advisories record what
/// happens on `managed` (the reconcile would, without the client), and a client of
/// `managed` named `client`.
async fn advisories_only(managed: &NatsServer, client: &str) -> (TestApp, async_nats::jetstream::Context) {
    let app = TestApp::spawn_with(NatsServer::start(), |c| {
        c.reconcile_interval = Duration::from_secs(3600)
    })
    .await;
    let outside = async_nats::ConnectOptions::new()
        .name(client)
        .connect(managed.url())
        .await
        .unwrap();
    (app, async_nats::jetstream::new(outside))
}

/// Makes the streams `names` (memory storage), each with `consumers` durable consumers
/// `C0`, `C1`…, 16 streams in flight, as another client would in a burst.
async fn make_burst(js: &async_nats::jetstream::Context, names: &[String], consumers: usize) {
    use futures::StreamExt;
    let made = futures::stream::iter(names.to_vec())
        .map(|name| {
            let js = js.clone();
            async move {
                let s = js
                    .create_stream(async_nats::jetstream::stream::Config {
                        name: name.clone(),
                        subjects: vec![format!("{}.>", name.to_lowercase())],
                        storage: async_nats::jetstream::stream::StorageType::Memory,
                        ..Default::default()
                    })
                    .await?;
                for c in 0..consumers {
                    s.create_consumer(async_nats::jetstream::consumer::pull::Config {
                        durable_name: Some(format!("C{c}")),
                        ..Default::default()
                    })
                    .await?;
                }
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    made.into_iter().collect::<Result<Vec<_>, _>>().unwrap();
}

#[tokio::test]
async fn a_burst_of_outside_changes_lands_once_each_with_its_client() {
    use futures::StreamExt;
    const STREAMS: usize = 200;
    const CONSUMERS: usize = 2;
    let managed = NatsServer::start();
    let (app, js) = advisories_only(&managed, "burst-tool").await;
    let cluster = watched(&app, &js, &managed).await;

    let home = async_nats::connect(app.nats.url()).await.unwrap();
    let mut streams = home.subscribe("es.stream.>").await.unwrap();
    let mut consumers = home.subscribe("es.consumer.>").await.unwrap();
    home.flush().await.unwrap();
    let names: Vec<String> = (0..STREAMS).map(|i| format!("B{i:04}")).collect();
    make_burst(&js, &names, CONSUMERS).await;

    // Each change is one event with the client that made it, whatever the order.
    let events = |msgs: Vec<async_nats::Message>| -> Vec<serde_json::Value> {
        msgs.iter()
            .map(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap())
            .collect()
    };
    let created = events(receive(&mut streams, STREAMS, "stream events").await);
    let consumed = events(receive(&mut consumers, STREAMS * CONSUMERS, "consumer events").await);
    let recorded = |evs: &[serde_json::Value], kind: &str, key: &dyn Fn(&serde_json::Value) -> String| {
        let mut seen = std::collections::BTreeSet::new();
        for e in evs {
            let body = &e["payload"][kind];
            assert_eq!(body["origin"]["observed_via"], "advisory", "{e}");
            assert!(
                body["origin"]["client"].as_str().unwrap().starts_with("burst-tool"),
                "{e}"
            );
            assert!(seen.insert(key(body)), "recorded twice: {e}");
        }
        seen
    };
    let stream_names = recorded(&created, "Created", &|b| {
        b["config"]["name"].as_str().unwrap().to_string()
    });
    assert_eq!(stream_names, names.iter().cloned().collect());
    let consumer_names = recorded(&consumed, "Created", &|b| {
        format!(
            "{}/{}",
            b["stream"].as_str().unwrap(),
            b["config"]["durable_name"].as_str().unwrap()
        )
    });
    assert_eq!(consumer_names.len(), STREAMS * CONSUMERS);

    // Deleted in a burst too: each stream and each of its consumers once.
    futures::stream::iter(names.clone())
        .map(|name| {
            let js = js.clone();
            async move { js.delete_stream(&name).await.map(|_| ()) }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let deleted = events(receive(&mut streams, STREAMS, "stream deletions").await);
    let gone = events(receive(&mut consumers, STREAMS * CONSUMERS, "consumer deletions").await);
    assert_eq!(
        recorded(&deleted, "Deleted", &|b| b["name"].as_str().unwrap().to_string()).len(),
        STREAMS
    );
    assert_eq!(
        recorded(&gone, "Deleted", &|b| format!(
            "{}/{}",
            b["stream"].as_str().unwrap(),
            b["name"].as_str().unwrap()
        ))
        .len(),
        STREAMS * CONSUMERS
    );
    // Nothing more: no change recorded twice after the others.
    for name in &names {
        app.wait_kv("view_streams_v1", &format!("{cluster}.{name}"), |v| v.is_none())
            .await;
    }
    let page = app
        .data(
            "query($c: ID!) { streams(clusterId: $c, first: 5) { totalCount nodes { name } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(page["streams"]["totalCount"], 1, "{page}");
    let flush = tokio::time::timeout(Duration::from_millis(500), streams.next()).await;
    assert!(flush.is_err(), "an extra stream event: {flush:?}");
}

const ORDERED: &str =
    "query($c: ID!, $o: StreamOrderBy, $tag: String, $first: Int, $after: String, $last: Int, $before: String) {
  streams(clusterId: $c, orderBy: $o, tag: $tag, first: $first, after: $after, last: $last, before: $before) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { name } } }";

/// Advisories carry what a create made, and the console records that without asking the
/// server; a resource changed again and again before the console records it must still end
/// at what the server has, with a history that never contradicts itself.
#[tokio::test]
async fn changes_in_quick_succession_end_at_what_the_server_has() {
    use async_nats::jetstream::consumer::pull::Config;
    const ROUNDS: i64 = 25;
    let managed = NatsServer::start();
    let (app, js) = advisories_only(&managed, "churn-tool").await;
    // The console reaches the server through a proxy that holds what the server sends: the
    // advisories of every change below then reach it at once, as in a burst, and each
    // change meets the ones before it still waiting.
    let (url, hold) = holding_proxy(managed.url().trim_start_matches("nats://").to_string()).await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "PRE".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let cluster = app.register_cluster(json!({"name": "held", "urls": [url]})).await;
    app.wait_kv("view_streams_v1", &format!("{cluster}.PRE"), |v| v.is_some())
        .await;
    let home = async_nats::connect(app.nats.url()).await.unwrap();
    let mut events = home.subscribe("es.consumer.>").await.unwrap();
    home.flush().await.unwrap();
    hold.send(true).unwrap();

    let config = |max_msgs: i64| async_nats::jetstream::stream::Config {
        name: "CHURN".into(),
        subjects: vec!["churn.>".into()],
        max_messages: max_msgs,
        ..Default::default()
    };
    let stream = js.create_stream(config(1)).await.unwrap();
    // Made, removed and made again with another setting, and the stream changed between,
    // without waiting for the console: most of these meet a change still waiting.
    for round in 1..=ROUNDS {
        let durable = |max_deliver| Config {
            durable_name: Some("D".into()),
            max_deliver,
            ..Default::default()
        };
        stream.create_consumer(durable(round)).await.unwrap();
        if round < ROUNDS {
            stream.delete_consumer("D").await.unwrap();
        }
        js.update_stream(config(round + 1)).await.unwrap();
    }
    hold.send(false).unwrap();

    // The history reaches the last setting, and every step of it follows from the one before.
    use futures::StreamExt;
    let mut exists: Option<i64> = None;
    while exists != Some(ROUNDS) {
        let m = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .unwrap_or_else(|_| panic!("the consumer's history stopped at {exists:?}, not {ROUNDS}"))
            .unwrap();
        let e: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let p = &e["payload"];
        exists = if let Some(b) = p.get("Created") {
            assert_eq!(exists, None, "created while it existed: {e}");
            Some(b["config"]["max_deliver"].as_i64().unwrap())
        } else if let Some(b) = p.get("Updated") {
            assert_eq!(
                exists,
                b["before"]["max_deliver"].as_i64(),
                "updated from a setting it did not have: {e}"
            );
            Some(b["after"]["max_deliver"].as_i64().unwrap())
        } else if p.get("Deleted").is_some() {
            assert!(exists.is_some(), "deleted while it did not exist: {e}");
            None
        } else {
            panic!("an unexpected event: {e}")
        };
        assert_eq!(
            p.as_object().unwrap().values().next().unwrap()["origin"]["client"]
                .as_str()
                .map(|c| c.starts_with("churn-tool")),
            Some(true),
            "{e}"
        );
    }
    // Nothing older is recorded after it, and the views say what the server has.
    let late = tokio::time::timeout(Duration::from_millis(500), events.next()).await;
    assert!(late.is_err(), "recorded after the last change: {late:?}");
    let key = format!("{cluster}.CHURN");
    app.wait_kv("view_streams_v1", &key, |v| {
        v.is_some_and(|v| v["config"]["max_msgs"] == ROUNDS + 1)
    })
    .await;
    app.wait_kv("view_consumers_v1", &format!("{key}.D"), |v| {
        v.is_some_and(|v| v["config"]["max_deliver"] == ROUNDS)
    })
    .await;
    let d = app
        .data(
            "query($c: ID!) { stream(clusterId: $c, name: \"CHURN\") { config { maxMsgs } } \
             consumer(clusterId: $c, stream: \"CHURN\", name: \"D\") { config { maxDeliver } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(d["stream"]["config"]["maxMsgs"], ROUNDS + 1, "{d}");
    assert_eq!(d["consumer"]["config"]["maxDeliver"], ROUNDS, "{d}");
}

fn names(page: &serde_json::Value) -> Vec<String> {
    page["streams"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn streams_are_ordered_by_their_state_filtered_by_tag_and_paged_by_cursor() {
    let managed = NatsServer::start();
    let app = TestApp::spawn_with(NatsServer::start(), |c| {
        c.monitoring.interval = Duration::from_millis(200);
    })
    .await;
    let cluster = app
        .register_cluster(json!({"name": "ordered", "urls": [managed.url()]}))
        .await;
    let js = managed.jetstream().await;
    // Messages: B 20, D 10, E 10, A 5, C 0; B has a consumer 20 behind; E is tagged.
    for (name, messages) in [("A", 5), ("B", 20), ("C", 0), ("D", 10), ("E", 10)] {
        let mut metadata = std::collections::HashMap::new();
        if name == "E" {
            metadata.insert("team".to_string(), "payments".to_string());
        }
        js.create_stream(async_nats::jetstream::stream::Config {
            name: name.into(),
            subjects: vec![format!("{}.>", name.to_lowercase())],
            metadata,
            ..Default::default()
        })
        .await
        .unwrap();
        if name == "B" {
            js.get_stream("B")
                .await
                .unwrap()
                .create_consumer(async_nats::jetstream::consumer::pull::Config {
                    durable_name: Some("slow".into()),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        for _ in 0..messages {
            js.publish(format!("{}.x", name.to_lowercase()), "m".into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        app.wait_kv("view_streams_v1", &format!("{cluster}.{name}"), |v| v.is_some())
            .await;
    }
    // A sample that has E's last message has every other's (one sample reads them all).
    let mut live = app
        .subscribe(
            "graphql-transport-ws",
            "subscription($s: [MetricSeriesInput!]!) { metricsLive(series: $s) { value } }",
            json!({"s": [{"metric": "STREAM_MESSAGES", "clusterId": cluster, "stream": "E"}]}),
        )
        .await;
    while live.next_data().await["metricsLive"]["value"].as_f64() != Some(10.0) {}

    let ask = |vars: serde_json::Value| {
        let mut v = json!({"c": cluster});
        v.as_object_mut().unwrap().extend(vars.as_object().unwrap().clone());
        v
    };
    let by = |field: &str, direction: &str| json!({"field": field, "direction": direction});
    let all = app.data(ORDERED, ask(json!({"o": by("MESSAGES", "DESC")}))).await;
    assert_eq!(names(&all), ["B", "D", "E", "A", "C"], "ties by name");
    assert_eq!(all["streams"]["totalCount"], 5);
    let up = app.data(ORDERED, ask(json!({"o": by("MESSAGES", "ASC")}))).await;
    assert_eq!(names(&up), ["C", "A", "D", "E", "B"]);
    let lag = app.data(ORDERED, ask(json!({"o": by("CONSUMER_LAG", "DESC")}))).await;
    assert_eq!(names(&lag), ["B", "A", "C", "D", "E"]);
    let by_name = app.data(ORDERED, ask(json!({"o": by("NAME", "DESC")}))).await;
    assert_eq!(names(&by_name), ["E", "D", "C", "B", "A"]);

    // Paged forward and back by cursor, in state order and by name descending.
    for (order, whole) in [
        (by("MESSAGES", "DESC"), names(&all)),
        (by("NAME", "DESC"), names(&by_name)),
    ] {
        let mut seen = Vec::new();
        let mut after = serde_json::Value::Null;
        loop {
            let page = app
                .data(ORDERED, ask(json!({"o": order, "first": 2, "after": after})))
                .await;
            assert_eq!(
                page["streams"]["pageInfo"]["hasPreviousPage"],
                !seen.is_empty(),
                "{page}"
            );
            seen.extend(names(&page));
            if page["streams"]["pageInfo"]["hasNextPage"] == false {
                break;
            }
            after = page["streams"]["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(seen, whole, "forward by 2 in {order}");
        let mut back: Vec<String> = Vec::new();
        let mut before = serde_json::Value::Null;
        loop {
            let page = app
                .data(ORDERED, ask(json!({"o": order, "last": 2, "before": before})))
                .await;
            assert_eq!(page["streams"]["pageInfo"]["hasNextPage"], !back.is_empty(), "{page}");
            let mut got = names(&page);
            got.append(&mut back);
            back = got;
            if page["streams"]["pageInfo"]["hasPreviousPage"] == false {
                break;
            }
            before = page["streams"]["pageInfo"]["startCursor"].clone();
        }
        assert_eq!(back, whole, "backward by 2 in {order}");
    }

    // A cursor is a place in its order: one of another order is refused.
    let first = app
        .data(ORDERED, ask(json!({"o": by("MESSAGES", "DESC"), "first": 1})))
        .await;
    let cursor = first["streams"]["pageInfo"]["endCursor"].clone();
    let (code, message) = app
        .error(ORDERED, ask(json!({"o": by("BYTES", "DESC"), "after": cursor})))
        .await;
    assert_eq!(code, "VALIDATION", "{message}");

    // Tags: a metadata key, or key=value.
    for (tag, expected) in [
        ("team", vec!["E"]),
        ("team=payments", vec!["E"]),
        ("team=billing", vec![]),
    ] {
        let page = app
            .data(ORDERED, ask(json!({"tag": tag, "o": by("MESSAGES", "DESC")})))
            .await;
        assert_eq!(names(&page), expected, "tag {tag}");
        assert_eq!(page["streams"]["totalCount"], expected.len());
    }

    // Without the collector: what the live state has (messages, bytes, consumers,
    // storage), and a clear refusal for what only samples have (rates, lag).
    let quiet = TestApp::spawn_with(NatsServer::start(), |c| c.monitoring.collect = false).await;
    let other = quiet
        .register_cluster(json!({"name": "quiet", "urls": [managed.url()]}))
        .await;
    for name in ["A", "B", "C", "D", "E"] {
        quiet
            .wait_kv("view_streams_v1", &format!("{other}.{name}"), |v| v.is_some())
            .await;
    }
    let live = quiet
        .data(ORDERED, json!({"c": other, "o": by("MESSAGES", "DESC")}))
        .await;
    assert_eq!(names(&live), ["B", "D", "E", "A", "C"]);
    let (code, message) = quiet
        .error(ORDERED, json!({"c": other, "o": by("CONSUMER_LAG", "DESC")}))
        .await;
    assert_eq!(code, "UNAVAILABLE", "{message}");
    assert!(message.contains("order by NAME, MESSAGES"), "{message}");
}

#[tokio::test]
async fn outside_changes_past_a_full_queue_are_reconciled_once_each_not_lost() {
    use futures::StreamExt;
    const STREAMS: usize = 60;
    let managed = NatsServer::start();
    // A queue of one: a burst overflows it (how often depends on timing), and what the
    // advisories could not queue, a reconcile finds.
    let app = TestApp::spawn_with(NatsServer::start(), |c| {
        c.reconcile_interval = Duration::from_secs(3600);
        c.outside_changes_queue = 1;
    })
    .await;
    let js = managed.jetstream().await;
    watched(&app, &js, &managed).await;
    let home = async_nats::connect(app.nats.url()).await.unwrap();
    let mut events = home.subscribe("es.stream.>").await.unwrap();
    home.flush().await.unwrap();
    let names: Vec<String> = (0..STREAMS).map(|i| format!("F{i:03}")).collect();
    make_burst(&js, &names, 0).await;
    let got = receive(&mut events, STREAMS, "stream events").await;
    let mut seen = std::collections::BTreeSet::new();
    for m in &got {
        let e: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let created = &e["payload"]["Created"];
        let via = created["origin"]["observed_via"].as_str().unwrap();
        assert!(via == "advisory" || via == "reconcile", "{e}");
        assert!(
            seen.insert(created["config"]["name"].as_str().unwrap().to_string()),
            "recorded twice: {e}"
        );
    }
    assert_eq!(seen, names.iter().cloned().collect());
    let extra = tokio::time::timeout(Duration::from_millis(500), events.next()).await;
    assert!(extra.is_err(), "an extra stream event: {extra:?}");
}
