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
    Ok(vec![
        row("latency p50, 100 messages at a random position", con50, raw50),
        row("latency p99, 100 messages at a random position", con99, raw99),
        memory_row("after scenario 8", &console, server.process.pid()),
    ])
}
