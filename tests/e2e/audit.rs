//! The history can be proven unedited: `jsconsole audit verify` on a clean stream, on a
//! tampered copy, on a copy with a gap; `jsconsole events dump` prints it.

use async_nats::jetstream;
use base64::Engine;
use jsc_eventstore::verify::sha256_hex;
use jsc_testkit::{TestApp, cli};
use serde_json::{Value, json};

/// Some history: two clusters, one of them changed three times. Seven events after the
/// baseline: a's name claimed, a registered, b's name claimed, b registered, three updates.
async fn some_history(app: &TestApp) -> String {
    let id = app
        .register_cluster(json!({"name": "a", "urls": ["nats://127.0.0.1:4222"]}))
        .await;
    app.register_cluster(json!({"name": "b", "urls": ["nats://127.0.0.1:4222"]}))
        .await;
    for d in ["one", "two", "three"] {
        app.update_cluster(&id, json!({"description": d})).await;
    }
    id
}

/// Copies the events into stream `name` (as an auditor would to examine them), letting
/// `edit` change or drop each one.
async fn copy_into(
    app: &TestApp,
    name: &str,
    mut edit: impl FnMut(usize, &mut async_nats::HeaderMap, &mut Vec<u8>) -> bool,
) {
    let events = app.raw_events().await;
    let js = app.nats.jetstream().await;
    js.create_stream(jetstream::stream::Config {
        name: name.into(),
        subjects: vec![format!("{}.>", name.to_lowercase())],
        ..Default::default()
    })
    .await
    .unwrap();
    for (i, mut event) in events.into_iter().enumerate() {
        if !edit(i, &mut event.headers, &mut event.payload) {
            continue;
        }
        let mut h = async_nats::HeaderMap::new();
        for (k, values) in event.headers.iter() {
            if !k.to_string().starts_with("Nats-") {
                for v in values {
                    h.append(k.clone(), v.clone());
                }
            }
        }
        js.publish_with_headers(format!("{}.{i}", name.to_lowercase()), h, event.payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

fn set_description(body: &mut Vec<u8>, text: &str) {
    let mut v: Value = serde_json::from_slice(body).unwrap();
    v["payload"]["Updated"]["changes"]["description"] = text.into();
    *body = serde_json::to_vec(&v).unwrap();
}

#[tokio::test]
async fn a_clean_history_verifies() {
    let app = TestApp::spawn().await;
    some_history(&app).await;
    let (code, out, err) = cli(&["audit", "verify", "--nats-url", app.nats.url()]).await;
    assert_eq!(code, 0, "{out}{err}");
    // The owner's organization, account and session come first.
    // And the owner's email claimed; then the two clusters and their names' claims.
    let expected = format!("OK {} events of 8 aggregates", app.baseline + 7);
    assert!(out.starts_with(&expected), "{out}");
}

#[tokio::test]
async fn an_altered_event_is_found_with_its_exact_place() {
    let app = TestApp::spawn().await;
    some_history(&app).await;
    // Event baseline+6 is cluster a's second update; change what it says.
    let b = app.baseline as usize;
    copy_into(&app, "TAMPERED", |i, _, body| {
        if i == b + 5 {
            set_description(body, "nobody saw this");
        }
        true
    })
    .await;
    let (code, out, _) = cli(&["audit", "verify", "--nats-url", app.nats.url(), "--stream", "TAMPERED"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("FAIL stream sequence {}: event 3 of cluster/", b + 6)),
        "{out}"
    );
    assert!(out.contains("was altered"), "{out}");
    assert_eq!(out.matches("FAIL").count(), 1, "one edit, one finding: {out}");
}

#[tokio::test]
async fn a_forger_who_rehashes_breaks_the_chain() {
    let app = TestApp::spawn().await;
    some_history(&app).await;
    let b = app.baseline as usize;
    copy_into(&app, "FORGED", |i, headers, body| {
        if i == b + 5 {
            set_description(body, "forged");
            headers.insert("Jsc-Hash", sha256_hex(body).as_str());
        }
        true
    })
    .await;
    let (code, out, _) = cli(&["audit", "verify", "--nats-url", app.nats.url(), "--stream", "FORGED"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("FAIL stream sequence {}: event 4 of cluster/", b + 7)) && out.contains("does not chain"),
        "the next event still names the original hash: {out}"
    );
}

#[tokio::test]
async fn a_gap_is_found() {
    let app = TestApp::spawn().await;
    some_history(&app).await;
    // Drop cluster a's first update from the copy.
    let b = app.baseline;
    copy_into(&app, "GAPPED", |i, _, _| i != b as usize + 4).await;
    let (code, out, _) = cli(&["audit", "verify", "--nats-url", app.nats.url(), "--stream", "GAPPED"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("jumps from event 1 to event 3; event 2 is missing"),
        "{out}"
    );

    // A message deleted from a stream leaves a hole in its sequences.
    copy_into(&app, "HOLED", |_, _, _| true).await;
    let holed = app.nats.jetstream().await.get_stream("HOLED").await.unwrap();
    holed.delete_message(b + 4).await.unwrap();
    // The last one too: verify must still end, and say so.
    holed.delete_message(b + 7).await.unwrap();
    let (code, out, _) = cli(&["audit", "verify", "--nats-url", app.nats.url(), "--stream", "HOLED"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("FAIL stream sequence {} is missing", b + 4)),
        "{out}"
    );
    assert!(
        out.contains(&format!("FAIL stream sequence {} is missing", b + 7)),
        "{out}"
    );
}

#[tokio::test]
async fn events_dump_prints_the_history_as_json_lines() {
    let app = TestApp::spawn().await;
    let id = some_history(&app).await;
    let b = app.baseline;
    // b's registration, then a's first two updates.
    let (from, to) = ((b + 4).to_string(), (b + 6).to_string());
    let (code, out, err) = cli(&[
        "events",
        "dump",
        "--nats-url",
        app.nats.url(),
        "--from",
        &from,
        "--to",
        &to,
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["stream_sequence"], b + 4);
    assert_eq!(lines[0]["event_type"], "ClusterRegistered");
    assert_eq!(lines[1]["aggregate_id"], id.as_str());
    assert_eq!(lines[1]["event_type"], "ClusterUpdated");
    assert_eq!(
        lines[2]["prev_hash"], lines[1]["hash"],
        "each event chains to the one before"
    );
    let (code, _, err) = cli(&["events", "dump", "--nats-url", "nats://127.0.0.1:1"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("cannot reach the console's NATS"), "{err}");
}

pub(crate) fn test_python() -> std::path::PathBuf {
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/py/bin/python");
    let python = std::env::var_os("JSC_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or(default);
    assert!(
        python.is_file(),
        "python with pyarrow not found at {}: run `make tools`",
        python.display()
    );
    python
}

const READ_WITH_PYARROW: &str = r#"
import json, sys, pathlib
import pyarrow.parquet as pq
root = pathlib.Path(sys.argv[1])
files = sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet"))
rows, seqs, summaries, columns, compressions = 0, [], [], None, set()
for f in files:
    pf = pq.ParquetFile(root / f)
    t = pf.read()
    columns = [(fld.name, str(fld.type)) for fld in t.schema]
    rows += t.num_rows
    seqs += t.column("sequence").to_pylist()
    summaries += t.column("summary").to_pylist()
    md = pf.metadata
    for rg in range(md.num_row_groups):
        compressions.add(md.row_group(rg).column(0).compression)
    text = json.dumps(t.to_pylist(), default=str)
print(json.dumps({"files": files, "rows": rows, "sequences": seqs, "summaries": summaries,
                  "columns": columns, "compressions": sorted(compressions), "text": text}))
"#;

/// Registers a cluster (`fields` of its input besides the URL) and changes it six times
/// (eight events: its name's claim, its registration, six updates). Returns its id.
async fn seven_events(app: &TestApp, mut fields: Value) -> String {
    fields["urls"] = json!(["nats://127.0.0.1:4222"]);
    let id = app.register_cluster(fields).await;
    for i in 0..6 {
        app.update_cluster(&id, json!({"description": format!("d{i}")})).await;
    }
    id
}

/// Waits until the audit writer has flushed at least `at_least` events to files (it
/// creates its state bucket as it starts).
async fn wait_flushed(app: &TestApp, at_least: u64) {
    app.wait_kv("audit_state", "flushed", |v| {
        v.and_then(Value::as_u64).unwrap_or(0) >= at_least
    })
    .await;
}

#[tokio::test]
async fn the_parquet_audit_table_is_read_by_pyarrow() {
    let mut app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.audit_max_rows = 3;
        c.audit_max_age = std::time::Duration::from_secs(3600);
    })
    .await;
    let id = seven_events(
        &app,
        json!({"name": "audited", "auth": {"kind": "TOKEN", "token": "tok-audit-secret"}}),
    )
    .await;
    // After the owner's first events come the seven; files hold three rows each.
    let total = app.baseline + 8;
    let flushed = total / 3 * 3;
    wait_flushed(&app, flushed).await;
    let root = app.data_dir.path().join("audit-store");
    let read = || {
        let out = std::process::Command::new(test_python())
            .arg("-c")
            .arg(READ_WITH_PYARROW)
            .arg(&root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let table = read();
    let day = chrono::Utc::now().date_naive();
    let files: Vec<String> = (0..flushed / 3)
        .map(|k| format!("audit/date={day}/part-{:020}-{:020}.parquet", 3 * k + 1, 3 * k + 3))
        .collect();
    assert_eq!(table["files"], json!(files));
    assert_eq!(table["rows"], flushed);
    assert_eq!(table["sequences"], json!((1..=flushed).collect::<Vec<u64>>()));
    assert_eq!(table["compressions"], json!(["ZSTD"]));
    let names: Vec<&str> = table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[0].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "sequence",
            "time",
            "aggregate_type",
            "aggregate_id",
            "aggregate_sequence",
            "event_type",
            "event_version",
            "actor",
            "client_addr",
            "correlation_id",
            "causation_id",
            "organization",
            "cluster",
            "payload",
            "summary",
            "hash",
            "prev_hash"
        ]
    );
    assert_eq!(table["columns"][1][1], "timestamp[us, tz=UTC]");
    assert_eq!(
        table["summaries"][app.baseline as usize + 1],
        format!("cluster registered 'audited' (cluster {id}) by {}", app.owner_actor())
    );
    let text = table["text"].as_str().unwrap();
    assert!(
        !text.contains("tok-audit-secret") && !text.contains("\"v1:"),
        "no credential in the table"
    );

    // What is still buffered is written when the console stops.
    app.shutdown().await;
    let table = read();
    assert_eq!(table["rows"], total);
}

const TRAIL: &str = "query($f: AuditFilterInput, $first: Int, $after: String) {
    auditTrail(filter: $f, first: $first, after: $after) { pageInfo { hasNextPage endCursor } nodes { sequence time actor aggregateId eventType summary cluster } } }";

#[tokio::test]
async fn the_trail_shows_written_and_unwritten_events_newest_first() {
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.audit_max_rows = 3;
        c.audit_max_age = std::time::Duration::from_secs(3600);
    })
    .await;
    let id = seven_events(&app, json!({"name": "trail"})).await;
    let total = app.baseline + 8;
    wait_flushed(&app, total / 3 * 3).await;
    // Most events are in Parquet files, the last ones only in the stream: all are there.
    let page = app.data(TRAIL, json!({"first": 20})).await["auditTrail"].clone();
    let seqs: Vec<u64> = page["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["sequence"].as_u64().unwrap())
        .collect();
    let all: Vec<u64> = (1..=total).rev().collect();
    assert_eq!(seqs, all);
    assert_eq!(page["pageInfo"]["hasNextPage"], false);
    assert_eq!(page["nodes"][6]["eventType"], "ClusterRegistered");
    assert_eq!(page["nodes"][0]["cluster"], id.as_str());
    // Pages of two, across the tail and the files.
    assert_eq!(page_through(&app, json!({}), 2).await, all);
    let (code, _) = app.error(TRAIL, json!({"after": "not-a-cursor"})).await;
    assert_eq!(code, "VALIDATION");
}

#[tokio::test]
async fn trail_filters_and_pagination_over_thousands_of_events_and_several_days() {
    use chrono::{Duration as Days, TimeZone, Utc};
    use jsc_domain::cluster::{Cluster, ClusterChanges, ClusterEvent, ClusterSpec};
    let nats = jsc_testkit::NatsServer::start();
    let audit_dir = tempfile::tempdir().unwrap();
    let dir = audit_dir.path().to_path_buf();
    let tweak = move |c: &mut jsc_cli::Config| {
        c.audit_dir = Some(dir.clone());
        c.audit_max_rows = 500;
        c.audit_max_age = std::time::Duration::from_secs(3600);
        // The restart gets a new data dir: the keys must come from the configuration.
        c.secret_keys = vec![base64::engine::general_purpose::STANDARD.encode([7u8; 32])];
        c.signing_keys = vec![base64::engine::general_purpose::STANDARD.encode([8u8; 32])];
    };
    let mut app = TestApp::spawn_with(nats, tweak.clone()).await;

    // 2,400 events over three days, ten clusters, two people.
    let store = jsc_eventstore::JetStreamEventStore::open(app.nats.client().await, app.event_config().clone())
        .await
        .unwrap();
    let js = app.nats.jetstream().await;
    let day0 = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    let mut expected: Vec<Expected> = Vec::new();
    let mut versions = [0usize; 10];
    let mut hashes: Vec<Option<String>> = vec![None; 10];
    for i in 0..2_400u64 {
        let a = (i % 10) as usize;
        let id = format!("c{a}");
        let actor = if i % 3 == 0 { "user:alice" } else { "user:bob" };
        let time = day0 + Days::days((i / 800) as i64) + Days::seconds(i as i64);
        let event = if versions[a] == 0 {
            ClusterEvent::Registered {
                id: id.clone(),
                organization: "default".into(),
                spec: ClusterSpec {
                    name: id.clone(),
                    urls: vec!["nats://127.0.0.1:4222".into()],
                    ..Default::default()
                },
            }
        } else {
            ClusterEvent::Updated {
                changes: ClusterChanges {
                    description: Some(format!("change {i}")),
                    ..Default::default()
                },
            }
        };
        let mut meta = std::collections::HashMap::new();
        meta.insert("actor".to_string(), actor.to_string());
        let mut rec = store
            .records_for::<Cluster>(&id, versions[a], &[event], &meta, None)
            .remove(0);
        rec.timestamp = time;
        rec.rehash(hashes[a].clone());
        versions[a] += 1;
        hashes[a] = rec.hash.clone();
        let (body, hash) = rec.body_and_hash();
        let mut h = async_nats::HeaderMap::new();
        h.insert("Jsc-Hash", hash.as_str());
        let ack = js
            .publish_with_headers(store.subject("cluster", &id), h, body.into())
            .await
            .unwrap()
            .await
            .unwrap();
        expected.push((ack.sequence, time, actor.to_string(), id, rec.event_type.clone()));
    }
    // Stop (flushing what is buffered) and start again: the trail is read from the files.
    app.shutdown().await;
    let nats = std::mem::replace(&mut app.nats, jsc_testkit::NatsServer::start());
    drop(app);
    let app = TestApp::spawn_with(nats, tweak).await;
    let files = walk(audit_dir.path());
    assert!(files.len() >= 6, "several files over three days: {files:?}");
    assert!(files.iter().any(|f| f.contains("date=2026-11-21")), "{files:?}");

    let collect = |filter: Value, page: usize| page_through(&app, filter, page);
    let want =
        |f: &dyn Fn(&Expected) -> bool| -> Vec<u64> { expected.iter().rev().filter(|e| f(e)).map(|e| e.0).collect() };
    // Every cluster event (all the test wrote), in pages of 250; the rest are the owner's
    // sign-ins and account.
    assert_eq!(collect(json!({"aggregateType": "CLUSTER"}), 250).await, want(&|_| true));
    let everything = collect(json!({}), 500).await;
    assert!(
        everything.len() > expected.len(),
        "the owner's own events are in the trail too"
    );
    // One person.
    assert_eq!(
        collect(json!({"actor": "user:alice"}), 100).await,
        want(&|e| e.2 == "user:alice")
    );
    // One cluster, the second day only.
    let (from, to) = (day0 + Days::days(1), day0 + Days::days(2) - Days::seconds(1));
    assert_eq!(
        collect(
            json!({"aggregateId": "c3", "from": from.to_rfc3339(), "to": to.to_rfc3339()}),
            37
        )
        .await,
        want(&|e| e.3 == "c3" && e.1 >= from && e.1 <= to)
    );
    // Registrations, found by their summary text.
    assert_eq!(
        collect(json!({"text": "CLUSTER REGISTERED"}), 3).await,
        want(&|e| e.4 == "ClusterRegistered")
    );
    assert_eq!(
        collect(json!({"cluster": "c7", "eventType": "ClusterUpdated"}), 500).await,
        want(&|e| e.3 == "c7" && e.4 == "ClusterUpdated")
    );
}

/// (sequence, time, actor, aggregate id, event type) of an event the test wrote.
type Expected = (u64, chrono::DateTime<chrono::Utc>, String, String, String);

/// Every sequence `auditTrail` returns for `filter`, following the cursors page by page.
async fn page_through(app: &TestApp, filter: Value, page: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let p = app
            .data(TRAIL, json!({"f": filter, "first": page, "after": after}))
            .await["auditTrail"]
            .clone();
        out.extend(
            p["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["sequence"].as_u64().unwrap()),
        );
        if p["pageInfo"]["hasNextPage"] != true {
            return out;
        }
        after = p["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[tokio::test]
async fn audit_events_streams_the_live_trail() {
    let app = TestApp::spawn().await;
    let id = some_history(&app).await;
    let last = app.data(TRAIL, json!({"first": 1})).await["auditTrail"]["nodes"][0]["sequence"]
        .as_u64()
        .unwrap();
    let mut sub = app
        .subscribe(
            "graphql-transport-ws",
            "subscription($from: Int, $f: AuditFilterInput) { auditEvents(fromSequence: $from, filter: $f) { sequence eventType summary } }",
            json!({"from": last + 1, "f": {"aggregateId": id}}),
        )
        .await;
    // Another cluster's change is filtered out; this one's arrives.
    app.register_cluster(json!({"name": "other", "urls": ["nats://127.0.0.1:4222"]}))
        .await;
    app.update_cluster(&id, json!({"description": "live"})).await;
    let e = sub.next_data().await;
    // After the other cluster's name claim and registration.
    assert_eq!(e["auditEvents"]["sequence"], last + 3);
    assert_eq!(e["auditEvents"]["eventType"], "ClusterUpdated");
    assert!(
        e["auditEvents"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("cluster updated"),
        "{e}"
    );
}

#[tokio::test]
async fn jsconsole_audit_export_writes_jsonl_csv_and_parquet() {
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.audit_max_rows = 4;
        c.audit_max_age = std::time::Duration::from_secs(3600);
    })
    .await;
    let id = seven_events(&app, json!({"name": "exported"})).await;
    seven_events(&app, json!({"name": "other"})).await;
    wait_flushed(&app, 12).await; // at least 12 in files, the rest still in the tail
    let audit_dir = app.data_dir.path().join("audit-store");
    let out = tempfile::tempdir().unwrap();
    let export = |format: &str, extra: Vec<String>| {
        let mut args = vec![
            "audit".to_string(),
            "export".into(),
            "--nats-url".into(),
            app.nats.url().to_string(),
            "--audit-dir".into(),
            audit_dir.display().to_string(),
            "--format".into(),
            format.to_string(),
            "--quiet".into(),
            "--out".into(),
            out.path().join(format!("trail.{format}")).display().to_string(),
        ];
        args.extend(extra);
        async move {
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&argv).await
        }
    };
    let (code, msg, err) = export("jsonl", vec![]).await;
    assert_eq!(code, 0, "{msg}{err}");
    let b = app.baseline;
    assert!(msg.contains(&format!("exported {} events", b + 16)), "{msg}");
    let lines: Vec<Value> = std::fs::read_to_string(out.path().join("trail.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = lines.iter().map(|l| l["sequence"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=b + 16).collect::<Vec<u64>>(), "oldest first, files and tail");

    let (code, msg, _) = export("csv", vec!["--aggregate-id".into(), id.clone()]).await;
    assert_eq!(code, 0);
    assert!(msg.contains("exported 7 events"), "{msg}");
    let csv = std::fs::read_to_string(out.path().join("trail.csv")).unwrap();
    let mut rows = csv.lines();
    assert!(
        rows.next()
            .unwrap()
            .starts_with("sequence,time,aggregate_type,aggregate_id")
    );
    assert_eq!(rows.count(), 7);

    let (code, _, _) = export("parquet", vec!["--event-type".into(), "ClusterRegistered".into()]).await;
    assert_eq!(code, 0);
    let script = "import sys, json, pyarrow.parquet as pq\nt = pq.read_table(sys.argv[1])\nprint(json.dumps({'rows': t.num_rows, 'types': sorted(set(t.column('event_type').to_pylist()))}))";
    let py = std::process::Command::new(test_python())
        .arg("-c")
        .arg(script)
        .arg(out.path().join("trail.parquet"))
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let read: Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(read, json!({"rows": 2, "types": ["ClusterRegistered"]}));

    let (code, _, err) = export("xml", vec![]).await;
    assert_eq!(code, 2);
    assert!(err.contains("unknown format 'xml'"), "{err}");
}

#[tokio::test]
async fn export_audit_over_graphql_gives_a_signed_link() {
    let app = TestApp::spawn().await;
    some_history(&app).await;
    let export = app
        .data(
            "mutation { exportAudit(input: {format: JSONL}) { url rows bytes expiresAt } }",
            json!({}),
        )
        .await["exportAudit"]
        .clone();
    assert_eq!(export["rows"], app.baseline + 7);
    let url = export["url"].as_str().unwrap();
    let res = app.get(url).await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert_eq!(body.len() as u64, export["bytes"].as_u64().unwrap());
    assert_eq!(body.lines().count() as u64, app.baseline + 7);
    // A link with another signature, or another expiry, opens nothing.
    let forged = url.replace("signature=", "signature=00");
    let res = app.get(&forged).await;
    assert_eq!(res.status(), 403);
    let err: Value = res.json().await.unwrap();
    assert_eq!(jsc_testkit::code(&err), "FORBIDDEN");
    let (path, query) = url.split_once('?').unwrap();
    let later = query
        .split('&')
        .map(|kv| {
            if kv.starts_with("expires=") {
                "expires=99999999999".to_string()
            } else {
                kv.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    let res = app.get(&format!("{path}?{later}")).await;
    assert_eq!(res.status(), 403);
    let res = app.get(path).await;
    assert_eq!(res.status(), 403, "no link, no file");
}

#[tokio::test]
async fn small_files_of_a_day_are_compacted_without_losing_or_doubling_a_row() {
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.audit_max_rows = 2;
        c.audit_compact_after = 3;
        c.audit_max_age = std::time::Duration::from_secs(3600);
    })
    .await;
    seven_events(&app, json!({"name": "compact"})).await;
    let total = app.baseline + 8;
    let flushed = total / 2 * 2;
    wait_flushed(&app, flushed).await;
    let root = app.data_dir.path().join("audit-store");
    let files: Vec<String> = walk(&root)
        .into_iter()
        .map(|f| f.rsplit('/').next().unwrap().to_string())
        .collect();
    // Files of two rows; whenever a day has three files they become one.
    let mut expected: Vec<(u64, u64)> = Vec::new();
    for start in (1..=flushed).step_by(2) {
        expected.push((start, start + 1));
        if expected.len() == 3 {
            expected = vec![(expected[0].0, start + 1)];
        }
    }
    let mut expected: Vec<String> = expected
        .into_iter()
        .map(|(a, b)| format!("part-{a:020}-{b:020}.parquet"))
        .collect();
    let mut files = files;
    files.sort();
    expected.sort();
    assert!(
        expected.len() < (flushed / 2) as usize,
        "the case compacts: {expected:?}"
    );
    assert_eq!(files, expected, "every three files of two rows became one");
    assert_eq!(
        page_through(&app, json!({}), 3).await,
        (1..=total).rev().collect::<Vec<u64>>()
    );
}

#[tokio::test]
async fn a_file_is_written_when_its_buffered_bytes_reach_the_limit_whatever_its_rows_and_age() {
    // Rows and age that would hold every event for an hour: the bytes alone flush them.
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.audit_max_rows = 1_000_000;
        c.audit_max_bytes = 1;
        c.audit_compact_after = 0;
        c.audit_max_age = std::time::Duration::from_secs(3600);
    })
    .await;
    seven_events(&app, json!({"name": "bytes"})).await;
    let total = app.baseline + 8;
    wait_flushed(&app, total).await;
    let files = walk(&app.data_dir.path().join("audit-store"));
    assert!(
        files.len() as u64 >= 8,
        "each event is over the limit on its own, so each makes a file: {files:?}"
    );
    assert_eq!(
        page_through(&app, json!({}), 5).await,
        (1..=total).rev().collect::<Vec<u64>>()
    );
}

#[tokio::test]
async fn the_audit_table_goes_to_an_s3_compatible_store_by_url() {
    let logs = jsc_testkit::capture_logs();
    let s3 = jsc_testkit::S3Server::start();
    s3.create_bucket("audit").await;
    let options = s3.options();
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), move |c| {
        c.audit_url = Some("s3://audit/console-a".into());
        c.audit_store_options = options;
        c.audit_max_rows = 3;
        c.audit_max_age = std::time::Duration::from_secs(3600);
    })
    .await;
    seven_events(&app, json!({"name": "in-s3"})).await;
    let total = app.baseline + 8;
    let flushed = total / 3 * 3;
    wait_flushed(&app, flushed).await;
    let day = chrono::Utc::now().date_naive();
    let expected: Vec<String> = (0..flushed / 3)
        .map(|k| {
            format!(
                "console-a/audit/date={day}/part-{:020}-{:020}.parquet",
                3 * k + 1,
                3 * k + 3
            )
        })
        .collect();
    assert_eq!(s3.keys("audit", "console-a/audit/").await, expected);
    assert!(
        !app.data_dir.path().join("audit-store").exists(),
        "nothing was written to the local default"
    );
    // Queries read the files from S3 and the tail from the stream.
    let page = app.data(TRAIL, json!({"first": 100})).await["auditTrail"].clone();
    let seqs: Vec<u64> = page["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=total).rev().collect::<Vec<u64>>());
    // An export is written to the bucket and downloaded through the console.
    let export = app
        .data("mutation { exportAudit(input: {format: CSV}) { url rows } }", json!({}))
        .await["exportAudit"]
        .clone();
    assert_eq!(export["rows"], total);
    let body = app.get(export["url"].as_str().unwrap()).await.text().await.unwrap();
    assert_eq!(body.lines().count() as u64, total + 1, "a header and a row per event");
    assert_eq!(s3.keys("audit", "console-a/exports/").await.len(), 1);
    assert!(
        !logs.text().contains(jsc_testkit::s3::SECRET_ACCESS_KEY),
        "the store's secret is not logged"
    );

    // A bad store URL is a clear error at start-up.
    let err = jsc_cli::open_object_store("ftp://x/y", &[]).err().unwrap();
    assert!(err.to_string().contains("use s3://bucket/prefix"), "{err}");
}
