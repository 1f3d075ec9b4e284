//! Running projections: durable consumer → folded KV writes → checkpoint → ack.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv};
use futures::{StreamExt, TryStreamExt};
use jsc_eventstore::{EventRecord, HomeStorage};
use tokio_util::sync::CancellationToken;

use crate::{CHECKPOINT_KEY, Error, KvProjection, Versioned};

/// Most messages taken at once from the consumer.
const MAX_BATCH: usize = 512;

/// Most events folded into one round of writes while catching up. In steady state a round
/// is whatever arrived (often one event), so latency stays low; during a catch-up, events
/// of the same key fold into one write, so writes stop being the bottleneck.
const MAX_FOLD: usize = 10_000;

/// About this many views a projection keeps in memory, those it wrote lately (a miss costs
/// one KV read, the misses of a batch read together): a view of 50,000 consumers is kept
/// once, by the view readers, not a second time here.
const MAX_CACHED_VIEWS: usize = 4_096;

/// KV reads of missing views in flight at once.
const READS_IN_FLIGHT: usize = 64;

/// How long a projection may leave its checkpoint behind while only events of other views
/// go by. A batch that changes the view writes the checkpoint at once (mutations wait on
/// it); one that does not would cost every projection a KV write per event of any type.
const CHECKPOINT_DEBOUNCE: Duration = Duration::from_millis(250);

/// Why the projections start over when the home connection comes back while they write.
fn reconnected_while_writing() -> Error {
    Error::nats("the home NATS reconnected while the views were written; reading on from the checkpoints")
}

/// The views a running projector has read or written, so each key costs one KV read per
/// run rather than one per batch. Sound because a projection has a single writer.
struct Known<V> {
    views: jsc_eventstore::Recent<String, Option<Versioned<V>>>,
    /// When the bucket was empty at the start of the run: every key this run wrote a view
    /// for (a key outside it has no view, with no read). `None`: unknown, misses are read.
    present: Option<HashSet<String>>,
}

impl<V> Known<V> {
    fn new(started_empty: bool, limit: usize) -> Self {
        Self {
            views: jsc_eventstore::Recent::new(limit),
            present: started_empty.then(HashSet::new),
        }
    }

    /// Whether a key this run holds no view for must be read from the bucket.
    fn must_read(&self, key: &str) -> bool {
        !self.views.contains_key(key) && self.present.as_ref().is_none_or(|p| p.contains(key))
    }
}

/// The difference between two view buckets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BucketDiff {
    pub same: usize,
    pub only_in_first: Vec<String>,
    pub only_in_second: Vec<String>,
    pub different: Vec<String>,
}

impl BucketDiff {
    pub fn is_identical(&self) -> bool {
        self.only_in_first.is_empty() && self.only_in_second.is_empty() && self.different.is_empty()
    }
}

/// Where a projection stands, for readiness and operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: String,
    pub bucket: String,
    /// Events in the stream after the checkpoint.
    pub pending: u64,
    pub checkpoint: u64,
}

/// Runs projections over the event stream. Cheap to clone.
#[derive(Clone)]
pub struct Projector {
    js: jetstream::Context,
    stream: String,
    /// The event store's subject prefix: a projection's aggregate types become the filters
    /// `<prefix>.<type>.>`.
    subject_prefix: String,
    replicas: usize,
    /// About how many views a projection keeps in memory ([`MAX_CACHED_VIEWS`]).
    view_cache: usize,
    /// The home connection's reconnects: the consumer is made again on each.
    reconnects: Option<crate::Reconnects>,
}

/// Opens a view bucket, creating it when missing (history 1: the view is the current state;
/// the history lives in the event stream), with `replicas` copies ([`HomeStorage`]).
pub async fn ensure_bucket(js: &jetstream::Context, bucket: &str, replicas: usize) -> Result<kv::Store, Error> {
    HomeStorage::new(js.client(), replicas)
        .bucket(kv::Config {
            bucket: bucket.to_string(),
            description: "JetStream Console read model (rebuilt from CONSOLE_EVENTS)".into(),
            history: 1,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(Error::nats)
}

impl Projector {
    /// A projector on the event stream that `store` configures.
    pub fn new(client: async_nats::Client, store: &jsc_eventstore::EventStoreConfig) -> Self {
        Self {
            js: jetstream::new(client),
            stream: store.stream.clone(),
            subject_prefix: store.subject_prefix.clone(),
            replicas: 1,
            view_cache: MAX_CACHED_VIEWS,
            reconnects: None,
        }
    }

    /// Makes the consumer again, from the checkpoints, whenever `reconnects` counts one.
    pub fn with_reconnects(mut self, reconnects: crate::Reconnects) -> Self {
        self.reconnects = Some(reconnects);
        self
    }

    /// Keeps about `limit` views per projection in memory instead of [`MAX_CACHED_VIEWS`]
    /// (tests make it small to exercise the reads of views no longer held).
    pub fn with_view_cache(mut self, limit: usize) -> Self {
        self.view_cache = limit;
        self
    }

    /// The subjects of the event stream `p` reads.
    fn filter_subjects<P: KvProjection>(&self, p: &P) -> Vec<String> {
        p.aggregate_types()
            .into_iter()
            .map(|t| format!("{}.{t}.>", self.subject_prefix))
            .collect()
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

    /// An ordered consumer from just after the checkpoint. The checkpoint in the view's
    /// bucket is the only position there is: no durable consumer, no acks for the server to
    /// track, and a restart resumes exactly where the view stands.
    ///
    /// Unfiltered on purpose: a wildcard filter over many subjects costs the server a
    /// subject-tree walk per message (measured: a filtered read at ~0.15 × an unfiltered one
    /// over 1,000 aggregates); events of other types are skipped here by subject, before
    /// any parsing.
    async fn consumer_from(&self, checkpoint: u64) -> Result<consumer::Consumer<consumer::pull::OrderedConfig>, Error> {
        let stream = self.js.get_stream(&self.stream).await.map_err(Error::nats)?;
        let deliver_policy = if checkpoint == 0 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: checkpoint + 1,
            }
        };
        stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(Error::nats)
    }

    /// Creates the bucket of a projection (idempotent).
    pub async fn prepare<P: KvProjection>(&self, p: &P) -> Result<(), Error> {
        self.bucket(p).await?;
        Ok(())
    }

    /// Where a projection stands: events in the stream after its checkpoint, or 0 when
    /// none of them is for this view (its checkpoint trails those on purpose, see
    /// [`CHECKPOINT_DEBOUNCE`]).
    pub async fn status<P: KvProjection>(&self, p: &P) -> Result<ProjectionStatus, Error> {
        let mut stream = self.js.get_stream(&self.stream).await.map_err(Error::nats)?;
        let last = stream.info().await.map_err(Error::nats)?.state.last_sequence;
        let kv = self.bucket(p).await?;
        let checkpoint = read_checkpoint(&kv).await?;
        let mut pending = last.saturating_sub(checkpoint);
        if pending > 0 {
            let mut relevant = false;
            for filter in self.filter_subjects(p) {
                match stream.direct_get_next_for_subject(filter, Some(checkpoint + 1)).await {
                    Ok(_) => {
                        relevant = true;
                        break;
                    }
                    Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {}
                    Err(e) => return Err(Error::nats(e)),
                }
            }
            if !relevant {
                pending = 0;
            }
        }
        Ok(ProjectionStatus {
            name: p.name().to_string(),
            bucket: p.bucket(),
            pending,
            checkpoint,
        })
    }

    /// Forgets everything the projection built: its bucket. The next
    /// [`Projector::run`] rebuilds the view from the first event.
    pub async fn reset<P: KvProjection>(&self, p: &P) -> Result<(), Error> {
        let _ = self.js.delete_key_value(p.bucket()).await;
        Ok(())
    }

    /// Applies events to the projection until `shutdown`, surviving NATS outages (it
    /// resumes from its checkpoint when the server is back).
    pub async fn run<P: KvProjection>(&self, p: Arc<P>, shutdown: CancellationToken) -> Result<(), Error> {
        self.run_all(vec![Runnable::from(p)], shutdown).await
    }

    /// Applies events to several projections from one consumer of the stream (each event
    /// is read once, however many views there are), until `shutdown`, surviving NATS
    /// outages. The consumer starts after the lowest checkpoint; each view skips what it
    /// has already applied and keeps its own checkpoint.
    pub async fn run_all(&self, projections: Vec<Runnable>, shutdown: CancellationToken) -> Result<(), Error> {
        let mut backoff = crate::reconnects::Backoff::new(self.reconnects.as_ref(), &self.stream);
        loop {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = self.run_all_until_error(&projections, &shutdown) => r,
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "projections interrupted; resuming");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = backoff.wait() => {}
                    }
                }
            }
        }
    }

    async fn run_all_until_error(&self, projections: &[Runnable], shutdown: &CancellationToken) -> Result<(), Error> {
        let mut lanes = Vec::with_capacity(projections.len());
        for p in projections {
            lanes.push(p.0.open(self).await?);
        }
        let Some(start) = lanes.iter().map(|l| l.checkpoint()).min() else {
            shutdown.cancelled().await;
            return Ok(());
        };
        let mut reconnected = self.reconnects.as_ref().map(|r| r.subscribe(self.stream.as_str()));
        let consumer = self.consumer_from(start).await?;
        let messages = consumer.messages().await.map_err(Error::nats)?;
        let mut chunks = messages.ready_chunks(MAX_BATCH);
        loop {
            let next_flush = lanes.iter().filter_map(|l| l.flush_at()).min();
            let chunk = tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = save_lanes(&mut lanes, false).await;
                    return Ok(());
                }
                _ = crate::reconnects::next(&mut reconnected) => {
                    return Err(Error::nats("the home NATS reconnected; reading on from the checkpoints"));
                }
                _ = async { tokio::time::sleep_until(next_flush.expect("guarded")).await }, if next_flush.is_some() => {
                    tokio::select! {
                        r = save_lanes(&mut lanes, true) => r?,
                        _ = crate::reconnects::next(&mut reconnected) => return Err(reconnected_while_writing()),
                    }
                    continue;
                }
                c = chunks.next() => c,
            };
            let Some(chunk) = chunk else {
                return Err(Error::nats("the projections' message stream ended"));
            };
            let mut batch = Vec::with_capacity(chunk.len());
            for m in chunk {
                batch.push(m.map_err(Error::nats)?);
            }
            // Behind? Take what is already on its way before writing.
            while batch.len() < MAX_FOLD && batch.last().and_then(|m| m.info().ok()).is_some_and(|i| i.pending > 0) {
                let more = tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    c = chunks.next() => c,
                };
                let Some(more) = more else { break };
                for m in more {
                    batch.push(m.map_err(Error::nats)?);
                }
            }
            let batch = &batch;
            // A write sent just before the connection dropped waits out its whole ack
            // timeout; the connection back, the views are read on from their checkpoints
            // instead (as after a crash: applying an event again changes nothing).
            tokio::select! {
                r = futures::future::try_join_all(lanes.iter_mut().map(|l| l.apply(batch))) => { r?; }
                _ = crate::reconnects::next(&mut reconnected) => return Err(reconnected_while_writing()),
            }
        }
    }

    /// Replays events `from..=to` (to the stream's current end by default) into `bucket`,
    /// emptied first, and returns how many events it read: a scratch copy of a view for
    /// debugging, or a rebuild.
    pub async fn replay_into<P: KvProjection>(
        &self,
        p: &P,
        bucket: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<u64, Error> {
        let mut stream = self.js.get_stream(&self.stream).await.map_err(Error::nats)?;
        let last = stream.info().await.map_err(Error::nats)?.state.last_sequence;
        let end = to.map_or(last, |t| t.min(last));
        let _ = self.js.delete_key_value(bucket).await;
        let kv = ensure_bucket(&self.js, bucket, self.replicas).await?;
        let start = from.max(1) - 1;
        if end <= start {
            return Ok(0);
        }
        self.project(p, &kv, start, Some(end), &CancellationToken::new())
            .await?;
        Ok(end - start)
    }

    /// Applies events after `checkpoint` to the view in `kv`, until `until` (inclusive) or,
    /// without it, until `shutdown`. Returns the last sequence applied.
    async fn project<P: KvProjection>(
        &self,
        p: &P,
        kv: &kv::Store,
        mut checkpoint: u64,
        until: Option<u64>,
        shutdown: &CancellationToken,
    ) -> Result<u64, Error> {
        let consumer = self.consumer_from(checkpoint).await?;
        let mut known = Known::new(kv.status().await.map_err(Error::nats)?.values() == 0, self.view_cache);
        let messages = consumer.messages().await.map_err(Error::nats)?;
        let mut chunks = messages.ready_chunks(MAX_BATCH);
        let mut saved = checkpoint;
        let mut flush_at: Option<tokio::time::Instant> = None;
        loop {
            if until.is_some_and(|u| checkpoint >= u) {
                save_checkpoint(kv, &mut saved, checkpoint).await?;
                return Ok(checkpoint);
            }
            let chunk = tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = save_checkpoint(kv, &mut saved, checkpoint).await;
                    return Ok(checkpoint);
                }
                _ = async { tokio::time::sleep_until(flush_at.expect("guarded")).await }, if flush_at.is_some() => {
                    save_checkpoint(kv, &mut saved, checkpoint).await?;
                    flush_at = None;
                    continue;
                }
                c = chunks.next() => c,
            };
            let Some(chunk) = chunk else {
                return Err(Error::nats("the projection's message stream ended"));
            };
            let mut batch = Vec::with_capacity(chunk.len());
            for m in chunk {
                batch.push(m.map_err(Error::nats)?);
            }
            // Behind? Take what is already on its way before writing.
            while batch.len() < MAX_FOLD && batch.last().and_then(|m| m.info().ok()).is_some_and(|i| i.pending > 0) {
                let more = tokio::select! {
                    _ = shutdown.cancelled() => return Ok(checkpoint),
                    c = chunks.next() => c,
                };
                let Some(more) = more else { break };
                for m in more {
                    batch.push(m.map_err(Error::nats)?);
                }
            }
            if let Some(u) = until {
                batch.retain(|m| m.info().is_ok_and(|i| i.stream_sequence <= u));
            }
            let (last, changed) = self.apply_batch(p, kv, &batch, checkpoint, &mut known).await?;
            checkpoint = last;
            if changed {
                save_checkpoint(kv, &mut saved, checkpoint).await?;
                flush_at = None;
            } else if checkpoint > saved && flush_at.is_none() {
                flush_at = Some(tokio::time::Instant::now() + CHECKPOINT_DEBOUNCE);
            }
        }
    }

    /// How two view buckets differ (the checkpoint aside): the keys only in one, and the
    /// keys whose views differ.
    pub async fn compare(&self, a: &str, b: &str) -> Result<BucketDiff, Error> {
        let (a, b) = (self.bucket_contents(a).await?, self.bucket_contents(b).await?);
        let mut diff = BucketDiff::default();
        for (k, v) in &a {
            match b.get(k) {
                None => diff.only_in_first.push(k.clone()),
                Some(w) if w != v => diff.different.push(k.clone()),
                Some(_) => diff.same += 1,
            }
        }
        diff.only_in_second = b.keys().filter(|k| !a.contains_key(*k)).cloned().collect();
        Ok(diff)
    }

    async fn bucket_contents(
        &self,
        bucket: &str,
    ) -> Result<std::collections::BTreeMap<String, serde_json::Value>, Error> {
        let kv = self.js.get_key_value(bucket).await.map_err(Error::nats)?;
        let mut keys = kv.keys().await.map_err(Error::nats)?;
        let mut out = std::collections::BTreeMap::new();
        while let Some(k) = keys.next().await {
            let k = k.map_err(Error::nats)?;
            if k == CHECKPOINT_KEY {
                continue;
            }
            if let Some(v) = kv.get(&k).await.map_err(Error::nats)? {
                let mut value: serde_json::Value = serde_json::from_slice(&v).unwrap_or(serde_json::Value::Null);
                // Where a view stands is not what it says.
                if let Some(o) = value.as_object_mut() {
                    o.remove("last_sequence");
                }
                out.insert(k, value);
            }
        }
        Ok(out)
    }

    /// Folds a batch into the view: loads each touched key (once per run), applies the
    /// batch's events to it in order, and writes each changed key once. Returns the last
    /// sequence it went through and whether the view changed (the caller saves the
    /// checkpoint).
    #[tracing::instrument(skip_all, fields(projection = p.name(), events = batch.len()))]
    async fn apply_batch<P: KvProjection>(
        &self,
        p: &P,
        kv: &kv::Store,
        batch: &[jetstream::Message],
        checkpoint: u64,
        known: &mut Known<P::View>,
    ) -> Result<(u64, bool), Error> {
        // Only between batches: a view changed in this batch stays until it is written.
        known.views.trim();
        let filters = self.filter_subjects(p);
        let mut changed: Vec<String> = Vec::new();
        let mut changed_set: HashSet<String> = HashSet::new();
        let mut last = checkpoint;
        // One span per traced event, from reading it to its view written: a child of the
        // commit that sent it, so the trace of a request runs on to the views it changed.
        let mut traced: Vec<tracing::Span> = Vec::new();
        let mut events = Vec::with_capacity(batch.len());
        for msg in batch {
            let seq = msg.info().map_err(Error::nats)?.stream_sequence;
            if seq <= checkpoint {
                continue;
            }
            last = last.max(seq);
            if !filters.iter().any(|f| subject_matches(f, &msg.subject)) {
                continue;
            }
            let record = match EventRecord::from_body(&msg.payload, seq) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(projection = p.name(), sequence = seq, error = %e, "skipping an unreadable event");
                    continue;
                }
            };
            let Some(key) = p.key(&record) else { continue };
            if let Some(parent) = traced_parent(msg, &record) {
                let span = tracing::info_span!(parent: None, "projection", projection = p.name(), sequence = seq);
                jsc_eventstore::trace::follow(&span, parent);
                traced.push(span);
            }
            events.push((seq, record, key));
        }
        // The views the batch needs and this run does not hold, read together.
        {
            let missing: std::collections::BTreeSet<String> = events
                .iter()
                .map(|(_, _, k)| k)
                .filter(|k| known.must_read(k))
                .cloned()
                .collect();
            let read: Vec<(String, Option<Versioned<P::View>>)> = futures::stream::iter(missing)
                .map(|key| {
                    let kv = kv.clone();
                    async move {
                        let view = read_view::<P::View>(&kv, &key).await?;
                        Ok::<_, Error>((key, view))
                    }
                })
                .buffer_unordered(READS_IN_FLIGHT)
                .try_collect()
                .await?;
            for (key, view) in read {
                known.views.insert(key, view);
            }
        }
        let views = &mut known.views;
        for (seq, record, key) in events {
            if !views.contains_key(key.as_str()) {
                views.insert(key.clone(), None);
            }
            let slot = views.get(key.as_str()).expect("loaded above");
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
        if let Some(present) = known.present.as_mut() {
            for key in &changed {
                match views.get(key.as_str()) {
                    Some(Some(_)) => present.insert(key.clone()),
                    _ => present.remove(key.as_str()),
                };
            }
        }
        let writes = changed.iter().map(|key| {
            let value = views.get(key.as_str()).and_then(|v| v.clone());
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
        drop(traced);
        Ok((last, !changed.is_empty()))
    }
}

/// How old an event may be for its projection to join the trace of its commit: a rebuild
/// or a catch-up after downtime replays old events, whose traces ended long ago.
const TRACE_LIVE_FOR: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The commit span a live event's `traceparent` header names, if it carries one.
fn traced_parent(msg: &jetstream::Message, record: &EventRecord) -> Option<opentelemetry::trace::SpanContext> {
    let value = msg.headers.as_ref()?.get(jsc_eventstore::trace::TRACEPARENT)?;
    if chrono::Utc::now() - record.timestamp > TRACE_LIVE_FOR {
        return None;
    }
    jsc_eventstore::trace::parse_traceparent(value.as_str())
}

/// Whether a concrete subject matches a filter with `*` and `>` wildcards.
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Saves the trailing checkpoints: all of them, or only those due.
async fn save_lanes(lanes: &mut [Box<dyn Lane>], due_only: bool) -> Result<(), Error> {
    let now = tokio::time::Instant::now();
    let due = lanes
        .iter_mut()
        .filter(|l| !due_only || l.flush_at().is_some_and(|t| t <= now))
        .map(|l| l.save());
    futures::future::try_join_all(due).await.map(|_| ())
}

/// A projection to run, its view type erased so that one runner drives them all.
#[derive(Clone)]
pub struct Runnable(Arc<dyn OpenLane>);

impl<P: KvProjection> From<Arc<P>> for Runnable {
    fn from(p: Arc<P>) -> Self {
        Self(Arc::new(p))
    }
}

impl<P: KvProjection> From<P> for Runnable {
    fn from(p: P) -> Self {
        Self(Arc::new(Arc::new(p)))
    }
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

trait OpenLane: Send + Sync {
    fn open<'a>(&'a self, projector: &'a Projector) -> BoxFuture<'a, Result<Box<dyn Lane>, Error>>;
}

impl<P: KvProjection> OpenLane for Arc<P> {
    fn open<'a>(&'a self, projector: &'a Projector) -> BoxFuture<'a, Result<Box<dyn Lane>, Error>> {
        Box::pin(async move {
            let kv = projector.bucket(self.as_ref()).await?;
            let checkpoint = read_checkpoint(&kv).await?;
            let known = Known::new(
                kv.status().await.map_err(Error::nats)?.values() == 0,
                projector.view_cache,
            );
            Ok(Box::new(KvLane {
                p: self.clone(),
                projector: projector.clone(),
                kv,
                checkpoint,
                saved: checkpoint,
                flush_at: None,
                known,
            }) as Box<dyn Lane>)
        })
    }
}

/// One view being projected: where it stands, and what it has not saved yet.
trait Lane: Send {
    fn checkpoint(&self) -> u64;
    /// When its trailing checkpoint is due to be written, if it trails.
    fn flush_at(&self) -> Option<tokio::time::Instant>;
    fn apply<'a>(&'a mut self, batch: &'a [jetstream::Message]) -> BoxFuture<'a, Result<(), Error>>;
    fn save(&mut self) -> BoxFuture<'_, Result<(), Error>>;
}

struct KvLane<P: KvProjection> {
    p: Arc<P>,
    projector: Projector,
    kv: kv::Store,
    checkpoint: u64,
    saved: u64,
    flush_at: Option<tokio::time::Instant>,
    known: Known<P::View>,
}

impl<P: KvProjection> Lane for KvLane<P> {
    fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    fn flush_at(&self) -> Option<tokio::time::Instant> {
        self.flush_at
    }

    fn apply<'a>(&'a mut self, batch: &'a [jetstream::Message]) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let (last, changed) = self
                .projector
                .apply_batch(self.p.as_ref(), &self.kv, batch, self.checkpoint, &mut self.known)
                .await?;
            self.checkpoint = last;
            if changed {
                self.save().await?;
            } else if self.checkpoint > self.saved && self.flush_at.is_none() {
                self.flush_at = Some(tokio::time::Instant::now() + CHECKPOINT_DEBOUNCE);
            }
            Ok(())
        })
    }

    fn save(&mut self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            save_checkpoint(&self.kv, &mut self.saved, self.checkpoint).await?;
            self.flush_at = None;
            Ok(())
        })
    }
}

/// Writes the checkpoint when it moved since the last write.
async fn save_checkpoint(kv: &kv::Store, saved: &mut u64, checkpoint: u64) -> Result<(), Error> {
    if checkpoint > *saved {
        kv.put(CHECKPOINT_KEY, checkpoint.to_string().into())
            .await
            .map_err(Error::nats)?;
        *saved = checkpoint;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn wildcards() {
        assert!(subject_matches("es.cluster.>", "es.cluster.abc"));
        assert!(subject_matches("es.*.abc", "es.cluster.abc"));
        assert!(!subject_matches("es.cluster.>", "es.cluster"));
        assert!(!subject_matches("es.cluster.>", "es.stream.x"));
        assert!(subject_matches("a.b", "a.b"));
        assert!(!subject_matches("a.b", "a.b.c"));
    }
}
