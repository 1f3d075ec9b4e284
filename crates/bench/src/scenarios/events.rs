//! Scenarios 3 and 6: projection catch-up and the Parquet audit export, beside raw ordered reads of the same events.

use super::*;

pub(super) async fn projection_catch_up(sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let server = Server::start()?;
    let client = server.client().await?;
    let js = jetstream::new(client.clone());
    let store = JetStreamEventStore::open(client.clone(), EventStoreConfig::default()).await?;
    let n = sizes.catchup_events;
    let aggregates = 1_000.min(n);
    eprintln!("   writing {n} events");
    write_events(&js, &store, n, aggregates).await?;
    let last = js
        .get_stream(EventStoreConfig::default().stream)
        .await?
        .get_info()
        .await?
        .state
        .last_sequence;

    let (mut raw, mut filtered, mut con) = (Vec::new(), Vec::new(), Vec::new());
    raw_ordered_read(&js, last, None).await?;
    for run in 0..=sizes.runs {
        let r = raw_ordered_read(&js, last, None).await?;
        let f = raw_ordered_read(&js, last, Some(&EventStoreConfig::default().subjects(Some("cluster")))).await?;
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
pub(super) async fn audit_export(
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
        stream: EventStoreConfig::default().stream,
        store: store.clone(),
        max_rows: 50_000,
        max_bytes: jsc_projections::audit::MAX_BUFFERED_BYTES,
        max_age: Duration::from_secs(1),
        compact_after: 0,
        replicas: 1,
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
        stream: EventStoreConfig::default().stream,
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
pub(super) async fn write_events(
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
pub(super) async fn raw_ordered_read(js: &jetstream::Context, last: u64, filter: Option<&str>) -> anyhow::Result<f64> {
    let stream = js.get_stream(EventStoreConfig::default().stream).await?;
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
pub(super) async fn project_all(client: &async_nats::Client, last: u64) -> anyhow::Result<f64> {
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
