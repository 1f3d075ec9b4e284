//! Streams and consumers through GraphQL against a real managed nats-server, checked on the
//! server itself with async-nats, and changes made outside the console.

use std::time::Duration;

use async_nats::jetstream;
use jsc_testkit::{NatsServer, TestApp, gql};
use serde_json::{Value, json};

const STREAM_FIELDS: &str = "name provenance { version updatedBy lastChange lastChangeExternal } \
    config { name subjects retention storage replicas maxMsgs maxBytes maxAge maxMsgsPerSubject maxMsgSize discard \
             duplicateWindow compression allowDirect allowRollup denyDelete denyPurge sealed allowMsgTtl description \
             metadata { key value } } \
    state { messages bytes firstSeq lastSeq consumerCount }";

#[tokio::test]
async fn stream_lifecycle_through_graphql_is_real_on_the_server_and_in_the_history() {
    let app = TestApp::spawn().await;
    let managed = NatsServer::start();
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    let js = managed.jetstream().await;

    let created = app
        .data(
            &format!(
                "mutation($c: ID!) {{ createStream(input: {{clusterId: $c, config: {{
                    name: \"ORDERS\", subjects: [\"orders.>\"], description: \"all orders\",
                    retention: LIMITS, storage: FILE, maxMsgs: 1000, maxBytes: 1048576, maxAge: \"1h\",
                    maxMsgsPerSubject: 100, maxMsgSize: 4096, discard: OLD, duplicateWindow: \"2m\",
                    compression: S2, allowDirect: true, allowRollup: true, allowMsgTtl: true,
                    metadata: [{{key: \"team\", value: \"core\"}}] }}}}) {{ stream {{ {STREAM_FIELDS} }} }} }}"
            ),
            json!({"c": cluster}),
        )
        .await["createStream"]["stream"]
        .clone();
    assert_eq!(created["config"]["maxAge"], "1h");
    assert_eq!(created["config"]["compression"], "S2");
    assert_eq!(created["state"]["messages"], 0);
    assert_eq!(created["provenance"]["updatedBy"], app.owner_actor().as_str());

    // On the server, as JetStream itself reports it.
    let mut stream = js.get_stream("ORDERS").await.unwrap();
    let cfg = stream.info().await.unwrap().config.clone();
    assert_eq!(cfg.subjects, vec!["orders.>"]);
    assert_eq!(cfg.max_messages, 1000);
    assert_eq!(cfg.max_bytes, 1_048_576);
    assert_eq!(cfg.max_age, Duration::from_secs(3600));
    assert_eq!(cfg.max_messages_per_subject, 100);
    assert_eq!(cfg.max_message_size, 4096);
    assert_eq!(cfg.duplicate_window, Duration::from_secs(120));
    assert_eq!(cfg.compression, Some(jetstream::stream::Compression::S2));
    assert!(cfg.allow_direct && cfg.allow_rollup && cfg.allow_message_ttl);
    assert_eq!(cfg.metadata.get("team").map(String::as_str), Some("core"));

    // Update: only the fields given change.
    let updated = app
        .data(
            "mutation($c: ID!) { updateStream(input: {clusterId: $c, name: \"ORDERS\", config: {maxMsgs: 2000, description: \"v2\"}}) { stream { config { maxMsgs maxAge description } provenance { version } } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(updated["updateStream"]["stream"]["config"]["maxMsgs"], 2000);
    assert_eq!(updated["updateStream"]["stream"]["config"]["maxAge"], "1h");
    let cfg = stream.info().await.unwrap().config.clone();
    assert_eq!(cfg.max_messages, 2000);
    assert_eq!(cfg.description.as_deref(), Some("v2"));

    // A field the server cannot change is refused first, naming it.
    let (code, message) = app
        .error(
            "mutation($c: ID!) { updateStream(input: {clusterId: $c, name: \"ORDERS\", config: {storage: MEMORY}}) { stream { name } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code, "VALIDATION");
    assert!(message.starts_with("storage:"), "{message}");
    assert_eq!(
        stream.info().await.unwrap().config.storage,
        jetstream::stream::StorageType::File
    );

    // Publish, as text with a header and as base64.
    let ack = app
        .data(
            "mutation($c: ID!) { publishMessage(input: {clusterId: $c, stream: \"ORDERS\", subject: \"orders.eu\", payload: \"hello\", headers: [{name: \"X-Trace\", value: \"t1\"}]}) { ack { stream sequence duplicate } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(
        ack["publishMessage"]["ack"],
        json!({"stream": "ORDERS", "sequence": 1, "duplicate": false})
    );
    let ack = app
        .data(
            "mutation($c: ID!) { publishMessage(input: {clusterId: $c, stream: \"ORDERS\", subject: \"orders.us\", payloadBase64: \"AAEC\"}) { ack { sequence } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(ack["publishMessage"]["ack"]["sequence"], 2);
    let first = stream.direct_get(1).await.unwrap();
    assert_eq!(&first.payload[..], b"hello");
    assert_eq!(first.headers.get("X-Trace").unwrap().as_str(), "t1");
    assert_eq!(&stream.direct_get(2).await.unwrap().payload[..], &[0u8, 1, 2]);
    app.data(
        "mutation($c: ID!) { publishMessage(input: {clusterId: $c, stream: \"ORDERS\", subject: \"orders.eu\", payload: \"again\"}) { ack { sequence } } }",
        json!({"c": cluster}),
    )
    .await;
    // A header NATS cannot carry is refused, not a crash.
    let (code, message) = app
        .error(
            "mutation($c: ID!) { publishMessage(input: {clusterId: $c, stream: \"ORDERS\", subject: \"orders.eu\", payload: \"x\", headers: [{name: \"X Trace\", value: \"1\"}]}) { ack { sequence } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code, "VALIDATION");
    assert!(message.contains("not a valid header name"), "{message}");
    // A subject the stream does not hold is refused by the server.
    let (code, _) = app
        .error(
            "mutation($c: ID!) { publishMessage(input: {clusterId: $c, stream: \"ORDERS\", subject: \"invoices.1\", payload: \"x\"}) { ack { sequence } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code, "VALIDATION");

    // The list and the detail show live state.
    let listed = app
        .data(
            "query($c: ID!) { streams(clusterId: $c, nameContains: \"ord\") { totalCount nodes { name state { messages lastSeq } } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(listed["streams"]["totalCount"], 1);
    assert_eq!(listed["streams"]["nodes"][0]["state"]["messages"], 3);

    // Purge by subject, then keep 1.
    let purged = app
        .data(
            "mutation($c: ID!) { purgeStream(input: {clusterId: $c, name: \"ORDERS\", subject: \"orders.us\"}) { purged } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(purged["purgeStream"]["purged"], 1);
    let purged = app
        .data(
            "mutation($c: ID!) { purgeStream(input: {clusterId: $c, name: \"ORDERS\", keep: 1}) { purged } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(purged["purgeStream"]["purged"], 1);
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    let purged = app
        .data(
            "mutation($c: ID!) { purgeStream(input: {clusterId: $c, name: \"ORDERS\", upToSequence: 4}) { purged } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(purged["purgeStream"]["purged"], 1);
    assert_eq!(stream.info().await.unwrap().state.messages, 0);

    // Seal: no more messages.
    let sealed = app
        .data(
            "mutation($c: ID!) { sealStream(input: {clusterId: $c, name: \"ORDERS\"}) { stream { config { sealed } provenance { lastChange } } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(sealed["sealStream"]["stream"]["config"]["sealed"], true);
    assert!(stream.info().await.unwrap().config.sealed);
    let (code, message) = app
        .error(
            "mutation($c: ID!) { publishMessage(input: {clusterId: $c, stream: \"ORDERS\", subject: \"orders.eu\", payload: \"x\"}) { ack { sequence } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code, "VALIDATION");
    assert!(message.contains("sealed"), "{message}");

    // Delete needs the name repeated.
    let (code, message) = app
        .error(
            "mutation($c: ID!) { deleteStream(input: {clusterId: $c, name: \"ORDERS\", confirmName: \"orders\"}) { name } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code, "VALIDATION");
    assert!(message.contains("confirm"), "{message}");
    assert!(js.get_stream("ORDERS").await.is_ok());
    app.data(
        "mutation($c: ID!) { deleteStream(input: {clusterId: $c, name: \"ORDERS\", confirmName: \"ORDERS\"}) { name } }",
        json!({"c": cluster}),
    )
    .await;
    assert!(
        js.get_stream("ORDERS").await.is_err(),
        "the stream is gone from the server"
    );
    let (code, _) = app
        .error(
            "query($c: ID!) { stream(clusterId: $c, name: \"ORDERS\") { name } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");

    // Every change is in the history, once, with before and after where it applies.
    let history = app.events(Some("stream")).await;
    let types: Vec<&str> = history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "StreamCreated",
            "StreamUpdated",
            "MessagePublished",
            "MessagePublished",
            "MessagePublished",
            "StreamPurged",
            "StreamPurged",
            "StreamPurged",
            "StreamSealed",
            "StreamDeleted"
        ]
    );
    let update = &history[1].payload["Updated"];
    assert_eq!(update["before"]["max_msgs"], 1000);
    assert_eq!(update["after"]["max_msgs"], 2000);
    assert_eq!(update["origin"]["kind"], "console");
    let published = &history[2].payload["MessagePublished"]["message"];
    assert_eq!(published["subject"], "orders.eu");
    assert_eq!(published["header_names"], json!(["X-Trace"]));
    assert!(
        !history[2].payload.to_string().contains("hello"),
        "payloads are not stored in the history"
    );
}

#[tokio::test]
async fn consumer_lifecycle_through_graphql() {
    let app = TestApp::spawn().await;
    let managed = NatsServer::start();
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    let js = managed.jetstream().await;
    app.create_stream(&cluster, "JOBS", &["jobs.>"]).await;
    for i in 0..3 {
        js.publish(format!("jobs.{i}"), "x".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let pull = app
        .data(
            "mutation($c: ID!) { createConsumer(input: {clusterId: $c, stream: \"JOBS\", config: {
                durableName: \"workers\", description: \"pull\", deliverPolicy: BY_START_SEQUENCE, optStartSeq: 2,
                ackPolicy: EXPLICIT, maxDeliver: 5, backoff: [\"1s\", \"2s\"],
                filterSubjects: [\"jobs.1\", \"jobs.2\"], replayPolicy: INSTANT, maxAckPending: 50, maxWaiting: 16,
                headersOnly: false, metadata: [{key: \"owner\", value: \"ops\"}] }})
              { consumer { name config { deliverPolicy optStartSeq ackWait backoff filterSubjects maxAckPending isPush }
                state { pending ackPending waiting } } } }",
            json!({"c": cluster}),
        )
        .await["createConsumer"]["consumer"]
        .clone();
    // With a backoff, JetStream waits the first backoff delay for the first ack.
    assert_eq!(pull["config"]["ackWait"], "1s");
    assert_eq!(pull["config"]["backoff"], json!(["1s", "2s"]));
    assert_eq!(pull["config"]["isPush"], false);
    assert_eq!(
        pull["state"]["pending"], 2,
        "messages 2 and 3 match the filters from sequence 2"
    );

    let stream = js.get_stream("JOBS").await.unwrap();
    let mut consumer: jetstream::consumer::PullConsumer = stream.get_consumer("workers").await.unwrap();
    let info = consumer.info().await.unwrap().clone();
    assert_eq!(info.config.ack_wait, Duration::from_secs(1));
    assert_eq!(info.config.max_deliver, 5);
    assert_eq!(info.config.max_ack_pending, 50);
    assert_eq!(info.config.filter_subjects, vec!["jobs.1", "jobs.2"]);
    assert_eq!(
        info.config.backoff,
        vec![Duration::from_secs(1), Duration::from_secs(2)]
    );

    let push = app
        .data(
            "mutation($c: ID!) { createConsumer(input: {clusterId: $c, stream: \"JOBS\", config: {
                durableName: \"pusher\", deliverSubject: \"deliver.pusher\", deliverGroup: \"g\", flowControl: true,
                idleHeartbeat: \"5s\", deliverPolicy: LAST, ackPolicy: EXPLICIT, rateLimitBps: 1000000 }})
              { consumer { config { isPush deliverSubject idleHeartbeat flowControl rateLimitBps } } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(push["createConsumer"]["consumer"]["config"]["isPush"], true);
    let push_info = stream
        .get_consumer::<jetstream::consumer::push::Config>("pusher")
        .await
        .unwrap()
        .cached_info()
        .clone();
    assert_eq!(push_info.config.deliver_subject.as_deref(), Some("deliver.pusher"));

    // Update what may change; what may not is refused.
    let updated = app
        .data(
            "mutation($c: ID!) { updateConsumer(input: {clusterId: $c, stream: \"JOBS\", name: \"workers\", config: {maxAckPending: 80, description: \"v2\"}}) { consumer { config { maxAckPending description ackWait } } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(updated["updateConsumer"]["consumer"]["config"]["maxAckPending"], 80);
    assert_eq!(updated["updateConsumer"]["consumer"]["config"]["ackWait"], "1s");
    assert_eq!(consumer.info().await.unwrap().config.max_ack_pending, 80);
    let (code, message) = app
        .error(
            "mutation($c: ID!) { updateConsumer(input: {clusterId: $c, stream: \"JOBS\", name: \"workers\", config: {ackPolicy: NONE}}) { consumer { name } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code, "VALIDATION");
    assert!(message.starts_with("ackPolicy"), "{message}");

    // Pause and resume.
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let paused = app
        .data(
            "mutation($c: ID!, $u: DateTime!) { pauseConsumer(input: {clusterId: $c, stream: \"JOBS\", name: \"workers\", until: $u}) { consumer { config { pauseUntil } state { paused } } } }",
            json!({"c": cluster, "u": until}),
        )
        .await;
    assert_eq!(paused["pauseConsumer"]["consumer"]["state"]["paused"], true);
    assert!(consumer.info().await.unwrap().paused);
    let resumed = app
        .data(
            "mutation($c: ID!) { resumeConsumer(input: {clusterId: $c, stream: \"JOBS\", name: \"workers\"}) { consumer { config { pauseUntil } state { paused } } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(resumed["resumeConsumer"]["consumer"]["state"]["paused"], false);
    assert!(!consumer.info().await.unwrap().paused);
    let (code, _) = app
        .error(
            "mutation($c: ID!) { pauseConsumer(input: {clusterId: $c, stream: \"JOBS\", name: \"workers\", until: \"2001-01-01T00:00:00Z\"}) { consumer { name } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code, "VALIDATION", "a pause in the past is refused");

    // The stream shows its consumers; one consumer by name.
    let detail = app
        .data(
            "query($c: ID!) { stream(clusterId: $c, name: \"JOBS\") { consumers { nodes { name } } } consumer(clusterId: $c, stream: \"JOBS\", name: \"workers\") { config { description } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(
        detail["stream"]["consumers"]["nodes"],
        json!([{"name": "pusher"}, {"name": "workers"}])
    );
    assert_eq!(detail["consumer"]["config"]["description"], "v2");

    app.data(
        "mutation($c: ID!) { deleteConsumer(input: {clusterId: $c, stream: \"JOBS\", name: \"pusher\"}) { name } }",
        json!({"c": cluster}),
    )
    .await;
    assert!(
        stream
            .get_consumer::<jetstream::consumer::push::Config>("pusher")
            .await
            .is_err()
    );

    // Deleting the stream records its consumers' end too.
    app.data(
        "mutation($c: ID!) { deleteStream(input: {clusterId: $c, name: \"JOBS\", confirmName: \"JOBS\"}) { name } }",
        json!({"c": cluster}),
    )
    .await;
    let history = app.events(Some("consumer")).await;
    let types: Vec<&str> = history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "ConsumerCreated",
            "ConsumerCreated",
            "ConsumerUpdated",
            "ConsumerPaused",
            "ConsumerResumed",
            "ConsumerDeleted",
            "ConsumerDeleted"
        ]
    );
    assert!(history.iter().all(|e| !e.payload.to_string().contains("\"external\"")));
}

#[tokio::test]
async fn changes_made_outside_the_console_land_in_the_history_once() {
    let app = TestApp::spawn().await;
    let managed = NatsServer::start();
    // A stream that existed before the cluster was registered.
    let outside = async_nats::ConnectOptions::new()
        .name("nats-cli-test")
        .connect(managed.url())
        .await
        .unwrap();
    let js = jetstream::new(outside);
    js.create_stream(jetstream::stream::Config {
        name: "PRE".into(),
        subjects: vec!["pre.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    let key = |s: &str| format!("{cluster}.{s}");
    app.wait_kv("view_streams_v1", &key("PRE"), |v| v.is_some()).await;

    // A stream made by the console: recorded once, not echoed from its advisory.
    app.create_stream(&cluster, "MINE", &["mine.>"]).await;

    // Created, edited and deleted outside: each shows up, marked external, with the client.
    js.create_stream(jetstream::stream::Config {
        name: "EXT".into(),
        subjects: vec!["ext.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    app.wait_kv("view_streams_v1", &key("EXT"), |v| v.is_some()).await;
    js.update_stream(jetstream::stream::Config {
        name: "EXT".into(),
        subjects: vec!["ext.>".into()],
        max_messages: 42,
        ..Default::default()
    })
    .await
    .unwrap();
    app.wait_kv("view_streams_v1", &key("EXT"), |v| {
        v.is_some_and(|v| v["config"]["max_msgs"] == 42)
    })
    .await;
    let stream = js.get_stream("EXT").await.unwrap();
    // An ephemeral (ordered) consumer is a client's, not a managed resource: not recorded.
    let _ordered = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("outside".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    app.wait_kv("view_consumers_v1", &format!("{cluster}.EXT.outside"), |v| v.is_some())
        .await;
    let detail = app
        .data(
            "query($c: ID!) { stream(clusterId: $c, name: \"EXT\") { provenance { updatedBy lastChangeExternal lastChangeClient } config { maxMsgs } consumers { nodes { name provenance { updatedBy } } } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(detail["stream"]["provenance"]["lastChangeExternal"], true);
    assert_eq!(detail["stream"]["config"]["maxMsgs"], 42);
    assert!(
        detail["stream"]["provenance"]["updatedBy"]
            .as_str()
            .unwrap()
            .starts_with("external:nats-cli-test"),
        "{detail}"
    );
    assert!(
        detail["stream"]["provenance"]["lastChangeClient"]
            .as_str()
            .unwrap()
            .starts_with("nats-cli-test")
    );
    assert_eq!(detail["stream"]["consumers"]["nodes"][0]["name"], "outside");

    js.delete_stream("EXT").await.unwrap();
    app.wait_kv("view_streams_v1", &key("EXT"), |v| v.is_none()).await;
    app.wait_kv("view_consumers_v1", &format!("{cluster}.EXT.outside"), |v| v.is_none())
        .await;

    let history = app.events(Some("stream")).await;
    let summary: Vec<(String, String, bool)> = history
        .iter()
        .map(|e| {
            let (_, body) = e.payload.as_object().unwrap().iter().next().unwrap();
            let name = body["config"]["name"]
                .as_str()
                .or(body["after"]["name"].as_str())
                .or(body["name"].as_str())
                .unwrap_or_default()
                .to_string();
            (e.event_type.clone(), name, body["origin"]["kind"] == "external")
        })
        .collect();
    let expected: Vec<(String, String, bool)> = [
        ("StreamCreated", "PRE", true),
        ("StreamCreated", "MINE", false),
        ("StreamCreated", "EXT", true),
        ("StreamUpdated", "EXT", true),
        ("StreamDeleted", "EXT", true),
    ]
    .iter()
    .map(|(t, n, x)| (t.to_string(), n.to_string(), *x))
    .collect();
    assert_eq!(summary, expected);
    let ext_update = &history[3].payload["Updated"]["origin"];
    assert_eq!(ext_update["observed_via"], "advisory");
    assert!(ext_update["client"].as_str().unwrap().starts_with("nats-cli-test"));
    let consumer_history = app.events(Some("consumer")).await;
    let types: Vec<&str> = consumer_history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, vec!["ConsumerCreated", "ConsumerDeleted"]);
}

#[tokio::test]
async fn bad_stream_and_consumer_input_is_refused_clearly() {
    let app = TestApp::spawn().await;
    let managed = NatsServer::start();
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    let create = gql::CREATE_STREAM;
    let cases = [
        (json!({"name": "a.b", "subjects": ["x"]}), "name:"),
        (json!({"name": "with space"}), "white space"),
        (json!({"name": "S", "subjects": ["a..b"]}), "not a valid subject"),
        (json!({"name": "S", "subjects": ["a.>", "a.b"]}), "overlap"),
        (json!({"name": "S", "subjects": ["a.b*"]}), "'*' must be a whole token"),
        (json!({"name": "S", "maxAge": "5 minutes"}), "unknown unit"),
        (json!({"name": "S", "replicas": 9}), "replicas"),
        (json!({"subjects": ["x"]}), "name: give the stream a name"),
    ];
    for (cfg, expected) in cases {
        let (code, message) = app.error(create, json!({"c": cluster, "cfg": cfg})).await;
        assert_eq!(code, "VALIDATION", "{cfg}: {message}");
        assert!(message.contains(expected), "{cfg}: {message}");
    }
    // Overlap with another stream on the server: the server's own words.
    app.create_stream(&cluster, "A", &["shared.>"]).await;
    let (code, message) = app
        .error(
            create,
            json!({"c": cluster, "cfg": {"name": "B", "subjects": ["shared.x"]}}),
        )
        .await;
    assert_eq!(code, "VALIDATION");
    assert!(message.contains("overlap"), "{message}");
    // Creating an existing stream again is a conflict.
    let (code, _) = app
        .error(
            create,
            json!({"c": cluster, "cfg": {"name": "A", "subjects": ["shared.>"]}}),
        )
        .await;
    assert_eq!(code, "CONFLICT");

    let consumer = "mutation($c: ID!, $cfg: ConsumerConfigInput!) { createConsumer(input: {clusterId: $c, stream: \"A\", config: $cfg}) { consumer { name } } }";
    for (cfg, expected) in [
        (json!({"durableName": "c.1"}), "durableName"),
        (
            json!({"durableName": "c1", "deliverPolicy": "BY_START_SEQUENCE"}),
            "optStartSeq",
        ),
        (json!({"durableName": "c1", "flowControl": true}), "push consumers"),
        (
            json!({"durableName": "c1", "filterSubjects": ["shared.>", "shared.x"]}),
            "overlap",
        ),
        (
            json!({"durableName": "c1", "maxDeliver": 1, "backoff": ["1s", "2s"]}),
            "maxDeliver",
        ),
    ] {
        let (code, message) = app.error(consumer, json!({"c": cluster, "cfg": cfg})).await;
        assert_eq!(code, "VALIDATION", "{cfg}: {message}");
        assert!(message.contains(expected), "{cfg}: {message}");
    }

    // Unknown cluster, unknown stream.
    let (code, _) = app
        .error(create, json!({"c": "no-such-cluster", "cfg": {"name": "X"}}))
        .await;
    assert_eq!(code, "NOT_FOUND");
    let (code, _) = app
        .error(
            "mutation($c: ID!) { createConsumer(input: {clusterId: $c, stream: \"NOPE\", config: {durableName: \"c\"}}) { consumer { name } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    assert_eq!(
        app.events(Some("consumer")).await.len(),
        0,
        "nothing refused was recorded"
    );
}

#[tokio::test]
async fn a_cluster_that_is_down_is_unavailable() {
    let app = TestApp::spawn().await;
    let mut managed = NatsServer::start();
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    app.create_stream(&cluster, "S", &[]).await;
    managed.stop();
    let (code, message) = app
        .error(
            "mutation($c: ID!) { updateStream(input: {clusterId: $c, name: \"S\", config: {maxMsgs: 5}}) { stream { name } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code, "UNAVAILABLE", "{message}");
    // The configuration is still readable from the history; live state says why it is missing.
    let body = app
        .graphql(
            "query($c: ID!) { stream(clusterId: $c, name: \"S\") { name config { maxMsgs } state { messages } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(body["data"]["stream"]["name"], "S");
    assert_eq!(body["data"]["stream"]["config"]["maxMsgs"], -1);
    assert_eq!(jsc_testkit::code(&body), "UNAVAILABLE");
}

#[tokio::test]
async fn pausing_on_a_server_that_cannot_pause_says_which_version_is_needed() {
    let app = TestApp::spawn().await;
    let old = NatsServer::start_2_10();
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [old.url()]}))
        .await;
    app.create_stream(&cluster, "OLD", &[]).await;
    app.create_consumer(&cluster, "OLD", "c").await;
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (code, message) = app
        .error(
            "mutation($c: ID!, $u: DateTime!) { pauseConsumer(input: {clusterId: $c, stream: \"OLD\", name: \"c\", until: $u}) { consumer { name } } }",
            json!({"c": cluster, "u": until}),
        )
        .await;
    assert_eq!(code, "VALIDATION");
    assert!(message.contains("2.11") && message.contains("2.10.26"), "{message}");
}

#[tokio::test]
async fn cluster_detail_shows_server_account_and_streams() {
    let app = TestApp::spawn().await;
    let managed = NatsServer::start();
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    app.create_stream(&cluster, "D", &["d.>"]).await;
    let detail = app
        .data(
            "query($c: ID!) { cluster(id: $c) { server { version jetstream healthy rttMs maxPayload } jetstreamAccount { streams maxStreams } streams { totalCount nodes { name state { messages } } } } }",
            json!({"c": cluster}),
        )
        .await;
    let c = &detail["cluster"];
    assert_eq!(c["server"]["version"], "2.15.1");
    assert_eq!(c["server"]["healthy"], true);
    assert_eq!(c["jetstreamAccount"]["streams"], 1);
    assert_eq!(c["streams"]["totalCount"], 1);
    assert_eq!(c["streams"]["nodes"][0]["state"]["messages"], 0);
}

#[tokio::test]
async fn stream_changed_reports_configuration_and_state_changes() {
    let app = TestApp::spawn().await;
    let managed = NatsServer::start();
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    app.create_stream(&cluster, "LIVE", &["live.>"]).await;
    let mut sub = app
        .subscribe(
            "graphql-transport-ws",
            "subscription($c: ID!) { streamChanged(clusterId: $c, includeState: true, stateInterval: \"250ms\") { kind name stream { config { maxMsgs } } state { messages } } }",
            json!({"c": cluster}),
        )
        .await;
    // State: publish from outside and wait for the sampler to notice.
    let js = managed.jetstream().await;
    js.publish("live.1", "x".into()).await.unwrap().await.unwrap();
    // The first STATE is the state at subscription time (0 or, if the sampler was slower
    // than the publish, already 1); a later one must show the message.
    loop {
        let change = sub.next_data().await;
        assert_eq!(change["streamChanged"]["kind"], "STATE");
        if change["streamChanged"]["state"]["messages"] == 1 {
            break;
        }
    }
    // Configuration.
    app.data(
        "mutation($c: ID!) { updateStream(input: {clusterId: $c, name: \"LIVE\", config: {maxMsgs: 7}}) { stream { name } } }",
        json!({"c": cluster}),
    )
    .await;
    loop {
        let change = sub.next_data().await;
        if change["streamChanged"]["kind"] == "UPDATED" {
            assert_eq!(change["streamChanged"]["stream"]["config"]["maxMsgs"], 7);
            break;
        }
    }
    // A message published through the console is a publish, not a configuration change.
    app.data(
        "mutation($c: ID!) { publishMessage(input: {clusterId: $c, stream: \"LIVE\", subject: \"live.2\", payload: \"y\"}) { ack { sequence } } }",
        json!({"c": cluster}),
    )
    .await;
    loop {
        let change = sub.next_data().await;
        let kind = change["streamChanged"]["kind"].as_str().unwrap().to_string();
        assert_ne!(kind, "UPDATED", "a publish is not an update: {change}");
        if kind == "PUBLISHED" {
            assert_eq!(change["streamChanged"]["stream"]["config"]["maxMsgs"], 7);
            break;
        }
    }
}

#[tokio::test]
async fn the_consoles_own_streams_are_not_managed_resources() {
    let app = TestApp::spawn().await;
    // A stream of the user's on the console's own server, made before it is registered:
    // the first reconcile records it, after the console's own streams (they sort first).
    let js = app.nats.jetstream().await;
    js.create_stream(jetstream::stream::Config {
        name: "USER".into(),
        subjects: vec!["user.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [app.nats.url()]}))
        .await;
    app.wait_kv("view_streams_v1", &format!("{cluster}.USER"), |v| v.is_some())
        .await;
    // The console answers from its in-memory copy of the view: let it catch up with the bucket.
    let js = app.nats.jetstream().await;
    let entry = js
        .get_key_value("view_streams_v1")
        .await
        .unwrap()
        .get(format!("{cluster}.USER"))
        .await
        .unwrap()
        .unwrap();
    let seq = serde_json::from_slice::<Value>(&entry).unwrap()["last_sequence"]
        .as_u64()
        .unwrap();
    assert!(
        app.console
            .wait_for_view(jsc_projections::Projection::Streams, seq, Duration::from_secs(10))
            .await
    );
    let names: Vec<String> = app
        .data(
            "query($c: ID!) { streams(clusterId: $c) { nodes { name } } }",
            json!({"c": cluster}),
        )
        .await["streams"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        vec!["USER"],
        "{} and the KV_* buckets are the console's own",
        app.event_config().stream
    );
}
