//! OpenTelemetry through a real OTLP/HTTP receiver: the spans of one mutation (request →
//! command → commit → projection) arrive under the trace id its event's metadata carries,
//! and a client's `traceparent` makes the change part of the client's own trace.
//!
//! The exporter is the process-wide subscriber `jsconsole serve --otlp-endpoint` installs
//! (`jsc_cli::telemetry::init`); nextest runs every test in its own process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use jsc_cli::telemetry::{LogFormat, Telemetry};
use jsc_testkit::{NatsServer, TestApp};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::{Value, json};

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    attributes: HashMap<String, String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(v: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

/// A real OTLP/HTTP traces endpoint on a free port: decodes each protobuf export and keeps
/// its spans. Returns the base URL (as an operator passes it) and what arrived.
async fn receiver() -> (String, Arc<Mutex<Vec<Got>>>) {
    let spans: Arc<Mutex<Vec<Got>>> = Arc::default();
    let kept = spans.clone();
    let handler = move |headers: HeaderMap, body: Bytes| {
        let kept = kept.clone();
        async move {
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
            if content_type != "application/x-protobuf" {
                return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
            }
            let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                return (StatusCode::BAD_REQUEST, Vec::new());
            };
            let mut kept = kept.lock().unwrap();
            for rs in request.resource_spans {
                let service = rs
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|a| a.key == "service.name")
                    .map(|a| text(a.value.as_ref()))
                    .unwrap_or_default();
                for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                    kept.push(Got {
                        service: service.clone(),
                        name: span.name,
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent: hex(&span.parent_span_id),
                        attributes: span
                            .attributes
                            .iter()
                            .map(|a| (a.key.clone(), text(a.value.as_ref())))
                            .collect(),
                    });
                }
            }
            (StatusCode::OK, Vec::new())
        }
    };
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, spans)
}

/// Exports what has ended (the exporter's blocking flush, off the runtime that serves the
/// receiver) until the trace `trace_id` holds a span named `last`; then the trace's spans.
async fn trace_with(telemetry: &Arc<Telemetry>, spans: &Arc<Mutex<Vec<Got>>>, trace_id: &str, last: &str) -> Vec<Got> {
    for _ in 0..200 {
        let t = telemetry.clone();
        tokio::task::spawn_blocking(move || t.flush())
            .await
            .unwrap()
            .expect("the receiver takes the spans");
        let trace: Vec<Got> = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        if trace.iter().any(|s| s.name == last) {
            return trace;
        }
        // A projection span ends once its view is written, just after the mutation answered.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no span {last} in trace {trace_id}: {:#?}", spans.lock().unwrap());
}

fn named<'a>(trace: &'a [Got], name: &str) -> &'a Got {
    trace
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name} span in {trace:#?}"))
}

const HISTORY: &str = "query($id: ID!) { history(aggregateType: CLUSTER, id: $id, last: 1) {
  nodes { eventType traceId } } }";

async fn last_trace_id(app: &TestApp, cluster: &str) -> (String, String) {
    let data = app.data(HISTORY, json!({"id": cluster})).await;
    let node = &data["history"]["nodes"][0];
    (
        node["eventType"].as_str().unwrap().to_string(),
        node["traceId"]
            .as_str()
            .unwrap_or_else(|| panic!("no traceId: {data}"))
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mutation_is_one_trace_from_request_to_projection_under_the_id_its_event_records() {
    let (endpoint, spans) = receiver().await;
    let telemetry = Arc::new(jsc_cli::telemetry::init(LogFormat::Text, Some(&endpoint)).expect("telemetry"));
    assert!(telemetry.exporting());
    let managed = NatsServer::start();
    let app = TestApp::spawn().await;
    let token = app.token.clone().expect("the owner's token");

    // A mutation with no trace of its own: the console starts one.
    let cluster = app
        .register_cluster(json!({"name": "traced", "urls": [managed.url()]}))
        .await;
    let (event, trace_id) = last_trace_id(&app, &cluster).await;
    assert_eq!(event, "ClusterRegistered");
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    assert_ne!(trace_id, "0".repeat(32));

    let trace = trace_with(&telemetry, &spans, &trace_id, "projection").await;
    let request = named(&trace, "request");
    let command = named(&trace, "command");
    let commit = named(&trace, "commit");
    assert!(trace.iter().all(|s| s.service == "jsconsole"), "{trace:#?}");
    assert_eq!(request.parent, "", "the request is the trace's root: {request:?}");
    assert_eq!(request.attributes["path"], "/graphql");
    assert_eq!(command.attributes["aggregate_type"], "cluster");
    assert_eq!(
        commit.parent, command.span_id,
        "the commit runs in the command: {trace:#?}"
    );
    assert_eq!(commit.attributes["aggregate_id"], cluster);
    // Every span between the request and the command descends from the request.
    let by_id: HashMap<&str, &Got> = trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let mut up = command;
    while !up.parent.is_empty() {
        up = by_id
            .get(up.parent.as_str())
            .unwrap_or_else(|| panic!("parent {} of {} not in the trace: {trace:#?}", up.parent, up.name));
    }
    assert_eq!(up.span_id, request.span_id);
    // The projector read the commit's `traceparent` header: its span is the commit's child.
    let projections: Vec<&Got> = trace.iter().filter(|s| s.name == "projection").collect();
    assert!(
        projections
            .iter()
            .any(|p| p.parent == commit.span_id && p.attributes["projection"] == "clusters"),
        "the clusters view's projection follows the commit: {trace:#?}"
    );
    // No credential leaves in a span.
    let everything = format!("{:?}", spans.lock().unwrap());
    assert!(!everything.contains(&token), "the bearer token is in a span");
    assert!(
        !everything.contains(jsc_testkit::OWNER_PASSWORD),
        "the password is in a span"
    );

    // A client's own trace: its `traceparent` makes the change part of it.
    let client_trace = format!("{:032x}", u128::from(std::process::id()) << 64 | 0xfeed);
    let client_span = "00f067aa0ba902b7";
    let answer: Value = app
        .graphql_with_headers(
            "mutation($input: UpdateClusterInput!) { updateCluster(input: $input) { cluster { id } } }",
            json!({"input": {"id": cluster, "description": "traced by the client"}}),
            &[("traceparent", &format!("00-{client_trace}-{client_span}-01"))],
        )
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let (event, recorded) = last_trace_id(&app, &cluster).await;
    assert_eq!(event, "ClusterUpdated");
    assert_eq!(recorded, client_trace, "the event records the client's trace");
    let trace = trace_with(&telemetry, &spans, &client_trace, "projection").await;
    assert_eq!(named(&trace, "request").parent, client_span, "{trace:#?}");

    // A malformed `traceparent` is ignored: the console starts a trace of its own.
    let answer: Value = app
        .graphql_with_headers(
            "mutation($input: UpdateClusterInput!) { updateCluster(input: $input) { cluster { id } } }",
            json!({"input": {"id": cluster, "description": "a bad header"}}),
            &[("traceparent", "00-not-a-trace-01")],
        )
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let (_, own) = last_trace_id(&app, &cluster).await;
    assert_eq!(own.len(), 32);
    assert_ne!(own, client_trace);
    assert_ne!(own, trace_id);
}

#[tokio::test]
async fn an_otlp_endpoint_that_is_not_an_http_url_is_refused_at_start_saying_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_string_lossy().to_string();
    for bad in ["localhost:4318", "grpc://localhost:4317"] {
        let (code, _, err) = jsc_testkit::cli(&["serve", "--data-dir", &data, "--otlp-endpoint", bad]).await;
        assert_eq!(code, 2, "a configuration error: {err}");
        assert!(
            err.contains("--otlp-endpoint") && err.contains("http://localhost:4318"),
            "{err}"
        );
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_the_console_nothing_but_the_spans() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let telemetry = Arc::new(
        jsc_cli::telemetry::init(LogFormat::Text, Some(&format!("http://127.0.0.1:{port}"))).expect("telemetry"),
    );
    let managed = NatsServer::start();
    let app = TestApp::spawn().await;
    let cluster = app
        .register_cluster(json!({"name": "untraced", "urls": [managed.url()]}))
        .await;
    let (_, trace_id) = last_trace_id(&app, &cluster).await;
    assert_eq!(trace_id.len(), 32, "the trace is still recorded on the event");
    let t = telemetry.clone();
    let flushed = tokio::task::spawn_blocking(move || t.flush()).await.unwrap();
    let e = flushed.expect_err("the spans could not be sent").to_string();
    assert!(e.contains("OTLP endpoint"), "{e}");
}
