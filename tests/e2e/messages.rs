//! Messages through GraphQL against real managed nats-servers (2.15 and 2.10): pages both
//! ways on both read paths, starts by sequence, time and end, cursors across a purge,
//! decoding, one message, subjects, and streams left exactly as they were.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use jsc_testkit::{NatsServer, TestApp, code, gql};
use serde_json::{Value, json};

const PAGE: &str = "query($c: ID!, $s: String!, $from: MessageStartInput, $d: MessageDirection!, $subj: String, $n: Int, $after: String) {
  messages(clusterId: $c, stream: $s, from: $from, direction: $d, subject: $subj, first: $n, after: $after) {
    edges { cursor node { sequence subject time headers { name value } size payload { text encoding truncated size } } }
    pageInfo { hasNextPage hasPreviousPage endCursor } totalCount purgedThrough readPath } }";

/// A console managing `managed`, and the cluster's id.
async fn console_on(managed: &NatsServer) -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    (app, cluster)
}

/// Creates stream `name` on `<name lower>.>` through the console, with `extra` config.
async fn create(app: &TestApp, cluster: &str, name: &str, extra: Value) {
    let mut cfg = json!({"name": name, "subjects": [format!("{}.>", name.to_lowercase())]});
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    app.data(gql::CREATE_STREAM, json!({"c": cluster, "cfg": cfg})).await;
}

/// Publishes `payloads` on `subject` and returns their sequences.
async fn publish(js: &jetstream::Context, subject: &str, payloads: &[&[u8]]) -> Vec<u64> {
    let mut out = Vec::new();
    for p in payloads {
        let ack = js
            .publish(subject.to_string(), p.to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
        out.push(ack.sequence);
    }
    out
}

async fn page(app: &TestApp, vars: Value) -> Value {
    app.data(PAGE, vars).await["messages"].clone()
}

fn seqs(page: &Value) -> Vec<u64> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["sequence"].as_u64().unwrap())
        .collect()
}

/// Every sequence of a read, `n` at a time, checking the read path on every page.
async fn walk(app: &TestApp, base: Value, n: i64, path: &str) -> Vec<u64> {
    let mut all = Vec::new();
    let mut after = Value::Null;
    for _ in 0..100 {
        let mut vars = base.clone();
        vars["n"] = json!(n);
        vars["after"] = after.clone();
        let p = page(app, vars).await;
        assert_eq!(p["readPath"], path, "{p}");
        let got = seqs(&p);
        assert!(got.len() as i64 <= n, "at most `first`: {p}");
        all.extend(got);
        if !p["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return all;
        }
        after = p["pageInfo"]["endCursor"].clone();
    }
    panic!("a walk that does not end: {all:?}");
}

/// 23 messages alternating `<s>.eu` and `<s>.us`, the fifth deleted. Returns every sequence
/// left and those on `.eu`.
async fn fill(js: &jetstream::Context, stream: &str) -> (Vec<u64>, Vec<u64>) {
    let lower = stream.to_lowercase();
    let mut all = Vec::new();
    let mut eu = Vec::new();
    for i in 0..23u64 {
        let region = if i % 2 == 0 { "eu" } else { "us" };
        let seq = publish(js, &format!("{lower}.{region}"), &[format!("m{i}").as_bytes()]).await[0];
        all.push(seq);
        if region == "eu" {
            eu.push(seq);
        }
    }
    js.get_stream(stream).await.unwrap().delete_message(5).await.unwrap();
    all.retain(|s| *s != 5);
    eu.retain(|s| *s != 5);
    (all, eu)
}

async fn pages_both_ways_match(app: &TestApp, cluster: &str, stream: &str, all: &[u64], eu: &[u64], path: &str) {
    let lower = stream.to_lowercase();
    let base = |d: &str, subj: Option<String>| json!({"c": cluster, "s": stream, "d": d, "subj": subj});
    let reversed = |v: &[u64]| v.iter().rev().copied().collect::<Vec<_>>();
    assert_eq!(walk(app, base("FORWARD", None), 4, path).await, all, "forward");
    assert_eq!(
        walk(app, base("BACKWARD", None), 4, path).await,
        reversed(all),
        "backward"
    );
    let eu_filter = Some(format!("{lower}.eu"));
    assert_eq!(
        walk(app, base("FORWARD", eu_filter.clone()), 3, path).await,
        eu,
        "forward, filtered"
    );
    assert_eq!(
        walk(app, base("BACKWARD", eu_filter.clone()), 3, path).await,
        reversed(eu),
        "backward, filtered"
    );
    assert_eq!(
        walk(app, base("FORWARD", Some(format!("{lower}.*"))), 50, path).await,
        all,
        "one page"
    );

    let whole = page(app, base("FORWARD", None)).await;
    assert_eq!(whole["totalCount"], all.len(), "{whole}");
    let first = &whole["edges"][0]["node"];
    assert_eq!(first["subject"], format!("{lower}.eu"));
    assert_eq!(first["payload"]["text"], "m0");
    assert_eq!(first["payload"]["encoding"], "TEXT");
    assert_eq!(whole["pageInfo"]["hasPreviousPage"], false);
    let filtered = page(app, base("FORWARD", eu_filter)).await;
    assert_eq!(filtered["totalCount"], eu.len(), "counted when asked: {filtered}");

    // Starts: a sequence, either end.
    let mut from10 = base("FORWARD", None);
    from10["from"] = json!({"sequence": 10});
    from10["n"] = json!(3);
    assert_eq!(seqs(&page(app, from10.clone()).await), vec![10, 11, 12]);
    from10["d"] = json!("BACKWARD");
    let back = page(app, from10).await;
    assert_eq!(seqs(&back), vec![10, 9, 8]);
    assert_eq!(
        back["pageInfo"]["hasPreviousPage"], true,
        "newer messages come before it"
    );
    let mut from4 = base("BACKWARD", None);
    from4["from"] = json!({"sequence": 6});
    from4["n"] = json!(3);
    assert_eq!(
        seqs(&page(app, from4).await),
        vec![6, 4, 3],
        "the deleted fifth is skipped"
    );
    let mut last = base("FORWARD", None);
    last["from"] = json!({"end": "LAST"});
    let tail = page(app, last).await;
    assert_eq!(seqs(&tail), vec![*all.last().unwrap()]);
    assert_eq!(tail["pageInfo"]["hasNextPage"], false);
    let mut oldest = base("BACKWARD", None);
    oldest["from"] = json!({"end": "FIRST"});
    assert_eq!(seqs(&page(app, oldest).await), vec![1]);
}

#[tokio::test]
async fn pages_forward_and_backward_on_both_read_paths_match_the_whole_stream() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    for (stream, direct, path) in [("DIRECT", true, "DIRECT_BATCH"), ("GETS", false, "MESSAGE_GET")] {
        create(&app, &cluster, stream, json!({"allowDirect": direct})).await;
        let (all, eu) = fill(&js, stream).await;
        pages_both_ways_match(&app, &cluster, stream, &all, &eu, path).await;
    }
}

#[tokio::test]
async fn a_2_10_server_is_read_one_message_at_a_time_with_the_same_pages() {
    let managed = NatsServer::start_2_10();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create(&app, &cluster, "OLD", json!({"allowDirect": true})).await;
    let (all, eu) = fill(&js, "OLD").await;
    pages_both_ways_match(&app, &cluster, "OLD", &all, &eu, "MESSAGE_GET").await;
}

/// What a read could change: the stream's state and every consumer's.
async fn snapshot(js: &jetstream::Context, stream: &str) -> Value {
    let mut s = js.get_stream(stream).await.unwrap();
    let info = s.info().await.unwrap().clone();
    let mut consumers = Vec::new();
    let mut names = s.consumer_names();
    while let Some(name) = futures::StreamExt::next(&mut names).await {
        let name = name.unwrap();
        let c: consumer::PullConsumer = s.get_consumer(&name).await.unwrap();
        let mut c = c;
        let i = c.info().await.unwrap().clone();
        consumers.push(json!({
            "name": name, "pending": i.num_pending, "ackPending": i.num_ack_pending,
            "delivered": i.delivered.stream_sequence, "ackFloor": i.ack_floor.stream_sequence,
            "redelivered": i.num_redelivered, "waiting": i.num_waiting,
        }));
    }
    json!({
        "messages": info.state.messages, "first": info.state.first_sequence, "last": info.state.last_sequence,
        "consumers": info.state.consumer_count, "each": consumers,
    })
}

#[tokio::test]
async fn browsing_leaves_work_queue_and_interest_streams_and_their_consumers_as_they_were() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    for (stream, retention, direct) in [
        ("WORK", "WORK_QUEUE", true),
        ("WORKGET", "WORK_QUEUE", false),
        ("INTEREST", "INTEREST", true),
    ] {
        create(
            &app,
            &cluster,
            stream,
            json!({"retention": retention, "allowDirect": direct}),
        )
        .await;
        let lower = stream.to_lowercase();
        app.create_consumer(&cluster, stream, "worker").await;
        let payloads: Vec<Vec<u8>> = (0..12).map(|i| format!("job {i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        publish(&js, &format!("{lower}.jobs"), &refs).await;
        // The worker has taken two and acknowledged one: some state to keep.
        let mut worker: consumer::PullConsumer = js
            .get_stream(stream)
            .await
            .unwrap()
            .get_consumer("worker")
            .await
            .unwrap();
        let mut batch = worker.fetch().max_messages(2).messages().await.unwrap();
        let first = futures::StreamExt::next(&mut batch).await.unwrap().unwrap();
        first.ack().await.unwrap();
        futures::StreamExt::next(&mut batch).await.unwrap().unwrap();
        let _ = worker.info().await.unwrap();
        let before = snapshot(&js, stream).await;
        assert_eq!(before["messages"], 11, "{stream}: the acknowledged job left: {before}");

        let base = json!({"c": cluster, "s": stream, "d": "FORWARD"});
        let all = walk(
            &app,
            base.clone(),
            5,
            if direct { "DIRECT_BATCH" } else { "MESSAGE_GET" },
        )
        .await;
        assert_eq!(all, (2..=12).collect::<Vec<u64>>(), "{stream}");
        let mut back = base.clone();
        back["d"] = json!("BACKWARD");
        walk(&app, back, 4, if direct { "DIRECT_BATCH" } else { "MESSAGE_GET" }).await;
        let mut at_time = base.clone();
        at_time["from"] = json!({"time": "2020-01-01T00:00:00Z"});
        assert_eq!(seqs(&page(&app, at_time).await)[0], 2);
        app.data(
            "query($c: ID!, $s: String!, $subj: String!) { message(clusterId: $c, stream: $s, sequence: 3) { sequence }
              last: message(clusterId: $c, stream: $s, lastBySubject: $subj) { sequence }
              subjects(clusterId: $c, stream: $s) { nodes { subject messages } } }",
            json!({"c": cluster, "s": stream, "subj": format!("{lower}.jobs")}),
        )
        .await;

        assert_eq!(
            snapshot(&js, stream).await,
            before,
            "{stream}: browsing changed nothing"
        );
    }
}

#[tokio::test]
async fn a_page_starts_at_a_time_and_a_cursor_survives_a_purge() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    for (stream, direct) in [("TIMED", true), ("TIMEDGET", false)] {
        create(&app, &cluster, stream, json!({"allowDirect": direct})).await;
        let lower = stream.to_lowercase();
        let payloads: Vec<Vec<u8>> = (1..=20).map(|i| format!("{i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        publish(&js, &format!("{lower}.x"), &refs).await;
        let base = json!({"c": cluster, "s": stream, "d": "FORWARD", "n": 20});
        let whole = page(&app, base.clone()).await;
        let time_of = |seq: usize| whole["edges"][seq - 1]["node"]["time"].clone();
        // Messages stored in the same instant share a time: start at the first of them.
        let t = time_of(8);
        let first_at_t = (1..=20).find(|s| time_of(*s) == t).unwrap() as u64;
        let mut at = base.clone();
        at["from"] = json!({"time": t});
        at["n"] = json!(2);
        assert_eq!(seqs(&page(&app, at.clone()).await)[0], first_at_t, "{stream}");
        at["d"] = json!("BACKWARD");
        let before_t = seqs(&page(&app, at).await);
        assert!(
            before_t.is_empty() || before_t[0] == first_at_t - 1,
            "{stream}: {before_t:?}"
        );

        // A cursor made before a purge goes on from the oldest message left, and says so.
        let mut first5 = base.clone();
        first5["n"] = json!(5);
        let p = page(&app, first5.clone()).await;
        assert_eq!(seqs(&p), vec![1, 2, 3, 4, 5]);
        assert_eq!(p["purgedThrough"], Value::Null);
        app.data(
            "mutation($c: ID!, $s: String!) { purgeStream(input: {clusterId: $c, name: $s, upToSequence: 11}) { purged } }",
            json!({"c": cluster, "s": stream}),
        )
        .await;
        let mut on = first5.clone();
        on["after"] = p["pageInfo"]["endCursor"].clone();
        let after_purge = page(&app, on).await;
        assert_eq!(after_purge["purgedThrough"], 10, "{after_purge}");
        assert_eq!(seqs(&after_purge), vec![11, 12, 13, 14, 15]);
        // Backward from the newest, on down to the oldest left.
        let old = page(&app, json!({"c": cluster, "s": stream, "d": "BACKWARD", "n": 2})).await;
        assert_eq!(seqs(&old), vec![20, 19]);
        let mut down = json!({"c": cluster, "s": stream, "d": "BACKWARD", "n": 20});
        down["after"] = old["pageInfo"]["endCursor"].clone();
        assert_eq!(seqs(&page(&app, down).await), (11..=18).rev().collect::<Vec<u64>>());
    }
}

#[tokio::test]
async fn payloads_are_decoded_as_asked_or_detected_and_cut_at_the_limit() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create(&app, &cluster, "CODECS", json!({})).await;
    let value = json!({"order": 7, "items": ["a", "b"]});
    let msgpack = rmp_serde::to_vec_named(&value).unwrap();
    let mut cbor = Vec::new();
    ciborium::ser::into_writer(&value, &mut cbor).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("X-Trace", "t-1");
    js.publish_with_headers("codecs.json", headers, value.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap();
    publish(
        &js,
        "codecs.text",
        &[b"plain words", &msgpack, &cbor, &[0xff, 0x00, 0x7f]],
    )
    .await;
    let q = "query($c: ID!, $e: PayloadEncoding, $max: Int!) { messages(clusterId: $c, stream: \"CODECS\") { nodes {
        sequence headers { name value } payload(encoding: $e, maxBytes: $max) { encoding text truncated size } } } }";
    let read = |e: Value, max: i64| app.graphql(q, json!({"c": cluster, "e": e, "max": max}));
    let auto = read(Value::Null, 65536).await;
    let nodes = auto["data"]["messages"]["nodes"].as_array().unwrap().clone();
    let shown: Vec<(&str, &str)> = nodes
        .iter()
        .map(|n| {
            (
                n["payload"]["encoding"].as_str().unwrap(),
                n["payload"]["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown[0].0, "JSON");
    assert_eq!(serde_json::from_str::<Value>(shown[0].1).unwrap(), value);
    assert!(shown[0].1.contains("\n  \"order\": 7"), "pretty: {}", shown[0].1);
    assert_eq!(nodes[0]["headers"], json!([{"name": "X-Trace", "value": "t-1"}]));
    assert_eq!(shown[1], ("TEXT", "plain words"));
    assert_eq!(shown[2].0, "MSGPACK");
    assert_eq!(serde_json::from_str::<Value>(shown[2].1).unwrap(), value);
    assert_eq!(shown[3].0, "CBOR");
    assert_eq!(serde_json::from_str::<Value>(shown[3].1).unwrap(), value);
    assert_eq!(shown[4], ("BASE64", "/wB/"));
    assert_eq!(nodes[4]["payload"]["size"], 3);

    let hex = read(json!("HEX"), 65536).await;
    assert_eq!(hex["data"]["messages"]["nodes"][4]["payload"]["text"], "ff007f");
    assert_eq!(
        hex["data"]["messages"]["nodes"][1]["payload"]["text"],
        "706c61696e20776f726473"
    );
    let cut = read(json!("TEXT"), 5).await;
    let second = &cut["data"]["messages"]["nodes"][1]["payload"];
    assert_eq!(
        (second["text"].as_str().unwrap(), second["truncated"].as_bool().unwrap()),
        ("plain", true)
    );
    // Binary as text: that message's payload is an error saying what to ask for instead.
    assert_eq!(code(&cut), "VALIDATION", "{cut}");
    assert!(
        cut["errors"][0]["message"].as_str().unwrap().contains("BASE64"),
        "{cut}"
    );
    let too_big = read(json!("TEXT"), 9_000_000).await;
    assert_eq!(code(&too_big), "VALIDATION");
}

#[tokio::test]
async fn one_message_and_the_subjects_with_their_counts() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create(&app, &cluster, "SUBJ", json!({})).await;
    for (subject, n) in [("subj.a", 3), ("subj.b", 1), ("subj.c.x", 2)] {
        for i in 0..n {
            publish(&js, subject, &[format!("{subject}-{i}").as_bytes()]).await;
        }
    }
    let one = app
        .data(
            "query($c: ID!) { bySeq: message(clusterId: $c, stream: \"SUBJ\", sequence: 2) { sequence subject payload { text } }
              last: message(clusterId: $c, stream: \"SUBJ\", lastBySubject: \"subj.a\") { sequence payload { text } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(one["bySeq"]["payload"]["text"], "subj.a-1");
    assert_eq!(one["last"]["sequence"], 3);
    let missing = app
        .graphql(
            "query($c: ID!) { message(clusterId: $c, stream: \"SUBJ\", sequence: 99) { sequence } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code(&missing), "NOT_FOUND", "{missing}");
    let q = "query($c: ID!, $f: String, $n: Int, $a: String) { subjects(clusterId: $c, stream: \"SUBJ\", filter: $f, first: $n, after: $a) {
        nodes { subject messages } totalCount pageInfo { hasNextPage endCursor } } }";
    let all = app.data(q, json!({"c": cluster})).await["subjects"].clone();
    assert_eq!(
        all["nodes"],
        json!([{"subject": "subj.a", "messages": 3}, {"subject": "subj.b", "messages": 1}, {"subject": "subj.c.x", "messages": 2}])
    );
    let first = app.data(q, json!({"c": cluster, "n": 2})).await["subjects"].clone();
    let rest = app
        .data(q, json!({"c": cluster, "n": 2, "a": first["pageInfo"]["endCursor"]}))
        .await["subjects"]
        .clone();
    assert_eq!(rest["nodes"], json!([{"subject": "subj.c.x", "messages": 2}]));
    let star = app.data(q, json!({"c": cluster, "f": "subj.*"})).await["subjects"].clone();
    assert_eq!(star["totalCount"], 2, "one token only: {star}");
}

#[tokio::test]
async fn bad_reads_answer_validation_with_what_to_fix_and_other_organizations_see_nothing() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create(&app, &cluster, "BAD", json!({})).await;
    publish(&js, "bad.x", &[b"1", b"2", b"3"]).await;
    let base = json!({"c": cluster, "s": "BAD", "d": "FORWARD"});
    let eu = page(
        &app,
        json!({"c": cluster, "s": "BAD", "d": "FORWARD", "n": 1, "subj": "bad.x"}),
    )
    .await;
    for (change, says) in [
        (json!({"subj": "bad..x"}), "subject"),
        (json!({"from": {"sequence": 99}}), "from.sequence"),
        (json!({"from": {"time": "2999-01-01T00:00:00Z"}}), "from.time"),
        (json!({"from": {"sequence": 1, "end": "LAST"}}), "from"),
        (json!({"n": 1001}), "first"),
        (json!({"after": "not-a-cursor"}), "after"),
        (json!({"after": eu["pageInfo"]["endCursor"]}), "after"),
        (
            json!({"d": "BACKWARD", "subj": "bad.x", "after": eu["pageInfo"]["endCursor"]}),
            "after",
        ),
    ] {
        let mut vars = base.clone();
        for (k, v) in change.as_object().unwrap() {
            vars[k] = v.clone();
        }
        let body = app.graphql(PAGE, vars.clone()).await;
        assert_eq!(code(&body), "VALIDATION", "{vars}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.starts_with(says) || message.contains(says),
            "{vars}: names `{says}`: {message}"
        );
    }
    let gone = app
        .graphql(PAGE, json!({"c": cluster, "s": "NOPE", "d": "FORWARD"}))
        .await;
    assert_eq!(code(&gone), "NOT_FOUND");

    // A viewer reads; another organization's admin gets NOT_FOUND; no credential, nothing.
    let (_, viewer) = app.invite_member("default", "viewer@example.com", "VIEWER").await;
    let seen = app.graphql_as(Some(&viewer), PAGE, base.clone()).await;
    assert_eq!(seqs(&seen["data"]["messages"]), vec![1, 2, 3], "{seen}");
    let org = app
        .data(
            "mutation { createOrganization(input: {name: \"elsewhere\"}) { organization { id } } }",
            json!({}),
        )
        .await["createOrganization"]["organization"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, outsider) = app.invite_member(&org, "outsider@example.com", "ADMIN").await;
    for q in [
        PAGE,
        "query($c: ID!, $s: String!) { message(clusterId: $c, stream: $s, sequence: 1) { sequence } }",
        "query($c: ID!, $s: String!) { subjects(clusterId: $c, stream: $s) { totalCount } }",
    ] {
        let body = app.graphql_as(Some(&outsider), q, base.clone()).await;
        assert_eq!(code(&body), "NOT_FOUND", "{body}");
        let anonymous = app.graphql_as(None, q, base.clone()).await;
        assert_eq!(code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    }
}

const TAIL: &str = "subscription($c: ID!, $s: String!, $subj: String, $from: Int, $max: Int!) {
  messageTail(clusterId: $c, stream: $s, subject: $subj, fromSequence: $from, maxBehind: $max) {
    kind skippedFrom skippedTo message { sequence subject payload { text } } } }";

#[tokio::test]
async fn a_tail_sends_new_messages_resumes_from_a_sequence_and_skips_ahead_when_far_behind() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    for (stream, extra) in [
        ("TAIL", json!({"allowDirect": true})),
        ("TAILWQ", json!({"retention": "WORK_QUEUE"})),
    ] {
        create(&app, &cluster, stream, extra).await;
        let lower = stream.to_lowercase();
        if stream == "TAILWQ" {
            app.create_consumer(&cluster, stream, "worker").await;
        }
        publish(&js, &format!("{lower}.a"), &[b"before"]).await;
        let before = snapshot(&js, stream).await;
        // From the newest on, only what matches.
        let vars = json!({"c": cluster, "s": stream, "subj": format!("{lower}.a"), "max": 1000});
        let mut tail = app.subscribe("graphql-transport-ws", TAIL, vars).await;
        // The tail has started once a first message can reach it: publish until one does.
        let mut first = None;
        for i in 0..50 {
            publish(&js, &format!("{lower}.b"), &[b"other"]).await;
            let seq = publish(&js, &format!("{lower}.a"), &[format!("new {i}").as_bytes()]).await[0];
            if let Ok(frame) = tokio::time::timeout(std::time::Duration::from_millis(300), tail.next_data()).await {
                first = Some((seq, frame));
                break;
            }
        }
        let (seq, frame) = first.expect("the tail delivers a new message");
        let event = &frame["messageTail"];
        assert_eq!(event["kind"], "MESSAGE", "{event}");
        assert!(event["message"]["sequence"].as_u64().unwrap() <= seq, "{event}");
        assert_eq!(
            event["message"]["subject"],
            format!("{lower}.a"),
            "only the filter: {event}"
        );
        let next = publish(&js, &format!("{lower}.a"), &[b"and this"]).await[0];
        loop {
            let e = tail.next_data().await["messageTail"].clone();
            assert_eq!(e["message"]["subject"], format!("{lower}.a"), "{e}");
            if e["message"]["sequence"] == next {
                assert_eq!(e["message"]["payload"]["text"], "and this");
                break;
            }
        }
        drop(tail);
        if stream == "TAILWQ" {
            let after = snapshot(&js, stream).await;
            assert_eq!(
                after["consumers"], before["consumers"],
                "no consumer was added: {after}"
            );
            assert_eq!(after["each"][0]["delivered"], before["each"][0]["delivered"], "{after}");
        }
    }

    // Starting far back: a SKIPPED event, then the newest `maxBehind` messages, in order.
    let payloads: Vec<Vec<u8>> = (0..40).map(|i| format!("{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let last = *publish(&js, "tail.c", &refs).await.last().unwrap();
    let vars = json!({"c": cluster, "s": "TAIL", "from": 1, "max": 10});
    let mut behind = app.subscribe("graphql-transport-ws", TAIL, vars).await;
    let skipped = behind.next_data().await["messageTail"].clone();
    assert_eq!(skipped["kind"], "SKIPPED", "{skipped}");
    assert_eq!(skipped["skippedFrom"], 1);
    assert_eq!(skipped["skippedTo"], last - 10, "{skipped}");
    for expected in last - 9..=last {
        let e = behind.next_data().await["messageTail"].clone();
        assert_eq!(e["message"]["sequence"], expected, "{e}");
    }

    // Bad starts are refused before anything is sent.
    for (vars, says) in [
        (json!({"c": cluster, "s": "TAIL", "max": 0}), "maxBehind"),
        (
            json!({"c": cluster, "s": "TAIL", "from": last + 5, "max": 10}),
            "fromSequence",
        ),
        (
            json!({"c": cluster, "s": "TAIL", "subj": "tail..x", "max": 10}),
            "subject",
        ),
    ] {
        let mut bad = app.subscribe("graphql-transport-ws", TAIL, vars.clone()).await;
        let frame = bad.next_frame_raw().await;
        assert_eq!(frame["type"], "next", "{frame}");
        let error = &frame["payload"]["errors"][0];
        assert_eq!(error["extensions"]["code"], "VALIDATION", "{vars}: {frame}");
        assert!(error["message"].as_str().unwrap().contains(says), "{frame}");
    }
}

const SEARCH: &str = "subscription($c: ID!, $s: String!, $q: MessageSearchInput) {
  messageSearch(clusterId: $c, stream: $s, search: $q) {
    kind stop message { sequence subject }
    progress { scanned matched bytes position elapsedMs estimatedRemainingMs } } }";

/// Every event of a search until `DONE`: the matches' sequences, the progress events, and
/// the last event.
async fn search(app: &TestApp, cluster: &str, stream: &str, q: Value) -> (Vec<u64>, Vec<Value>, Value) {
    let mut sub = app
        .subscribe(
            "graphql-transport-ws",
            SEARCH,
            json!({"c": cluster, "s": stream, "q": q}),
        )
        .await;
    let (mut matches, mut progress) = (Vec::new(), Vec::new());
    loop {
        let e = sub.next_data().await["messageSearch"].clone();
        match e["kind"].as_str().unwrap() {
            "MATCH" => matches.push(e["message"]["sequence"].as_u64().unwrap()),
            "PROGRESS" => progress.push(e["progress"].clone()),
            "DONE" => {
                assert_eq!(sub.next_frame_raw().await["type"], "complete", "nothing after DONE");
                return (matches, progress, e);
            }
            other => panic!("an event of kind {other}: {e}"),
        }
    }
}

#[tokio::test]
async fn a_search_streams_matches_and_progress_within_its_bounds_with_each_filter_kind() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    for (stream, direct) in [("FIND", true), ("FINDGET", false)] {
        create(&app, &cluster, stream, json!({"allowDirect": direct})).await;
        let lower = stream.to_lowercase();
        // 60 messages: every third from eu (a header), every fifth with a big total.
        for i in 1..=60u64 {
            let mut headers = HeaderMap::new();
            headers.insert("X-Region", if i % 3 == 0 { "eu-west" } else { "us-east" });
            if i % 4 == 0 {
                headers.insert("X-Flag", "1");
            }
            let total = if i % 5 == 0 { 1000 + i } else { i };
            let body = json!({"order": i, "total": total}).to_string();
            let subject = format!("{lower}.{}", if i % 2 == 0 { "even" } else { "odd" });
            js.publish_with_headers(subject, headers, body.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let all: Vec<u64> = (1..=60).collect();
        let pick = |f: &dyn Fn(u64) -> bool| all.iter().copied().filter(|i| f(*i)).collect::<Vec<u64>>();
        let cases: Vec<(Value, Vec<u64>)> = vec![
            (json!({}), all.clone()),
            (json!({"subject": format!("{lower}.even")}), pick(&|i| i % 2 == 0)),
            (
                json!({"headers": [{"name": "x-region", "equals": "eu-west"}]}),
                pick(&|i| i % 3 == 0),
            ),
            (
                json!({"headers": [{"name": "X-Region", "contains": "east"}]}),
                pick(&|i| i % 3 != 0),
            ),
            (
                json!({"headers": [{"name": "X-Region", "regex": "^eu-"}]}),
                pick(&|i| i % 3 == 0),
            ),
            (
                json!({"headers": [{"name": "X-Flag", "present": true}]}),
                pick(&|i| i % 4 == 0),
            ),
            (json!({"payloadContains": "\"total\":10"}), pick(&|i| i % 5 == 0)),
            (json!({"payloadRegex": "\"total\":1\\d{3}\\}"}), pick(&|i| i % 5 == 0)),
            (
                json!({"subject": format!("{lower}.odd"), "headers": [{"name": "X-Region", "equals": "eu-west"}], "payloadRegex": "order"}),
                pick(&|i| i % 2 == 1 && i % 3 == 0),
            ),
            (json!({"fromSequence": 10, "toSequence": 20}), (10..=20).collect()),
            (
                json!({"expression": "payload.total > 1000 && headers['X-Region'].startsWith('eu')"}),
                pick(&|i| i % 5 == 0 && i % 3 == 0),
            ),
            (
                json!({"expression": format!("subject == '{lower}.even' && payload.order in [2, 4, 7] || sequence == 60")}),
                vec![2, 4, 60],
            ),
        ];
        for (q, expected) in cases {
            let (matches, progress, done) = search(&app, &cluster, stream, q.clone()).await;
            assert_eq!(matches, expected, "{stream} {q}");
            assert_eq!(done["stop"], "END", "{done}");
            let p = &done["progress"];
            assert_eq!(p["matched"], expected.len(), "{p}");
            assert_eq!(p["estimatedRemainingMs"], 0, "{p}");
            assert!(p["bytes"].as_u64().unwrap() > 0, "{p}");
            for w in progress.windows(2) {
                assert!(
                    w[0]["scanned"].as_u64() <= w[1]["scanned"].as_u64(),
                    "progress only grows"
                );
            }
        }
        let (matches, _, done) = search(&app, &cluster, stream, json!({"maxResults": 4})).await;
        assert_eq!(
            (matches, done["stop"].clone()),
            (vec![1, 2, 3, 4], json!("MAX_RESULTS"))
        );
        let (matches, _, done) = search(&app, &cluster, stream, json!({"maxScanned": 7, "payloadRegex": "."})).await;
        assert_eq!(done["stop"], "MAX_SCANNED", "{done}");
        assert_eq!((matches.len(), done["progress"]["scanned"].clone()), (7, json!(7)));
        assert_eq!(done["progress"]["position"], 7);
    }

    // Bad searches are refused before anything is read.
    for (q, says) in [
        (json!({"payloadRegex": "(unclosed"}), "payloadRegex"),
        (json!({"headers": [{"name": "X", "regex": "[z-a]"}]}), "headers.X.regex"),
        (
            json!({"headers": [{"name": "X", "equals": "a", "contains": "b"}]}),
            "one test",
        ),
        (json!({"subject": "find..x"}), "subject"),
        (json!({"maxResults": 0}), "maxResults"),
        (json!({"timeBudgetSeconds": 601}), "timeBudgetSeconds"),
        (json!({"fromTime": "2999-01-01T00:00:00Z"}), "fromTime"),
        (
            json!({"expression": "payload.total >"}),
            "expression: at 15: the expression ends too soon",
        ),
        (json!({"expression": "env.HOME == ''"}), "unknown name 'env'"),
    ] {
        let mut bad = app
            .subscribe(
                "graphql-transport-ws",
                SEARCH,
                json!({"c": cluster, "s": "FIND", "q": q}),
            )
            .await;
        let frame = bad.next_frame_raw().await;
        let error = &frame["payload"]["errors"][0];
        assert_eq!(error["extensions"]["code"], "VALIDATION", "{q}: {frame}");
        assert!(error["message"].as_str().unwrap().contains(says), "{q}: {frame}");
    }
}

#[tokio::test]
async fn completing_a_search_stops_its_reads_on_the_server_at_once() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    // Read one message a request (no `allowDirect`): a scan of 5,000 takes thousands of
    // requests, each one seen below.
    create(&app, &cluster, "HUGE", json!({"allowDirect": false})).await;
    for _ in 0..10 {
        let mut acks = Vec::new();
        for _ in 0..500 {
            acks.push(js.publish("huge.x", b"x".to_vec().into()).await.unwrap());
        }
        for a in acks {
            a.await.unwrap();
        }
    }
    // Watch the reads the console sends to the managed server.
    let watcher = managed.client().await;
    let mut reads = watcher.subscribe("$JS.API.STREAM.MSG.GET.HUGE").await.unwrap();
    watcher.flush().await.unwrap();
    let q = json!({"payloadContains": "never there"});
    let mut sub = app
        .subscribe(
            "graphql-transport-ws",
            SEARCH,
            json!({"c": cluster, "s": "HUGE", "q": q}),
        )
        .await;
    for _ in 0..10 {
        futures::StreamExt::next(&mut reads).await.expect("the search reads");
    }
    sub.send_raw(json!({"type": "complete", "id": "1"})).await;
    // Reads in flight (and those the watcher has not seen yet) still arrive; then none,
    // though 4,990 were left to read.
    let mut after_stop = 0;
    while tokio::time::timeout(
        std::time::Duration::from_millis(500),
        futures::StreamExt::next(&mut reads),
    )
    .await
    .is_ok()
    {
        after_stop += 1;
        assert!(after_stop < 500, "the search went on reading after it was completed");
    }
    assert_eq!(sub.next_frame_raw().await["type"], "complete");
}

const SET_RULES: &str =
    "mutation($o: ID!, $r: [MaskingRuleInput!]!) { setMaskingRules(input: {organizationId: $o, rules: $r}) {
    organization { maskingRules { name stream target pattern action replaceWith } } sequence } }";

#[tokio::test]
async fn masking_hides_values_in_every_read_and_unmasked_reads_are_for_admins_and_audited() {
    use base64::Engine;
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create(&app, &cluster, "MASKED", json!({"allowDirect": true})).await;
    let secrets = ["4111111111111111", "s3cr3t-token", "123-45-6789"];
    let body = json!({"card": {"number": secrets[0]}, "note": format!("ssn {}", secrets[2]), "total": 9});
    let mut headers = HeaderMap::new();
    headers.insert("Authorization", format!("Bearer {}", secrets[1]).as_str());
    js.publish_with_headers("masked.pay", headers, body.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let rules = json!([
        {"name": "auth", "header": "authorization", "action": "MASK"},
        {"name": "card", "jsonPath": "card.number", "action": "REPLACE", "replaceWith": "[card]"},
        {"name": "ssn", "regex": "\\d{3}-\\d{2}-\\d{4}", "action": "MASK"},
        {"name": "elsewhere", "stream": "OTHER", "jsonPath": "total", "action": "REMOVE"},
    ]);
    let set = app.data(SET_RULES, json!({"o": "default", "r": rules})).await["setMaskingRules"].clone();
    assert!(set["sequence"].as_u64().is_some(), "{set}");
    assert_eq!(set["organization"]["maskingRules"][1]["replaceWith"], "[card]");
    assert_eq!(set["organization"]["maskingRules"][2]["target"], "REGEX");

    // A viewer reads through the rules, in every encoding and every read.
    let (_, viewer) = app
        .invite_member("default", "masked-viewer@example.com", "VIEWER")
        .await;
    let mut seen = String::new();
    for encoding in ["TEXT", "JSON", "BASE64", "HEX"] {
        let q = format!(
            "query($c: ID!) {{ messages(clusterId: $c, stream: \"MASKED\") {{ nodes {{ headers {{ name value }} payload(encoding: {encoding}) {{ text }} }} }}
              message(clusterId: $c, stream: \"MASKED\", sequence: 1) {{ headers {{ value }} payload(encoding: {encoding}) {{ text }} }} }}"
        );
        let body = app.graphql_as(Some(&viewer), &q, json!({"c": cluster})).await;
        assert!(body.get("errors").is_none(), "{body}");
        let text = body["data"]["messages"]["nodes"][0]["payload"]["text"]
            .as_str()
            .unwrap()
            .to_string();
        let decoded = match encoding {
            "BASE64" => String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&text).unwrap()).unwrap(),
            "HEX" => String::from_utf8(
                (0..text.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
                    .collect(),
            )
            .unwrap(),
            _ => text,
        };
        seen.push_str(&decoded);
        seen.push_str(&body.to_string());
    }
    assert!(
        seen.contains("[card]") && seen.contains("ssn ***"),
        "the rules applied: {seen}"
    );
    assert!(seen.contains("\"value\":\"***\""), "the header is masked: {seen}");
    assert!(
        seen.contains("\"total\":9") || seen.contains("\"total\": 9"),
        "the rule for another stream does not apply: {seen}"
    );
    let mut tail = app
        .subscribe_as(
            Some(&viewer),
            "graphql-transport-ws",
            TAIL,
            json!({"c": cluster, "s": "MASKED", "from": 1, "max": 10}),
        )
        .await;
    seen.push_str(&tail.next_data().await.to_string());
    let (found, _, _) = search(&app, &cluster, "MASKED", json!({"payloadContains": secrets[0]})).await;
    assert!(found.is_empty(), "a search cannot find what masking hides");
    let (found, _, _) = search(&app, &cluster, "MASKED", json!({"payloadContains": "[card]"})).await;
    assert_eq!(found, vec![1], "it finds what the reader sees");
    for s in secrets {
        assert!(!seen.contains(s), "{s} reached a viewer: {seen}");
    }

    // Unmasked: not for a viewer; for an admin, recorded before it is shown.
    let refused = app
        .graphql_as(
            Some(&viewer),
            "query($c: ID!) { message(clusterId: $c, stream: \"MASKED\", sequence: 1, unmasked: true) { sequence } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let plain = app
        .data(
            "query($c: ID!) { messages(clusterId: $c, stream: \"MASKED\", unmasked: true) { nodes { headers { value } payload { text } } } }",
            json!({"c": cluster}),
        )
        .await
        .to_string();
    for s in secrets {
        assert!(plain.contains(s), "an admin reads {s} unmasked: {plain}");
    }
    let trail = app
        .data(
            "{ auditTrail(filter: {eventType: \"MessagesReadUnmasked\"}) { nodes { actor aggregateId payload } } }",
            json!({}),
        )
        .await;
    let entries = trail["auditTrail"]["nodes"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "only the admin's read was recorded: {trail}");
    assert_eq!(entries[0]["actor"], app.owner_actor());
    assert_eq!(
        entries[0]["payload"]["MessagesReadUnmasked"]["read"], "messages",
        "{trail}"
    );

    // Rules are checked, and set by admins only.
    let bad = app
        .graphql(
            SET_RULES,
            json!({"o": "default", "r": [{"name": "x", "regex": "(", "action": "MASK"}]}),
        )
        .await;
    assert_eq!(code(&bad), "VALIDATION");
    assert!(
        bad["errors"][0]["message"].as_str().unwrap().contains("rules[0].regex"),
        "{bad}"
    );
    let two = app
        .graphql(
            SET_RULES,
            json!({"o": "default", "r": [{"name": "x", "header": "a", "regex": "b", "action": "MASK"}]}),
        )
        .await;
    assert!(
        two["errors"][0]["message"].as_str().unwrap().contains("exactly one"),
        "{two}"
    );
    let by_viewer = app
        .graphql_as(Some(&viewer), SET_RULES, json!({"o": "default", "r": []}))
        .await;
    assert_eq!(code(&by_viewer), "FORBIDDEN", "{by_viewer}");
}

#[tokio::test]
async fn empty_streams_sparse_filters_and_a_stream_gone_from_the_server() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    for (stream, direct, path) in [("EDGE", true, "DIRECT_BATCH"), ("EDGEGET", false, "MESSAGE_GET")] {
        create(&app, &cluster, stream, json!({"allowDirect": direct})).await;
        let lower = stream.to_lowercase();
        let base = json!({"c": cluster, "s": stream, "d": "FORWARD"});
        // Never stored anything: empty pages both ways, and a search that ends at once.
        for d in ["FORWARD", "BACKWARD"] {
            let mut v = base.clone();
            v["d"] = json!(d);
            let p = page(&app, v).await;
            assert_eq!(seqs(&p), Vec::<u64>::new(), "{p}");
            assert_eq!(p["pageInfo"]["hasNextPage"], false);
        }
        let (found, _, done) = search(&app, &cluster, stream, json!({})).await;
        assert!(found.is_empty() && done["stop"] == "END", "{done}");
        let mut past = base.clone();
        past["from"] = json!({"sequence": 2});
        let refused = app.graphql(PAGE, past).await;
        assert!(
            refused["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("never stored"),
            "{refused}"
        );

        // Five on eu, then 400 on us: a filtered page back from the newest must reach far back.
        for i in 1..=5 {
            publish(&js, &format!("{lower}.eu"), &[format!("eu {i}").as_bytes()]).await;
        }
        let payloads: Vec<Vec<u8>> = (0..400).map(|i| format!("us {i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        publish(&js, &format!("{lower}.us"), &refs).await;
        let eu = json!({"c": cluster, "s": stream, "d": "BACKWARD", "subj": format!("{lower}.eu")});
        assert_eq!(walk(&app, eu.clone(), 3, path).await, vec![5, 4, 3, 2, 1], "{stream}");
        let mut newest_eu = eu.clone();
        newest_eu["d"] = json!("FORWARD");
        newest_eu["from"] = json!({"end": "LAST"});
        assert_eq!(
            seqs(&page(&app, newest_eu).await),
            vec![5],
            "the newest on the filter, not the stream's"
        );
        let mut oldest_us = json!({"c": cluster, "s": stream, "d": "BACKWARD", "subj": format!("{lower}.us")});
        oldest_us["from"] = json!({"end": "FIRST"});
        assert_eq!(seqs(&page(&app, oldest_us).await), vec![6]);
        let none = json!({"c": cluster, "s": stream, "d": "BACKWARD", "subj": format!("{lower}.none")});
        assert_eq!(walk(&app, none, 10, path).await, Vec::<u64>::new());

        // A tail far behind with more waiting than one read: skipped, then the newest ten.
        let mut behind = app
            .subscribe(
                "graphql-transport-ws",
                TAIL,
                json!({"c": cluster, "s": stream, "from": 1, "max": 10}),
            )
            .await;
        let skipped = behind.next_data().await["messageTail"].clone();
        assert_eq!(
            (skipped["kind"].clone(), skipped["skippedTo"].clone()),
            (json!("SKIPPED"), json!(395)),
            "{skipped}"
        );
        assert_eq!(behind.next_data().await["messageTail"]["message"]["sequence"], 396);

        // A search cannot run backwards.
        let mut bad = app
            .subscribe(
                "graphql-transport-ws",
                SEARCH,
                json!({"c": cluster, "s": stream, "q": {"fromSequence": 9, "toSequence": 3}}),
            )
            .await;
        let frame = bad.next_frame_raw().await;
        assert_eq!(
            frame["payload"]["errors"][0]["extensions"]["code"], "VALIDATION",
            "{frame}"
        );

        // Purged below a backward cursor: the page says what went.
        let two = page(
            &app,
            json!({"c": cluster, "s": stream, "d": "BACKWARD", "n": 2, "from": {"sequence": 3}}),
        )
        .await;
        assert_eq!(seqs(&two), vec![3, 2]);
        app.data(
            "mutation($c: ID!, $s: String!) { purgeStream(input: {clusterId: $c, name: $s, upToSequence: 100}) { purged } }",
            json!({"c": cluster, "s": stream}),
        )
        .await;
        let mut on = json!({"c": cluster, "s": stream, "d": "BACKWARD", "n": 2});
        on["after"] = two["pageInfo"]["endCursor"].clone();
        let gone = page(&app, on).await;
        assert_eq!(seqs(&gone), Vec::<u64>::new());
        assert_eq!(gone["purgedThrough"], 1, "everything below the cursor (2) went: {gone}");
    }

    // Deleted on the server, behind the console's back: NOT_FOUND, not an empty page.
    js.delete_stream("EDGEGET").await.unwrap();
    let body = app
        .graphql(PAGE, json!({"c": cluster, "s": "EDGEGET", "d": "FORWARD"}))
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
}

const READ_EXPORT_WITH_PYARROW: &str = r#"
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
rows = t.to_pylist()
print(json.dumps({
    "rows": t.num_rows,
    "columns": [[f.name, str(f.type)] for f in t.schema],
    "sequences": [r["sequence"] for r in rows],
    "subjects": sorted({r["subject"] for r in rows}),
    "headers": [r["headers"] for r in rows if r["headers"]][:1],
    "payloads": [r["payload"].hex() for r in rows],
    "text": "\n".join(r["payload"].decode("utf-8", "replace") for r in rows),
}))
"#;

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

const EXPORT_MUTATION: &str = "mutation($input: ExportMessagesInput!) { exportMessages(input: $input) {
  url rows bytes expiresAt stop progress { scanned matched } } }";

#[tokio::test]
async fn exports_write_ranges_and_search_results_to_parquet_csv_and_json_lines_masked() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create(&app, &cluster, "EXPORTS", json!({"allowDirect": true})).await;
    let secret = "4111111111111111";
    // 1,200 messages: JSON on .eu (every tenth with a header), binary on .us.
    for round in 0..3u64 {
        let mut acks = Vec::new();
        for i in round * 400..(round + 1) * 400 {
            let ack = if i % 2 == 0 {
                let body = json!({"i": i, "card": secret}).to_string();
                if i % 10 == 0 {
                    let mut h = HeaderMap::new();
                    h.insert("X-Order", format!("o-{i}").as_str());
                    js.publish_with_headers("exports.eu", h, body.into()).await.unwrap()
                } else {
                    js.publish("exports.eu", body.into()).await.unwrap()
                }
            } else {
                js.publish("exports.us", vec![0xff, 0x00, (i % 256) as u8].into())
                    .await
                    .unwrap()
            };
            acks.push(ack);
        }
        for a in acks {
            a.await.unwrap();
        }
    }
    let rules = json!([{"name": "card", "jsonPath": "card", "action": "REPLACE", "replaceWith": "[card]"}]);
    app.data(SET_RULES, json!({"o": "default", "r": rules})).await;
    let token = app.token.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let console_url = app.url("");

    // The whole stream to Parquet, through the CLI; pyarrow reads it back.
    let parquet = dir.path().join("all.parquet");
    let parquet_arg = parquet.to_str().unwrap().to_string();
    let base = |extra: &[&str]| {
        let mut args = vec![
            "messages",
            "export",
            "--console-url",
            &console_url,
            "--token",
            &token,
            "--cluster",
            &cluster,
            "--stream",
            "EXPORTS",
            "--quiet",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let (status, out, err) = jsc_testkit::cli(&base(&["--format", "parquet", "--out", &parquet_arg])).await;
    assert_eq!(status, 0, "{out}{err}");
    assert!(out.starts_with("exported 1200 messages ("), "{out}");
    let py = std::process::Command::new(crate::audit::test_python())
        .arg("-c")
        .arg(READ_EXPORT_WITH_PYARROW)
        .arg(&parquet)
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let table: Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(table["rows"], 1200);
    assert_eq!(
        table["columns"],
        json!([
            ["sequence", "uint64"],
            ["time", "timestamp[us, tz=UTC]"],
            ["subject", "string"],
            ["headers", "string"],
            ["size", "uint64"],
            ["payload", "binary"]
        ])
    );
    assert_eq!(table["sequences"], json!((1..=1200).collect::<Vec<u64>>()));
    assert_eq!(table["subjects"], json!(["exports.eu", "exports.us"]));
    assert_eq!(table["headers"][0], r#"{"X-Order":["o-0"]}"#);
    // A JSON-path rule cannot read a binary payload, so it hides all of it (fails closed).
    assert_eq!(table["payloads"][1], hex("***"));
    let text = table["text"].as_str().unwrap();
    assert!(text.contains("[card]") && !text.contains(secret), "masked in the file");

    // A search result to JSON lines: a subject, a header and a range.
    let jsonl = dir.path().join("orders.jsonl");
    let jsonl_arg = jsonl.to_str().unwrap().to_string();
    let (status, out, err) = jsc_testkit::cli(&base(&[
        "--subject",
        "exports.eu",
        "--header",
        "X-Order",
        "--from-sequence",
        "101",
        "--to-sequence",
        "300",
        "--format",
        "jsonl",
        "--out",
        &jsonl_arg,
    ]))
    .await;
    assert_eq!(status, 0, "{out}{err}");
    let lines: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<u64> = lines.iter().map(|l| l["sequence"].as_u64().unwrap()).collect();
    // Sequence s holds i = s - 1: a header on every tenth i.
    assert_eq!(got, (101..=300).filter(|s| (s - 1) % 10 == 0).collect::<Vec<_>>());
    assert_eq!(lines[0]["headers"]["X-Order"], json!(["o-100"]));
    let body: Value = serde_json::from_str(lines[0]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"i": 100, "card": "[card]"}));

    // Over GraphQL: a payload regex to CSV, downloaded through its signed link.
    let input = json!({"clusterId": cluster, "stream": "EXPORTS", "format": "CSV",
        "search": {"payloadRegex": "\"i\":\\s*11[0-9]\\b", "maxResults": 5}, "clientMutationId": "x1"});
    let done = app.data(EXPORT_MUTATION, json!({"input": input})).await["exportMessages"].clone();
    assert_eq!(done["rows"], 5, "{done}");
    assert_eq!(done["stop"], "MAX_RESULTS");
    assert_eq!(done["progress"]["matched"], 5);
    let csv = app.get(done["url"].as_str().unwrap()).await;
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "sequence,time,subject,headers,size,payload,payload_base64"
    );
    let first: Vec<&str> = rows.next().unwrap().split(',').collect();
    assert_eq!(first[0], "111", "{csv}");
    assert_eq!(csv.lines().count(), 6);
    assert!(!csv.contains(secret) && csv.contains("[card]"), "{csv}");
    // The link is for this file only, and only while it is valid.
    let forged = done["url"].as_str().unwrap().replace("signature=", "signature=x");
    assert_eq!(app.get(&forged).await.status(), 403);

    // Bad input: the CLI says what the console said, and leaves no file behind.
    let bad = dir.path().join("bad.jsonl");
    let bad_arg = bad.to_str().unwrap().to_string();
    let (status, _, err) = jsc_testkit::cli(&base(&["--subject", "exports..eu", "--out", &bad_arg])).await;
    assert_eq!(status, 2);
    assert!(err.contains("VALIDATION: subject:"), "{err}");
    assert!(!bad.exists(), "no partial file");
    let mut args = base(&["--out", &bad_arg]);
    let at = args.iter().position(|a| a == &token).unwrap();
    args[at] = "not-a-token".into();
    let (status, _, err) = jsc_testkit::cli(&args).await;
    assert_eq!(status, 2);
    assert!(
        err.contains("closed the connection") || err.contains("UNAUTHENTICATED"),
        "{err}"
    );
    let (status, _, err) = jsc_testkit::cli(&base(&["--format", "xml", "--out", &bad_arg])).await;
    assert_eq!(status, 2);
    assert!(err.contains("use parquet, csv or jsonl"), "{err}");

    // Unmasked is for admins, and recorded.
    let (_, viewer) = app
        .invite_member("default", "export-viewer@example.com", "VIEWER")
        .await;
    let unmasked = json!({"clusterId": cluster, "stream": "EXPORTS", "format": "JSONL", "search": {"unmasked": true}});
    let refused = app
        .graphql_as(Some(&viewer), EXPORT_MUTATION, json!({"input": unmasked}))
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let done = app.data(EXPORT_MUTATION, json!({"input": unmasked})).await["exportMessages"].clone();
    let plain = app.get(done["url"].as_str().unwrap()).await.text().await.unwrap();
    assert!(plain.contains(secret), "an admin exports unmasked");
    let second: Value = serde_json::from_str(plain.lines().nth(1).unwrap()).unwrap();
    assert_eq!(second["sequence"], 2);
    assert_eq!(second["payload"], Value::Null, "not UTF-8: {second}");
    assert_eq!(second["payload_base64"], "/wAB", "binary payloads as they are");
    let trail = app
        .data(
            "{ auditTrail(filter: {eventType: \"MessagesReadUnmasked\"}) { nodes { payload } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        trail["auditTrail"]["nodes"][0]["payload"]["MessagesReadUnmasked"]["read"], "export",
        "{trail}"
    );
}

const REPUBLISH: &str = "mutation($input: RepublishMessagesInput!) { republishMessages(input: $input) {
  jobId sequence dryRun { scanned matched stop sample { sequence subject targetSubject size } } } }";
const PROGRESS: &str = "subscription($j: ID!) { republishProgress(jobId: $j) {
  jobId stream scanned published duplicates lastSequence done stop error } }";

/// Follows a republish job to its end; returns its last progress.
async fn follow(app: &TestApp, job: &Value) -> Value {
    let mut sub = app.subscribe("graphql-transport-ws", PROGRESS, json!({"j": job})).await;
    loop {
        let p = sub.next_data().await["republishProgress"].clone();
        if p["done"] == true {
            return p;
        }
    }
}

#[tokio::test]
async fn republish_previews_then_sends_each_message_once_across_a_retry_and_is_recorded() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create(&app, &cluster, "SRC", json!({"allowDirect": true})).await;
    create(&app, &cluster, "DST", json!({"allowDirect": true})).await;
    let mut acks = Vec::new();
    for i in 0..50u64 {
        let subject = if i % 5 == 0 { "src.b" } else { "src.a" };
        let mut h = HeaderMap::new();
        h.insert("X-K", i.to_string().as_str());
        h.insert("Nats-Msg-Id", format!("orig-{i}").as_str());
        acks.push(
            js.publish_with_headers(subject, h, format!("m{i}").into())
                .await
                .unwrap(),
        );
    }
    for a in acks {
        a.await.unwrap();
    }
    let input = |extra: Value| {
        let mut i = json!({"clusterId": cluster, "stream": "SRC", "search": {"subject": "src.a"},
            "target": {"subject": "dst.copy", "stream": "DST"}});
        for (k, v) in extra.as_object().unwrap() {
            i[k] = v.clone();
        }
        json!({"input": i})
    };

    // A dry run says what would go, and sends and records nothing.
    let before = app.last_sequence().await;
    let dry = app.data(REPUBLISH, input(json!({"dryRun": true}))).await["republishMessages"].clone();
    assert_eq!(dry["jobId"], Value::Null);
    assert_eq!(dry["sequence"], Value::Null, "nothing recorded: {dry}");
    assert_eq!(dry["dryRun"]["matched"], 40);
    assert_eq!(dry["dryRun"]["scanned"], 40);
    assert_eq!(dry["dryRun"]["stop"], "END");
    let sample = dry["dryRun"]["sample"].as_array().unwrap();
    assert_eq!(sample.len(), 20);
    assert_eq!(sample[0]["sequence"], 2);
    assert_eq!(sample[0]["subject"], "src.a");
    assert_eq!(sample[0]["targetSubject"], "dst.copy");
    assert_eq!(app.last_sequence().await, before);
    let dst = || async {
        js.get_stream("DST")
            .await
            .unwrap()
            .get_info()
            .await
            .unwrap()
            .state
            .messages
    };
    assert_eq!(dst().await, 0);

    // The run: every message once; the retry doubles none.
    let run = app.data(REPUBLISH, input(json!({"clientMutationId": "r1"}))).await["republishMessages"].clone();
    assert!(run["sequence"].as_u64().is_some(), "RepublishStarted recorded: {run}");
    let done = follow(&app, &run["jobId"]).await;
    assert_eq!(done["stop"], "END", "{done}");
    assert_eq!(done["published"], 40);
    assert_eq!(done["duplicates"], 0);
    assert_eq!(done["lastSequence"], 50);
    assert_eq!(dst().await, 40);
    let retry = app.data(REPUBLISH, input(json!({}))).await["republishMessages"].clone();
    let again = follow(&app, &retry["jobId"]).await;
    assert_eq!(again["published"], 0, "{again}");
    assert_eq!(again["duplicates"], 40);
    assert_eq!(dst().await, 40, "a retry doubled nothing");

    // What arrived: the payload, the headers, a message id from source and sequence.
    let page = app
        .data(
            "query($c: ID!) { messages(clusterId: $c, stream: \"DST\", first: 1) { nodes { subject headers { name value } payload { text } } } }",
            json!({"c": cluster}),
        )
        .await;
    let first = &page["messages"]["nodes"][0];
    assert_eq!(first["subject"], "dst.copy");
    assert_eq!(first["payload"]["text"], "m1");
    let headers: Vec<(String, String)> = first["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_string(),
                h["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let value = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(value("X-K").as_deref(), Some("1"));
    assert_eq!(value("Nats-Msg-Id"), Some(format!("jsc:{cluster}:SRC:2")));
    assert_eq!(value("Jsc-Source").as_deref(), Some("SRC:2"));

    // To a stream on another cluster: chosen sequences, one message id each there too.
    let other = NatsServer::start();
    let other_id = app
        .register_cluster(json!({"name": "other", "urls": [other.url()]}))
        .await;
    create(&app, &other_id, "COPY", json!({})).await;
    let across = json!({"input": {"clusterId": cluster, "stream": "SRC", "sequences": [2, 3, 4],
        "target": {"clusterId": other_id, "subject": "copy.in", "stream": "COPY"}}});
    for _ in 0..2 {
        let job = app.data(REPUBLISH, across.clone()).await["republishMessages"]["jobId"].clone();
        let done = follow(&app, &job).await;
        assert_eq!(done["stop"], "END", "{done}");
        assert_eq!(
            done["published"].as_u64().unwrap() + done["duplicates"].as_u64().unwrap(),
            3
        );
    }
    let copied = other
        .jetstream()
        .await
        .get_stream("COPY")
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(copied.state.messages, 3, "sent once across a retry");

    // Chosen sequences only, back to their own subjects in another stream's space: refused
    // by the expected stream.
    let wrong = app
        .data(
            REPUBLISH,
            json!({"input": {"clusterId": cluster, "stream": "SRC", "sequences": [1, 6], "target": {"stream": "DST"}}}),
        )
        .await["republishMessages"]
        .clone();
    let failed = follow(&app, &wrong["jobId"]).await;
    assert_eq!(failed["stop"], "FAILED", "{failed}");
    assert!(failed["error"].as_str().unwrap().contains("sequence 1"), "{failed}");

    // Recorded: who started what, and how each ended.
    let trail = app
        .data(
            "{ auditTrail(filter: {eventType: \"RepublishFinished\"}) { nodes { actor payload } } }",
            json!({}),
        )
        .await;
    let ends = trail["auditTrail"]["nodes"].as_array().unwrap();
    assert_eq!(ends.len(), 5, "{trail}");
    assert_eq!(ends[0]["actor"], app.owner_actor());
    let outcomes: Vec<(u64, u64)> = ends
        .iter()
        .map(|e| {
            let o = &e["payload"]["RepublishFinished"]["outcome"];
            (o["published"].as_u64().unwrap(), o["duplicates"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(outcomes, vec![(0, 0), (0, 3), (3, 0), (0, 40), (40, 0)], "newest first");
    let started = app
        .data(
            "{ auditTrail(filter: {eventType: \"RepublishStarted\"}) { nodes { correlationId payload } } }",
            json!({}),
        )
        .await;
    let last = &started["auditTrail"]["nodes"][4]["payload"]["RepublishStarted"];
    assert_eq!(last["selection"]["subject"], "src.a", "{started}");
    assert_eq!(last["target"]["subject"], "dst.copy");
    assert_eq!(last["rate_per_second"], 1000);

    // A slow run, cancelled.
    let slow = app.data(REPUBLISH, input(json!({"ratePerSecond": 2}))).await["republishMessages"].clone();
    let cancel = app
        .data(
            "mutation($j: ID!) { cancelRepublish(input: {jobId: $j}) { jobId } }",
            json!({"j": slow["jobId"]}),
        )
        .await;
    assert_eq!(cancel["cancelRepublish"]["jobId"], slow["jobId"]);
    let stopped = follow(&app, &slow["jobId"]).await;
    assert_eq!(stopped["stop"], "CANCELLED", "{stopped}");
    assert!(stopped["published"].as_u64().unwrap() + stopped["duplicates"].as_u64().unwrap() < 40);

    // Bad input, and roles.
    for (extra, field) in [
        (json!({"target": {"subject": "dst.*"}}), "target.subject"),
        (json!({"ratePerSecond": 0}), "ratePerSecond"),
        (json!({"sequences": [0]}), "sequences"),
        (json!({"search": {"subject": "src..a"}}), "subject"),
        (
            json!({"sequences": [2, 9], "search": {"fromSequence": 3}}),
            "sequences: 2 is outside the range 3.. given by fromSequence/toSequence",
        ),
    ] {
        let body = app.graphql(REPUBLISH, input(extra)).await;
        assert_eq!(code(&body), "VALIDATION", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(field), "{body}");
    }
    let (_, viewer) = app
        .invite_member("default", "republish-viewer@example.com", "VIEWER")
        .await;
    let refused = app
        .graphql_as(Some(&viewer), REPUBLISH, input(json!({"dryRun": true})))
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let mut missing = app
        .subscribe("graphql-transport-ws", PROGRESS, json!({"j": "nope"}))
        .await;
    let frame = missing.next_frame_raw().await;
    assert!(frame.to_string().contains("no republish job"), "{frame}");
}

const DELETE_MESSAGE: &str =
    "mutation($input: DeleteMessageInput!) { deleteMessage(input: $input) { messageSequence sequence } }";

#[tokio::test]
async fn deleting_a_message_is_a_command_for_operators_with_an_event() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create(&app, &cluster, "DEL", json!({})).await;
    publish(&js, "del.x", &[b"a", b"b", b"c"]).await;
    let input = |seq: u64, erase: bool| json!({"input": {"clusterId": cluster, "stream": "DEL", "messageSequence": seq, "erase": erase}});
    let done = app.data(DELETE_MESSAGE, input(2, true)).await["deleteMessage"].clone();
    assert_eq!(done["messageSequence"], 2);
    assert!(done["sequence"].as_u64().is_some());
    let info = js.get_stream("DEL").await.unwrap().get_info().await.unwrap();
    assert_eq!(info.state.messages, 2);
    let gone = app
        .graphql(
            "query($c: ID!) { message(clusterId: $c, stream: \"DEL\", sequence: 2) { sequence } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(code(&gone), "NOT_FOUND");
    let again = app.graphql(DELETE_MESSAGE, input(2, false)).await;
    assert_eq!(code(&again), "NOT_FOUND", "{again}");
    assert!(
        again["errors"][0]["message"].as_str().unwrap().contains("sequence 2"),
        "{again}"
    );
    assert_eq!(code(&app.graphql(DELETE_MESSAGE, input(0, false)).await), "VALIDATION");
    let events = app.events_of("stream", &format!("{cluster}/DEL")).await;
    let deleted: Vec<_> = events.iter().filter(|e| e.event_type == "MessageDeleted").collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].payload["MessageDeleted"]["sequence"], 2);
    assert_eq!(deleted[0].payload["MessageDeleted"]["erased"], true);
    let (_, viewer) = app
        .invite_member("default", "delete-viewer@example.com", "VIEWER")
        .await;
    let refused = app.graphql_as(Some(&viewer), DELETE_MESSAGE, input(1, false)).await;
    assert_eq!(code(&refused), "FORBIDDEN");
}

const DEAD_LETTERS: &str = "query($c: ID!, $s: String!, $n: String!) { consumer(clusterId: $c, stream: $s, name: $n) {
  deadLetters { totalCount nodes { streamSequence deliveries reason detail time consumer message { subject payload { text } } } } } }";

#[tokio::test]
async fn dead_letters_come_from_advisories_and_are_redriven_once() {
    use futures::StreamExt;
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create(&app, &cluster, "JOBS", json!({"allowDirect": true})).await;
    app.data(
        gql::CREATE_CONSUMER,
        json!({"c": cluster, "s": "JOBS", "cfg": {"durableName": "worker", "ackPolicy": "EXPLICIT", "maxDeliver": 2, "ackWait": "30s"}}),
    )
    .await;
    publish(&js, "jobs.a", &[b"poison", b"fine", b"broken"]).await;

    // The handler: acks "fine", terminates "broken", naks "poison" until the server gives up.
    let consumer: consumer::PullConsumer = js
        .get_stream("JOBS")
        .await
        .unwrap()
        .get_consumer("worker")
        .await
        .unwrap();
    let mut seen_poison = 0;
    for _ in 0..10 {
        let mut batch = consumer
            .fetch()
            .max_messages(3)
            .expires(std::time::Duration::from_millis(300))
            .messages()
            .await
            .unwrap();
        while let Some(m) = batch.next().await {
            let m = m.unwrap();
            match &m.payload[..] {
                b"fine" => m.ack().await.unwrap(),
                b"broken" => m.ack_with(jetstream::AckKind::Term).await.unwrap(),
                _ => {
                    seen_poison += 1;
                    m.ack_with(jetstream::AckKind::Nak(None)).await.unwrap();
                }
            }
        }
        if seen_poison >= 2 {
            // One more pull makes the server give up on it (and say so).
            let _ = consumer
                .fetch()
                .max_messages(1)
                .expires(std::time::Duration::from_millis(300))
                .messages()
                .await
                .unwrap()
                .next()
                .await;
            break;
        }
    }
    assert_eq!(seen_poison, 2, "max_deliver 2");

    // The console saw both advisories.
    let vars = json!({"c": cluster, "s": "JOBS", "n": "worker"});
    let mut letters = Value::Null;
    for _ in 0..200 {
        letters = app.data(DEAD_LETTERS, vars.clone()).await["consumer"]["deadLetters"].clone();
        if letters["totalCount"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(letters["totalCount"], 2, "{letters}");
    let nodes = letters["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["streamSequence"], 1);
    assert_eq!(nodes[0]["reason"], "MAX_DELIVERIES");
    assert_eq!(nodes[0]["deliveries"], 2);
    assert_eq!(nodes[0]["message"]["payload"]["text"], "poison");
    assert_eq!(nodes[1]["streamSequence"], 3);
    assert_eq!(nodes[1]["reason"], "TERMINATED");
    assert_eq!(nodes[1]["message"]["subject"], "jobs.a");

    // Redriven back to their subject, exactly once across a retry.
    let redrive =
        "mutation($input: RedriveDeadLettersInput!) { redriveDeadLetters(input: $input) { jobId dryRun { matched } } }";
    let input = |extra: Value| {
        let mut i = json!({"clusterId": cluster, "stream": "JOBS", "consumer": "worker"});
        for (k, v) in extra.as_object().unwrap() {
            i[k] = v.clone();
        }
        json!({"input": i})
    };
    let dry = app.data(redrive, input(json!({"dryRun": true}))).await;
    assert_eq!(dry["redriveDeadLetters"]["dryRun"]["matched"], 2, "{dry}");
    let only = app.graphql(redrive, input(json!({"sequences": [2]}))).await;
    assert_eq!(code(&only), "VALIDATION", "2 was acked, not a dead letter: {only}");
    let job = app.data(redrive, input(json!({"sequences": [1]}))).await["redriveDeadLetters"]["jobId"].clone();
    let done = follow(&app, &job).await;
    assert_eq!(
        (done["published"].clone(), done["stop"].clone()),
        (json!(1), json!("END")),
        "{done}"
    );
    let job = app.data(redrive, input(json!({}))).await["redriveDeadLetters"]["jobId"].clone();
    let done = follow(&app, &job).await;
    assert_eq!(done["published"], 1, "only sequence 3 is new: {done}");
    assert_eq!(done["duplicates"], 1, "sequence 1 was redriven already: {done}");
    // The redriven copies wait for the worker at the end of the stream.
    let copies = app
        .data(
            "query($c: ID!) { messages(clusterId: $c, stream: \"JOBS\", from: {sequence: 4}) { nodes { sequence payload { text } headers { name value } } } }",
            json!({"c": cluster}),
        )
        .await;
    let texts: Vec<&str> = copies["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["payload"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["poison", "broken"]);
    let started = app
        .data(
            "{ auditTrail(filter: {eventType: \"RepublishStarted\"}) { nodes { payload } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        started["auditTrail"]["nodes"][0]["payload"]["RepublishStarted"]["selection"]["purpose"], "redrive worker",
        "{started}"
    );
}

const SCHEMA: &str = "query($c: ID!, $s: String!, $subj: String, $w: TimeWindowInput, $n: Int) {
  messageSchema(clusterId: $c, stream: $s, subject: $subj, window: $w, sample: $n) {
    sampled notJson truncated fields { path types count presence example } } }";
const SCHEMA_CHANGES: &str = "query($c: ID!, $s: String!, $b: TimeWindowInput!, $a: TimeWindowInput!) {
  messageSchemaChanges(clusterId: $c, stream: $s, before: $b, after: $a) {
    added removed changed { path before { types presence } after { types presence } } before { sampled } after { sampled } } }";

#[tokio::test]
async fn the_inferred_schema_of_a_subject_is_masked_and_compared_between_windows() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create(&app, &cluster, "SHAPES", json!({"allowDirect": true})).await;
    let card = "4111111111111111";
    for i in 0..10 {
        let body = json!({"id": i, "card": card, "total": i}).to_string();
        publish(&js, "shapes.orders", &[body.as_bytes()]).await;
    }
    publish(&js, "shapes.other", &[b"not json"]).await;
    // Stored times are the server's, on this same machine: everything acked so far was
    // stored before this, everything published next after it.
    let between = chrono::Utc::now();
    for i in 0..10 {
        let body = json!({"id": format!("s-{i}"), "card": card, "amount": {"value": i}}).to_string();
        publish(&js, "shapes.orders", &[body.as_bytes()]).await;
    }
    let rules = json!([{"name": "card", "jsonPath": "card", "action": "REPLACE", "replaceWith": "[card]"}]);
    app.data(SET_RULES, json!({"o": "default", "r": rules})).await;

    let all = app
        .data(SCHEMA, json!({"c": cluster, "s": "SHAPES", "subj": "shapes.orders"}))
        .await["messageSchema"]
        .clone();
    assert_eq!((all["sampled"].clone(), all["notJson"].clone()), (json!(20), json!(0)));
    let field = |schema: &Value, path: &str| {
        schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .cloned()
            .unwrap_or_else(|| panic!("{path} in {schema}"))
    };
    assert_eq!(field(&all, "id")["types"], json!(["integer", "string"]));
    assert_eq!(field(&all, "total")["presence"], 50.0);
    assert_eq!(field(&all, "amount.value")["types"], json!(["integer"]));
    assert_eq!(field(&all, "card")["example"], "[card]", "examples are masked");
    assert!(!all.to_string().contains(card));
    let newest = app.data(SCHEMA, json!({"c": cluster, "s": "SHAPES", "n": 3})).await["messageSchema"].clone();
    assert_eq!(newest["sampled"], 3, "the newest three");
    assert!(
        newest["fields"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["path"] != "total"),
        "{newest}"
    );
    let with_text = app.data(SCHEMA, json!({"c": cluster, "s": "SHAPES"})).await["messageSchema"].clone();
    assert_eq!(with_text["notJson"], 1);

    let changes = app
        .data(
            SCHEMA_CHANGES,
            json!({"c": cluster, "s": "SHAPES", "b": {"to": between}, "a": {"from": between}}),
        )
        .await["messageSchemaChanges"]
        .clone();
    assert_eq!(changes["before"]["sampled"], 11, "{changes}");
    assert_eq!(changes["after"]["sampled"], 10);
    assert_eq!(changes["added"], json!(["amount", "amount.value"]));
    assert_eq!(changes["removed"], json!(["total"]));
    assert_eq!(changes["changed"][0]["path"], "id");
    assert_eq!(changes["changed"][0]["before"]["types"], json!(["integer"]));
    assert_eq!(changes["changed"][0]["after"]["types"], json!(["string"]));

    let bad = app.graphql(SCHEMA, json!({"c": cluster, "s": "SHAPES", "n": 0})).await;
    assert_eq!(code(&bad), "VALIDATION");
    let later = app
        .graphql(
            SCHEMA,
            json!({"c": cluster, "s": "SHAPES", "w": {"from": between, "to": "2020-01-01T00:00:00Z"}}),
        )
        .await;
    assert_eq!(code(&later), "VALIDATION", "{later}");
}

const SAVED_SEARCH: &str = "subscription($c: ID!, $s: String!, $saved: String) {
  messageSearch(clusterId: $c, stream: $s, saved: $saved) { kind message { sequence } } }";
const SAVE_SEARCH: &str =
    "mutation($input: SaveSearchInput!) { saveSearch(input: $input) { sequence savedSearch { name stream savedAt } } }";

#[tokio::test]
async fn saved_searches_belong_to_their_user_and_run_again_by_name() {
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create(&app, &cluster, "SAVED", json!({})).await;
    create(&app, &cluster, "ELSEWHERE", json!({})).await;
    for i in 1..=6 {
        publish(&js, "saved.x", &[json!({"n": i}).to_string().as_bytes()]).await;
    }
    let input = |name: &str, stream: &str, search: Value| json!({"input": {"name": name, "clusterId": cluster, "stream": stream, "search": search}});
    let saved = app
        .data(
            SAVE_SEARCH,
            input("  big ones ", "SAVED", json!({"expression": "payload.n > 3"})),
        )
        .await["saveSearch"]
        .clone();
    assert_eq!(saved["savedSearch"]["name"], "big ones", "the name is trimmed");
    assert!(saved["sequence"].as_u64().is_some());
    let run = |name: &'static str, stream: &'static str| {
        let app = &app;
        let cluster = cluster.clone();
        async move {
            let mut sub = app
                .subscribe(
                    "graphql-transport-ws",
                    SAVED_SEARCH,
                    json!({"c": cluster, "s": stream, "saved": name}),
                )
                .await;
            let mut found = Vec::new();
            loop {
                let frame = sub.next_frame_raw().await;
                if frame["type"] != "next" || frame["payload"]["errors"].is_array() {
                    return Err(frame);
                }
                let e = &frame["payload"]["data"]["messageSearch"];
                match e["kind"].as_str().unwrap() {
                    "MATCH" => found.push(e["message"]["sequence"].as_u64().unwrap()),
                    "DONE" => return Ok(found),
                    _ => {}
                }
            }
        }
    };
    assert_eq!(run("big ones", "SAVED").await.unwrap(), vec![4, 5, 6]);
    let elsewhere = run("big ones", "ELSEWHERE").await.unwrap_err();
    assert!(elsewhere.to_string().contains("searches stream 'SAVED'"), "{elsewhere}");
    let missing = run("nope", "SAVED").await.unwrap_err();
    assert!(
        missing.to_string().contains("no saved search named 'nope'"),
        "{missing}"
    );

    // Replaced under the same name; listed for their user only.
    app.data(
        SAVE_SEARCH,
        input("big ones", "SAVED", json!({"expression": "payload.n > 5"})),
    )
    .await;
    assert_eq!(run("big ones", "SAVED").await.unwrap(), vec![6]);
    let mine = app
        .data("{ me { savedSearches { name stream search } } }", json!({}))
        .await;
    assert_eq!(mine["me"]["savedSearches"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["me"]["savedSearches"][0]["search"]["expression"], "payload.n > 5");
    let (_, viewer) = app.invite_member("default", "saved-viewer@example.com", "VIEWER").await;
    let theirs = app
        .data_as(Some(&viewer), "{ me { savedSearches { name } } }", json!({}))
        .await;
    assert_eq!(theirs["me"]["savedSearches"], json!([]), "each user has their own");

    // Checked like a search; deleted by name; every change recorded.
    let bad = app
        .graphql(SAVE_SEARCH, input("broken", "SAVED", json!({"payloadRegex": "("})))
        .await;
    assert_eq!(code(&bad), "VALIDATION", "{bad}");
    let delete = "mutation($n: String!) { deleteSavedSearch(input: {name: $n}) { name } }";
    app.data(delete, json!({"n": "big ones"})).await;
    assert_eq!(code(&app.graphql(delete, json!({"n": "big ones"})).await), "NOT_FOUND");
    let trail = app
        .data(
            "{ auditTrail(filter: {aggregateType: USER}) { nodes { eventType } } }",
            json!({}),
        )
        .await;
    let kinds: Vec<&str> = trail["auditTrail"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["eventType"].as_str().unwrap())
        .filter(|k| k.contains("Search"))
        .collect();
    assert_eq!(kinds, ["SavedSearchDeleted", "SearchSaved", "SearchSaved"]);
}

use jsc_messages::protobuf::example::{order, order_descriptor_set};

const REGISTER_PROTO: &str = "mutation($input: RegisterProtobufSchemaInput!) { registerProtobufSchema(input: $input) {
  sequence schema { name subjects messageType sha256 } } }";

#[tokio::test]
async fn protobuf_payloads_are_read_through_a_registered_schema_in_every_read() {
    use base64::Engine;
    let managed = NatsServer::start();
    let (app, cluster) = console_on(&managed).await;
    let js = managed.jetstream().await;
    create(&app, &cluster, "PB", json!({"allowDirect": true})).await;
    let card = "4111111111111111";
    publish(&js, "pb.orders.eu", &[&order("o-1", 42, card), &order("o-2", 7, card)]).await;
    publish(&js, "pb.other", &[b"\x08\x01"]).await;
    let set = base64::engine::general_purpose::STANDARD.encode(order_descriptor_set());
    let input = |message_type: &str, descriptor: &str| {
        json!({"input": {"organizationId": "default", "name": "orders", "subjects": "pb.orders.*",
            "messageType": message_type, "descriptorSet": descriptor}})
    };
    let done = app.data(REGISTER_PROTO, input("shop.v1.Order", &set)).await["registerProtobufSchema"].clone();
    assert_eq!(done["schema"]["messageType"], "shop.v1.Order");
    assert_eq!(done["schema"]["sha256"].as_str().unwrap().len(), 64);
    let rules = json!([{"name": "card", "jsonPath": "card", "action": "REPLACE", "replaceWith": "[card]"}]);
    app.data(SET_RULES, json!({"o": "default", "r": rules})).await;

    // Pages show the JSON of each message, masked.
    let page = app
        .data(
            "query($c: ID!) { messages(clusterId: $c, stream: \"PB\") { nodes { subject payload { text encoding protobufType } } } }",
            json!({"c": cluster}),
        )
        .await;
    let nodes = page["messages"]["nodes"].as_array().unwrap();
    let first: Value = serde_json::from_str(nodes[0]["payload"]["text"].as_str().unwrap()).unwrap();
    assert_eq!(first, json!({"id": "o-1", "total": "42", "card": "[card]"}));
    assert_eq!(nodes[0]["payload"]["encoding"], "JSON");
    assert_eq!(nodes[0]["payload"]["protobufType"], "shop.v1.Order");
    assert_eq!(
        nodes[2]["payload"]["protobufType"],
        Value::Null,
        "another subject: as stored"
    );
    assert!(!page.to_string().contains(card));

    // Searched, inferred and exported as JSON.
    let (found, _, _) = search(&app, &cluster, "PB", json!({"expression": "payload.id == 'o-2'"})).await;
    assert_eq!(found, vec![2]);
    let shape = app
        .data(SCHEMA, json!({"c": cluster, "s": "PB", "subj": "pb.orders.*"}))
        .await["messageSchema"]
        .clone();
    let paths: Vec<&str> = shape["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["card", "id", "total"]);
    let export = app
        .data(
            EXPORT_MUTATION,
            json!({"input": {"clusterId": cluster, "stream": "PB", "format": "JSONL", "search": {"subject": "pb.orders.*"}}}),
        )
        .await["exportMessages"]
        .clone();
    let lines = app.get(export["url"].as_str().unwrap()).await.text().await.unwrap();
    assert!(lines.contains(r#"\"id\":\"o-1\""#) && !lines.contains(card), "{lines}");

    // An admin reads unmasked, still decoded.
    let plain = app
        .data(
            "query($c: ID!) { message(clusterId: $c, stream: \"PB\", sequence: 1, unmasked: true) { payload { text } } }",
            json!({"c": cluster}),
        )
        .await;
    assert!(plain.to_string().contains(card), "{plain}");

    // Bad schemas say what to do; viewers cannot register; the history has who and which.
    let bad = app
        .graphql(REGISTER_PROTO, input("shop.v1.Order", "Z2FyYmFnZQ=="))
        .await;
    assert_eq!(code(&bad), "VALIDATION");
    assert!(bad.to_string().contains("protoc"), "{bad}");
    let wrong = app.graphql(REGISTER_PROTO, input("shop.v1.Refund", &set)).await;
    assert!(wrong.to_string().contains("it has: shop.v1.Order"), "{wrong}");
    let (_, viewer) = app.invite_member("default", "pb-viewer@example.com", "VIEWER").await;
    let refused = app
        .graphql_as(Some(&viewer), REGISTER_PROTO, input("shop.v1.Order", &set))
        .await;
    assert_eq!(code(&refused), "FORBIDDEN");
    let trail = app
        .data(
            "{ auditTrail(filter: {eventType: \"ProtobufSchemaRegistered\"}) { nodes { actor payload } } }",
            json!({}),
        )
        .await;
    let entry = &trail["auditTrail"]["nodes"][0];
    assert_eq!(entry["actor"], app.owner_actor());
    assert_eq!(
        entry["payload"]["ProtobufSchemaRegistered"]["schema"]["sha256"],
        done["schema"]["sha256"]
    );

    // Removed: payloads are as stored again.
    app.data(
        "mutation { removeProtobufSchema(input: {organizationId: \"default\", name: \"orders\"}) { name } }",
        json!({}),
    )
    .await;
    let raw = app
        .data(
            "query($c: ID!) { message(clusterId: $c, stream: \"PB\", sequence: 1) { payload { protobufType } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(raw["message"]["payload"]["protobufType"], Value::Null);
}
