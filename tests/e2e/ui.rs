//! The web console in a real browser: Debian's Chromium driven by playwright-core
//! (`web/e2e/console.mjs`) against a real console and real nats-servers. The script signs in,
//! registers a cluster with a password and tests it, creates a stream, publishes and sees the
//! message, creates a consumer and watches its lag move, edits the stream and sees the diff in
//! its history, changes a role and sees a page refuse, and downloads an audit export; every
//! page is checked with axe-core and saved as a screenshot under
//! `target/test-artifacts/web-console/`.

use std::path::Path;

use jsc_testkit::{NatsServer, OWNER_EMAIL, OWNER_PASSWORD, TestApp};

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test]
async fn web_console_in_a_browser() {
    let chromium = std::env::var("JSC_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: `make test` installs Debian's chromium (make tools)"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("web/e2e/console.mjs");
    assert!(
        root.join("web/node_modules/playwright-core").is_dir(),
        "web/node_modules is missing: building jsc-server (or `make test`) installs it"
    );
    let artifacts = root.join("target/test-artifacts/web-console");
    let _ = std::fs::remove_dir_all(&artifacts);

    let app = TestApp::spawn().await;
    let password = "ui-test-secret-4d1e";
    let secured = NatsServer::start_with(&["--user", "ui", "--pass", password]);

    let out = tokio::process::Command::new("node")
        .arg(&script)
        .env("JSC_URL", app.url("").trim_end_matches('/'))
        .env("JSC_EMAIL", OWNER_EMAIL)
        .env("JSC_PASSWORD", OWNER_PASSWORD)
        .env("JSC_SECURED_URL", secured.url())
        .env("JSC_SECURED_USER", "ui")
        .env("JSC_SECURED_PASSWORD", password)
        .env("JSC_ARTIFACTS", &artifacts)
        .env("JSC_CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs (Node.js 20 is needed, as for the build)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "the browser run failed (screenshots in {}):\n{stdout}\n{stderr}",
        artifacts.display()
    );
    // Every step ran, and every page was checked and photographed.
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(
        stdout.contains("ok   an unknown page says so"),
        "the run stopped early:\n{stdout}"
    );
    let shots = std::fs::read_dir(&artifacts).map(|d| d.count()).unwrap_or(0);
    assert!(shots >= 15, "only {shots} screenshots in {}", artifacts.display());
    // The password typed into the wizard is in no event.
    let events = app.raw_events().await;
    assert!(events.len() > 10, "the run left its events");
    assert!(
        !events
            .iter()
            .any(|e| String::from_utf8_lossy(&e.payload).contains(password)),
        "the cluster password is in an event"
    );
}

/// GETs `path` with the given `accept` and `accept-encoding`.
async fn fetch(app: &TestApp, path: &str, accept: &str, encoding: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .no_gzip()
        .build()
        .unwrap()
        .get(app.url(path))
        .header("accept", accept)
        .header("accept-encoding", encoding)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_console_is_served_at_root_and_at_every_page_url_under_a_strict_csp() {
    let app = TestApp::spawn().await;
    let html = "text/html,application/xhtml+xml";
    let res = fetch(&app, "/", html, "identity").await;
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe") && !csp.contains("http"),
        "nothing inline, no other origin: {csp}"
    );
    assert_eq!(res.headers()["cache-control"], "no-cache");
    let page = res.text().await.unwrap();
    assert!(page.contains("<div id=\"root\">"), "{page}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page loads nothing from the internet"
    );

    // Deep links and reloads get the same page; the app routes them.
    for path in [
        "/clusters",
        "/clusters/local/streams/ORDERS/history",
        "/people/api-keys",
        "/invitation",
    ] {
        let res = fetch(&app, path, html, "identity").await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.text().await.unwrap(), page, "{path}");
    }
    // What is not a page keeps its answer: the API's 404 names the routes.
    let res = fetch(&app, "/nowhere", "application/json", "identity").await;
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("the console is at /"));
    assert_eq!(fetch(&app, "/assets/missing.js", html, "identity").await.status(), 404);
    assert_eq!(fetch(&app, "/graphql", html, "identity").await.status(), 400);

    // The page's files: cached for good (hashed names), gzipped when asked; the first load
    // (every script and style the page names, gzipped) within 300 KB.
    let mut first_load = 0;
    let mut files = 0;
    for part in page.split('"').filter(|p| p.starts_with("/assets/")) {
        let plain = fetch(&app, part, "*/*", "identity").await;
        assert_eq!(plain.status(), 200, "{part}");
        assert_eq!(plain.headers()["cache-control"], "public, max-age=31536000, immutable");
        assert!(plain.headers().get("content-encoding").is_none());
        let plain = plain.bytes().await.unwrap();
        let gz = fetch(&app, part, "*/*", "gzip, deflate, br").await;
        assert_eq!(gz.headers()["content-encoding"], "gzip", "{part}");
        assert_eq!(gz.headers()["vary"], "accept-encoding");
        let gz = gz.bytes().await.unwrap();
        assert!(
            gz.len() < plain.len() / 2,
            "{part}: {} gzipped of {}",
            gz.len(),
            plain.len()
        );
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut unzipped).unwrap();
        assert_eq!(unzipped, plain, "{part}: the gzipped file is the same file");
        first_load += gz.len();
        files += 1;
    }
    assert!(files >= 2, "the page names its script and its styles");
    println!("first load: {files} files, {first_load} bytes gzipped");
    assert!(
        first_load <= 300 * 1024,
        "first load {first_load} bytes gzipped (budget 300 KB)"
    );

    // The explorer moved to /explorer.
    let res = fetch(&app, "/explorer", html, "identity").await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("/explorer/graphiql.min.js"));
}

/// A value of a variable's type that passes validation: the least a caller could send (null
/// for a nullable type, an empty list, the first value of an enum, an input object with its
/// required fields).
fn sample_value(
    ty: &async_graphql::parser::types::Type,
    types: &std::collections::HashMap<String, async_graphql::parser::types::TypeKind>,
) -> serde_json::Value {
    use async_graphql::parser::types::{BaseType, TypeKind};
    use serde_json::json;
    if ty.nullable {
        return serde_json::Value::Null;
    }
    match &ty.base {
        BaseType::List(_) => json!([]),
        BaseType::Named(name) => match name.as_str() {
            "String" | "ID" => json!("x"),
            "Int" => json!(1),
            "Float" => json!(1.0),
            "Boolean" => json!(false),
            "DateTime" => json!("2026-01-01T00:00:00Z"),
            "Duration" => json!("1s"),
            "JSON" => json!({}),
            other => match types.get(other) {
                Some(TypeKind::Enum(e)) => json!(e.values[0].node.value.node.as_str()),
                Some(TypeKind::InputObject(o)) => serde_json::Value::Object(
                    o.fields
                        .iter()
                        .filter(|f| f.node.default_value.is_none() && !f.node.ty.node.nullable)
                        .map(|f| (f.node.name.node.to_string(), sample_value(&f.node.ty.node, types)))
                        .collect(),
                ),
                _ => json!("x"),
            },
        },
    }
}

#[tokio::test]
async fn every_operation_of_the_web_console_is_within_the_servers_limits() {
    use async_graphql::parser::types::{DocumentOperations, TypeSystemDefinition};
    // The operations as the build generated them (web/src/gql, written by jsc-server's build).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let generated = std::fs::read_to_string(root.join("web/src/gql/graphql.ts"))
        .expect("web/src/gql/graphql.ts: building jsc-server generates it");
    let docs: Vec<&str> = generated
        .split("new TypedDocumentString(`")
        .skip(1)
        .map(|d| d.split('`').next().unwrap_or_default())
        .collect();
    assert!(docs.len() > 60, "found {} operations", docs.len());

    let sdl = std::fs::read_to_string(root.join("schema/console.graphql")).unwrap();
    let types: std::collections::HashMap<_, _> = async_graphql::parser::parse_schema(&sdl)
        .unwrap()
        .definitions
        .into_iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(t) => Some((t.node.name.node.to_string(), t.node.kind)),
            _ => None,
        })
        .collect();
    let app = TestApp::spawn().await;
    let schema = jsc_graphql::build_schema_with(
        Some(app.console.clone()),
        jsc_graphql::Limits {
            budget: None,
            only_registered: false,
        },
    );
    let mut checked = 0;
    for doc in docs.iter().filter(|d| !d.trim_start().starts_with("fragment")) {
        let parsed = async_graphql::parser::parse_query(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        let op = match &parsed.operations {
            DocumentOperations::Single(op) => op.node.clone(),
            DocumentOperations::Multiple(ops) => ops.values().next().unwrap().node.clone(),
        };
        let variables: serde_json::Map<_, _> = op
            .variable_definitions
            .iter()
            .map(|v| {
                let name = v.node.name.node.to_string();
                (name, sample_value(&v.node.var_type.node, &types))
            })
            .collect();
        let request = async_graphql::Request::new(*doc).variables(async_graphql::Variables::from_json(
            serde_json::Value::Object(variables),
        ));
        // Validation (with the depth and complexity limits) comes before any resolver: an
        // error without a path is the operation's own fault; resolvers then fail for want of
        // a caller (UNAUTHENTICATED, with a path), which is not what this checks.
        let errors = if op.ty == async_graphql::parser::types::OperationType::Subscription {
            use futures::StreamExt;
            schema
                .execute_stream(request)
                .next()
                .await
                .map(|r| r.errors)
                .unwrap_or_default()
        } else {
            schema.execute(request).await.errors
        };
        let refused: Vec<_> = errors
            .iter()
            .filter(|e| e.path.is_empty())
            .map(|e| e.message.clone())
            .collect();
        assert!(
            refused.is_empty(),
            "the server refuses this operation of the web console: {refused:?}\n{doc}"
        );
        checked += 1;
    }
    println!("{checked} operations within the limits");
}
