//! Scenario 8: a page of 100 messages at a random position of a large stream, through
//! GraphQL (`messages`), beside a raw batch direct get of 100 from the same machine.

use super::*;

/// Messages on the scenario's stream.
fn stream_size(quick: bool) -> u64 {
    if quick { 100_000 } else { 1_000_000 }
}

const PAGE: usize = 100;

const PAGE_QUERY: &str =
    "query($c: ID!, $s: Int!) { messages(clusterId: $c, stream: \"MSGS\", from: {sequence: $s}, first: 100) {
    nodes { sequence subject time size payload { text } } pageInfo { endCursor hasNextPage } } }";

/// One raw batch direct get of `n` messages from `seq`: what the console's page is made of.
async fn raw_batch(client: &async_nats::Client, seq: u64, n: usize) -> anyhow::Result<usize> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await?;
    let body = json!({"seq": seq, "batch": n, "next_by_subj": ">"}).to_string();
    client
        .publish_with_reply("$JS.API.DIRECT.GET.MSGS", inbox, body.into())
        .await?;
    let mut got = 0;
    while let Some(m) = replies.next().await {
        if m.status.is_some() {
            break;
        }
        got += 1;
    }
    Ok(got)
}

/// A small deterministic sequence of positions (xorshift), the same for both sides.
fn positions(count: usize, last: u64, seed: u64) -> Vec<u64> {
    let mut x = seed.max(1);
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            1 + x % (last - PAGE as u64)
        })
        .collect()
}

pub(super) async fn message_pages(args: &Args, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let server = Server::start()?;
    let client = server.client().await?;
    let js = jetstream::new(client.clone());
    js.create_stream(jetstream::stream::Config {
        name: "MSGS".into(),
        subjects: vec!["msgs.>".into()],
        allow_direct: true,
        ..Default::default()
    })
    .await?;
    let total = stream_size(args.quick);
    let body = bytes::Bytes::from(vec![b'x'; PAYLOAD]);
    let mut sent = 0;
    while sent < total {
        let mut acks = Vec::with_capacity(1_000);
        for _ in 0..1_000.min(total - sent) {
            acks.push(js.publish(format!("msgs.{}", sent % 16), body.clone()).await?);
            sent += 1;
        }
        for a in acks {
            a.await?;
        }
    }
    eprintln!("   {total} messages of {PAYLOAD} bytes stored");
    let console = Child::start(&args.jsconsole, &server.process.url()).await?;
    let http = authed_client(&console.token)?;
    let base = console.base.clone();
    let d = gql(
        &http,
        &base,
        "mutation($u: String!) { registerCluster(input: {name: \"msgs\", urls: [$u]}) { cluster { id } } }",
        json!({"u": server.process.url()}),
    )
    .await?;
    let cluster = d["registerCluster"]["cluster"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // The console learns of the stream from the server (it was made outside it).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = gql(
            &http,
            &base,
            "query($c: ID!) { stream(clusterId: $c, name: \"MSGS\") { name } }",
            json!({"c": cluster}),
        )
        .await;
        if seen.is_ok() {
            break;
        }
        if Instant::now() > deadline {
            bail!("the console did not see stream MSGS within a minute");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let samples = sizes.latency_samples;
    // Warm both paths.
    for seq in positions(20, total, 7) {
        raw_batch(&client, seq, PAGE).await?;
        gql(&http, &base, PAGE_QUERY, json!({"c": cluster, "s": seq})).await?;
    }
    let (mut raw50, mut raw99, mut con50, mut con99) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..sizes.runs {
        let at = positions(samples, total, 1_000 + run as u64);
        let mut raw = Vec::with_capacity(samples);
        for &seq in &at {
            let t = Instant::now();
            let got = raw_batch(&client, seq, PAGE).await?;
            raw.push(t.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(got == PAGE, "a raw batch of {got}, not {PAGE}");
        }
        let mut con = Vec::with_capacity(samples);
        for &seq in &at {
            let t = Instant::now();
            let page = gql(&http, &base, PAGE_QUERY, json!({"c": cluster, "s": seq})).await?;
            con.push(t.elapsed().as_secs_f64() * 1e3);
            let n = page["messages"]["nodes"].as_array().map_or(0, Vec::len);
            anyhow::ensure!(n == PAGE, "a console page of {n}, not {PAGE}");
        }
        raw.sort_by(|a, b| a.total_cmp(b));
        con.sort_by(|a, b| a.total_cmp(b));
        raw50.push(percentile(&raw, 50.0));
        raw99.push(percentile(&raw, 99.0));
        con50.push(percentile(&con, 50.0));
        con99.push(percentile(&con, 99.0));
    }
    let note = format!(
        "a stream of {total} messages of {PAYLOAD} bytes, `allow_direct`; pages at {samples} random positions, one at a time; \
         the console's page is `messages(from: {{sequence}}, first: 100)` over HTTP with sequence, subject, time, size and \
         the payload as text, after a fresh STREAM.INFO; raw is the batch direct get of 100 alone"
    );
    let row = |metric: &str, console: Vec<f64>, raw: Vec<f64>| Row {
        scenario: "8. a page of messages".into(),
        metric: metric.into(),
        unit: "ms".into(),
        console: Measured::of(console),
        raw: Some(Measured::of(raw)),
        raw_label: "batch direct get of 100, same machine".into(),
        better: Better::Lower,
        target: Target::RatioAtMost { value: 1.5 },
        note: note.clone(),
    };
    let mut rows = vec![
        row("latency p50, 100 messages at a random position", con50, raw50),
        row("latency p99, 100 messages at a random position", con99, raw99),
        memory_row("after scenario 8", &console, server.process.pid()),
    ];
    rows.extend(scans(&js, &console, &http, &cluster, total, sizes.runs.min(3)).await?);
    Ok(rows)
}

/// Messages a second of a raw ordered-consumer read of the whole stream: the ceiling of
/// any scan (memory, no acks).
async fn raw_read(js: &jetstream::Context, total: u64) -> anyhow::Result<f64> {
    let stream = js.get_stream("MSGS").await?;
    let t = Instant::now();
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await?;
    let mut messages = consumer.messages().await?;
    let mut got = 0u64;
    while got < total {
        match messages.next().await {
            Some(m) => {
                m?;
                got += 1;
            }
            None => bail!("the ordered consumer ended after {got} of {total}"),
        }
    }
    Ok(total as f64 / t.elapsed().as_secs_f64())
}

/// Runs `f` while sampling the console's RSS every 50 ms; returns its output and the peak
/// (MiB).
async fn with_peak_rss<F: std::future::Future>(console: &Child, f: F) -> (F::Output, f64) {
    let mut f = std::pin::pin!(f);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut peak = console.memory().1;
    loop {
        tokio::select! {
            out = &mut f => return (out, peak.max(console.memory().1)),
            _ = tick.tick() => peak = peak.max(console.memory().1),
        }
    }
}

const SEARCH: &str = "subscription($c: ID!) { messageSearch(clusterId: $c, stream: \"MSGS\",
  search: {payloadContains: \"needle\", maxScanned: 100000000, timeBudgetSeconds: 600}) { kind progress { scanned matched } } }";

/// A whole-stream search over WebSocket until `DONE`; returns messages scanned.
async fn search_once(base: &str, token: &str, cluster: &str) -> anyhow::Result<u64> {
    let url = format!("{}/graphql", base.replace("http://", "ws://"));
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}),
    ))
    .await?;
    while let Some(frame) = ws.next().await {
        let Message::Text(text) = frame? else { continue };
        let v: Value = serde_json::from_str(&text)?;
        match v["type"].as_str() {
            Some("connection_ack") => {
                ws.send(send(json!({"id": "1", "type": "subscribe",
                    "payload": {"query": SEARCH, "variables": {"c": cluster}}})))
                    .await?;
            }
            Some("next") => {
                let e = &v["payload"]["data"]["messageSearch"];
                if e["kind"] == "DONE" {
                    return Ok(e["progress"]["scanned"].as_u64().unwrap_or(0));
                }
                if v["payload"]["errors"].is_array() {
                    bail!("search failed: {v}");
                }
            }
            Some("error") => bail!("search refused: {v}"),
            _ => {}
        }
    }
    bail!("the search ended without DONE")
}

const EXPORT: &str = "mutation($c: ID!) { exportMessages(input: {clusterId: $c, stream: \"MSGS\", format: PARQUET}) { rows bytes stop } }";

/// Scenarios 9 and 10: a whole-stream search with a payload filter and an export of the
/// whole stream to Parquet, each in messages a second beside a raw ordered-consumer read,
/// and the console's peak RSS during each beside its RSS before.
async fn scans(
    js: &jetstream::Context,
    console: &Child,
    http: &reqwest::Client,
    cluster: &str,
    total: u64,
    runs: usize,
) -> anyhow::Result<Vec<Row>> {
    let (mut raw, mut search, mut export) = (Vec::new(), Vec::new(), Vec::new());
    let before = console.memory().1;
    let (mut search_peak, mut export_peak) = (0f64, 0f64);
    for _ in 0..runs {
        raw.push(raw_read(js, total).await?);
        let t = Instant::now();
        let (scanned, peak) = with_peak_rss(console, search_once(&console.base, &console.token, cluster)).await;
        let scanned = scanned?;
        anyhow::ensure!(scanned == total, "the search read {scanned} of {total}");
        search.push(total as f64 / t.elapsed().as_secs_f64());
        search_peak = search_peak.max(peak);
        let t = Instant::now();
        let (done, peak) = with_peak_rss(console, gql(http, &console.base, EXPORT, json!({"c": cluster}))).await;
        let rows = done?["exportMessages"]["rows"].as_u64().unwrap_or(0);
        anyhow::ensure!(rows == total, "the export wrote {rows} of {total}");
        export.push(total as f64 / t.elapsed().as_secs_f64());
        export_peak = export_peak.max(peak);
    }
    let raw_label = "ordered consumer (memory, no acks) reading the whole stream, same machine";
    let rate = |scenario: &str, metric: &str, console: Vec<f64>, note: String| Row {
        scenario: scenario.into(),
        metric: metric.into(),
        unit: "msg/s".into(),
        console: Measured::of(console),
        raw: Some(Measured::of(raw.clone())),
        raw_label: raw_label.into(),
        better: Better::Higher,
        target: Target::RatioAtLeast { value: 0.5 },
        note,
    };
    let memory = |scenario: &str, peak: f64| Row {
        scenario: scenario.into(),
        metric: "peak RSS of `jsconsole serve` during the scan".into(),
        unit: "MiB".into(),
        console: Measured::of(vec![peak]),
        raw: Some(Measured::of(vec![before])),
        raw_label: "its RSS before the scans".into(),
        better: Better::Lower,
        target: Target::None,
        note: String::new(),
    };
    Ok(vec![
        rate(
            "9. search with a payload filter",
            "messages scanned per second, whole stream",
            search,
            format!(
                "messageSearch over WebSocket with payloadContains matching nothing, {total} messages of {PAYLOAD} bytes, batch direct get of 1,000 per read"
            ),
        ),
        memory("9. search with a payload filter", search_peak),
        rate(
            "10. export to Parquet",
            "messages written per second, whole stream",
            export,
            format!(
                "exportMessages(format: PARQUET) of {total} messages of {PAYLOAD} bytes to the local object store, until the link is returned"
            ),
        ),
        memory("10. export to Parquet", export_peak),
    ])
}
