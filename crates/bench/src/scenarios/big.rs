//! Scenario 16: a big cluster. 10,000 streams × 5 consumers made outside the console, with
//! another client, on one managed nats-server that the console watches:
//! - how long after the last create the console has every stream and consumer in its views
//!   (the view buckets) and its history (the event stream), beside how long the client
//!   took to make them;
//! - `streams(first: 50)` with state and consumers at 1,000 and at 10,000 streams, beside
//!   the raw paged `STREAM.LIST` of the same cluster;
//! - resident memory of `jsconsole serve` per managed resource beyond its figure with the
//!   cluster empty;
//! - the reconciler's CPU per walk of the whole cluster, beside the bench process's CPU for
//!   the same list requests;
//! - how long after the last of 10,000 deletes (again outside the console) every stream and
//!   consumer is recorded gone, beside how long the client took to delete them.

use super::*;

const CONSUMERS: usize = 5;
const FIRST: usize = 1_000;
const ALL: usize = 10_000;
/// The client that makes the streams, as the console's history names it.
const CLIENT: &str = "bench-outside";

const PAGE: &str = "query($c: ID!) { streams(clusterId: $c, first: 50) { totalCount nodes { name \
    state { messages bytes sampledAt } consumers(first: 10) { nodes { name state { pending ackPending } } } } } }";

/// Values in a view bucket (its checkpoint aside).
async fn view_entries(js: &jetstream::Context, bucket: &str) -> anyhow::Result<u64> {
    let kv = js.get_key_value(bucket).await?;
    Ok(kv.status().await?.values().saturating_sub(1))
}

/// Polls `behind` every 20 ms until it says the console has caught up (`None`); how long
/// that took from `since`. Once a second it prints how far behind the console still is
/// (how it catches up after a burst).
async fn caught_up(
    since: Instant,
    mut behind: impl AsyncFnMut() -> anyhow::Result<Option<String>>,
) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut said = Instant::now();
    loop {
        let Some(behind) = behind().await? else {
            return Ok(since.elapsed().as_secs_f64());
        };
        if said.elapsed() >= Duration::from_secs(1) {
            said = Instant::now();
            eprintln!("     {:.1} s: {behind}", since.elapsed().as_secs_f64());
        }
        anyhow::ensure!(Instant::now() < deadline, "the console did not catch up: {behind}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the views hold `streams` streams and their consumers and the history holds
/// an event for each (at least `events` in all); how long that took from `since`.
async fn all_in(home: &async_nats::Client, streams: usize, events: u64, since: Instant) -> anyhow::Result<f64> {
    let js = jetstream::new(home.clone());
    caught_up(since, async || {
        let s = view_entries(&js, "view_streams_v1").await?;
        let c = view_entries(&js, "view_consumers_v1").await?;
        let e = events_in(home).await?;
        let done = s >= streams as u64 && c >= (streams * CONSUMERS) as u64 && e >= events;
        Ok((!done).then(|| {
            format!(
                "{s} of {streams} streams, {c} of {} consumers, {} events to come",
                streams * CONSUMERS,
                events.saturating_sub(e)
            )
        }))
    })
    .await
}

/// `streams(first: 50)` with state and consumers, `n` times one after the other: the
/// latencies in ms, sorted.
async fn pages(http: &reqwest::Client, base: &str, cluster: &str, total: usize, n: usize) -> anyhow::Result<Vec<f64>> {
    let d = gql(http, base, PAGE, json!({"c": cluster})).await?;
    anyhow::ensure!(
        d["streams"]["totalCount"].as_u64() == Some(total as u64),
        "odd page: {d}"
    );
    let mut lat = Vec::with_capacity(n);
    let mut when = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        parse_answer(&gql_bytes(http, base, PAGE, json!({"c": cluster})).await?)?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        when.push(t.duration_since(start).as_secs_f64() * 1e3);
    }
    // Where in the run the slowest queries fell: a tail in one stretch points at background
    // work running then; a tail spread over the run, at the queries themselves.
    let mut worst: Vec<(f64, f64)> = lat.iter().copied().zip(when).collect();
    worst.sort_by(|a, b| b.0.total_cmp(&a.0));
    let worst: Vec<String> = worst
        .iter()
        .take(5)
        .map(|(l, w)| format!("{l:.1} ms at {w:.0} ms"))
        .collect();
    eprintln!(
        "   {total} streams: {n} pages in {:.0} ms; slowest {}",
        start.elapsed().as_secs_f64() * 1e3,
        worst.join(", ")
    );
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok(lat)
}

/// The raw list of the cluster's streams, `n` times: wall times in ms.
async fn raw_list_times(client: &async_nats::Client, total: usize, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        anyhow::ensure!(raw_stream_list(client, |_| {}).await? == total, "raw list");
        out.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(out)
}

pub(super) async fn big_cluster(args: &Args, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let home = Server::start()?;
    let managed = Server::start()?;
    let client = managed.client().await?;
    let outside = async_nats::ConnectOptions::new()
        .name(CLIENT)
        .connect(managed.process.url())
        .await?;
    let js = jetstream::new(outside);
    let home_client = home.client().await?;
    // Only the advisories record what is made (the reconcile is measured on its own below).
    let console = Child::start_with(&args.jsconsole, &home.process.url(), &["--reconcile-interval", "3600"]).await?;
    let http = authed_client(&console.token)?;
    let cluster = register(&http, &console.base, "big", &managed.process.url()).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, empty_rss) = console.memory();
    let base_events = events_in(&home_client).await?;

    let mut rows = Vec::new();
    let samples = sizes.latency_samples.min(500);
    let mut made_s = Vec::new();
    let mut landed_s = Vec::new();
    let mut page_rows = Vec::new();
    for (from, to) in [(0, FIRST), (FIRST, ALL)] {
        let t = Instant::now();
        make_streams(&js, from..to, CONSUMERS, jetstream::stream::StorageType::Memory).await?;
        let last = Instant::now();
        made_s.push(t.elapsed().as_secs_f64());
        let events = base_events + (to * (1 + CONSUMERS)) as u64;
        let landed = all_in(&home_client, to, events, last).await?;
        landed_s.push(landed);
        eprintln!(
            "   {to} streams × {CONSUMERS} consumers: made in {:.1} s, all in the console {:.2} s after the last",
            made_s.last().unwrap(),
            landed
        );
        let raw = raw_list_times(&client, to, 5).await?;
        let lat = pages(&http, &console.base, &cluster, to, samples).await?;
        page_rows.push((to, lat, raw));
    }
    let (_, full_rss) = console.memory();
    let resources = ALL * (1 + CONSUMERS);
    let per_resource = (full_rss - empty_rss) * 1024.0 * 1024.0 / resources as f64;

    let scenario = |n: usize| format!("16. big cluster, {n} streams × {CONSUMERS} consumers");
    for (n, lat, raw) in &page_rows {
        let raw = Measured::of(raw.clone());
        let note = format!(
            "`streams(first: 50)` with each stream's state and first 10 consumers with theirs, {} queries one after \
             the other; raw is one paged STREAM.LIST of the whole cluster (the least a page with state cost before)",
            lat.len()
        );
        let (p50, p99) = (percentile(lat, 50.0), percentile(lat, 99.0));
        let ten = *n == ALL;
        rows.push(Row {
            scenario: scenario(*n),
            metric: "`streams(first: 50)` with state and consumers, p50".into(),
            unit: "ms".into(),
            console: Measured::of(vec![p50]),
            raw: Some(raw.clone()),
            raw_label: "paged STREAM.LIST of every stream".into(),
            better: Better::Lower,
            target: if ten {
                Target::AbsoluteAtMost { value: 5.0 }
            } else {
                Target::None
            },
            note: note.clone(),
        });
        rows.push(Row {
            scenario: scenario(*n),
            metric: "`streams(first: 50)` with state and consumers, p99".into(),
            unit: "ms".into(),
            console: Measured::of(vec![p99]),
            raw: Some(raw),
            raw_label: "paged STREAM.LIST of every stream".into(),
            better: Better::Lower,
            target: if ten {
                Target::AbsoluteAtMost { value: 20.0 }
            } else {
                Target::None
            },
            note,
        });
    }
    rows.push(Row {
        scenario: scenario(ALL),
        metric: format!(
            "every stream and consumer in the views and the history, after the last of {}",
            ALL - FIRST
        ),
        unit: "s".into(),
        console: Measured::of(vec![landed_s[1]]),
        raw: Some(Measured::of(vec![made_s[1]])),
        raw_label: format!("the client making them ({CLIENT}, 16 streams in flight)"),
        better: Better::Lower,
        target: Target::AbsoluteAtMost { value: 5.0 },
        note: format!(
            "the console's view buckets and event stream polled every 20 ms from the last create's answer; the first \
             {FIRST} streams (and their consumers) landed {:.2} s after theirs",
            landed_s[0]
        ),
    });
    rows.push(Row {
        scenario: scenario(ALL),
        metric: "resident memory of `jsconsole serve` per managed resource".into(),
        unit: "bytes".into(),
        console: Measured::of(vec![per_resource]),
        raw: None,
        raw_label: String::new(),
        better: Better::Lower,
        target: Target::AbsoluteAtMost { value: 2048.0 },
        note: format!(
            "({full_rss:.0} MiB − {empty_rss:.0} MiB with the cluster registered and empty) ÷ {resources} streams and \
             consumers, after the page queries"
        ),
    });

    // The reconciler on its own: nothing changes; it walks the cluster every INTERVAL s.
    const INTERVAL: u64 = 10;
    let raw_cpu = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let cpu = own_cpu();
            let (s, c) = raw_lists(&client).await?;
            anyhow::ensure!(s == ALL && c == ALL * CONSUMERS, "listed {s} streams and {c} consumers");
            v.push((own_cpu() - cpu) * 1e3);
        }
        v
    };
    let console = console
        .restart_with(
            &args.jsconsole,
            &home.process.url(),
            &["--reconcile-interval", "3600", "--metrics-interval", "3600"],
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let window = Duration::from_secs(2 * INTERVAL);
    let idle_from = console.cpu_seconds();
    tokio::time::sleep(window).await;
    let idle_rate = (console.cpu_seconds() - idle_from) / window.as_secs_f64();
    let interval = INTERVAL.to_string();
    let console = console
        .restart_with(
            &args.jsconsole,
            &home.process.url(),
            &["--reconcile-interval", &interval, "--metrics-interval", "3600"],
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(INTERVAL + 2)).await;
    let mut per_walk = Vec::new();
    for _ in 0..2 {
        let cpu = console.cpu_seconds();
        tokio::time::sleep(window).await;
        let walks = window.as_secs_f64() / INTERVAL as f64;
        per_walk.push(((console.cpu_seconds() - cpu) - idle_rate * window.as_secs_f64()).max(0.0) / walks * 1e3);
    }
    rows.push(Row {
        scenario: scenario(ALL),
        metric: "CPU of `jsconsole serve` per reconcile of the whole cluster".into(),
        unit: "ms".into(),
        console: Measured::of(per_walk),
        raw: Some(Measured::of(raw_cpu)),
        raw_label: "CPU of the same list requests, parsed, in the bench process".into(),
        better: Better::Lower,
        target: Target::None,
        note: format!(
            "nothing changed in the cluster; the console reconciles every {INTERVAL} s (a walk spread over half of it) \
             and samples once an hour; its CPU over {} s windows less its idle CPU with the same cluster, divided by the \
             walks in the window",
            window.as_secs()
        ),
    });

    // Deleted outside in a burst, the reconcile off again: each stream and consumer recorded
    // gone, with its client. The restarted console first walks the cluster once (what it
    // missed while away), which is left to end before the burst.
    let console = console
        .restart_with(&args.jsconsole, &home.process.url(), &["--reconcile-interval", "3600"])
        .await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let before = events_in(&home_client).await?;
    let t = Instant::now();
    futures::stream::iter(0..ALL)
        .map(|i| {
            let js = js.clone();
            async move { js.delete_stream(format!("S{i:05}")).await.map(|_| ()) }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let last = Instant::now();
    let deleted_s = t.elapsed().as_secs_f64();
    let gone = all_gone(&home_client, before + (ALL * (1 + CONSUMERS)) as u64, last).await?;
    eprintln!("   {ALL} streams deleted in {deleted_s:.1} s, all recorded gone {gone:.2} s after the last");
    rows.push(Row {
        scenario: scenario(ALL),
        metric: format!(
            "every stream and consumer deleted gone from the views and in the history, after the last of {ALL}"
        ),
        unit: "s".into(),
        console: Measured::of(vec![gone]),
        raw: Some(Measured::of(vec![deleted_s])),
        raw_label: format!("the client deleting the streams ({CLIENT}, 16 in flight)"),
        better: Better::Lower,
        target: Target::AbsoluteAtMost { value: 5.0 },
        note: "polled every 20 ms from the last delete's answer: an event for each stream and consumer in the \
               history, and the stream and consumer views' checkpoints past the last of them"
            .into(),
    });
    drop(console);
    Ok(rows)
}

/// Events in the console's history.
async fn events_in(home: &async_nats::Client) -> anyhow::Result<u64> {
    let js = jetstream::new(home.clone());
    Ok(js.get_stream("CONSOLE_EVENTS").await?.info().await?.state.messages)
}

/// Where a view's projection stands: the last event it has applied (or passed over).
async fn checkpoint(js: &jetstream::Context, bucket: &str) -> anyhow::Result<u64> {
    let kv = js.get_key_value(bucket).await?;
    let at = kv.get("_checkpoint").await?.unwrap_or_default();
    Ok(std::str::from_utf8(&at)?.parse().unwrap_or(0))
}

/// Waits until the history holds `events` events and the stream and consumer views have
/// applied every one; how long that took from `since`.
async fn all_gone(home: &async_nats::Client, events: u64, since: Instant) -> anyhow::Result<f64> {
    let js = jetstream::new(home.clone());
    caught_up(since, async || {
        let info = js.get_stream("CONSOLE_EVENTS").await?.info().await?.state.clone();
        let (s, c) = (
            checkpoint(&js, "view_streams_v1").await?,
            checkpoint(&js, "view_consumers_v1").await?,
        );
        let done = info.messages >= events && s.min(c) >= info.last_sequence;
        Ok((!done).then(|| {
            format!(
                "{} events to come; views at {s} and {c} of {}",
                events.saturating_sub(info.messages),
                info.last_sequence
            )
        }))
    })
    .await
}
