//! Appending to and loading from `CONSOLE_EVENTS`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::{HeaderMap, jetstream};
use chrono::Utc;
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use cqrs_es::{Aggregate, AggregateContext, AggregateError, DomainEvent, EventEnvelope, EventStore};
use serde::Deserialize;
use uuid::Uuid;

use crate::claims::{self, ClaimState, ClaimWrite};
use crate::record::headers;
use crate::{Error, EventReader, EventRecord, encode_id};

/// How long an append waits before sending again when no stream answered it.
const NO_STREAM_RETRY: Duration = Duration::from_millis(100);

/// Error codes JetStream answers when an expectation on the last sequence fails.
const CONFLICT_CODES: [u64; 2] = [10071, 10164];

#[derive(Debug, Clone)]
pub struct EventStoreConfig {
    /// Stream name (default `CONSOLE_EVENTS`).
    pub stream: String,
    /// Subject prefix (default `es`); aggregate subjects are `<prefix>.<type>.<id>`.
    pub subject_prefix: String,
    /// Replicas of the stream when it is created (3 on a cluster).
    pub replicas: usize,
    /// How long one append attempt waits for its ack.
    pub append_timeout: Duration,
    /// How many times an attempt that timed out is re-sent with the same commit id.
    pub timeout_retries: u32,
    /// Window in which JetStream drops a re-sent message with the same `Nats-Msg-Id`.
    pub duplicate_window: Duration,
}

impl Default for EventStoreConfig {
    fn default() -> Self {
        Self {
            stream: "CONSOLE_EVENTS".into(),
            subject_prefix: "es".into(),
            replicas: 1,
            append_timeout: Duration::from_secs(5),
            timeout_retries: 2,
            duplicate_window: Duration::from_secs(120),
        }
    }
}

impl EventStoreConfig {
    /// The default configuration on the stream `stream`.
    pub fn on_stream(stream: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            ..Default::default()
        }
    }

    /// The subjects of every event (`None`) or of one aggregate type: `<prefix>.>` or
    /// `<prefix>.<type>.>`.
    pub fn subjects(&self, aggregate_type: Option<&str>) -> String {
        match aggregate_type {
            Some(t) => format!("{}.{t}.>", self.subject_prefix),
            None => format!("{}.>", self.subject_prefix),
        }
    }
}

/// A claim's event as sent in a commit's batch.
#[derive(Debug, Clone)]
pub struct ClaimRecord {
    pub subject: String,
    /// The claim's last stream sequence when it was read.
    pub expected_last: u64,
    pub record: EventRecord,
}

/// The outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Stream sequence of the last event written.
    pub last_stream_sequence: u64,
    /// The commit had already landed (a retry found it, or JetStream dropped a duplicate).
    pub duplicate: bool,
}

/// An aggregate as loaded, with the stream sequence of its last event: what the next
/// commit expects, so that a commit is a single round trip.
#[derive(Debug, Clone)]
pub struct JsAggregateContext<A> {
    pub aggregate_id: String,
    pub aggregate: A,
    /// Number of events applied (the aggregate sequence of the last one).
    pub version: usize,
    /// Stream sequence of the aggregate's last event; 0 if it has none.
    pub stream_sequence: u64,
    /// Hash of the aggregate's last event: what its next event chains to.
    pub last_hash: Option<String>,
}

impl<A: Aggregate> JsAggregateContext<A> {
    /// An aggregate with no events.
    pub fn empty(aggregate_id: &str) -> Self {
        Self {
            aggregate_id: aggregate_id.to_string(),
            aggregate: A::default(),
            version: 0,
            stream_sequence: 0,
            last_hash: None,
        }
    }
}

impl<A: Aggregate> AggregateContext<A> for JsAggregateContext<A> {
    fn aggregate(&mut self) -> &mut A {
        &mut self.aggregate
    }
}

/// The JetStream event store. Cheap to clone.
#[derive(Clone)]
pub struct JetStreamEventStore {
    reader: EventReader,
    config: Arc<EventStoreConfig>,
    upcasters: Arc<Vec<Box<dyn EventUpcaster>>>,
}

#[derive(Deserialize)]
struct AckBody {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    duplicate: bool,
    #[serde(default)]
    error: Option<jsc_domain::stream::ApiError>,
}

impl JetStreamEventStore {
    /// Connects to the stream, creating it with safe settings when it does not exist.
    pub async fn open(client: async_nats::Client, config: EventStoreConfig) -> Result<Self, Error> {
        let store = Self {
            reader: EventReader::new(client, config.stream.clone()),
            config: Arc::new(config),
            upcasters: Arc::new(Vec::new()),
        };
        store.ensure_stream().await?;
        Ok(store)
    }

    /// Registers upcasters applied, in order, to every event loaded.
    pub fn with_upcasters(mut self, upcasters: Vec<Box<dyn EventUpcaster>>) -> Self {
        self.upcasters = Arc::new(upcasters);
        self
    }

    pub fn config(&self) -> &EventStoreConfig {
        &self.config
    }

    pub fn reader(&self) -> &EventReader {
        &self.reader
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.reader.client
    }

    /// `<prefix>.<aggregate type>.<encoded id>`
    pub fn subject(&self, aggregate_type: &str, aggregate_id: &str) -> String {
        format!(
            "{}.{}.{}",
            self.config.subject_prefix,
            aggregate_type,
            encode_id(aggregate_id)
        )
    }

    /// Who holds the claim `key`, and what its next event continues from.
    pub async fn read_claim(&self, key: &str) -> Result<ClaimState, Error> {
        match self.reader.last_on_subject(&self.subject(claims::TYPE, key)).await? {
            Some(rec) => ClaimState::from_record(&rec),
            None => Ok(ClaimState::default()),
        }
    }

    /// Subject filter for every instance of an aggregate type.
    pub fn type_filter(&self, aggregate_type: &str) -> String {
        format!("{}.{}.>", self.config.subject_prefix, aggregate_type)
    }

    /// The stream's settings make losing an event impossible short of deleting the stream:
    /// file storage, no age or size limit (so nothing is discarded), message deletion and
    /// purge denied. Direct gets serve cold loads; atomic batches serve multi-event commits.
    pub fn stream_config(&self) -> jetstream::stream::Config {
        jetstream::stream::Config {
            name: self.config.stream.clone(),
            description: Some("JetStream Console: every change to console state, as events. The audit trail.".into()),
            subjects: vec![format!("{}.>", self.config.subject_prefix)],
            storage: jetstream::stream::StorageType::File,
            retention: jetstream::stream::RetentionPolicy::Limits,
            discard: jetstream::stream::DiscardPolicy::New,
            num_replicas: self.config.replicas,
            duplicate_window: self.config.duplicate_window,
            allow_direct: true,
            allow_atomic_publish: true,
            deny_delete: true,
            deny_purge: true,
            ..Default::default()
        }
    }

    async fn ensure_stream(&self) -> Result<(), Error> {
        let js = &self.reader.js;
        match js.get_stream(&self.config.stream).await {
            Ok(mut stream) => {
                let info = stream.info().await.map_err(Error::nats)?;
                let c = &info.config;
                if !c.deny_delete
                    || !c.deny_purge
                    || c.max_age != Duration::ZERO
                    || !c.allow_atomic_publish
                    || !c.allow_direct
                {
                    tracing::warn!(
                        stream = %self.config.stream,
                        "the event stream's settings allow events to be lost or disable atomic commits; \
                         expected deny_delete, deny_purge, no max_age, allow_atomic and allow_direct"
                    );
                }
                if c.num_replicas < self.config.replicas {
                    crate::HomeStorage::new(self.reader.client.clone(), self.config.replicas)
                        .stream(self.stream_config())
                        .await
                        .map_err(Error::nats)?;
                }
                Ok(())
            }
            Err(e)
                if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref je)
                    if je.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
            {
                crate::HomeStorage::new(self.reader.client.clone(), self.config.replicas)
                    .stream(self.stream_config())
                    .await
                    .map_err(Error::nats)?;
                tracing::info!(stream = %self.config.stream, "created the event stream");
                Ok(())
            }
            Err(e) => Err(Error::nats(format!(
                "cannot reach the event stream {} (is JetStream enabled on the home NATS?): {e}",
                self.config.stream
            ))),
        }
    }

    /// Appends `records` (one commit, all with the same commit id) to `subject`, expecting
    /// the subject's last stream sequence to be `expected_last`.
    ///
    /// An attempt that times out is re-sent with the same message ids; if a retry then
    /// fails, the subject is read to see whether the first attempt landed after all, so a
    /// commit is reported exactly once, as committed or not.
    pub async fn append(
        &self,
        subject: &str,
        expected_last: u64,
        records: &[EventRecord],
    ) -> Result<AppendOutcome, Error> {
        self.append_inner(subject, expected_last, records, &[], false).await
    }

    /// Like [`Self::append`], with the claims' events written first in the same atomic
    /// batch, each expecting its claim's last sequence: all are stored, or none.
    pub async fn append_claiming(
        &self,
        subject: &str,
        expected_last: u64,
        records: &[EventRecord],
        claims: &[ClaimRecord],
    ) -> Result<AppendOutcome, Error> {
        self.append_inner(subject, expected_last, records, claims, false).await
    }

    /// Re-sends a commit whose outcome is unknown (its ack was lost): succeeds, exactly
    /// once, whether or not the earlier attempt landed.
    pub async fn append_again(
        &self,
        subject: &str,
        expected_last: u64,
        records: &[EventRecord],
    ) -> Result<AppendOutcome, Error> {
        self.append_inner(subject, expected_last, records, &[], true).await
    }

    async fn append_inner(
        &self,
        subject: &str,
        expected_last: u64,
        records: &[EventRecord],
        claims: &[ClaimRecord],
        mut ambiguous: bool,
    ) -> Result<AppendOutcome, Error> {
        let Some(first) = records.first() else {
            return Ok(AppendOutcome {
                last_stream_sequence: expected_last,
                duplicate: false,
            });
        };
        let commit_id = first.commit_id.clone();
        if !ambiguous {
            self.reader.ensure_connected()?;
        }
        let started = tokio::time::Instant::now();
        let mut timeouts = 0;
        while timeouts <= self.config.timeout_retries {
            match self.try_append(subject, expected_last, records, claims).await {
                Ok(outcome) => return Ok(outcome),
                // Nobody heard it, so nothing was stored: on a cluster that lost the node
                // leading the stream, a new leader takes over within seconds. Sent again
                // (same ids) until then, within the append's time.
                Err(Error::NoStream(_)) if started.elapsed() < self.config.append_timeout => {
                    tracing::debug!(%subject, %commit_id, "no stream answered the append; sending it again");
                    tokio::time::sleep(NO_STREAM_RETRY).await;
                }
                Err(Error::Timeout) => {
                    timeouts += 1;
                    ambiguous = true;
                    tracing::warn!(%subject, %commit_id, "append timed out; re-sending with the same commit id");
                }
                Err(Error::NoStream(why)) if !ambiguous => return Err(Error::nats(why)),
                Err(e) if ambiguous => {
                    // An earlier attempt may have landed: only a definite answer from the
                    // stream may say "not committed"; anything else stays "unknown".
                    return match (self.find_commit(subject, expected_last, &commit_id).await, e) {
                        (Ok(Some(outcome)), _) => Ok(outcome),
                        (Ok(None), e @ (Error::Conflict | Error::Rejected { .. })) => Err(e),
                        _ => Err(Error::Timeout),
                    };
                }
                Err(e) => return Err(e),
            }
        }
        match self.find_commit(subject, expected_last, &commit_id).await {
            Ok(Some(outcome)) => Ok(outcome),
            _ => Err(Error::Timeout),
        }
    }

    /// Sends one attempt: a single message, or an atomic batch for several (the claims'
    /// events first, then the aggregate's, so the batch's ack names its last event).
    pub async fn try_append(
        &self,
        subject: &str,
        expected_last: u64,
        records: &[EventRecord],
        claims: &[ClaimRecord],
    ) -> Result<AppendOutcome, Error> {
        let client = &self.reader.client;
        let Some(first) = records.first() else {
            return Err(Error::nats("a commit needs at least one event"));
        };
        let commit_id = first.commit_id.as_str();
        let n = claims.len() + records.len();
        let mut last = None;
        let traceparent = crate::trace::current().map(|sc| crate::trace::traceparent(&sc));
        let parts = claims
            .iter()
            .map(|c| (c.subject.as_str(), Some(c.expected_last), &c.record))
            .chain(
                records
                    .iter()
                    .enumerate()
                    .map(|(i, rec)| (subject, (i == 0).then_some(expected_last), rec)),
            );
        let messages = parts.map(|(subject, expected, rec)| {
            let mut h: HeaderMap = rec.headers();
            if let Some(expected) = expected {
                h.insert(headers::EXPECTED_LAST_SUBJECT_SEQUENCE, expected.to_string().as_str());
            }
            let (body, hash) = match (&rec.body, &rec.hash) {
                (Some(b), Some(h)) => (b.clone(), h.clone()),
                _ => {
                    let (b, h) = rec.body_and_hash();
                    (b.into(), h)
                }
            };
            h.insert(headers::HASH, hash.as_str());
            (subject.to_string(), h, body)
        });
        for (i, (subject, mut h, body)) in messages.enumerate() {
            if let Some(tp) = &traceparent {
                h.insert(crate::trace::TRACEPARENT, tp.as_str());
            }
            h.insert(headers::MSG_ID, format!("{commit_id}:{i}").as_str());
            if n > 1 {
                h.insert(headers::BATCH_ID, commit_id);
                h.insert(headers::BATCH_SEQUENCE, (i + 1).to_string().as_str());
                if i + 1 == n {
                    h.insert(headers::BATCH_COMMIT, "1");
                }
            }
            if i + 1 < n {
                client
                    .publish_with_headers(subject, h, body)
                    .await
                    .map_err(Error::nats)?;
            } else {
                let request = tokio::time::timeout(
                    self.config.append_timeout,
                    client.request_with_headers(subject.clone(), h, body),
                );
                // A connection lost while waiting ends the wait at once: the outcome is
                // unknown (the message may have been stored), not a whole timeout later.
                let reply = tokio::select! {
                    r = request => r.map_err(|_| Error::Timeout)?.map_err(|e| match e.kind() {
                        async_nats::RequestErrorKind::NoResponders => Error::NoStream(format!(
                            "no stream listens on {subject}; is the event stream {} there?",
                            self.config.stream
                        )),
                        // Sent, and no answer: it may have been stored.
                        _ => Error::Timeout,
                    })?,
                    _ = self.reader.disconnected() => return Err(Error::Timeout),
                };
                last = Some(reply);
            }
        }
        let reply = last.expect("at least one record");
        let ack: AckBody = serde_json::from_slice(&reply.payload).map_err(Error::nats)?;
        if let Some(err) = ack.error {
            if CONFLICT_CODES.contains(&err.err_code) {
                return Err(Error::Conflict);
            }
            return Err(Error::Rejected {
                code: err.err_code,
                description: err.description,
            });
        }
        Ok(AppendOutcome {
            last_stream_sequence: ack.seq,
            duplicate: ack.duplicate,
        })
    }

    /// Whether the commit `commit_id` landed on `subject` after `expected_last`.
    async fn find_commit(
        &self,
        subject: &str,
        expected_last: u64,
        commit_id: &str,
    ) -> Result<Option<AppendOutcome>, Error> {
        let after = self.reader.read_subject(subject, expected_last + 1).await?;
        Ok(after
            .iter()
            .filter(|r| r.commit_id == commit_id)
            .map(|r| r.stream_sequence)
            .max()
            .map(|last| AppendOutcome {
                last_stream_sequence: last,
                duplicate: true,
            }))
    }

    /// Loads an aggregate from its events, upcasting old versions.
    pub async fn load<A: Aggregate>(&self, aggregate_id: &str) -> Result<JsAggregateContext<A>, Error> {
        let (envelopes, stream_sequence, last_hash) = self.envelopes_after::<A>(aggregate_id, 0, 0).await?;
        let mut aggregate = A::default();
        let version = envelopes.len();
        for env in envelopes {
            aggregate.apply(env.payload);
        }
        Ok(JsAggregateContext {
            aggregate_id: aggregate_id.to_string(),
            aggregate,
            version,
            stream_sequence,
            last_hash,
        })
    }

    /// Brings a loaded aggregate up to date by applying only the events stored after it:
    /// what a stale cache costs after a conflict, instead of a full reload.
    pub async fn catch_up<A: Aggregate>(&self, context: &mut JsAggregateContext<A>) -> Result<(), Error> {
        let (envelopes, last, last_hash) = self
            .envelopes_after::<A>(&context.aggregate_id, context.stream_sequence, context.version)
            .await?;
        if !envelopes.is_empty() {
            context.last_hash = last_hash;
        }
        for env in envelopes {
            context.aggregate.apply(env.payload);
            context.version += 1;
        }
        context.stream_sequence = context.stream_sequence.max(last);
        Ok(())
    }

    /// Events of one aggregate stored after `stream_sequence`, which must continue its
    /// history from `version`.
    async fn envelopes_after<A: Aggregate>(
        &self,
        aggregate_id: &str,
        stream_sequence: u64,
        version: usize,
    ) -> Result<(Vec<EventEnvelope<A>>, u64, Option<String>), Error> {
        let subject = self.subject(A::TYPE, aggregate_id);
        let records = self.reader.read_subject(&subject, stream_sequence + 1).await?;
        let last = records.last().map_or(0, |r| r.stream_sequence);
        let last_hash = records.last().and_then(|r| r.hash.clone());
        let mut out = Vec::with_capacity(records.len());
        for (i, rec) in records.into_iter().enumerate() {
            let i = i + version;
            if rec.aggregate_sequence != i as u64 + 1 {
                return Err(Error::Malformed {
                    sequence: rec.stream_sequence,
                    reason: format!(
                        "aggregate sequence {} where {} was expected: the history of {}/{} has a gap",
                        rec.aggregate_sequence,
                        i + 1,
                        A::TYPE,
                        aggregate_id
                    ),
                });
            }
            out.push(self.to_envelope::<A>(rec)?);
        }
        Ok((out, last, last_hash))
    }

    /// Turns a stored record into a typed event, upcasting it first.
    pub fn to_envelope<A: Aggregate>(&self, rec: EventRecord) -> Result<EventEnvelope<A>, Error> {
        let seq = rec.stream_sequence;
        let serialized = SerializedEvent::new(
            rec.aggregate_id,
            rec.aggregate_sequence as usize,
            rec.aggregate_type,
            rec.event_type,
            rec.event_version,
            rec.payload,
            serde_json::to_value(&rec.metadata).unwrap_or_default(),
        );
        let upcast = self.upcasters.iter().fold(serialized, |ev, u| {
            if u.can_upcast(&ev.event_type, &ev.event_version) {
                u.upcast(ev)
            } else {
                ev
            }
        });
        let payload: A::Event = serde_json::from_value(upcast.payload).map_err(|e| Error::Malformed {
            sequence: seq,
            reason: format!("{} {}: {e}", upcast.event_type, upcast.event_version),
        })?;
        let metadata = serde_json::from_value(upcast.metadata).unwrap_or_default();
        Ok(EventEnvelope {
            aggregate_id: upcast.aggregate_id,
            sequence: upcast.sequence,
            payload,
            metadata,
        })
    }

    /// Builds the records of one commit: a fresh commit id, consecutive aggregate
    /// sequences after `version`, the command's metadata on each, and each chained by hash
    /// to the one before it (the first to `prev_hash`, the aggregate's last event).
    pub fn records_for<A: Aggregate>(
        &self,
        aggregate_id: &str,
        version: usize,
        events: &[A::Event],
        metadata: &HashMap<String, String>,
        prev_hash: Option<String>,
    ) -> Vec<EventRecord> {
        let commit_id = Uuid::now_v7().to_string();
        let now = Utc::now();
        let mut metadata: std::collections::BTreeMap<_, _> = metadata.clone().into_iter().collect();
        if let Some(sc) = crate::trace::current() {
            metadata.insert(crate::trace::TRACE_ID.to_string(), sc.trace_id().to_string());
        }
        let mut prev = prev_hash;
        events
            .iter()
            .enumerate()
            .map(|(i, ev)| EventRecord {
                event_id: Uuid::now_v7().to_string(),
                aggregate_type: A::TYPE.to_string(),
                aggregate_id: aggregate_id.to_string(),
                aggregate_sequence: (version + i + 1) as u64,
                event_type: ev.event_type(),
                event_version: ev.event_version(),
                timestamp: now,
                commit_id: commit_id.clone(),
                metadata: metadata.clone(),
                payload: serde_json::to_value(ev).expect("events serialize to JSON"),
                prev_hash: None,
                stream_sequence: 0,
                hash: None,
                body: None,
            })
            .map(|mut rec| {
                rec.rehash(prev.take());
                prev = rec.hash.clone();
                rec
            })
            .collect()
    }

    /// The claims' events of a commit whose first event is `first`: the same commit id,
    /// time and metadata (the same actor), each continuing its claim's chain.
    fn claim_records(&self, first: &EventRecord, claims: &[ClaimWrite]) -> Vec<ClaimRecord> {
        claims
            .iter()
            .map(|c| {
                let mut record = EventRecord {
                    event_id: Uuid::now_v7().to_string(),
                    aggregate_type: claims::TYPE.to_string(),
                    aggregate_id: c.key.clone(),
                    aggregate_sequence: c.read.version + 1,
                    event_type: c.event.event_type(),
                    event_version: c.event.event_version(),
                    timestamp: first.timestamp,
                    commit_id: first.commit_id.clone(),
                    metadata: first.metadata.clone(),
                    payload: serde_json::to_value(&c.event).expect("claims serialize to JSON"),
                    prev_hash: None,
                    stream_sequence: 0,
                    hash: None,
                    body: None,
                };
                record.rehash(c.read.last_hash.clone());
                ClaimRecord {
                    subject: self.subject(claims::TYPE, &c.key),
                    expected_last: c.read.sequence,
                    record,
                }
            })
            .collect()
    }

    /// Commits `events` against a loaded context; returns the envelopes and the outcome.
    pub async fn commit_events<A: Aggregate>(
        &self,
        events: Vec<A::Event>,
        context: &JsAggregateContext<A>,
        metadata: HashMap<String, String>,
        claims: &[ClaimWrite],
    ) -> Result<Commit<A>, Error> {
        self.commit_keeping(events, context, metadata, claims)
            .await
            .map_err(|(e, _)| e)
    }

    /// Like [`Self::commit_events`]; a commit that failed comes back with the error, as it
    /// was sent, so that it can be sent again exactly once ([`Self::send_again`]).
    #[tracing::instrument(name = "commit", skip_all, fields(aggregate_type = A::TYPE, aggregate_id = %context.aggregate_id, events = events.len()))]
    pub async fn commit_keeping<A: Aggregate>(
        &self,
        events: Vec<A::Event>,
        context: &JsAggregateContext<A>,
        metadata: HashMap<String, String>,
        claims: &[ClaimWrite],
    ) -> Result<Commit<A>, (Error, Unsent)> {
        let records = self.records_for::<A>(
            &context.aggregate_id,
            context.version,
            &events,
            &metadata,
            context.last_hash.clone(),
        );
        let claims = self.claim_records(&records[0], claims);
        let last_hash = records.last().and_then(|r| r.hash.clone());
        let subject = self.subject(A::TYPE, &context.aggregate_id);
        let outcome = match self
            .append_claiming(&subject, context.stream_sequence, &records, &claims)
            .await
        {
            Ok(o) => o,
            Err(e) => {
                return Err((
                    e,
                    Unsent {
                        subject,
                        expected_last: context.stream_sequence,
                        records,
                        claims,
                    },
                ));
            }
        };
        let envelopes = events
            .into_iter()
            .enumerate()
            .map(|(i, payload)| EventEnvelope {
                aggregate_id: context.aggregate_id.clone(),
                sequence: context.version + i + 1,
                payload,
                metadata: metadata.clone(),
            })
            .collect();
        Ok((envelopes, outcome, last_hash))
    }
}

/// A commit that did not get through, as it was sent.
#[derive(Debug, Clone)]
pub struct Unsent {
    subject: String,
    expected_last: u64,
    records: Vec<EventRecord>,
    claims: Vec<ClaimRecord>,
}

impl JetStreamEventStore {
    /// Sends `unsent` again with its commit id: it lands once, whether or not an earlier
    /// attempt did; `Conflict` when another commit took its place meanwhile.
    pub async fn send_again(&self, unsent: &Unsent) -> Result<AppendOutcome, Error> {
        self.append_inner(
            &unsent.subject,
            unsent.expected_last,
            &unsent.records,
            &unsent.claims,
            true,
        )
        .await
    }
}

/// What a commit produced: its envelopes, where it landed, and the hash of its last event.
pub type Commit<A> = (Vec<EventEnvelope<A>>, AppendOutcome, Option<String>);

impl<A: Aggregate> EventStore<A> for JetStreamEventStore {
    type AC = JsAggregateContext<A>;

    async fn load_events(&self, aggregate_id: &str) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        Ok(self.envelopes_after::<A>(aggregate_id, 0, 0).await?.0)
    }

    async fn load_aggregate(&self, aggregate_id: &str) -> Result<Self::AC, AggregateError<A::Error>> {
        Ok(self.load::<A>(aggregate_id).await?)
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        context: Self::AC,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        Ok(self.commit_events(events, &context, metadata, &[]).await?.0)
    }
}
