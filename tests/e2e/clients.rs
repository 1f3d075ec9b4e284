//! The typed clients under `clients/` (Rust: graphql_client; TypeScript: graphql-codegen),
//! generated from `schema/console.graphql`, run against a real console: sign in, create a
//! stream, subscribe to its changes, publish, and see the change arrive.

use jsc_testkit::{OWNER_EMAIL, OWNER_PASSWORD, TestApp};
use serde_json::json;

async fn console_with_a_cluster() -> TestApp {
    let app = TestApp::spawn().await;
    let url = app.nats.url().to_string();
    // Named to sort first: the clients create their stream on the first cluster they see.
    app.register_cluster(json!({"name": "aaa-clients", "urls": [url]}))
        .await;
    app
}

fn check(lines: &[String], stream: &str) {
    assert!(
        lines.len() >= 3,
        "created, published, then at least the PUBLISHED change: {lines:?}"
    );
    // Each payload names the event it committed: the publish's comes after the creation's.
    let event = |line: &str, before: &str| -> u64 {
        let rest = line
            .strip_prefix(before)
            .unwrap_or_else(|| panic!("{line:?} starts with {before:?}: {lines:?}"));
        rest.strip_prefix(" (event ")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("an event sequence after {before:?}: {lines:?}"))
    };
    assert!(lines[0].starts_with(&format!("created {stream} (")), "{lines:?}");
    let (_, tail) = lines[0].split_once(") ").expect("created NAME (ID) on ...");
    let created = event(tail, &format!("on aaa-clients: {}.>", stream.to_lowercase()));
    let published = event(&lines[1], "published at sequence 1");
    assert!(created > 0 && published > created, "{lines:?}");
    let last = lines.last().unwrap();
    assert!(
        last.starts_with(&format!("change PUBLISHED {stream} version ")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn the_typed_rust_client_creates_a_stream_and_sees_its_changes() {
    let app = console_with_a_cluster().await;
    let lines = jsc_client::walkthrough(&app.url(""), OWNER_EMAIL, OWNER_PASSWORD, "RUST_CLIENT")
        .await
        .expect("the Rust client's walk-through");
    check(&lines, "RUST_CLIENT");
    // A wrong password is the console's own error, code first.
    let err = jsc_client::walkthrough(&app.url(""), OWNER_EMAIL, "wrong password", "X")
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("UNAUTHENTICATED: "), "{err}");
}

#[tokio::test]
async fn the_typed_typescript_client_creates_a_stream_and_sees_its_changes() {
    let app = console_with_a_cluster().await;
    let main = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/typescript/dist/main.js");
    assert!(
        main.exists(),
        "{} is missing: `make test` builds the TypeScript client (npm ci, codegen, tsc) before the tests",
        main.display()
    );
    let run = tokio::process::Command::new("node")
        .arg(&main)
        .args([app.url("").as_str(), OWNER_EMAIL, OWNER_PASSWORD, "TS_CLIENT"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("the TypeScript client finishes within a minute")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    check(&lines, "TS_CLIENT");
}
