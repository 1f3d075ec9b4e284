//! The scenarios, each beside its raw ceiling measured in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream;
use async_trait::async_trait;
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use jsc_domain::cluster::{Cluster, ClusterChanges, ClusterCommand, ClusterServices, ClusterSpec, ConnectionTest};
use jsc_eventstore::{CommandContext, EventStoreConfig, JetStreamEventStore, Repository};
use jsc_fleet::embedded::{ServerOptions, ServerProcess};
use jsc_projections::ClustersProjection;
use jsc_projector::{KvProjection, Projector};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use crate::Args;
use crate::baselines::{self, BarePublishServer, EventPublisher, EventShape};
use crate::report::{Better, Row, Target};
use crate::stats::{Measured, percentile};

const PAYLOAD: usize = 256;
const CONCURRENCY: usize = 64;

struct Sizes {
    runs: usize,
    commands: usize,
    latency_samples: usize,
    catchup_events: usize,
    read_for: Duration,
    fanout_clients: usize,
    fanout_updates: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                runs: 3,
                commands: 3_000,
                latency_samples: 300,
                catchup_events: 100_000,
                read_for: Duration::from_secs(2),
                fanout_clients: 1_000,
                fanout_updates: 10,
            }
        } else {
            Self {
                runs: 5,
                commands: 20_000,
                latency_samples: 2_000,
                catchup_events: 1_000_000,
                read_for: Duration::from_secs(5),
                fanout_clients: 1_000,
                fanout_updates: 30,
            }
        }
    }
}

/// A nats-server of its own for a scenario, so streams from one do not weigh on the next.
struct Server {
    process: ServerProcess,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let process = ServerProcess::start(&ServerOptions::new(dir.path().join("js")))?;
        Ok(Self { process, _dir: dir })
    }

    async fn client(&self) -> anyhow::Result<async_nats::Client> {
        Ok(async_nats::connect(self.process.url()).await?)
    }
}

fn wants(args: &Args, name: &str) -> bool {
    args.only.as_ref().is_none_or(|o| name.contains(o.as_str()))
}

pub async fn run_all(args: &Args) -> anyhow::Result<Vec<Row>> {
    let sizes = Sizes::new(args.quick);
    let mut rows = Vec::new();
    if wants(args, "commands") {
        eprintln!("1. commands in-process");
        rows.extend(commands_in_process(&sizes).await.context("scenario 1")?);
    }
    if wants(args, "graphql") || wants(args, "fanout") || wants(args, "reads") {
        eprintln!("2, 4, 5, 7. through the jsconsole binary");
        rows.extend(through_the_binary(args, &sizes).await.context("scenarios 2, 4, 5, 7")?);
    }
    if wants(args, "catch-up") {
        eprintln!("3. projection catch-up");
        rows.extend(projection_catch_up(&sizes).await.context("scenario 3")?);
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------
// Raw ceilings
// ---------------------------------------------------------------------------------------

async fn raw_stream(js: &jetstream::Context, name: &str) -> anyhow::Result<()> {
    let _ = js.delete_stream(name).await;
    js.create_stream(jetstream::stream::Config {
        name: name.into(),
        subjects: vec![format!("{}.>", name.to_lowercase())],
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    Ok(())
}

/// Publishes `n` messages with `inflight` acks outstanding; returns messages per second.
async fn raw_pipelined(js: &jetstream::Context, stream: &str, n: usize, inflight: usize) -> anyhow::Result<f64> {
    let payload = bytes::Bytes::from(vec![b'x'; PAYLOAD]);
    let prefix = stream.to_lowercase();
    let started = Instant::now();
    let mut acks = FuturesUnordered::new();
    for i in 0..n {
        if acks.len() >= inflight {
            acks.next().await.expect("an ack")?;
        }
        let ack = js.publish(format!("{prefix}.{}", i % 64), payload.clone()).await?;
        acks.push(ack.into_future());
    }
    while let Some(a) = acks.next().await {
        a?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Publish + ack, one at a time: latencies in ms, sorted.
async fn raw_sequential(js: &jetstream::Context, stream: &str, n: usize) -> anyhow::Result<Vec<f64>> {
    let payload = bytes::Bytes::from(vec![b'x'; PAYLOAD]);
    let subject = format!("{}.seq", stream.to_lowercase());
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        js.publish(subject.clone(), payload.clone()).await?.await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok(lat)
}

// ---------------------------------------------------------------------------------------
// 1. Commands in-process
// ---------------------------------------------------------------------------------------

struct NoServices;

#[async_trait]
impl ClusterServices for NoServices {
    async fn name_in_use(&self, _: &str, _: &str) -> Result<bool, String> {
        Ok(false)
    }
    async fn probe(&self, _: &ClusterSpec) -> ConnectionTest {
        unreachable!("the benchmark does not probe")
    }
}

fn description_update(i: usize) -> ClusterCommand {
    // A description of the payload size, so the event is comparable with the raw message.
    ClusterCommand::Update {
        changes: ClusterChanges {
            description: Some(format!("{i:0>width$}", width = PAYLOAD / 2)),
            ..Default::default()
        },
    }
}

async fn register_in_process(repo: &Repository<Cluster>, n: usize) -> anyhow::Result<Vec<String>> {
    let ctx = CommandContext::system("bench");
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("bench-{i}");
        let spec = ClusterSpec {
            name: id.clone(),
            urls: vec!["nats://127.0.0.1:4222".into()],
            ..Default::default()
        };
        repo.execute(
            &id,
            ClusterCommand::Register {
                id: id.clone(),
                organization: "default".into(),
                spec,
            },
            &ctx,
        )
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

async fn commands_in_process(sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let server = Server::start()?;
    let client = server.client().await?;
    let js = jetstream::new(client.clone());
    raw_stream(&js, "RAW").await?;
    let store = JetStreamEventStore::open(client.clone(), EventStoreConfig::default()).await?;
    let services: Arc<dyn ClusterServices> = Arc::new(NoServices);
    let repo = Arc::new(Repository::<Cluster>::new(store.clone(), services));
    let ids = register_in_process(&repo, CONCURRENCY).await?;

    let (mut raw_tp, mut console_tp, mut ev_tp) = (Vec::new(), Vec::new(), Vec::new());
    let (mut raw_p50, mut raw_p99, mut con_p50, mut con_p99) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ev_p50, mut ev_p99) = (Vec::new(), Vec::new());
    // Warm-up, not counted.
    raw_pipelined(&js, "RAW", sizes.commands / 4, CONCURRENCY).await?;
    console_concurrent(&repo, &ids, sizes.commands / 4).await?;
    // The raw event-shaped publishes copy a real event of the benchmarked command.
    let shape = EventShape::of_last_event(&js, &store.config().stream, &store.subject("cluster", &ids[0])).await?;
    eprintln!(
        "   event-shaped publishes: {} event headers, {}-byte body",
        shape.header_count(),
        shape.body_len()
    );
    let events = EventPublisher::create(js.clone(), &store, shape).await?;
    baselines::concurrent(&events, &ids, sizes.commands / 4).await?;
    for _ in 0..sizes.runs {
        raw_tp.push(raw_pipelined(&js, "RAW", sizes.commands, CONCURRENCY).await?);
        ev_tp.push(baselines::concurrent(&events, &ids, sizes.commands).await?);
        console_tp.push(console_concurrent(&repo, &ids, sizes.commands).await?);
        let raw = raw_sequential(&js, "RAW", sizes.latency_samples).await?;
        raw_p50.push(percentile(&raw, 50.0));
        raw_p99.push(percentile(&raw, 99.0));
        let ev = baselines::sequential(&events, &ids[0], sizes.latency_samples).await?;
        ev_p50.push(percentile(&ev, 50.0));
        ev_p99.push(percentile(&ev, 99.0));
        let con = console_sequential(&repo, &ids[0], sizes.latency_samples).await?;
        con_p50.push(percentile(&con, 50.0));
        con_p99.push(percentile(&con, 99.0));
    }
    let scenario = "1. commands in-process";
    let (console_tp, raw_tp, ev_tp) = (Measured::of(console_tp), Measured::of(raw_tp), Measured::of(ev_tp));
    let (con_p50, raw_p50, ev_p50) = (Measured::of(con_p50), Measured::of(raw_p50), Measured::of(ev_p50));
    let (con_p99, ev_p99) = (Measured::of(con_p99), Measured::of(ev_p99));
    let tp_target = Target::at_least_restated(0.5, "plain pipelined publish", raw_tp.median, ev_tp.median);
    let mut ev_note = format!(
        "the console's event headers, a fresh `Nats-Msg-Id` and `Nats-Expected-Last-Subject-Sequence` (from the \
         previous ack on the subject), the body of a real event ({} bytes), to a stream configured like the \
         console's: the design's cost without the console's",
        events.body_len()
    );
    if let Target::RatioAtLeastRestated { value, .. } = tp_target
        && value > 1.0
    {
        ev_note.push_str("; the target is met only if the console beats this baseline, which has none of its overhead");
    }
    Ok(vec![
        Row {
            scenario: scenario.into(),
            metric: "throughput, 64 concurrent on distinct aggregates".into(),
            unit: "cmd/s".into(),
            console: console_tp.clone(),
            raw: Some(raw_tp.clone()),
            raw_label: "publish, 64 acks in flight".into(),
            better: Better::Higher,
            target: Target::RatioAtLeast { value: 0.5 },
            note: String::new(),
        },
        Row {
            scenario: scenario.into(),
            metric: "throughput, 64 concurrent on distinct aggregates".into(),
            unit: "cmd/s".into(),
            target: tp_target,
            console: console_tp,
            raw: Some(ev_tp),
            raw_label: "event-shaped publish, one in flight on each of 64 subjects".into(),
            better: Better::Higher,
            note: ev_note,
        },
        Row {
            scenario: scenario.into(),
            metric: "latency p50, one at a time, warm aggregate".into(),
            unit: "ms".into(),
            console: con_p50.clone(),
            raw: Some(raw_p50.clone()),
            raw_label: "publish + ack".into(),
            better: Better::Lower,
            target: Target::RatioAtMost { value: 1.3 },
            note: String::new(),
        },
        Row {
            scenario: scenario.into(),
            metric: "latency p50, one at a time, warm aggregate".into(),
            unit: "ms".into(),
            target: Target::at_most_restated(1.3, "plain publish + ack", raw_p50.median, ev_p50.median),
            console: con_p50,
            raw: Some(ev_p50),
            raw_label: "event-shaped publish + ack".into(),
            better: Better::Lower,
            note: String::new(),
        },
        Row {
            scenario: scenario.into(),
            metric: "latency p99, one at a time, warm aggregate".into(),
            unit: "ms".into(),
            console: con_p99.clone(),
            raw: Some(Measured::of(raw_p99)),
            raw_label: "publish + ack".into(),
            better: Better::Lower,
            target: Target::None,
            note: String::new(),
        },
        Row {
            scenario: scenario.into(),
            metric: "latency p99, one at a time, warm aggregate".into(),
            unit: "ms".into(),
            console: con_p99,
            raw: Some(ev_p99),
            raw_label: "event-shaped publish + ack".into(),
            better: Better::Lower,
            target: Target::None,
            note: String::new(),
        },
    ])
}

async fn console_concurrent(repo: &Arc<Repository<Cluster>>, ids: &[String], n: usize) -> anyhow::Result<f64> {
    let per_task = n / ids.len();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for id in ids {
        let repo = repo.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let ctx = CommandContext::system("bench");
            for i in 0..per_task {
                repo.execute(&id, description_update(i), &ctx).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((per_task * ids.len()) as f64 / started.elapsed().as_secs_f64())
}

async fn console_sequential(repo: &Repository<Cluster>, id: &str, n: usize) -> anyhow::Result<Vec<f64>> {
    let ctx = CommandContext::system("bench");
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        repo.execute(id, description_update(1_000_000 + i), &ctx).await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok(lat)
}

// ---------------------------------------------------------------------------------------
// 2, 4, 5, 7. Through the binary
// ---------------------------------------------------------------------------------------

/// `jsconsole serve` as a child process, against the scenario's nats-server.
struct Child {
    child: std::process::Child,
    base: String,
    /// The owner's access token (valid for the whole run).
    token: String,
    _data: tempfile::TempDir,
}

const BENCH_EMAIL: &str = "bench@example.com";
const BENCH_PASSWORD: &str = "benchmark-owner-password";

/// An HTTP client that sends `token` with every request.
fn authed_client(token: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .default_headers(headers)
        .build()?)
}

impl Child {
    async fn start(bin: &std::path::Path, nats_url: &str) -> anyhow::Result<Self> {
        if !bin.is_file() {
            bail!(
                "{} not found: `make bench` builds it (cargo build --release)",
                bin.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let data = tempfile::tempdir()?;
        let child = std::process::Command::new(bin)
            .args([
                "serve",
                "--bench-routes",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--nats-url",
                nats_url,
                "--admin-email",
                BENCH_EMAIL,
                "--admin-password",
                BENCH_PASSWORD,
                "--access-token-ttl",
                "86400",
            ])
            .arg("--data-dir")
            .arg(data.path())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("jsconsole did not become ready");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let login = gql(
            &http,
            &base,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            json!({"e": BENCH_EMAIL, "p": BENCH_PASSWORD}),
        )
        .await?;
        let token = login["login"]["accessToken"]
            .as_str()
            .context("login returned no token")?
            .to_string();
        Ok(Self {
            child,
            base,
            token,
            _data: data,
        })
    }

    /// Peak and current resident memory, MiB.
    fn memory(&self) -> (f64, f64) {
        memory_of(self.child.id())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn memory_of(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

async fn gql(http: &reqwest::Client, base: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
    let body: Value = http
        .post(format!("{base}/graphql"))
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await?
        .json()
        .await?;
    if let Some(e) = body.get("errors") {
        bail!("GraphQL error: {e}");
    }
    Ok(body["data"].clone())
}

const UPDATE: &str = "mutation($id: ID!, $d: String!) { updateCluster(id: $id, input: {description: $d}) { version } }";

async fn graphql_concurrent(http: &reqwest::Client, base: &str, ids: &[String], n: usize) -> anyhow::Result<f64> {
    let per_task = n / ids.len();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for id in ids {
        let (http, base, id) = (http.clone(), base.to_string(), id.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let d = format!("{i:0>width$}", width = PAYLOAD / 2);
                gql(&http, &base, UPDATE, json!({"id": id, "d": d})).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((per_task * ids.len()) as f64 / started.elapsed().as_secs_f64())
}

/// `clients` loops of requests for `duration`; returns requests/s and sorted latencies (ms).
async fn load<F, Fut>(clients: usize, duration: Duration, request: F) -> anyhow::Result<(f64, Vec<f64>)>
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while started.elapsed() < duration {
                let t = Instant::now();
                request().await?;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    Ok((rate, all))
}

async fn through_the_binary(args: &Args, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let server = Server::start()?;
    let client = server.client().await?;
    let js = jetstream::new(client.clone());
    raw_stream(&js, "RAW").await?;
    let console = Child::start(&args.jsconsole, &server.process.url()).await?;
    let http = authed_client(&console.token)?;
    let base = console.base.clone();
    let mut ids = Vec::new();
    for i in 0..CONCURRENCY {
        let d = gql(
            &http,
            &base,
            "mutation($n: String!) { registerCluster(input: {name: $n, urls: [\"nats://127.0.0.1:4222\"]}) { id } }",
            json!({"n": format!("bench-{i}")}),
        )
        .await?;
        ids.push(d["registerCluster"]["id"].as_str().unwrap_or_default().to_string());
    }
    let mut rows = Vec::new();
    let nats_pid = server.process.pid();

    // 2. GraphQL mutations over HTTP.
    if wants(args, "graphql") {
        let n = sizes.commands / 2;
        raw_pipelined(&js, "RAW", n / 4, CONCURRENCY).await?;
        graphql_concurrent(&http, &base, &ids, n / 4).await?;
        // The bare baseline: an axum handler in this process making one event-shaped publish
        // (a copy of a real `updateCluster` event) per request, on a connection of its own,
        // loaded by the same client with the same bodies.
        let store = JetStreamEventStore::open(client.clone(), EventStoreConfig::default()).await?;
        let shape = EventShape::of_last_event(&js, &store.config().stream, &store.subject("cluster", &ids[0])).await?;
        eprintln!(
            "   bare publish handler: {} event headers, {}-byte body",
            shape.header_count(),
            shape.body_len()
        );
        let bare_js = jetstream::new(server.client().await?);
        let events = EventPublisher::create(bare_js, &store, shape).await?;
        let body_len = events.body_len();
        let bare = BarePublishServer::start(events).await?;
        graphql_concurrent(&http, &bare.base, &ids, n / 4).await?;
        let (mut raw, mut con, mut bare_tp) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..sizes.runs {
            raw.push(raw_pipelined(&js, "RAW", n, CONCURRENCY).await?);
            bare_tp.push(graphql_concurrent(&http, &bare.base, &ids, n).await?);
            con.push(graphql_concurrent(&http, &base, &ids, n).await?);
        }
        drop(bare);
        let con = Measured::of(con);
        rows.push(Row {
            scenario: "2. commands through GraphQL over HTTP".into(),
            metric: "throughput, 64 concurrent clients, distinct aggregates".into(),
            unit: "cmd/s".into(),
            console: con.clone(),
            raw: Some(Measured::of(raw)),
            raw_label: "publish, 64 acks in flight".into(),
            better: Better::Higher,
            target: Target::RatioAtLeast { value: 0.5 },
            note: "each mutation returns only once the clusters view shows it (read-your-writes)".into(),
        });
        rows.push(Row {
            scenario: "2. commands through GraphQL over HTTP".into(),
            metric: "throughput, 64 concurrent clients, distinct aggregates".into(),
            unit: "cmd/s".into(),
            console: con,
            raw: Some(Measured::of(bare_tp)),
            raw_label: "bare axum handler + one event-shaped publish, same client and bodies".into(),
            better: Better::Higher,
            target: Target::RatioAtLeast { value: 0.5 },
            note: format!(
                "the handler runs in the bench process (beside the load generator), parses the mutation's JSON \
                 body and answers after one publish with the console's event headers, a fresh `Nats-Msg-Id`, \
                 `Nats-Expected-Last-Subject-Sequence` and a real event's body ({body_len} bytes); no auth, no \
                 GraphQL, no aggregate, no read-your-writes wait"
            ),
        });
        rows.push(memory_row("after scenario 2", &console, nats_pid));
    }

    // 4. Reads under 64 concurrent clients.
    if wants(args, "reads") {
        let query = json!({"query": "{ clusters { id name } }"}).to_string();
        let gql_req = {
            let (http, url, body) = (http.clone(), format!("{base}/graphql"), query.clone());
            move || {
                let (http, url, body) = (http.clone(), url.clone(), body.clone());
                async move {
                    let r = http
                        .post(url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await?;
                    r.bytes().await?;
                    anyhow::Ok(())
                }
            }
        };
        let bare_req = {
            let (http, url) = (http.clone(), format!("{base}/_bench/clusters"));
            move || {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    http.get(url).send().await?.bytes().await?;
                    anyhow::Ok(())
                }
            }
        };
        load(CONCURRENCY, Duration::from_millis(500), gql_req.clone()).await?;
        load(CONCURRENCY, Duration::from_millis(500), bare_req.clone()).await?;
        let (mut g_rate, mut b_rate, mut g_p50, mut g_p99, mut b_p50, mut b_p99) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..sizes.runs {
            let (r, l) = load(CONCURRENCY, sizes.read_for, gql_req.clone()).await?;
            g_rate.push(r);
            g_p50.push(percentile(&l, 50.0));
            g_p99.push(percentile(&l, 99.0));
            let (r, l) = load(CONCURRENCY, sizes.read_for, bare_req.clone()).await?;
            b_rate.push(r);
            b_p50.push(percentile(&l, 50.0));
            b_p99.push(percentile(&l, 99.0));
        }
        let scenario = "4. GraphQL reads, 64 concurrent clients";
        rows.push(Row {
            scenario: scenario.into(),
            metric: "throughput of `{ clusters { id name } }` (64 clusters)".into(),
            unit: "req/s".into(),
            console: Measured::of(g_rate),
            raw: Some(Measured::of(b_rate)),
            raw_label: "bare axum JSON handler, same process".into(),
            better: Better::Higher,
            target: Target::RatioAtLeast { value: 0.3 },
            note: "the load generator shares the machine's 2 cores with the console".into(),
        });
        rows.push(Row {
            scenario: scenario.into(),
            metric: "latency p50".into(),
            unit: "ms".into(),
            console: Measured::of(g_p50),
            raw: Some(Measured::of(b_p50)),
            raw_label: "bare axum".into(),
            better: Better::Lower,
            target: Target::None,
            note: String::new(),
        });
        rows.push(Row {
            scenario: scenario.into(),
            metric: "latency p99".into(),
            unit: "ms".into(),
            console: Measured::of(g_p99),
            raw: Some(Measured::of(b_p99)),
            raw_label: "bare axum".into(),
            better: Better::Lower,
            target: Target::AbsoluteAtMost { value: 2.0 },
            note: String::new(),
        });
        // The same query from one client: the latency a person at the explorer sees.
        let (mut one_g, mut one_b) = (Vec::new(), Vec::new());
        for _ in 0..sizes.runs {
            let (_, l) = load(1, sizes.read_for / 2, gql_req.clone()).await?;
            one_g.push(percentile(&l, 99.0));
            let (_, l) = load(1, sizes.read_for / 2, bare_req.clone()).await?;
            one_b.push(percentile(&l, 99.0));
        }
        rows.push(Row {
            scenario: "4. GraphQL reads, one client".into(),
            metric: "latency p99".into(),
            unit: "ms".into(),
            console: Measured::of(one_g),
            raw: Some(Measured::of(one_b)),
            raw_label: "bare axum".into(),
            better: Better::Lower,
            target: Target::AbsoluteAtMost { value: 2.0 },
            note: "with 64 clients on 2 cores, latency is queueing (Little's law: 64 / throughput), for bare axum too"
                .into(),
        });
        rows.push(memory_row("after scenario 4", &console, nats_pid));
    }

    // 5. Live fan-out to WebSocket subscribers.
    if wants(args, "fanout") {
        let (con, raw) = fan_out(&console.base, &console.token, &ids[0], &client, sizes).await?;
        rows.push(Row {
            scenario: format!("5. live fan-out to {} WebSocket subscribers", sizes.fanout_clients),
            metric: "latency p99, mutation sent → change received by each client".into(),
            unit: "ms".into(),
            console: Measured::of(con),
            raw: Some(Measured::of(raw)),
            raw_label: "core NATS publish → each of as many subscribers".into(),
            better: Better::Lower,
            target: Target::AbsoluteAtMost { value: 50.0 },
            note: "the console figure includes the command, the commit, the projection and the view watch".into(),
        });
        rows.push(memory_row("after scenario 5", &console, nats_pid));
    }
    Ok(rows)
}

fn memory_row(when: &str, console: &Child, nats_pid: u32) -> Row {
    let (peak, _) = console.memory();
    let (nats_peak, _) = memory_of(nats_pid);
    Row {
        scenario: "7. memory of `jsconsole serve`".into(),
        metric: format!("peak RSS {when}"),
        unit: "MiB".into(),
        console: Measured::of(vec![peak]),
        raw: Some(Measured::of(vec![nats_peak])),
        raw_label: "nats-server peak RSS".into(),
        better: Better::Lower,
        target: Target::None,
        note: String::new(),
    }
}

/// Returns per-run p99 latencies (ms) for the console and for raw core NATS.
async fn fan_out(
    base: &str,
    token: &str,
    id: &str,
    nats: &async_nats::Client,
    sizes: &Sizes,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let ws_url = format!("{}/graphql", base.replace("http://", "ws://"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let stop = CancellationToken::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for _ in 0..sizes.fanout_clients {
        let auth = token.to_string();
        let (url, id, tx, stop, ready) = (
            ws_url.clone(),
            id.to_string(),
            tx.clone(),
            stop.clone(),
            ready_tx.clone(),
        );
        tokio::spawn(async move {
            let mut req = url.into_client_request().expect("request");
            req.headers_mut()
                .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
            let Ok((mut ws, _)) = tokio_tungstenite::connect_async(req).await else {
                return;
            };
            let _ = ws
                .send(Message::text(
                    json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {auth}")}})
                        .to_string(),
                ))
                .await;
            let q = "subscription($id: ID) { clusterChanged(id: $id, includeCurrent: true) { kind sequence } }";
            let _ = ws
                .send(Message::text(
                    json!({"id": "1", "type": "subscribe", "payload": {"query": q, "variables": {"id": id}}})
                        .to_string(),
                ))
                .await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    m = ws.next() => match m {
                        Some(Ok(Message::Text(t))) => {
                            let now = Instant::now();
                            let v: Value = serde_json::from_str(&t).unwrap_or_default();
                            match v["payload"]["data"]["clusterChanged"]["kind"].as_str() {
                                Some("CURRENT") => { let _ = ready.send(()); }
                                Some(_) => { let _ = tx.send(now); }
                                None => {}
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    }
                }
            }
        });
    }
    for _ in 0..sizes.fanout_clients {
        tokio::time::timeout(Duration::from_secs(60), ready_rx.recv())
            .await
            .context("subscribers did not all start")?;
    }
    let http = authed_client(token)?;
    let mut console = Vec::new();
    let updates_per_run = (sizes.fanout_updates / sizes.runs).max(2);
    for run in 0..=sizes.runs {
        let mut lat = Vec::new();
        for u in 0..updates_per_run {
            let t0 = Instant::now();
            gql(&http, base, UPDATE, json!({"id": id, "d": format!("fanout-{run}-{u}")})).await?;
            for _ in 0..sizes.fanout_clients {
                let at = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                    .await
                    .context("a subscriber missed a change")?
                    .context("channel closed")?;
                lat.push(at.duration_since(t0).as_secs_f64() * 1000.0);
            }
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        if run > 0 {
            console.push(percentile(&lat, 99.0));
        }
    }
    stop.cancel();

    // Raw: the same number of core NATS subscribers, one publish at a time.
    let (rtx, mut rrx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut subs = Vec::new();
    for _ in 0..sizes.fanout_clients {
        let mut sub = nats.subscribe("bench.fanout").await?;
        let rtx = rtx.clone();
        subs.push(tokio::spawn(async move {
            while sub.next().await.is_some() {
                let _ = rtx.send(Instant::now());
            }
        }));
    }
    nats.flush().await?;
    let mut raw = Vec::new();
    for run in 0..=sizes.runs {
        let mut lat = Vec::new();
        for _ in 0..updates_per_run {
            let t0 = Instant::now();
            nats.publish("bench.fanout", "x".into()).await?;
            nats.flush().await?;
            for _ in 0..sizes.fanout_clients {
                let at = tokio::time::timeout(Duration::from_secs(30), rrx.recv())
                    .await?
                    .context("closed")?;
                lat.push(at.duration_since(t0).as_secs_f64() * 1000.0);
            }
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        if run > 0 {
            raw.push(percentile(&lat, 99.0));
        }
    }
    for s in subs {
        s.abort();
    }
    Ok((console, raw))
}

// ---------------------------------------------------------------------------------------
// 3. Projection catch-up
// ---------------------------------------------------------------------------------------

async fn projection_catch_up(sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let server = Server::start()?;
    let client = server.client().await?;
    let js = jetstream::new(client.clone());
    let store = JetStreamEventStore::open(client.clone(), EventStoreConfig::default()).await?;
    let n = sizes.catchup_events;
    let aggregates = 1_000.min(n);
    eprintln!("   writing {n} events");
    write_events(&js, &store, n, aggregates).await?;
    let last = js
        .get_stream("CONSOLE_EVENTS")
        .await?
        .get_info()
        .await?
        .state
        .last_sequence;

    let (mut raw, mut filtered, mut con) = (Vec::new(), Vec::new(), Vec::new());
    raw_ordered_read(&js, last, None).await?;
    for run in 0..=sizes.runs {
        let r = raw_ordered_read(&js, last, None).await?;
        let f = raw_ordered_read(&js, last, Some("es.cluster.>")).await?;
        let c = project_all(&client, last).await?;
        if run > 0 {
            raw.push(r);
            filtered.push(f);
            con.push(c);
        }
    }
    let con = Measured::of(con);
    let export = audit_export(&client, &js, last, sizes).await?;
    Ok(vec![
        export,
        Row {
            scenario: format!("3. projection catch-up, {n} events"),
            metric: "events applied, against a read filtered like the projection".into(),
            unit: "events/s".into(),
            console: con.clone(),
            raw: Some(Measured::of(filtered)),
            raw_label: "ordered consumer filtered on `es.cluster.>`".into(),
            better: Better::Higher,
            target: Target::None,
            note: "the server's cost of a wildcard filter over many subjects bounds both".into(),
        },
        Row {
            scenario: format!("3. projection catch-up, {n} events"),
            metric: "events applied to the clusters view".into(),
            unit: "events/s".into(),
            console: con,
            raw: Some(Measured::of(raw)),
            raw_label: "ordered consumer reading the stream".into(),
            better: Better::Higher,
            target: Target::RatioAtLeast { value: 0.5 },
            note: format!("{aggregates} clusters; events of one cluster in a batch are folded into one KV write"),
        },
    ])
}

/// Scenario 6: the audit table is written (not timed), then exported to Parquet, against the raw
/// ordered read of the same events.
async fn audit_export(
    client: &async_nats::Client,
    js: &jetstream::Context,
    last: u64,
    sizes: &Sizes,
) -> anyhow::Result<Row> {
    use jsc_projections::audit::{AuditFilter, AuditReader, AuditWriter, ExportFormat, FLUSHED_KEY, STATE_BUCKET};
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn object_store::ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path())?);
    eprintln!("   writing the audit table");
    let token = CancellationToken::new();
    let writer = AuditWriter {
        client: client.clone(),
        stream: "CONSOLE_EVENTS".into(),
        store: store.clone(),
        max_rows: 50_000,
        max_age: Duration::from_secs(1),
        compact_after: 0,
    };
    let running = tokio::spawn(writer.run(token.clone()));
    let kv = loop {
        if let Ok(kv) = js.get_key_value(STATE_BUCKET).await {
            break kv;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut watch = kv.watch_with_history(FLUSHED_KEY).await?;
    while let Some(e) = watch.next().await {
        if String::from_utf8_lossy(&e?.value).parse::<u64>().unwrap_or(0) >= last {
            break;
        }
    }
    token.cancel();
    running.await??;
    let reader = AuditReader {
        client: client.clone(),
        stream: "CONSOLE_EVENTS".into(),
        store,
    };
    let (mut raw, mut con) = (Vec::new(), Vec::new());
    for run in 0..=sizes.runs {
        let r = raw_ordered_read(js, last, None).await?;
        let started = Instant::now();
        let rows = reader
            .export(
                &AuditFilter::default(),
                ExportFormat::Parquet,
                tokio::io::sink(),
                &mut |_, _| {},
            )
            .await?;
        let c = rows as f64 / started.elapsed().as_secs_f64();
        if run > 0 {
            raw.push(r);
            con.push(c);
        }
    }
    Ok(Row {
        scenario: format!("6. audit export to Parquet, {last} events"),
        metric: "events exported (whole trail, Parquet)".into(),
        unit: "events/s".into(),
        console: Measured::of(con),
        raw: Some(Measured::of(raw)),
        raw_label: "ordered consumer reading the stream".into(),
        better: Better::Higher,
        target: Target::RatioAtLeast { value: 0.3 },
        note: "reads the Parquet audit files (one at a time, memory flat) and writes a new Parquet file".into(),
    })
}

/// Writes `n` cluster events straight to the stream (registrations, then updates).
async fn write_events(
    js: &jetstream::Context,
    store: &JetStreamEventStore,
    n: usize,
    aggregates: usize,
) -> anyhow::Result<()> {
    let meta = CommandContext::system("bench").to_metadata();
    let mut versions = vec![0usize; aggregates];
    let mut hashes: Vec<Option<String>> = vec![None; aggregates];
    let mut acks = FuturesUnordered::new();
    for i in 0..n {
        let a = i % aggregates;
        let id = format!("c{a}");
        let event = if versions[a] == 0 {
            jsc_domain::cluster::ClusterEvent::Registered {
                id: id.clone(),
                organization: "default".into(),
                spec: ClusterSpec {
                    name: id.clone(),
                    urls: vec!["nats://127.0.0.1:4222".into()],
                    ..Default::default()
                },
            }
        } else {
            jsc_domain::cluster::ClusterEvent::Updated {
                changes: ClusterChanges {
                    description: Some(format!("update {i}")),
                    ..Default::default()
                },
            }
        };
        let rec = store
            .records_for::<Cluster>(&id, versions[a], &[event], &meta, hashes[a].take())
            .remove(0);
        versions[a] += 1;
        hashes[a] = rec.hash.clone();
        if acks.len() >= 256 {
            acks.next().await.expect("an ack")?;
        }
        let (body, _) = rec.body_and_hash();
        acks.push(
            js.publish(store.subject("cluster", &id), body.into())
                .await?
                .into_future(),
        );
    }
    while let Some(a) = acks.next().await {
        a?;
    }
    Ok(())
}

/// Reads the whole stream with an ordered consumer; events per second.
async fn raw_ordered_read(js: &jetstream::Context, last: u64, filter: Option<&str>) -> anyhow::Result<f64> {
    let stream = js.get_stream("CONSOLE_EVENTS").await?;
    let started = Instant::now();
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: filter.unwrap_or_default().to_string(),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut count = 0u64;
    while let Some(m) = messages.next().await {
        let m = m?;
        count += 1;
        if m.info().map_err(|e| anyhow::anyhow!("{e}"))?.stream_sequence >= last {
            break;
        }
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Rebuilds the clusters view from the first event; events per second.
async fn project_all(client: &async_nats::Client, last: u64) -> anyhow::Result<f64> {
    let projector = Projector::new(client.clone(), &jsc_eventstore::EventStoreConfig::default());
    projector.reset(&ClustersProjection).await?;
    projector.prepare(&ClustersProjection).await?;
    let js = jetstream::new(client.clone());
    let kv = js.get_key_value(ClustersProjection.bucket()).await?;
    let mut watch = kv.watch("_checkpoint").await?;
    let token = CancellationToken::new();
    let started = Instant::now();
    let runner = {
        let (p, t) = (projector.clone(), token.clone());
        tokio::spawn(async move { p.run(Arc::new(ClustersProjection), t).await })
    };
    while let Some(e) = watch.next().await {
        let e = e?;
        if String::from_utf8_lossy(&e.value).parse::<u64>().unwrap_or(0) >= last {
            break;
        }
    }
    let rate = last as f64 / started.elapsed().as_secs_f64();
    token.cancel();
    runner.await??;
    Ok(rate)
}
