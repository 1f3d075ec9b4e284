//! Command execution: cached aggregates, one-round-trip commits, bounded retry on conflict.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, EventEnvelope};

use crate::claims::{ClaimRules, ClaimWrite};
use crate::{CommandContext, Error, JetStreamEventStore, JsAggregateContext};

/// About this many aggregates are kept in memory, those used lately (a miss costs one
/// batched direct get): a console watching 50,000 consumers made outside keeps the few it
/// is asked to change, not every one it recorded.
const CACHE_LIMIT: usize = 4_096;

/// What a successful command committed.
#[derive(Debug)]
pub struct Committed<A: Aggregate> {
    pub aggregate_id: String,
    /// The aggregate after the command.
    pub state: A,
    /// The events written (empty when the command changed nothing).
    pub events: Vec<EventEnvelope<A>>,
    /// The aggregate's version (number of events) after the command.
    pub version: usize,
    /// Stream sequence of the aggregate's last event: read models that have applied this
    /// sequence show the command's effect.
    pub stream_sequence: u64,
}

/// Why a command did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The aggregate refused the command (a rule of the domain); nothing was written.
    #[error(transparent)]
    Rejected(E),
    /// Other writers kept changing the aggregate; retries did not get through.
    #[error("the aggregate kept changing concurrently; reload it and retry")]
    Conflict,
    /// The event store failed (timeout, NATS unreachable, malformed history).
    #[error(transparent)]
    Store(#[from] Error),
    /// The command's side effect was made, but its events could not be committed: they are
    /// committed, exactly once, as soon as the store answers again.
    #[error("made but not recorded yet: {0}")]
    Unrecorded(Error),
}

/// Executes commands on one aggregate type.
///
/// Commands on the same aggregate run one at a time within a repository (side effects in
/// `handle`, such as changing a managed cluster, never interleave); across replicas the
/// stream's sequence check decides. Keeps loaded aggregates in memory with the stream sequence of their last event, so a
/// command on a warm aggregate costs exactly one JetStream round trip. When another writer
/// (another replica, or a racing task) got there first, JetStream refuses the commit; the
/// aggregate is then reloaded and the command handled again against the fresh state, up
/// to `max_conflict_retries` times, after which the caller gets `AggregateConflict`.
pub struct Repository<A: Aggregate> {
    store: JetStreamEventStore,
    services: A::Services,
    cache: Mutex<crate::Recent<String, JsAggregateContext<A>>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    max_conflict_retries: u32,
    claims: Option<ClaimRules<A>>,
    side_effects: bool,
}

/// How long a command waits for the others on its aggregate before it is refused.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a change made but not recorded is kept, to be committed once the store is back.
const RECORD_LATER_FOR: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl<A> Repository<A>
where
    A: Aggregate + Clone,
    A::Command: Clone,
    A::Error: 'static,
{
    pub fn new(store: JetStreamEventStore, services: A::Services) -> Self {
        Self {
            store,
            services,
            cache: Mutex::new(crate::Recent::new(CACHE_LIMIT)),
            locks: Mutex::new(HashMap::new()),
            max_conflict_retries: 5,
            claims: None,
            side_effects: false,
        }
    }

    /// This type's commands change the world outside the console (a managed cluster) before
    /// their events are committed. A command is then refused at once while the store is
    /// unreachable (nothing was changed), and one whose commit fails after its side effect
    /// answers [`CommandError::Unrecorded`]: its events, as they were, are committed once the
    /// store is back, with the aggregate held meanwhile so that no other command on it (such
    /// as recording the same change as made outside the console) comes first.
    pub fn with_side_effects(mut self) -> Self {
        self.side_effects = true;
        self
    }

    /// Makes the keys `rules` name unique among this type's aggregates: a command whose
    /// state would hold a key another aggregate holds is refused with `rules.taken`, and
    /// the keys are taken and released in the same atomic batch as the command's events.
    pub fn with_claims(mut self, rules: ClaimRules<A>) -> Self {
        self.claims = Some(rules);
        self
    }

    pub fn with_max_conflict_retries(mut self, n: u32) -> Self {
        self.max_conflict_retries = n;
        self
    }

    pub fn store(&self) -> &JetStreamEventStore {
        &self.store
    }

    /// Runs `command` on aggregate `aggregate_id` and commits what it emits.
    pub fn execute<'a>(
        &'a self,
        aggregate_id: &'a str,
        command: A::Command,
        ctx: &'a CommandContext,
    ) -> impl Future<Output = Result<Committed<A>, CommandError<A::Error>>> + 'a {
        // Not an `async fn` of its own: no second future around the command's, which is
        // deep enough already in debug builds.
        self.run(aggregate_id, command, ctx, false)
    }

    /// [`Self::execute`], for a command that changes nothing outside the console (an
    /// observation), on an aggregate that is `probably_new` (no view holds it yet): when
    /// the aggregate is not in memory, the command is handled against an empty one instead
    /// of reading its history first. A history that exists after all makes the commit
    /// conflict (it expects none), and the command is handled again against that history.
    /// So a burst of resources made outside the console costs one round trip each to
    /// record, not two; a wrong guess costs one more.
    pub fn execute_as_new<'a>(
        &'a self,
        aggregate_id: &'a str,
        command: A::Command,
        ctx: &'a CommandContext,
        probably_new: bool,
    ) -> impl Future<Output = Result<Committed<A>, CommandError<A::Error>>> + 'a {
        self.run(aggregate_id, command, ctx, probably_new)
    }

    #[tracing::instrument(name = "command", skip(self, command, ctx), fields(aggregate_type = A::TYPE, actor = %ctx.actor, correlation_id = %ctx.correlation_id))]
    async fn run(
        &self,
        aggregate_id: &str,
        command: A::Command,
        ctx: &CommandContext,
        probably_new: bool,
    ) -> Result<Committed<A>, CommandError<A::Error>> {
        let metadata = ctx.to_metadata();
        if self.side_effects {
            self.store.reader().ensure_connected()?;
        }
        let lock = self.lock_for(aggregate_id);
        // Bounded: an earlier change still waiting to be recorded (its store hangs) must not
        // make this one wait without end.
        let serialized = tokio::time::timeout(LOCK_WAIT, lock.lock_owned()).await.map_err(|_| {
            CommandError::Store(Error::nats(
                "an earlier change to it is still waiting for the console's NATS; nothing was changed",
            ))
        })?;
        let mut attempt = 0;
        loop {
            let loaded = match self.cached(aggregate_id) {
                Some(hit) => hit,
                None if probably_new && attempt == 0 => JsAggregateContext::empty(aggregate_id),
                // A read that failed changed nothing, whatever the reason.
                None => self.load_uncached(aggregate_id).await.map_err(Error::unanswered)?,
            };
            let mut working = loaded.clone();
            let sink = EventSink::default();
            working
                .aggregate
                .handle(command.clone(), &self.services, &sink)
                .await
                .map_err(CommandError::Rejected)?;
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(Committed {
                    aggregate_id: aggregate_id.to_string(),
                    state: working.aggregate,
                    events: Vec::new(),
                    version: working.version,
                    stream_sequence: working.stream_sequence,
                });
            }
            let claims = self
                .claims_for(aggregate_id, &loaded.aggregate, &working.aggregate)
                .await?;
            match self
                .store
                .commit_keeping(events, &loaded, metadata.clone(), &claims)
                .await
            {
                Ok((envelopes, outcome, last_hash)) => {
                    let committed = JsAggregateContext {
                        aggregate_id: aggregate_id.to_string(),
                        aggregate: working.aggregate,
                        version: loaded.version + envelopes.len(),
                        stream_sequence: outcome.last_stream_sequence,
                        last_hash,
                    };
                    let result = Committed {
                        aggregate_id: aggregate_id.to_string(),
                        state: committed.aggregate.clone(),
                        events: envelopes,
                        version: committed.version,
                        stream_sequence: committed.stream_sequence,
                    };
                    self.put_cache(committed);
                    ctx.receipt.record(result.stream_sequence);
                    return Ok(result);
                }
                Err((Error::Conflict, _)) => {
                    self.refresh(aggregate_id, loaded).await?;
                    attempt += 1;
                    if attempt > self.max_conflict_retries {
                        tracing::info!(attempts = attempt, "giving up after repeated conflicts");
                        return Err(CommandError::Conflict);
                    }
                    tracing::debug!(attempt, "conflict; reloading and retrying");
                }
                Err((e @ (Error::Timeout | Error::Nats(_)), unsent)) if self.side_effects => {
                    self.evict(aggregate_id);
                    let (store, what) = (self.store.clone(), format!("{}/{aggregate_id}", A::TYPE));
                    tokio::spawn(record_later(store, unsent, serialized, what));
                    return Err(CommandError::Unrecorded(e));
                }
                Err((e, _)) => {
                    self.evict(aggregate_id);
                    return Err(CommandError::Store(e));
                }
            }
        }
    }

    /// The claim writes taking `after` from `before` needs. Every key `after` holds is read,
    /// not only new ones, so an aggregate made before its type had claims takes its keys on
    /// its next command.
    async fn claims_for(
        &self,
        aggregate_id: &str,
        before: &A,
        after: &A,
    ) -> Result<Vec<ClaimWrite>, CommandError<A::Error>> {
        let Some(rules) = self.claims else {
            return Ok(Vec::new());
        };
        let (before_keys, after_keys) = ((rules.keys)(before), (rules.keys)(after));
        let mut states = HashMap::new();
        for key in after_keys.iter().chain(&before_keys) {
            if !states.contains_key(key) {
                states.insert(key.clone(), self.store.read_claim(key).await?);
            }
        }
        let holder = format!("{}/{aggregate_id}", A::TYPE);
        crate::claims::plan(&holder, &before_keys, &after_keys, |k| {
            states.get(k).cloned().unwrap_or_default()
        })
        .map_err(|key| CommandError::Rejected((rules.taken)(after, &key)))
    }

    /// The aggregate's current state and version, from the cache or the stream.
    pub async fn load(&self, aggregate_id: &str) -> Result<(A, usize), Error> {
        let ctx = self.load_context(aggregate_id).await?;
        Ok((ctx.aggregate, ctx.version))
    }

    /// Drops every cached aggregate (after a rebuild, or in tests).
    pub fn clear_cache(&self) {
        self.cache.lock().expect("cache lock").clear();
    }

    fn cached(&self, aggregate_id: &str) -> Option<JsAggregateContext<A>> {
        self.cache.lock().expect("cache lock").get(aggregate_id).cloned()
    }

    async fn load_context(&self, aggregate_id: &str) -> Result<JsAggregateContext<A>, Error> {
        match self.cached(aggregate_id) {
            Some(hit) => Ok(hit),
            None => self.load_uncached(aggregate_id).await,
        }
    }

    /// Reads the aggregate's history and keeps it in memory.
    async fn load_uncached(&self, aggregate_id: &str) -> Result<JsAggregateContext<A>, Error> {
        let loaded = self.store.load::<A>(aggregate_id).await?;
        self.put_cache(loaded.clone());
        Ok(loaded)
    }

    /// After a conflict: brings the newest known state (ours or a racing task's) up to
    /// date with what is in the stream, reading only the events we have not seen.
    async fn refresh(&self, aggregate_id: &str, stale: JsAggregateContext<A>) -> Result<(), Error> {
        let mut newest = match self.cached(aggregate_id) {
            Some(c) if c.stream_sequence > stale.stream_sequence => c,
            _ => stale,
        };
        if let Err(e) = self.store.catch_up(&mut newest).await {
            self.evict(aggregate_id);
            return Err(e);
        }
        self.put_cache(newest);
        Ok(())
    }

    fn put_cache(&self, ctx: JsAggregateContext<A>) {
        let mut cache = self.cache.lock().expect("cache lock");
        cache.trim();
        // Never replace a newer cached state with an older one (racing tasks).
        match cache.get(&ctx.aggregate_id) {
            Some(existing) if existing.stream_sequence > ctx.stream_sequence => {}
            _ => {
                cache.insert(ctx.aggregate_id.clone(), ctx);
            }
        }
    }

    fn lock_for(&self, aggregate_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("locks lock");
        if locks.len() >= CACHE_LIMIT {
            // Drop the locks nobody holds.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(aggregate_id.to_string()).or_default().clone()
    }

    fn evict(&self, aggregate_id: &str) {
        self.cache.lock().expect("cache lock").remove(aggregate_id);
    }
}

/// Commits `unsent` once the store is reachable again, holding the aggregate's lock
/// (`_held`) until then; gives up after [`RECORD_LATER_FOR`].
async fn record_later(
    store: JetStreamEventStore,
    unsent: crate::Unsent,
    _held: tokio::sync::OwnedMutexGuard<()>,
    what: String,
) {
    let until = tokio::time::Instant::now() + RECORD_LATER_FOR;
    loop {
        if store.reader().ensure_connected().is_ok() {
            match store.send_again(&unsent).await {
                Ok(outcome) => {
                    tracing::info!(aggregate = %what, sequence = outcome.last_stream_sequence, "recorded a change made while the console's NATS was away");
                    return;
                }
                Err(Error::Conflict) => {
                    tracing::error!(aggregate = %what, "a change made while the console's NATS was away was recorded otherwise meanwhile (as made outside the console?); its own record is dropped");
                    return;
                }
                Err(e @ (Error::Rejected { .. } | Error::Malformed { .. })) => {
                    tracing::error!(aggregate = %what, error = %e, "a change made while the console's NATS was away could not be recorded");
                    return;
                }
                Err(_) => {}
            }
        }
        if tokio::time::Instant::now() > until {
            tracing::error!(aggregate = %what, "gave up recording a change made while the console's NATS was away; the reconciler records it as made outside the console");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
