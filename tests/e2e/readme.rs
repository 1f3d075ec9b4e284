//! The README's examples run as written: a newcomer copies them first.
//!
//! The curl walk-through of "From clone to a first look" is taken from README.md
//! itself, pointed at a console started as `make run` starts it (its own embedded
//! nats-server, the cluster `local` registered), and run by bash; every answer must be a
//! GraphQL answer without errors, and the stream and consumer it creates must exist.

use jsc_testkit::{NatsServer, TestApp};
use serde_json::Value;

const PASSWORD: &str = "readme example password";

/// Printed before each command's output.
const MARK: &str = "@@readme-command@@";

/// The shell commands of the README's first section, after `make run` / `make test`.
fn walkthrough() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## Running it")
        .next()
        .expect("the README has a first section");
    let blocks: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or_default())
        .collect();
    assert!(blocks.len() >= 3, "the walk-through has its curl blocks");
    assert!(blocks[0].contains("make run"), "the first block is the two commands");
    // One command per line; a trailing backslash continues it.
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in blocks[1..].iter().flat_map(|b| b.lines()) {
        current.push_str(line);
        current.push('\n');
        if !line.trim_end().ends_with('\\') {
            if !current.trim().is_empty() {
                commands.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    commands
}

#[tokio::test]
async fn the_readme_walkthrough_runs_as_written() {
    let commands = walkthrough();
    assert!(
        commands.iter().any(|c| c.contains("createStream")) && commands.iter().any(|c| c.contains("createConsumer")),
        "the walk-through creates a stream and a consumer"
    );
    let bin = jsc_fleet::embedded::find_nats_server(&[std::path::Path::new(env!("CARGO_MANIFEST_DIR"))])
        .expect("nats-server installed by make tools");
    // As `make run` starts it: an embedded nats-server of its own, registered as `local`.
    let app = TestApp::spawn_with(NatsServer::start(), |c| {
        c.nats_url = None;
        c.embedded_nats_port = -1;
        c.nats_server_bin = Some(bin);
        c.admin_email = Some("admin@localhost".into());
        c.admin_password = Some(PASSWORD.into());
    })
    .await;
    let base = format!("127.0.0.1:{}", app.addr.port());
    let mut script = String::from("set -e\nshopt -s expand_aliases\n");
    for c in &commands {
        let c = c
            .replace("localhost:8080", &base)
            .replace("<printed password>", PASSWORD);
        // What each command printed follows its marker; a GraphQL answer is on a line of
        // its own (curl prints none after the body).
        script.push_str(&format!("echo '{MARK}'\n"));
        script.push_str(&c);
        script.push_str("echo\n");
    }
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the walk-through failed:\n{stdout}\n{stderr}");
    let outputs: Vec<&str> = stdout.split(&format!("{MARK}\n")).skip(1).collect();
    assert_eq!(outputs.len(), commands.len(), "{stdout}");
    let mut answers: Vec<Value> = Vec::new();
    for (c, out) in commands.iter().zip(&outputs) {
        if c.contains("/metrics") {
            // The Prometheus exposition, in its text format.
            assert!(out.contains("# TYPE "), "not a Prometheus exposition: {out}");
            continue;
        }
        answers.extend(
            out.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON answer ({e}): {l}"))),
        );
    }
    // The login's token went into $TOKEN; every other command printed an answer.
    assert_eq!(answers.len(), commands.iter().filter(|c| c.starts_with("gql ")).count());
    for a in &answers {
        assert!(
            a.get("errors").is_none() && a.get("data").is_some(),
            "an example failed: {a}"
        );
    }
    let find = |field: &str| {
        answers
            .iter()
            .find(|a| a["data"].get(field).is_some())
            .unwrap_or_else(|| panic!("an answer with {field}: {answers:?}"))
    };
    let series = find("metrics")["data"]["metrics"].as_array().unwrap().clone();
    assert_eq!(series.len(), 2, "{series:?}");
    assert_eq!(series[1]["series"]["metric"], "CONSUMER_LAG");
    // The console's own streams on its home NATS are not the operator's: never ranked.
    for s in find("topStreams")["data"]["topStreams"].as_array().unwrap() {
        let name = s["streamName"].as_str().unwrap();
        assert!(!name.starts_with("CONSOLE_") && !name.starts_with("KV_"), "{s}");
    }
    // Alerting: a signed webhook channel (its secret shown once), a rule, the policy.
    let channel = &find("createNotificationChannel")["data"]["createNotificationChannel"];
    assert!(
        channel["signingSecret"].as_str().unwrap().starts_with("whsec_"),
        "{channel}"
    );
    assert_eq!(channel["channel"]["hint"], "http://127.0.0.1:9000");
    assert!(find("createAlertRule")["data"]["createAlertRule"]["alertRule"]["id"].is_string());
    assert_eq!(find("alertPolicy")["data"]["alertPolicy"]["groupWait"], "30s");
    let streams = find("streams")["data"]["streams"]["nodes"].as_array().unwrap();
    let orders = streams
        .iter()
        .find(|s| s["name"] == "ORDERS")
        .expect("ORDERS was created");
    assert_eq!(orders["consumers"]["nodes"][0]["name"], "billing");
    // The message published is what the stream holds, newest first, shown as JSON.
    let messages = &find("messages")["data"]["messages"];
    // A stream created without `allowDirect` is read one message get at a time.
    assert_eq!(messages["readPath"], "MESSAGE_GET", "{messages}");
    let newest = &messages["nodes"][0];
    assert_eq!(newest["subject"], "orders.eu");
    assert_eq!(newest["payload"]["encoding"], "JSON");
    assert_eq!(newest["payload"]["text"], "{\n  \"id\": 1\n}");
    assert_eq!(
        find("subjects")["data"]["subjects"]["nodes"],
        serde_json::json!([{"subject": "orders.eu", "messages": 1}])
    );
    assert_eq!(
        answers
            .iter()
            .find(|a| a["data"]["testClusterConnection"]["test"].is_object())
            .unwrap()["data"]["testClusterConnection"]["test"]["ok"],
        true
    );
}
