//! The scenarios, each beside its raw ceiling measured in the same run.

mod alerts;
mod big;
mod binary;
mod chaos;
mod commands;
mod events;
mod messages;
mod monitoring;
mod subscribers;
mod ui;

use alerts::*;
use big::*;
use binary::*;
pub use chaos::chaos;
use commands::*;
use events::*;
use messages::*;
use monitoring::*;
use subscribers::*;
use ui::*;

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

pub(super) const PAYLOAD: usize = 256;
pub(super) const CONCURRENCY: usize = 64;

pub(super) struct Sizes {
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
pub(super) struct Server {
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

pub(super) fn wants(args: &Args, name: &str) -> bool {
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
    if wants(args, "messages") {
        eprintln!("8. a page of messages");
        rows.extend(message_pages(args, &sizes).await.context("scenario 8")?);
    }
    if wants(args, "monitoring") {
        eprintln!("11, 12. monitoring");
        rows.extend(monitoring(args, &sizes).await.context("scenarios 11, 12")?);
    }
    if wants(args, "alerts") {
        eprintln!("13, 14. alerts");
        rows.extend(alerts(args, &sizes).await.context("scenarios 13, 14")?);
    }
    if wants(args, "big") {
        eprintln!("16. a big cluster: 10,000 streams × 5 consumers made outside the console");
        rows.extend(big_cluster(args, &sizes).await.context("scenario 16")?);
    }
    if wants(args, "subscribers") {
        eprintln!("17. idle WebSocket subscribers");
        rows.extend(idle_subscribers(args).await.context("scenario 17")?);
    }
    if wants(args, "ui") {
        eprintln!("15. the web console: the streams page with 10,000 streams");
        rows.extend(streams_page(args).await.context("scenario 15")?);
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

/// Every stream of the server by paged `$JS.API.STREAM.LIST` from the bench process, each
/// given to `each` parsed; how many there were.
pub(super) async fn raw_stream_list(
    client: &async_nats::Client,
    mut each: impl FnMut(&Value),
) -> anyhow::Result<usize> {
    let mut offset = 0;
    loop {
        let r = client
            .request("$JS.API.STREAM.LIST", json!({"offset": offset}).to_string().into())
            .await?;
        let v: Value = serde_json::from_slice(&r.payload)?;
        let page = v["streams"].as_array().cloned().unwrap_or_default();
        page.iter().for_each(&mut each);
        offset += page.len();
        if page.is_empty() || offset as u64 >= v["total"].as_u64().unwrap_or(0) {
            return Ok(offset);
        }
    }
}

pub(super) async fn raw_stream(js: &jetstream::Context, name: &str) -> anyhow::Result<()> {
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

/// Makes streams `S{i:05}` (subjects `s{i}.>`) for each `i` of `range`, each with
/// `consumers` durable consumers `C0`, `C1`…, 16 streams in flight.
pub(super) async fn make_streams(
    js: &jetstream::Context,
    range: std::ops::Range<usize>,
    consumers: usize,
    storage: jetstream::stream::StorageType,
) -> anyhow::Result<()> {
    let made = futures::stream::iter(range)
        .map(|i| {
            let js = js.clone();
            async move {
                let s = js
                    .create_stream(jetstream::stream::Config {
                        name: format!("S{i:05}"),
                        subjects: vec![format!("s{i}.>")],
                        storage,
                        ..Default::default()
                    })
                    .await?;
                for c in 0..consumers {
                    s.create_consumer(jetstream::consumer::pull::Config {
                        durable_name: Some(format!("C{c}")),
                        ..Default::default()
                    })
                    .await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    made.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok(())
}

/// Publishes `n` messages with `inflight` acks outstanding; returns messages per second.
pub(super) async fn raw_pipelined(
    js: &jetstream::Context,
    stream: &str,
    n: usize,
    inflight: usize,
) -> anyhow::Result<f64> {
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
pub(super) async fn raw_sequential(js: &jetstream::Context, stream: &str, n: usize) -> anyhow::Result<Vec<f64>> {
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
