//! Scenario 1: commands in-process, beside plain and event-shaped raw publishes.

use super::*;

pub(super) struct NoServices;

#[async_trait]
impl ClusterServices for NoServices {
    async fn name_in_use(&self, _: &str, _: &str, _: &str) -> Result<bool, String> {
        Ok(false)
    }
    async fn probe(&self, _: &ClusterSpec) -> ConnectionTest {
        unreachable!("the benchmark does not probe")
    }
}

pub(super) fn description_update(i: usize) -> ClusterCommand {
    // A description of the payload size, so the event is comparable with the raw message.
    ClusterCommand::Update {
        changes: ClusterChanges {
            description: Some(format!("{i:0>width$}", width = PAYLOAD / 2)),
            ..Default::default()
        },
    }
}

pub(super) async fn register_in_process(repo: &Repository<Cluster>, n: usize) -> anyhow::Result<Vec<String>> {
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

pub(super) async fn commands_in_process(sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
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

pub(super) async fn console_concurrent(
    repo: &Arc<Repository<Cluster>>,
    ids: &[String],
    n: usize,
) -> anyhow::Result<f64> {
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

pub(super) async fn console_sequential(repo: &Repository<Cluster>, id: &str, n: usize) -> anyhow::Result<Vec<f64>> {
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
