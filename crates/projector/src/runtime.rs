//! Running projections: durable consumer → folded KV writes → checkpoint → ack.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv};
use futures::StreamExt;
use jsc_eventstore::EventRecord;
use tokio_util::sync::CancellationToken;

use crate::{CHECKPOINT_KEY, Error, KvProjection, Versioned};

/// Most events applied per batch (and so per checkpoint write).
const MAX_BATCH: usize = 512;

/// Where a projection stands, for readiness and operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: String,
    pub bucket: String,
    pub consumer: String,
    /// Events matching the projection not yet delivered or not yet acknowledged.
    pub pending: u64,
    pub checkpoint: u64,
}

/// Runs projections over the event stream. Cheap to clone.
#[derive(Clone)]
pub struct Projector {
    js: jetstream::Context,
    stream: String,
    replicas: usize,
}

/// Opens a view bucket, creating it when missing (history 1: the view is the current state;
/// the history lives in the event stream).
pub async fn ensure_bucket(js: &jetstream::Context, bucket: &str, replicas: usize) -> Result<kv::Store, Error> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    let created = js
        .create_key_value(kv::Config {
            bucket: bucket.to_string(),
            description: "JetStream Console read model (rebuilt from CONSOLE_EVENTS)".into(),
            history: 1,
            storage: jetstream::stream::StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        })
        .await;
    match created {
        Ok(store) => Ok(store),
        // Another replica may have created it in between.
        Err(e) => js.get_key_value(bucket).await.map_err(|_| Error::nats(e)),
    }
}

impl Projector {
    pub fn new(client: async_nats::Client, stream: impl Into<String>) -> Self {
        Self {
            js: jetstream::new(client),
            stream: stream.into(),
            replicas: 1,
        }
    }

    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    async fn bucket<P: KvProjection>(&self, p: &P) -> Result<kv::Store, Error> {
        ensure_bucket(&self.js, &p.bucket(), self.replicas).await
    }

    async fn consumer<P: KvProjection>(&self, p: &P) -> Result<consumer::PullConsumer, Error> {
        let stream = self.js.get_stream(&self.stream).await.map_err(Error::nats)?;
        stream
            .get_or_create_consumer(
                &p.consumer(),
                consumer::pull::Config {
                    durable_name: Some(p.consumer()),
                    description: Some(format!("JetStream Console projection {} v{}", p.name(), p.version())),
                    filter_subjects: p.filter_subjects(),
                    ack_policy: consumer::AckPolicy::All,
                    deliver_policy: consumer::DeliverPolicy::All,
                    max_ack_pending: 20_000,
                    ack_wait: Duration::from_secs(60),
                    ..Default::default()
                },
            )
            .await
            .map_err(Error::nats)
    }

    /// Creates the bucket and the consumer of a projection (idempotent).
    pub async fn prepare<P: KvProjection>(&self, p: &P) -> Result<(), Error> {
        self.bucket(p).await?;
        self.consumer(p).await?;
        Ok(())
    }

    /// Where a projection stands.
    pub async fn status<P: KvProjection>(&self, p: &P) -> Result<ProjectionStatus, Error> {
        let mut c = self.consumer(p).await?;
        let info = c.info().await.map_err(Error::nats)?;
        let kv = self.bucket(p).await?;
        Ok(ProjectionStatus {
            name: p.name().to_string(),
            bucket: p.bucket(),
            consumer: p.consumer(),
            pending: info.num_pending + info.num_ack_pending as u64,
            checkpoint: read_checkpoint(&kv).await?,
        })
    }

    /// Forgets everything the projection built: its consumer and its bucket. The next
    /// [`Projector::run`] rebuilds the view from the first event.
    pub async fn reset<P: KvProjection>(&self, p: &P) -> Result<(), Error> {
        if let Ok(stream) = self.js.get_stream(&self.stream).await {
            let _ = stream.delete_consumer(&p.consumer()).await;
        }
        let _ = self.js.delete_key_value(p.bucket()).await;
        Ok(())
    }

    /// Applies events to the projection until `shutdown`, surviving NATS outages (it
    /// resumes from its durable consumer when the server is back).
    pub async fn run<P: KvProjection>(&self, p: Arc<P>, shutdown: CancellationToken) -> Result<(), Error> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = self.run_until_error(p.as_ref(), &shutdown) => r,
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(projection = p.name(), error = %e, "projection interrupted; resuming");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn run_until_error<P: KvProjection>(&self, p: &P, shutdown: &CancellationToken) -> Result<(), Error> {
        let kv = self.bucket(p).await?;
        let consumer = self.consumer(p).await?;
        let mut checkpoint = read_checkpoint(&kv).await?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(MAX_BATCH)
            .messages()
            .await
            .map_err(Error::nats)?;
        let mut chunks = messages.ready_chunks(MAX_BATCH);
        loop {
            let chunk = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                c = chunks.next() => c,
            };
            let Some(chunk) = chunk else {
                return Err(Error::Nats("the projection's message stream ended".into()));
            };
            let mut batch = Vec::with_capacity(chunk.len());
            for m in chunk {
                batch.push(m.map_err(Error::nats)?);
            }
            checkpoint = self.apply_batch(p, &kv, &batch, checkpoint).await?;
            if let Some(last) = batch.last() {
                last.ack().await.map_err(Error::nats)?;
            }
        }
    }

    /// Folds a batch into the view: loads each touched key once, applies the batch's
    /// events to it in order, writes each changed key once, then the checkpoint.
    #[tracing::instrument(skip_all, fields(projection = p.name(), events = batch.len()))]
    async fn apply_batch<P: KvProjection>(
        &self,
        p: &P,
        kv: &kv::Store,
        batch: &[jetstream::Message],
        checkpoint: u64,
    ) -> Result<u64, Error> {
        let mut views: HashMap<String, Option<Versioned<P::View>>> = HashMap::new();
        let mut changed: Vec<String> = Vec::new();
        let mut changed_set: HashSet<String> = HashSet::new();
        let mut last = checkpoint;
        for msg in batch {
            let seq = msg.info().map_err(Error::nats)?.stream_sequence;
            if seq <= checkpoint {
                continue;
            }
            last = last.max(seq);
            let record = match EventRecord::from_body(&msg.payload, seq) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(projection = p.name(), sequence = seq, error = %e, "skipping an unreadable event");
                    continue;
                }
            };
            let Some(key) = p.key(&record) else { continue };
            if !views.contains_key(&key) {
                let current = read_view::<P::View>(kv, &key).await?;
                views.insert(key.clone(), current);
            }
            let slot = views.get_mut(&key).expect("loaded above");
            if slot.as_ref().is_some_and(|v| v.last_sequence >= seq) {
                continue;
            }
            match p.apply(slot.take().map(|v| v.view), &record) {
                Ok(next) => {
                    *slot = next.map(|view| Versioned {
                        last_sequence: seq,
                        view,
                    });
                    if changed_set.insert(key.clone()) {
                        changed.push(key);
                    }
                }
                Err(reason) => {
                    let e = Error::Apply {
                        projection: p.name().to_string(),
                        sequence: seq,
                        reason,
                    };
                    tracing::error!(error = %e, "skipping an event the projection cannot apply");
                }
            }
        }
        let writes = changed.iter().map(|key| {
            let value = views.get(key).cloned().flatten();
            async move {
                match value {
                    Some(v) => {
                        let body = serde_json::to_vec(&v).map_err(|e| Error::Malformed {
                            key: key.clone(),
                            reason: e.to_string(),
                        })?;
                        kv.put(key, body.into()).await.map(|_| ()).map_err(Error::nats)
                    }
                    None => kv.delete(key).await.map_err(Error::nats),
                }
            }
        });
        futures::future::try_join_all(writes).await?;
        if last > checkpoint {
            kv.put(CHECKPOINT_KEY, last.to_string().into())
                .await
                .map_err(Error::nats)?;
        }
        Ok(last)
    }
}

async fn read_checkpoint(kv: &kv::Store) -> Result<u64, Error> {
    match kv.get(CHECKPOINT_KEY).await.map_err(Error::nats)? {
        Some(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Error::Malformed {
                key: CHECKPOINT_KEY.into(),
                reason: "not a number".into(),
            }),
        None => Ok(0),
    }
}

async fn read_view<V: serde::de::DeserializeOwned>(kv: &kv::Store, key: &str) -> Result<Option<Versioned<V>>, Error> {
    match kv.get(key).await.map_err(Error::nats)? {
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| Error::Malformed {
            key: key.to_string(),
            reason: e.to_string(),
        }),
        None => Ok(None),
    }
}
