//! Scenarios 11 and 12: monitoring.
//!
//! 11. The collector's cost for one cluster of 1,000 streams × 5 consumers: CPU of
//!     `jsconsole serve` per sample (beyond its idle CPU), beside the CPU the bench process
//!     spends on the same list requests (paged `STREAM.LIST`, then `CONSUMER.LIST` of every
//!     stream, 8 in flight, each answer parsed), and as a share of one core at 10 s. The
//!     full reconcile of the same cluster (it lists everything too) is kept out of those
//!     windows and measured on its own, beside the same raw cost.
//! 12. `metrics` over 24 h for 100 series at a 1-minute step (read from the 1-minute
//!     roll-ups, and the raw samples of the hour not rolled yet), beside an ordered consumer
//!     reading the same 24 h of raw samples: what the query would cost without roll-ups.

use super::*;

const STREAMS: usize = 1_000;
const CONSUMERS: usize = 5;
/// The console samples every this many seconds during scenario 11 (more samples per
/// window); the share of a core is given for 10 s.
const INTERVAL: u64 = 2;
/// Scenario 12's 100 series: the lag of 4 streams × 25 consumers. (Few streams keep its
/// set-up short: the 24 h of samples are all published at once, so each hour's roll-up
/// reads from the first of them on.)
const Q_STREAMS: usize = 4;
const Q_CONSUMERS: usize = 25;

pub(super) fn own_cpu() -> f64 {
    cpu_seconds_of("/proc/self/stat")
}

/// One sample's worth of list requests, from the bench process: every answer parsed.
pub(super) async fn raw_lists(client: &async_nats::Client) -> anyhow::Result<(usize, usize)> {
    let mut names = Vec::new();
    let streams = raw_stream_list(client, |s| {
        if s["state"]["consumer_count"].as_u64().unwrap_or(0) > 0 {
            names.push(s["config"]["name"].as_str().unwrap_or_default().to_string());
        }
    })
    .await?;
    let consumers: Vec<usize> = futures::stream::iter(names)
        .map(|name| {
            let client = client.clone();
            async move {
                let mut got = 0;
                loop {
                    let r = client
                        .request(
                            format!("$JS.API.CONSUMER.LIST.{name}"),
                            json!({"offset": got}).to_string().into(),
                        )
                        .await?;
                    let v: Value = serde_json::from_slice(&r.payload)?;
                    let n = v["consumers"].as_array().map_or(0, Vec::len);
                    got += n;
                    if n == 0 || got as u64 >= v["total"].as_u64().unwrap_or(0) {
                        return anyhow::Ok(got);
                    }
                }
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    Ok((streams, consumers.iter().sum()))
}

/// Waits until the console's event stream holds at least `at_least` events and has stopped
/// growing (two looks a second apart agree).
async fn events_settled(home: &async_nats::Client, at_least: u64) -> anyhow::Result<()> {
    let js = jetstream::new(home.clone());
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last = 0;
    loop {
        let n = js.get_stream("CONSOLE_EVENTS").await?.info().await?.state.messages;
        if n >= at_least && n == last {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the console recorded {n} events, not the {at_least} expected"
        );
        last = n;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Samples of `cluster` on the console's metrics stream.
async fn samples_taken(home: &async_nats::Client) -> anyhow::Result<u64> {
    let js = jetstream::new(home.clone());
    let stream = js.get_stream("CONSOLE_METRICS").await?;
    let mut subjects = stream.info_with_subjects("jsc.metrics.*.cluster").await?;
    let mut n = 0;
    while let Some(s) = subjects.next().await {
        n += s?.1 as u64;
    }
    Ok(n)
}

pub(super) async fn register(http: &reqwest::Client, base: &str, name: &str, url: &str) -> anyhow::Result<String> {
    let d = gql(
        http,
        base,
        "mutation($n: String!, $u: String!) { registerCluster(input: {name: $n, urls: [$u]}) { cluster { id } } }",
        json!({"n": name, "u": url}),
    )
    .await?;
    Ok(d["registerCluster"]["cluster"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

pub(super) async fn monitoring(args: &Args, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let home = Server::start()?;
    let managed = Server::start()?;
    let client = managed.client().await?;
    let js = jetstream::new(client.clone());
    make_streams(&js, 0..STREAMS, CONSUMERS, jetstream::stream::StorageType::File).await?;
    eprintln!("   {STREAMS} streams × {CONSUMERS} consumers made");

    // Raw: the bench process's CPU for one sample's list requests.
    raw_lists(&client).await?;
    let mut raw_cpu = Vec::new();
    let mut raw_wall = Vec::new();
    for _ in 0..sizes.runs {
        let (cpu, t) = (own_cpu(), Instant::now());
        let reps = 5;
        for _ in 0..reps {
            let (s, c) = raw_lists(&client).await?;
            anyhow::ensure!(
                s == STREAMS && c == STREAMS * CONSUMERS,
                "listed {s} streams and {c} consumers"
            );
        }
        raw_cpu.push((own_cpu() - cpu) / reps as f64 * 1e3);
        raw_wall.push(t.elapsed().as_secs_f64() / reps as f64 * 1e3);
    }

    // The console: its idle CPU first, then with the cluster registered.
    let interval = INTERVAL.to_string();
    // The full reconcile lists the cluster too; it is kept out of the collector's windows
    // (one an hour) and measured on its own below.
    let console = Child::start_with(
        &args.jsconsole,
        &home.process.url(),
        &["--metrics-interval", &interval, "--reconcile-interval", "3600"],
    )
    .await?;
    let http = authed_client(&console.token)?;
    let home_client = home.client().await?;
    let window = if args.quick {
        Duration::from_secs(12)
    } else {
        Duration::from_secs(30)
    };
    let idle_from = console.cpu_seconds();
    tokio::time::sleep(window).await;
    let idle_rate = (console.cpu_seconds() - idle_from) / window.as_secs_f64();
    let cluster = register(&http, &console.base, "big", &managed.process.url()).await?;
    let q = "query($id: ID!) { node(id: $id) { ... on Cluster { lastSample { streams collectSeconds } } } }";
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut collect_s = Vec::new();
    loop {
        let d = gql(&http, &console.base, q, json!({"id": cluster})).await?;
        if d["node"]["lastSample"]["streams"].as_u64() == Some(STREAMS as u64) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the console never sampled all {STREAMS} streams: {d}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The first reconcile records the 6,000 streams and consumers made outside the console;
    // that is not the collector's cost, so the windows start once it is over.
    events_settled(&home_client, (STREAMS * (1 + CONSUMERS)) as u64).await?;
    let mut per_sample = Vec::new();
    for _ in 0..sizes.runs.min(3) {
        let (cpu, n) = (console.cpu_seconds(), samples_taken(&home_client).await?);
        tokio::time::sleep(window).await;
        let (cpu2, n2) = (console.cpu_seconds(), samples_taken(&home_client).await?);
        let samples = (n2 - n).max(1) as f64;
        per_sample.push(((cpu2 - cpu) - idle_rate * window.as_secs_f64()).max(0.0) / samples * 1e3);
        let d = gql(&http, &console.base, q, json!({"id": cluster})).await?;
        collect_s.push(d["node"]["lastSample"]["collectSeconds"].as_f64().unwrap_or(f64::NAN) * 1e3);
    }
    // The reconciler on its own: the collector samples once an hour, the full reconcile runs
    // every INTERVAL s.
    let console = console
        .restart_with(
            &args.jsconsole,
            &home.process.url(),
            &["--metrics-interval", "3600", "--reconcile-interval", &interval],
        )
        .await?;
    // Past the first sample and reconcile of the restart.
    tokio::time::sleep(Duration::from_secs(2 * INTERVAL + 1)).await;
    let mut per_reconcile = Vec::new();
    for _ in 0..sizes.runs.min(3) {
        let cpu = console.cpu_seconds();
        tokio::time::sleep(window).await;
        let reconciles = window.as_secs_f64() / INTERVAL as f64;
        per_reconcile
            .push(((console.cpu_seconds() - cpu) - idle_rate * window.as_secs_f64()).max(0.0) / reconciles * 1e3);
    }
    let share: Vec<f64> = per_sample.iter().map(|ms| ms / 1e3 / 10.0 * 100.0).collect();
    let note = format!(
        "{STREAMS} streams × {CONSUMERS} consumers on one managed nats-server; the console samples every {INTERVAL} s, \
         its CPU over {} s windows less its idle CPU (measured before the cluster was registered), divided by the samples \
         it published; raw is the bench process's CPU for the same paged STREAM.LIST and CONSUMER.LIST requests (8 in \
         flight), each answer parsed as JSON, {} ms of wall time a round",
        window.as_secs(),
        Measured::of(raw_wall.clone()).median.round()
    );
    let mut rows = vec![
        Row {
            scenario: "11. the collector, 1000 streams × 5 consumers".into(),
            metric: "CPU of `jsconsole serve` per sample".into(),
            unit: "ms".into(),
            console: Measured::of(per_sample.clone()),
            raw: Some(Measured::of(raw_cpu.clone())),
            raw_label: "CPU of the same list requests, parsed, in the bench process".into(),
            better: Better::Lower,
            target: Target::RatioAtMost { value: 1.5 },
            note: note.clone(),
        },
        Row {
            scenario: "11. the collector, 1000 streams × 5 consumers".into(),
            metric: "share of one core, sampling every 10 s".into(),
            unit: "%".into(),
            console: Measured::of(share),
            raw: None,
            raw_label: String::new(),
            better: Better::Lower,
            target: Target::AbsoluteAtMost { value: 5.0 },
            note: "CPU per sample ÷ 10 s".into(),
        },
        Row {
            scenario: "11. the collector, 1000 streams × 5 consumers".into(),
            metric: "wall time of one sample (`collectSeconds`)".into(),
            unit: "ms".into(),
            console: Measured::of(collect_s),
            raw: Some(Measured::of(raw_wall)),
            raw_label: "wall time of the same list requests".into(),
            better: Better::Lower,
            target: Target::None,
            note: String::new(),
        },
        Row {
            scenario: "11. the reconciler, 1000 streams × 5 consumers".into(),
            metric: "CPU of `jsconsole serve` per full reconcile".into(),
            unit: "ms".into(),
            console: Measured::of(per_reconcile),
            raw: Some(Measured::of(raw_cpu)),
            raw_label: "CPU of the same list requests, parsed, in the bench process".into(),
            better: Better::Lower,
            target: Target::None,
            note: format!(
                "the same cluster, nothing changed in it; the console reconciles every {INTERVAL} s and samples once an hour; \
                 its CPU over {} s windows less its idle CPU, divided by the reconciles in the window",
                window.as_secs()
            ),
        },
    ];
    rows.extend(query_24h(args, sizes, &home, console).await?);
    Ok(rows)
}

/// Scenario 12: 24 h of samples of 4 streams × 25 consumers, published into the metrics
/// stream as the collector would have (every 10 s), rolled up by a console started after
/// them; then `metrics` of the 100 consumers' lag over 24 h at a 1-minute step.
async fn query_24h(args: &Args, sizes: &Sizes, home: &Server, console: Child) -> anyhow::Result<Vec<Row>> {
    // Its cluster's samples are the bench's own: registered on a console that does not
    // sample, as a live sample published amid the backlog would be out of time order (the
    // roll-up reads a cluster's samples in the order they were published, and takes them
    // to be published within a margin of their time; no live collector breaks that).
    let console = console
        .restart_with(&args.jsconsole, &home.process.url(), &["--no-metrics-collector"])
        .await?;
    let cluster = &register(
        &authed_client(&console.token)?,
        &console.base,
        "history",
        &home.process.url(),
    )
    .await?;
    let home_client = home.client().await?;
    let js = jetstream::new(home_client.clone());
    let now = chrono::Utc::now().timestamp_millis();
    let from = now - 24 * 3_600_000;
    let samples = 24 * 360;
    let mut acks = Vec::new();
    for i in 0..samples {
        let at = from + i as i64 * 10_000;
        let mut snap = jsc_metrics::Snapshot {
            cluster: jsc_metrics::ClusterSample {
                cluster_id: cluster.to_string(),
                at_ms: at,
                interval_ms: 10_000,
                up: true,
                jetstream: true,
                ..Default::default()
            },
            ..Default::default()
        };
        for s in 0..Q_STREAMS {
            snap.streams.insert(
                format!("Q{s}"),
                jsc_metrics::StreamSample {
                    name: format!("Q{s}"),
                    at_ms: at,
                    messages: i as u64,
                    consumers: (0..Q_CONSUMERS)
                        .map(|c| jsc_metrics::ConsumerSample {
                            name: format!("C{c}"),
                            pending: (i as u64 * (c as u64 + 1)) % 1000,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
            );
        }
        let js = js.clone();
        acks.push(async move { jsc_metrics::store::publish(&js, &snap).await });
        if acks.len() == 64 {
            futures::future::try_join_all(acks.drain(..)).await?;
        }
    }
    futures::future::try_join_all(acks).await?;
    eprintln!("   24 h of samples of {Q_STREAMS} streams × {Q_CONSUMERS} consumers published");
    // A console started now rolls every hour that is over, as after a restart.
    let console = console
        .restart_with(&args.jsconsole, &home.process.url(), &["--no-metrics-collector"])
        .await?;
    let http = authed_client(&console.token)?;
    let series: Vec<Value> = (0..Q_STREAMS)
        .flat_map(|s| {
            (0..Q_CONSUMERS).map(move |c| {
                json!({"metric": "CONSUMER_LAG", "clusterId": cluster, "stream": format!("Q{s}"), "consumer": format!("C{c}")})
            })
        })
        .collect();
    let query = "query($s: [MetricSeriesInput!]!, $from: DateTime!) { metrics(series: $s, from: $from, step: 60) {
        resolution points { at value } } }";
    let vars = json!({"s": series, "from": chrono::DateTime::from_timestamp_millis(from).unwrap().to_rfc3339()});
    // Until the 1-minute roll-ups of the hours that are over are written (the console's
    // own count of the files it wrote).
    let rolled_to = (chrono::Utc::now().timestamp_millis() - jsc_metrics::rollup::GRACE_MS).div_euclid(3_600_000);
    let hours = (rolled_to - from.div_euclid(3_600_000)) as f64;
    let written = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("jsconsole_metrics_rollups_written_total") && l.contains("resolution=\"1m\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    // Rolling samples that were all published at once is slow (each hour's read starts at
    // the first of them before the roller read on by sequence): wait until every hour is
    // written, or until no file has been written for two minutes (the last hours may hold
    // nothing to roll).
    let deadline = Instant::now() + Duration::from_secs(2400);
    let (mut last, mut since) = (-1.0, Instant::now());
    let rolled = loop {
        let scrape = http
            .get(format!("{}/metrics", console.base))
            .send()
            .await?
            .text()
            .await?;
        let n = written(&scrape);
        if n >= hours || (n > 0.0 && n == last && since.elapsed() > Duration::from_secs(120)) {
            eprintln!("   {n} of {hours} hourly 1-minute roll-ups written");
            break n;
        }
        if n != last {
            (last, since) = (n, Instant::now());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{n} of the {hours} 1-minute roll-ups were written within 40 minutes: {}",
            scrape
                .lines()
                .filter(|l| l.contains("rollup"))
                .collect::<Vec<_>>()
                .join("; ")
        );
        tokio::time::sleep(Duration::from_millis(2000)).await;
    };
    let stream = js.get_stream("CONSOLE_METRICS").await?;
    // Raw: the same 24 h of the 20 streams' samples read with an ordered consumer.
    let mut raw = Vec::new();
    for _ in 0..sizes.runs.min(3) {
        let start = Instant::now();
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: format!("jsc.metrics.{cluster}.stream.*"),
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        let mut n = 0;
        while let Some(m) = messages.next().await {
            let m = m?;
            n += 1;
            if m.info().map_err(|e| anyhow::anyhow!("{e}"))?.pending == 0 {
                break;
            }
        }
        anyhow::ensure!(n >= samples * Q_STREAMS, "read {n} raw samples");
        raw.push(start.elapsed().as_secs_f64() * 1e3);
    }
    // The samples were all published in the last minutes, so a read of the raw tail by
    // publish time (which a live stream's samples match within the publishing margin) would
    // start at the first of them. Keep only what a live stream would give that read: the
    // samples from the publishing margin before the last hour rolled up.
    let cutoff = rolled_to * 3_600_000 - jsc_metrics::store::PUBLISH_MARGIN_MS;
    let filter = format!("jsc.metrics.{cluster}.>");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: filter.clone(),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut keep_from = None;
    while let Some(m) = messages.next().await {
        let m = m?;
        let info = m.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        let (seq, pending) = (info.stream_sequence, info.pending);
        if jsc_metrics::Record::decode(&m.subject, &m.payload).is_ok_and(|r| r.at_ms() >= cutoff) {
            keep_from = Some(seq);
            break;
        }
        anyhow::ensure!(pending > 0, "no sample after the last roll-up");
    }
    let keep_from = keep_from.ok_or_else(|| anyhow::anyhow!("no sample after the last roll-up"))?;
    stream.purge().filter(filter).sequence(keep_from).await?;
    // The same query selecting no points: what reading and downsampling cost without
    // the answer's 144,000 points (the rest is GraphQL and JSON).
    let bare = "query($s: [MetricSeriesInput!]!, $from: DateTime!) { metrics(series: $s, from: $from, step: 60) {
        resolution } }";
    let mut read50 = Vec::new();
    for _ in 0..sizes.runs {
        let mut t = Vec::new();
        for _ in 0..if args.quick { 10 } else { 30 } {
            let start = Instant::now();
            gql(&http, &console.base, bare, vars.clone()).await?;
            t.push(start.elapsed().as_secs_f64() * 1e3);
        }
        t.sort_by(|a, b| a.total_cmp(b));
        read50.push(percentile(&t, 50.0));
    }
    let columns = "query($s: [MetricSeriesInput!]!, $from: DateTime!) { metrics(series: $s, from: $from, step: 60) {
        resolution columns { at value } } }";
    let timed = |query: &'static str, points: fn(&Value) -> usize| {
        let (http, vars, base) = (&http, &vars, &console.base);
        async move {
            let (mut p50, mut p99, mut parse) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..sizes.runs {
                let mut t = Vec::new();
                for _ in 0..if args.quick { 30 } else { 100 } {
                    // To the answer's last byte; the bench's own parse of it is timed apart.
                    let start = Instant::now();
                    let bytes = gql_bytes(http, base, query, vars.clone()).await?;
                    t.push(start.elapsed().as_secs_f64() * 1e3);
                    let parsed = Instant::now();
                    let d = parse_answer(&bytes)?;
                    parse.push(parsed.elapsed().as_secs_f64() * 1e3);
                    anyhow::ensure!(d["metrics"].as_array().map_or(0, Vec::len) == 100);
                    anyhow::ensure!(d["metrics"][0]["resolution"] == "MINUTE");
                    anyhow::ensure!(
                        points(&d["metrics"][0]) >= 1_380,
                        "a series lost its points: {}",
                        d["metrics"][0]
                    );
                }
                t.sort_by(|a, b| a.total_cmp(b));
                p50.push(percentile(&t, 50.0));
                p99.push(percentile(&t, 99.0));
            }
            parse.sort_by(|a, b| a.total_cmp(b));
            anyhow::Ok((p50, p99, percentile(&parse, 50.0)))
        }
    };
    let (con50, con99, con_parse) = timed(query, |s| s["points"].as_array().map_or(0, Vec::len)).await?;
    let (col50, col99, col_parse) = timed(columns, |s| s["columns"]["at"].as_array().map_or(0, Vec::len)).await?;
    let note = format!(
        "100 series (4 streams × 25 consumers' lag) over 24 h at a 60 s step (1,440 points each) over HTTP, \
         one query at a time, timed to the answer's last byte (the bench then parses the JSON: {con_parse:.1} ms \
         for `points`, {col_parse:.1} ms for `columns`, not counted); {rolled} of the {hours} hours that were over \
         had been rolled into 1-minute files when the queries began, the rest read from the raw samples (the raw baseline read before the stream was trimmed to what a live \
         stream's publish times give that read)"
    );
    let row = |metric: &str, console: Vec<f64>, target: Target| Row {
        scenario: "12. metrics over 24 h, 100 series, 1-minute step".into(),
        metric: metric.into(),
        unit: "ms".into(),
        console: Measured::of(console),
        raw: Some(Measured::of(raw.clone())),
        raw_label: "ordered consumer reading the same 24 h of raw samples".into(),
        better: Better::Lower,
        target,
        note: note.clone(),
    };
    Ok(vec![
        row("latency p50, points { at value }", con50, Target::None),
        row(
            "latency p99, points { at value }",
            con99,
            Target::AbsoluteAtMost { value: 50.0 },
        ),
        row("latency p50, columns { at value }", col50, Target::None),
        row(
            "latency p99, columns { at value }",
            col99,
            Target::AbsoluteAtMost { value: 50.0 },
        ),
        row(
            "latency p50, no points selected (read and downsample only)",
            read50,
            Target::None,
        ),
    ])
}
