//! The HTTP surface: health, readiness, limits, malformed requests, the explorer, the
//! exported schema, and a home NATS that goes away.

use jsc_testkit::TestApp;
use serde_json::json;

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(body["projections"][0]["name"], "clusters");
    assert_eq!(body["projections"][0]["pending"], 0);
}

#[tokio::test]
async fn a_home_nats_that_goes_away_is_unavailable_and_nothing_is_half_written() {
    let mut app = TestApp::spawn().await;
    app.nats.stop();
    let (code, message) = app
        .error(
            "mutation { registerCluster(input: {name: \"x\", urls: [\"nats://127.0.0.1:4222\"]}) { cluster { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "UNAVAILABLE", "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["nats"], false);
}

#[tokio::test]
async fn oversized_and_malformed_requests_get_clear_errors() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(2 * 1024 * 1024);
    let res = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(json!({"query": format!("{{ clusters {{ nodes {{ id }} }} }} # {huge}")}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: serde_json::Value = res.json().await.unwrap();
    let (code, message) = jsc_testkit::first_error(&body);
    assert_eq!(code, "VALIDATION", "{message}");
    assert!(message.contains("larger than"), "{message}");

    let res = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(jsc_testkit::code(&body), "VALIDATION");

    let (code, message) = app.error("{ clusters { nodes { id ", json!({})).await;
    assert_eq!(code, "VALIDATION", "{message}");
    let (code, message) = app.error("{ nope }", json!({})).await;
    assert_eq!(code, "VALIDATION", "{message}");

    // Too deep: nesting through introspection types beyond the depth limit.
    let mut deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(14),
        "} ".repeat(14)
    );
    let (code, message) = app.error(&deep, json!({})).await;
    assert_eq!(code, "VALIDATION", "{message}");
    assert!(message.to_lowercase().contains("nested too deep"), "{message}");
    // Too complex: many aliased fields.
    deep = format!(
        "{{ {} }}",
        (0..600)
            .map(|i| format!("a{i}: clusters {{ nodes {{ id }} }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (code, message) = app.error(&deep, json!({})).await;
    assert_eq!(code, "VALIDATION", "{message}");
    assert!(message.to_lowercase().contains("complex"), "{message}");

    let res = app.get("/graphql").await;
    assert_eq!(res.status(), 400, "GET /graphql without an upgrade explains itself");
    let res = app.get("/nowhere").await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn the_explorer_is_served_from_the_binary_under_a_strict_csp() {
    let app = TestApp::spawn().await;
    let res = app.get("/explorer").await;
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("http"), "no third-party origin in the CSP: {csp}");
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"),
        "the page loads nothing from the internet"
    );
    let mut assets = 0;
    for part in html.split('"') {
        if part.starts_with("/explorer/") {
            let res = app.get(part).await;
            assert_eq!(res.status(), 200, "{part}");
            assert!(res.bytes().await.unwrap().len() > 10, "{part}");
            assets += 1;
        }
    }
    assert_eq!(assets, 7, "the page's scripts and styles are all served");

    // Our own script must parse (node is already needed to build the explorer).
    let init = app.get("/explorer/init.js").await.text().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("init.js");
    std::fs::write(&path, init).unwrap();
    let status = std::process::Command::new("node")
        .arg("--check")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success(), "explorer/init.js has a syntax error");

    // Its preloaded operations are valid against the exported schema (graphql-js, from the
    // TypeScript client's dependencies): a schema change cannot leave them behind.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let modules = root.join("clients/typescript/node_modules");
    assert!(
        modules.exists(),
        "{} is missing: `make test` installs it",
        modules.display()
    );
    let out = std::process::Command::new("node")
        .env("NODE_PATH", &modules)
        .arg("-e")
        .arg(VALIDATE_EXPLORER)
        .arg(&path)
        .arg(root.join("schema/console.graphql"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let names: Vec<&str> = stdout.lines().collect();
    for op in ["Login", "Clusters", "Streams", "Node", "CreateStream"] {
        assert!(names.contains(&op), "the explorer preloads {op}: {names:?}");
    }
}

/// Runs the explorer's script with the browser stubbed out, takes the operations it preloads,
/// and validates them against the schema; prints the operations' names.
const VALIDATE_EXPLORER: &str = r#"
const fs = require('fs');
const { buildSchema, parse, validate } = require('graphql');
const [script, sdl] = process.argv.slice(1);
let query = null;
const sandbox = {
  window: { location: { protocol: 'http:', host: 'x' }, localStorage: { getItem: () => null } },
  graphqlWs: { createClient: () => ({}) },
  GraphiQL: { createFetcher: () => ({}) },
  React: { createElement: (_, props) => { query = props.defaultQuery; } },
  ReactDOM: { createRoot: () => ({ render: () => {} }) },
  document: { getElementById: () => ({}) },
};
new Function(...Object.keys(sandbox), fs.readFileSync(script, 'utf8'))(...Object.values(sandbox));
if (!query) { console.error('no defaultQuery'); process.exit(1); }
const doc = parse(query);
const errors = validate(buildSchema(fs.readFileSync(sdl, 'utf8')), doc);
if (errors.length) { console.error(errors.map(String).join(String.fromCharCode(10))); process.exit(1); }
for (const d of doc.definitions) console.log(d.name ? d.name.value : '(anonymous)');
"#;

/// The introspection query GraphiQL sends (graphql-js 16 `getIntrospectionQuery`) passes
/// the depth and complexity limits.
#[tokio::test]
async fn the_explorers_introspection_query_is_within_the_limits() {
    let app = TestApp::spawn().await;
    let type_ref = "fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name \
        ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }";
    let query = format!(
        "query IntrospectionQuery {{ __schema {{ queryType {{ name }} mutationType {{ name }} subscriptionType {{ name }} \
         types {{ ...FullType }} directives {{ name description locations args {{ ...InputValue }} }} }} }} \
         fragment FullType on __Type {{ kind name description fields(includeDeprecated: true) {{ name description \
         args {{ ...InputValue }} type {{ ...TypeRef }} isDeprecated deprecationReason }} inputFields {{ ...InputValue }} \
         interfaces {{ ...TypeRef }} enumValues(includeDeprecated: true) {{ name description isDeprecated deprecationReason }} \
         possibleTypes {{ ...TypeRef }} }} \
         fragment InputValue on __InputValue {{ name description type {{ ...TypeRef }} defaultValue }} {type_ref}"
    );
    let data = app.data(&query, json!({})).await;
    let types = data["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "Cluster"));
    assert_eq!(data["__schema"]["subscriptionType"]["name"], "Subscription");
}

#[test]
fn the_checked_in_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/console.graphql");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    let current = jsc_graphql::sdl();
    assert!(
        checked_in == current,
        "schema/console.graphql is out of date with the code: run `make schema` and commit the result"
    );
}

/// Every type, field, argument, input field and enum value the console defines carries a
/// description, so a client reading the schema (GraphiQL's documentation pane, a generated
/// client) learns what each means. New fields cannot land without one.
#[tokio::test]
async fn every_type_field_argument_and_enum_value_is_described() {
    let schema = jsc_graphql::build_schema(None);
    let q = r#"{ __schema { types { name kind description
        fields(includeDeprecated: true) { name description args { name description } }
        inputFields { name description }
        enumValues(includeDeprecated: true) { name description } } } }"#;
    let res = schema.execute(q).await;
    assert!(res.errors.is_empty(), "{:?}", res.errors);
    let v = res.data.into_json().unwrap();
    let described = |d: &serde_json::Value| d.as_str().is_some_and(|s| !s.trim().is_empty());
    let builtin = ["String", "Int", "Float", "Boolean", "ID"];
    let mut missing = Vec::new();
    for t in v["__schema"]["types"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        if name.starts_with("__") || builtin.contains(&name) {
            continue;
        }
        let root = matches!(name, "Query" | "Mutation" | "Subscription");
        if !root && !described(&t["description"]) {
            missing.push(name.to_string());
        }
        for f in t["fields"].as_array().into_iter().flatten() {
            let fname = format!("{name}.{}", f["name"].as_str().unwrap());
            if !described(&f["description"]) {
                missing.push(fname.clone());
            }
            for a in f["args"].as_array().into_iter().flatten() {
                if !described(&a["description"]) {
                    missing.push(format!("{fname}({})", a["name"].as_str().unwrap()));
                }
            }
        }
        for f in t["inputFields"].as_array().into_iter().flatten() {
            if !described(&f["description"]) {
                missing.push(format!("{name}.{}", f["name"].as_str().unwrap()));
            }
        }
        for e in t["enumValues"].as_array().into_iter().flatten() {
            if !described(&e["description"]) {
                missing.push(format!("{name}.{}", e["name"].as_str().unwrap()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} schema items have no description; add a doc comment (or #[graphql(desc = ...)] on an argument): {}",
        missing.len(),
        missing.join(", ")
    );
}

/// The pid of the nats-server whose store is `store`, found as an operator would (`ps`).
fn server_on(store: &std::path::Path) -> Option<u32> {
    let store = store.to_string_lossy().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        (cmd.contains("nats-server") && cmd.contains(&store)).then_some(pid)
    })
}

#[tokio::test]
async fn the_embedded_nats_server_is_started_again_when_it_dies() {
    let logs = jsc_testkit::capture_logs();
    let bin = jsc_fleet::embedded::find_nats_server(&[std::path::Path::new(env!("CARGO_MANIFEST_DIR"))])
        .expect("nats-server installed by make tools");
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.nats_url = None;
        c.embedded_nats_port = -1;
        c.nats_server_bin = Some(bin);
    })
    .await;
    let before = app
        .register_cluster(json!({"name": "before", "urls": ["nats://127.0.0.1:4222"]}))
        .await;
    let store = app.data_dir.path().join("nats");
    let first = server_on(&store).expect("the embedded server runs");
    let killed_at = std::time::Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    // Back on its own: a new process on the same store, ready, serving the same data.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let again = server_on(&store).filter(|p| *p != first);
        if again.is_some() && app.get("/readyz").await.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the embedded server was not started again within 60 s:\n{}",
            logs.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let clusters = app.data("{ clusters { nodes { id name } } }", json!({})).await;
    let names: Vec<&str> = clusters["clusters"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"before"), "{clusters}");
    // A change after the restart is committed, and shows once the views have followed the
    // restarted server (their consumers are made again when they miss its heartbeats).
    let back = std::time::Instant::now();
    let body = app
        .graphql(
            "mutation($id: ID!) { updateCluster(input: {id: $id, description: \"after the restart\"}) { cluster { id } } }",
            json!({"id": before}),
        )
        .await;
    if let Some(errors) = body.get("errors") {
        assert!(
            errors[0]["message"].as_str().unwrap().contains("the change was saved"),
            "{body}"
        );
    }
    loop {
        let c = app
            .data(
                "query($id: ID!) { cluster(id: $id) { description } }",
                json!({"id": before}),
            )
            .await;
        if c["cluster"]["description"] == "after the restart" {
            break;
        }
        assert!(
            back.elapsed() < std::time::Duration::from_secs(60),
            "the views did not follow the restarted server within 60 s:\n{}",
            logs.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    eprintln!(
        "started again and ready {:.1} s after the kill; a change visible {:.1} s after that",
        (back - killed_at).as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
    let text = logs.text();
    assert!(
        text.contains("the embedded nats-server exited; starting it again"),
        "{text}"
    );
    assert!(text.contains("the embedded nats-server is running again"), "{text}");
}

const CREATE_STREAM: &str = "mutation($c: ID!, $n: String!) { createStream(input: {clusterId: $c, config: {name: $n, subjects: [\"faults.>\"]}}) { stream { name } } }";

#[tokio::test]
async fn with_the_home_nats_down_a_change_to_a_cluster_is_refused_at_once_and_not_made() {
    let mut app = TestApp::spawn().await;
    let managed = jsc_testkit::NatsServer::start();
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    app.nats.stop();
    let asked = std::time::Instant::now();
    let body = app.graphql(CREATE_STREAM, json!({"c": cluster, "n": "NOT_MADE"})).await;
    let answered = asked.elapsed();
    assert_eq!(jsc_testkit::code(&body), "UNAVAILABLE", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["applied"], "NO", "{body}");
    assert!(answered < std::time::Duration::from_secs(1), "answered in {answered:?}");
    // Nothing was made on the cluster either.
    let js = managed.jetstream().await;
    assert!(js.get_stream("NOT_MADE").await.is_err(), "the stream must not exist");
}

#[tokio::test]
async fn a_change_made_on_a_cluster_while_the_home_nats_hangs_is_recorded_later_with_its_author() {
    let app = TestApp::spawn_with(jsc_testkit::NatsServer::start(), |c| {
        c.append_timeout = std::time::Duration::from_millis(500);
    })
    .await;
    let managed = jsc_testkit::NatsServer::start();
    let cluster = app
        .register_cluster(json!({"name": "managed", "urls": [managed.url()]}))
        .await;
    app.data(CREATE_STREAM, json!({"c": cluster, "n": "MADE"})).await;
    // The home NATS hangs: connected, answering nothing. The change is made on the cluster,
    // and its event cannot be committed.
    app.nats.pause();
    let body = app
        .graphql(
            "mutation($c: ID!) { updateStream(input: {clusterId: $c, name: \"MADE\", config: {description: \"while away\"}}) { stream { name } } }",
            json!({"c": cluster}),
        )
        .await;
    assert_eq!(jsc_testkit::code(&body), "UNAVAILABLE", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["applied"], "YES", "{body}");
    assert!(jsc_testkit::first_error(&body).1.contains("do not repeat it"), "{body}");
    let js = managed.jetstream().await;
    let made = js
        .get_stream("MADE")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(made.description.as_deref(), Some("while away"), "the change was made");
    // Back: the change is recorded once, by its author, not as made outside the console.
    app.nats.resume();
    let key = format!("{cluster}.MADE");
    app.wait_kv("view_streams_v1", &key, |v| {
        v.is_some_and(|v| v.to_string().contains("while away"))
    })
    .await;
    let events = app.events_of("stream", &format!("{cluster}/MADE")).await;
    let updated: Vec<_> = events.iter().filter(|e| e.event_type == "StreamUpdated").collect();
    assert_eq!(updated.len(), 1, "{events:?}");
    assert_eq!(updated[0].actor(), app.owner_actor(), "{:?}", updated[0]);
    assert!(
        events.iter().all(|e| !e.payload.to_string().contains("\"external\"")),
        "{events:?}"
    );
}
