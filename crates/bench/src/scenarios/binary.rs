//! Scenarios 2, 4, 5 and 7: `jsconsole serve` as a child process — mutations and reads over HTTP beside a bare axum handler, WebSocket fan-out, memory.

use super::*;

/// `jsconsole serve` as a child process, against the scenario's nats-server.
pub(super) struct Child {
    child: std::process::Child,
    pub(super) base: String,
    /// The owner's access token (valid for the whole run).
    pub(super) token: String,
    _data: Option<tempfile::TempDir>,
}

pub(super) const BENCH_EMAIL: &str = "bench@example.com";
pub(super) const BENCH_PASSWORD: &str = "benchmark-owner-password";

/// An HTTP client that sends `token` with every request.
pub(super) fn authed_client(token: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .default_headers(headers)
        .build()?)
}

impl Child {
    pub(super) async fn start(bin: &std::path::Path, nats_url: &str) -> anyhow::Result<Self> {
        Self::start_with(bin, nats_url, &[]).await
    }

    /// Like [`Child::start`], with more `serve` arguments.
    pub(super) async fn start_with(bin: &std::path::Path, nats_url: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_in(bin, nats_url, extra, tempfile::tempdir()?).await
    }

    /// Stops the console as an operator would (SIGTERM: it gives its roles up) and starts
    /// it again on the same data directory, with `extra`. Killed, it would hold its leases
    /// for their whole time to live, and the new one could not apply even its own sign-in.
    pub(super) async fn restart_with(
        mut self,
        bin: &std::path::Path,
        nats_url: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        jsc_fleet::embedded::stop_gracefully(&mut self.child, Duration::from_secs(15));
        let data = self._data.take().context("a console without its data directory")?;
        Self::start_in(bin, nats_url, extra, data).await
    }

    async fn start_in(
        bin: &std::path::Path,
        nats_url: &str,
        extra: &[&str],
        data: tempfile::TempDir,
    ) -> anyhow::Result<Self> {
        if !bin.is_file() {
            bail!(
                "{} not found: `make bench` builds it (cargo build --release)",
                bin.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = std::process::Command::new(bin)
            .args([
                "serve",
                "--bench-routes",
                // One caller drives thousands of operations a second: charged (the cost is
                // measured) but never refused.
                "--query-budget",
                "1000000000",
                "--query-refill",
                "1000000000",
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
                // One caller from one address holds thousands of subscribers.
                "--max-connections",
                "100000",
                "--max-connections-per-address",
                "100000",
                "--max-connections-per-user",
                "100000",
            ])
            .args(extra)
            .arg("--data-dir")
            .arg(data.path())
            // Its warnings (it logs to stdout) among the bench's progress lines.
            .env("RUST_LOG", "warn")
            .stdout(std::io::stderr())
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
            "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }",
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
            _data: Some(data),
        })
    }

    /// Kills the console with SIGKILL, as `kill -9` would: it releases nothing.
    pub(super) fn kill_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak and current resident memory, MiB.
    pub(super) fn memory(&self) -> (f64, f64) {
        memory_of(self.child.id())
    }

    /// CPU seconds the process has used (user and system).
    pub(super) fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&format!("/proc/{}/stat", self.child.id()))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) of the process whose `stat` file is at `path`.
pub(super) fn cpu_seconds_of(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) are counted from its `)`.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // utime and stime are fields 14 and 15 of stat, the 12th and 13th after the name (the
    // state letter is not a number and was skipped).
    let ticks = f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0);
    ticks / 100.0
}

pub(super) fn memory_of(pid: u32) -> (f64, f64) {
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

pub(super) async fn gql(http: &reqwest::Client, base: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
    parse_answer(&gql_bytes(http, base, query, variables).await?)
}

/// The answer's bytes as they arrive (its last byte received): what the console's latency
/// is measured to, before the client parses it.
pub(super) async fn gql_bytes(
    http: &reqwest::Client,
    base: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<bytes::Bytes> {
    Ok(http
        .post(format!("{base}/graphql"))
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await?
        .bytes()
        .await?)
}

/// An answer's `data`, or its first error.
pub(super) fn parse_answer(bytes: &[u8]) -> anyhow::Result<Value> {
    let body: Value = serde_json::from_slice(bytes)?;
    if let Some(e) = body.get("errors") {
        bail!("GraphQL error: {e}");
    }
    Ok(body["data"].clone())
}

/// The read scenario's query: every cluster (the 64 registered ones) in one page, as the
/// bare `/_bench/clusters` handler returns them.
const READ_QUERY: &str = "{ clusters(first: 64) { nodes { id name } } }";

pub(super) const UPDATE: &str =
    "mutation($id: ID!, $d: String!) { updateCluster(input: {id: $id, description: $d}) { cluster { version } } }";

pub(super) async fn graphql_concurrent(
    http: &reqwest::Client,
    base: &str,
    ids: &[String],
    n: usize,
) -> anyhow::Result<f64> {
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
pub(super) async fn load<F, Fut>(clients: usize, duration: Duration, request: F) -> anyhow::Result<(f64, Vec<f64>)>
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

pub(super) async fn through_the_binary(args: &Args, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
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
            "mutation($n: String!) { registerCluster(input: {name: $n, urls: [\"nats://127.0.0.1:4222\"]}) { cluster { id } } }",
            json!({"n": format!("bench-{i}")}),
        )
        .await?;
        ids.push(
            d["registerCluster"]["cluster"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
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
        let query = json!({"query": READ_QUERY}).to_string();
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
            metric: format!("throughput of `{READ_QUERY}` (64 clusters)"),
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

pub(super) fn memory_row(when: &str, console: &Child, nats_pid: u32) -> Row {
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
pub(super) async fn fan_out(
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
