//! Changes made outside the console: for every managed cluster, follow JetStream's API
//! audit advisories and reconcile periodically, so streams and consumers created, edited
//! or deleted with the `nats` CLI or any client land in the history as external changes.
//!
//! The console's own connections carry the client name `jsconsole`; advisories for their
//! requests are ignored (the console recorded those changes itself). Every observation goes
//! through the aggregate's `Observe` command, which reads the server inside the aggregate's
//! lock and records only a real difference, so nothing is recorded twice.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use jsc_domain::consumer::ConsumerConfig;
use jsc_domain::stream::{ChangeOrigin, Seen, StreamCommand, StreamConfig, stream_id};
use jsc_eventstore::CommandContext;
use jsc_fleet::CLIENT_NAME;
use jsc_projections::compact::Compact;
use jsc_projections::{stream_key, streams_group};
use tokio_util::sync::CancellationToken;

use crate::Console;

impl Console {
    /// Streams the console keeps for itself (its events, its views, its audit state, its
    /// leases and replay scratch buckets); never recorded as managed resources.
    pub fn is_internal_stream(&self, name: &str) -> bool {
        name == self.store.config().stream
            || name == crate::deadletters::DEAD_LETTERS_STREAM
            || name == jsc_metrics::store::METRICS_STREAM
            || name == crate::alerting::DELIVERIES_STREAM
            || name.strip_prefix("KV_") == Some(crate::alerting::NOTIFIED_BUCKET)
            || name.strip_prefix("KV_") == Some(crate::lease::LEASES_BUCKET)
            || ["KV_view_", "KV_audit_", "KV_scratch_", "KV_auth_", "KV_graphql_"]
                .iter()
                .any(|p| name.starts_with(p))
    }
}

/// Follows every registered cluster until `shutdown`, starting and stopping per-cluster
/// watchers as clusters are registered, changed and removed.
pub(crate) async fn run(console: Console, interval: Duration, queue: usize, shutdown: CancellationToken) {
    let mut changes = console.views.clusters.subscribe();
    let mut running: HashMap<String, (u64, CancellationToken)> = HashMap::new();
    loop {
        let wanted: HashMap<String, u64> = console
            .views
            .clusters
            .list()
            .into_iter()
            // Restart a cluster's watcher only when the way to reach it changed.
            .map(|c| (c.view.id.clone(), c.view.connection_version))
            .collect();
        running.retain(|id, (fp, token)| {
            let keep = wanted.get(id) == Some(fp);
            if !keep {
                token.cancel();
            }
            keep
        });
        for (id, fp) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let token = shutdown.child_token();
            running.insert(id.clone(), (fp, token.clone()));
            tokio::spawn(watch_cluster(console.clone(), id, interval, queue, token));
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            c = changes.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = c {
                    return;
                }
            }
        }
    }
}

/// Outside changes waiting to be recorded per cluster, at most, by default: past it,
/// advisories are dropped and a reconcile is asked for at once instead (it finds every
/// difference, without the client). A waiting create holds its configuration compact
/// (the fields set, a few hundred bytes), so a full queue stays in the tens of MiB.
pub const OUTSIDE_CHANGES_QUEUE: usize = 65_536;

/// Outside changes recorded at once (each a command: a read of the managed server and a
/// commit on the home NATS). A burst of thousands is recorded in batches of this many in
/// flight, each change still its own event with its client.
const IN_FLIGHT: usize = 32;

/// Changes the recorder takes off the queue ahead of its tasks, at most: past it, they wait
/// in the bounded queue (and overflow it into a reconcile), not in the recorder's memory.
const HELD: usize = 64 * IN_FLIGHT;

async fn watch_cluster(
    console: Console,
    cluster_id: String,
    interval: Duration,
    queue: usize,
    token: CancellationToken,
) {
    let (changes, queue) = tokio::sync::mpsc::channel(queue.max(1));
    let overflow = std::sync::Arc::new(tokio::sync::Notify::new());
    tokio::spawn(record(console.clone(), cluster_id.clone(), queue, token.clone()));
    tokio::spawn(reconcile_every(
        console.clone(),
        cluster_id.clone(),
        interval,
        overflow.clone(),
        token.clone(),
    ));
    let mut backoff = Duration::from_millis(200);
    loop {
        let admin = tokio::select! {
            _ = token.cancelled() => return,
            a = console.live.managed().admin(&cluster_id) => a,
        };
        let admin = match admin {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(cluster = %cluster_id, error = %e, "cannot watch the cluster yet");
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(interval);
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        let mut advisories = match admin.client().subscribe("$JS.EVENT.ADVISORY.API").await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(cluster = %cluster_id, error = %e, "cannot subscribe to advisories");
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
                continue;
            }
        };
        let mut dead_letters = Vec::new();
        for subject in crate::deadletters::ADVISORIES {
            match admin.client().subscribe(subject).await {
                Ok(s) => dead_letters.push(s),
                Err(e) => tracing::warn!(cluster = %cluster_id, error = %e, "cannot follow dead letters"),
            }
        }
        let mut dead_letters = futures::stream::select_all(dead_letters);
        let _ = admin.client().flush().await;
        // Changes made while no one listened are found by a reconcile.
        overflow.notify_one();
        // This loop only reads: every API request makes an advisory (the console's own
        // reads too), so it must keep up with the server.
        let mut overflowing = false;
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                msg = advisories.next() => match msg {
                    Some(m) => {
                        let Some(change) = parse_advisory(&m.payload) else { continue };
                        match changes.try_send(change) {
                            Ok(()) => overflowing = false,
                            // Said once per overflow, not once per change dropped.
                            Err(_) if !overflowing => {
                                overflowing = true;
                                tracing::warn!(cluster = %cluster_id, "outside changes arrive faster than they are recorded; reconciling instead");
                                overflow.notify_one();
                            }
                            Err(_) => overflow.notify_one(),
                        }
                    }
                    None => break,
                },
                Some(m) = dead_letters.next() => console.record_dead_letter(&cluster_id, &m.payload).await,
            }
        }
    }
}

/// Reconciles a cluster every `interval`, and at once when asked (advisories were missed).
async fn reconcile_every(
    console: Console,
    cluster_id: String,
    interval: Duration,
    now: std::sync::Arc<tokio::sync::Notify>,
    token: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        // A walk spread over half the interval on schedule; at once when asked.
        let spread = tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => interval / 2,
            _ = now.notified() => {
                tick.reset();
                Duration::ZERO
            }
        };
        tokio::select! {
            _ = token.cancelled() => return,
            _ = reconcile(&console, &cluster_id, spread) => {}
        }
    }
}

/// What one recording task does: observe one change, or (once a stream's changes are all
/// recorded) read the stream's live state again.
#[derive(Debug, Clone, PartialEq)]
enum Work {
    Observe(Change),
    Refresh,
}

/// Records the outside changes the advisories announce, [`IN_FLIGHT`] at a time. Changes to
/// one stream (and its consumers) are recorded one after the other, in the order they came;
/// a change to a resource that already has one waiting takes that one's place (the newest
/// answer is the one to record, and without one the server is read when it runs). Once a
/// stream has nothing left waiting, its live state is read again, once.
async fn record(
    console: Console,
    cluster_id: String,
    mut queue: tokio::sync::mpsc::Receiver<Change>,
    token: CancellationToken,
) {
    use std::collections::VecDeque;
    let mut waiting: HashMap<String, VecDeque<Work>> = HashMap::new();
    let mut ready: VecDeque<String> = VecDeque::new();
    // Streams in `ready` or with a task running: each at most once.
    let mut scheduled: std::collections::HashSet<String> = Default::default();
    let mut tasks = futures::stream::FuturesUnordered::new();
    // Changes in `waiting` (see [`HELD`]).
    let mut held = 0;
    loop {
        while tasks.len() < IN_FLIGHT
            && let Some(stream) = ready.pop_front()
        {
            let Some(work) = waiting.get_mut(&stream).and_then(VecDeque::pop_front) else {
                continue;
            };
            held -= 1;
            let (console, cluster_id) = (console.clone(), cluster_id.clone());
            tasks.push(async move {
                let observed = matches!(work, Work::Observe(_));
                match work {
                    Work::Observe(change) => on_change(&console, &cluster_id, change).await,
                    // The changed stream's state read again on its own (a burst of outside
                    // changes costs a read per stream, not a list of the cluster).
                    Work::Refresh => console.live.stream_changed(&cluster_id, &stream).await,
                }
                (stream, observed)
            });
        }
        tokio::select! {
            _ = token.cancelled() => return,
            change = queue.recv(), if held < HELD => {
                let Some(change) = change else { return };
                let stream = change.touched.stream().to_string();
                let q = waiting.entry(stream.clone()).or_default();
                if let Some(Work::Observe(older)) = q
                    .iter_mut()
                    .find(|w| matches!(w, Work::Observe(c) if c.touched.same_resource(&change.touched)))
                {
                    *older = change;
                    continue;
                }
                q.push_back(Work::Observe(change));
                held += 1;
                // A stream whose task runs is put back when it ends.
                if scheduled.insert(stream.clone()) {
                    ready.push_back(stream);
                }
            }
            Some((stream, observed)) = tasks.next(), if !tasks.is_empty() => {
                let q = waiting.entry(stream.clone()).or_default();
                if q.is_empty() && observed {
                    q.push_back(Work::Refresh);
                    held += 1;
                }
                if q.is_empty() {
                    waiting.remove(&stream);
                    scheduled.remove(&stream);
                } else {
                    ready.push_back(stream);
                }
            }
        }
    }
}

/// What an API audit advisory says was changed; for a create or an update, with the
/// configuration its answer showed (recorded without asking the server when the console
/// knows none for the resource: [`Seen::Answer`]), kept compact while it waits.
#[derive(Debug, Clone, PartialEq)]
enum Touched {
    Stream(String, Option<Compact<StreamConfig>>),
    Consumer(String, String, Option<Compact<ConsumerConfig>>),
}

/// An outside change, as an API audit advisory tells it.
#[derive(Debug, Clone, PartialEq)]
struct Change {
    touched: Touched,
    /// Who made it: the client's name (or language), user and host.
    client: String,
}

impl Touched {
    /// The stream changed, or whose consumer was.
    fn stream(&self) -> &str {
        match self {
            Touched::Stream(s, _) | Touched::Consumer(s, _, _) => s,
        }
    }

    /// Whether `other` changed the same stream or consumer.
    fn same_resource(&self, other: &Touched) -> bool {
        match (self, other) {
            (Touched::Stream(a, _), Touched::Stream(b, _)) => a == b,
            (Touched::Consumer(s, a, _), Touched::Consumer(t, b, _)) => s == t && a == b,
            _ => false,
        }
    }
}

/// What an observation knows from the change's answer.
fn answered<C: serde::Serialize + serde::de::DeserializeOwned>(made: Option<Compact<C>>) -> Seen<C> {
    made.map_or(Seen::Nothing, |c| Seen::Answer(Box::new(c.get())))
}

/// An API audit advisory, as far as the watcher reads it. Every request to the JetStream API
/// makes one, reads included: each sample of the collector makes one per list page, with
/// the whole page as its `response`. So the subject is read first, without keeping anything
/// else, and the rest only for the few subjects that change something.
#[derive(serde::Deserialize)]
struct AuditSubject<'a> {
    #[serde(borrow)]
    subject: std::borrow::Cow<'a, str>,
}

#[derive(serde::Deserialize)]
struct Audit {
    #[serde(default)]
    client: AuditClient,
    #[serde(default)]
    response: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct AuditClient {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    host: Option<String>,
}

/// A JetStream API answer, as far as the watcher reads it: whether it is an error and, for
/// a create or an update, the configuration the server stored.
#[derive(serde::Deserialize)]
struct Answer<T> {
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
    #[serde(default = "Option::default")]
    config: Option<T>,
}

/// What `response` says: `None` for an error answer (nothing changed); otherwise, when
/// the request `made` something (a create or an update), the configuration it carries.
/// No answer, or one that cannot be read, is taken as a change without a configuration:
/// the server is read.
fn read_answer<T: serde::de::DeserializeOwned>(response: Option<&str>, made: bool) -> Option<Option<T>> {
    match response.map(serde_json::from_str::<Answer<T>>) {
        Some(Ok(a)) if a.error.is_some() => None,
        Some(Ok(a)) if made => Some(a.config),
        _ => Some(None),
    }
}

/// What an advisory's API subject begins with when the request may change something.
const CHANGING: [&str; 7] = [
    "STREAM.CREATE.",
    "STREAM.UPDATE.",
    "STREAM.DELETE.",
    "CONSUMER.CREATE.",
    "CONSUMER.DURABLE.CREATE.",
    "CONSUMER.DELETE.",
    "CONSUMER.PAUSE.",
];

/// Whether an advisory is for a request that changes nothing, told from its bytes: most
/// advisories are the lists and infos of readers (the console's collector among them), a
/// whole page of streams or consumers each, not worth parsing. Unsure: false.
fn changes_nothing(payload: &[u8]) -> bool {
    const AT: &[u8] = br#""subject":"$JS.API."#;
    memchr::memmem::find(payload, AT).is_some_and(|at| {
        let rest = &payload[at + AT.len()..];
        !CHANGING.iter().any(|c| rest.starts_with(c.as_bytes()))
    })
}

fn parse_advisory(payload: &[u8]) -> Option<Change> {
    if changes_nothing(payload) {
        return None;
    }
    let subject: AuditSubject = serde_json::from_slice(payload).ok()?;
    let tokens: Vec<&str> = subject.subject.strip_prefix("$JS.API.")?.split('.').collect();
    // The stream, the consumer (if one), and whether the answer carries what was made.
    let (stream, consumer, made) = match tokens.as_slice() {
        ["STREAM", verb @ ("CREATE" | "UPDATE" | "DELETE"), stream] => (*stream, None, *verb != "DELETE"),
        ["CONSUMER", "CREATE", stream, consumer, ..] | ["CONSUMER", "DURABLE", "CREATE", stream, consumer] => {
            (*stream, Some(*consumer), true)
        }
        ["CONSUMER", "DELETE" | "PAUSE", stream, consumer] => (*stream, Some(*consumer), false),
        _ => return None,
    };
    let audit: Audit = serde_json::from_slice(payload).ok()?;
    let client = audit.client;
    let name = client.name.unwrap_or_default();
    if name == CLIENT_NAME {
        return None;
    }
    let response = audit.response.as_deref();
    let touched = match consumer {
        None => {
            let config = read_answer::<StreamConfig>(response, made)?;
            Touched::Stream(stream.to_string(), config.as_ref().map(Compact::new))
        }
        Some(consumer) => {
            let config = read_answer::<ConsumerConfig>(response, made)?;
            // Ephemeral consumers (ordered consumers, KV watchers) come and go with their
            // clients; only durable ones are managed resources with a history.
            if config.as_ref().is_some_and(|c| c.durable_name.is_none()) {
                return None;
            }
            Touched::Consumer(
                stream.to_string(),
                consumer.to_string(),
                config.as_ref().map(Compact::new),
            )
        }
    };
    let who = if name.is_empty() {
        client
            .lang
            .map(|l| format!("{l} client"))
            .unwrap_or_else(|| "unnamed client".into())
    } else {
        name
    };
    let host = client.host.as_deref().unwrap_or("?");
    let desc = match client.user.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => format!("{who} ({u}@{host})"),
        None => format!("{who} ({host})"),
    };
    Some(Change { touched, client: desc })
}

/// Records one outside change an advisory announced.
async fn on_change(console: &Console, cluster_id: &str, change: Change) {
    let origin = ChangeOrigin::External {
        observed_via: "advisory".into(),
        client: Some(change.client),
    };
    let ctx = CommandContext::system("advisories").in_organization(console.cluster_organization(cluster_id).as_deref());
    match change.touched {
        Touched::Stream(name, made) if !console.is_internal_stream(&name) => {
            let gone = observe_stream(console, cluster_id, &name, origin.clone(), answered(made), &ctx).await;
            console
                .observe_consumers_of(cluster_id, &name, gone, origin.clone(), &ctx)
                .await;
        }
        Touched::Consumer(stream, name, made) if !console.is_internal_stream(&stream) => {
            console
                .observe_consumer(cluster_id, &stream, &name, origin, answered(made), &ctx)
                .await;
        }
        _ => {}
    }
}

/// Records what the server says about one stream; whether the stream is now gone (as far
/// as the console knows: false when it could not be recorded).
async fn observe_stream(
    console: &Console,
    cluster_id: &str,
    name: &str,
    origin: ChangeOrigin,
    seen: Seen<StreamConfig>,
    ctx: &CommandContext,
) -> bool {
    // A creation no view holds yet is recorded without reading a history first.
    let new = matches!(seen, Seen::Answer(_)) && !console.views.streams.contains(&stream_key(cluster_id, name));
    let cmd = StreamCommand::Observe {
        cluster_id: cluster_id.to_string(),
        name: name.to_string(),
        origin,
        seen,
    };
    let id = stream_id(cluster_id, name);
    match console.repos.streams.execute_as_new(&id, cmd, ctx, new).await {
        Ok(done) => done.state.config.is_none(),
        Err(e) => {
            tracing::warn!(cluster = %cluster_id, stream = %name, error = %e, "could not record an external stream change");
            false
        }
    }
}

/// Compares a cluster with the views, one page of streams (256) and their consumers at a
/// time, and observes every stream and durable consumer that differs; the pages are spread
/// over `spread`, so a big cluster is walked a little at a time rather than listed at once.
/// Cheap when nothing changed: one list request per page, one per stream that has or had
/// consumers, lookups in the views by key, and no command.
pub(crate) async fn reconcile(console: &Console, cluster_id: &str, spread: Duration) {
    let admin = match console.live.managed().admin(cluster_id).await {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(cluster = %cluster_id, error = %e, "reconcile skipped");
            return;
        }
    };
    let origin = ChangeOrigin::External {
        observed_via: "reconcile".into(),
        client: None,
    };
    let ctx = CommandContext::system("reconciler").in_organization(console.cluster_organization(cluster_id).as_deref());
    let started = tokio::time::Instant::now();
    let mut seen: HashSet<String> = HashSet::new();
    let mut offset = 0;
    loop {
        let (page, total) = match admin.list_streams_page(offset).await {
            Ok(page) => page,
            Err(e) => {
                tracing::info!(cluster = %cluster_id, error = %e, "reconcile: cannot list streams");
                return;
            }
        };
        offset += page.len();
        for info in page {
            let name = info.config.name.clone();
            if console.is_internal_stream(&name) {
                continue;
            }
            let known = console.views.streams.get(&stream_key(cluster_id, &name));
            if known.as_ref().map(|k| &k.view.config) != Some(&info.config.normalized()) {
                observe_stream(console, cluster_id, &name, origin.clone(), Seen::Nothing, &ctx).await;
            }
            reconcile_consumers(
                console,
                &admin,
                cluster_id,
                &name,
                info.state.consumer_count,
                &origin,
                &ctx,
            )
            .await;
            seen.insert(name);
        }
        if offset == 0 || offset >= total {
            break;
        }
        // The rest of the walk spread over what is left of `spread`.
        let pages_left = (total - offset).div_ceil(256) as u32 + 1;
        let left = spread.saturating_sub(started.elapsed());
        tokio::time::sleep(left / pages_left.max(1)).await;
    }
    // Streams the console knows that the walk did not meet: gone (or listed on a page that
    // moved; observing reads the server, so that costs one read).
    let gone: Vec<String> = console
        .views
        .streams
        .with_prefix(&(streams_group(cluster_id) + "."))
        .into_iter()
        .map(|s| s.view.name)
        .filter(|n| !seen.contains(n))
        .collect();
    for name in gone {
        let gone = observe_stream(console, cluster_id, &name, origin.clone(), Seen::Nothing, &ctx).await;
        console
            .observe_consumers_of(cluster_id, &name, gone, origin.clone(), &ctx)
            .await;
    }
}

/// Compares one stream's durable consumers with the view and observes each that differs;
/// a stream without consumers on the server or in the view costs nothing.
async fn reconcile_consumers(
    console: &Console,
    admin: &jsc_fleet::admin::Admin,
    cluster_id: &str,
    stream: &str,
    on_server: u64,
    origin: &ChangeOrigin,
    ctx: &CommandContext,
) {
    let known: HashMap<String, _> = console
        .views
        .consumers
        .with_prefix(&jsc_projections::consumers_prefix(cluster_id, stream))
        .into_iter()
        .map(|c| (c.view.name, c.view.config))
        .collect();
    if on_server == 0 && known.is_empty() {
        return;
    }
    let Ok(list) = admin.list_consumers(stream).await else {
        return;
    };
    let listed: HashMap<String, _> = list
        .into_iter()
        .filter(|c| c.config.durable_name.is_some())
        .map(|c| {
            (
                c.name.clone(),
                jsc_projections::compact::Compact::new(&c.config.normalized()),
            )
        })
        .collect();
    let names: BTreeSet<&String> = listed.keys().chain(known.keys()).collect();
    for name in names {
        if listed.get(name) != known.get(name) {
            console
                .observe_consumer(cluster_id, stream, name, origin.clone(), Seen::Nothing, ctx)
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advisory(name: &str, subject: &str, response: &str) -> Vec<u8> {
        serde_json::json!({
            "type": "io.nats.jetstream.advisory.v1.api_audit",
            "client": {"name": name, "host": "10.0.0.7", "user": "alice", "lang": "go"},
            "subject": subject,
            "response": response,
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn outside_changes_are_recognised_with_who_made_them() {
        let c = parse_advisory(&advisory(
            "nats-cli",
            "$JS.API.STREAM.UPDATE.ORDERS",
            "{\"type\":\"ok\"}",
        ))
        .unwrap();
        assert_eq!(c.touched, Touched::Stream("ORDERS".into(), None));
        assert_eq!(c.client, "nats-cli (alice@10.0.0.7)");
        let c = parse_advisory(&advisory("x", "$JS.API.CONSUMER.CREATE.ORDERS.c1.orders.>", "{}")).unwrap();
        assert_eq!(c.touched, Touched::Consumer("ORDERS".into(), "c1".into(), None));
        let c = parse_advisory(&advisory("x", "$JS.API.CONSUMER.DURABLE.CREATE.ORDERS.c2", "{}")).unwrap();
        assert_eq!(c.touched, Touched::Consumer("ORDERS".into(), "c2".into(), None));
    }

    #[test]
    fn what_a_create_made_is_read_from_its_answer() {
        let answer = serde_json::json!({
            "type": "io.nats.jetstream.api.v1.stream_create_response",
            "config": {"name": "ORDERS", "subjects": ["orders.>"], "retention": "limits", "storage": "file",
                       "max_msgs": 10, "num_replicas": 1},
            "state": {"messages": 0},
        })
        .to_string();
        let c = parse_advisory(&advisory("cli", "$JS.API.STREAM.CREATE.ORDERS", &answer)).unwrap();
        let Touched::Stream(_, Some(config)) = c.touched else {
            panic!("no configuration read from {answer}")
        };
        let config = config.get();
        assert_eq!((config.name.as_str(), config.max_msgs), ("ORDERS", 10));
        let answer = serde_json::json!({
            "type": "io.nats.jetstream.api.v1.consumer_create_response",
            "stream_name": "ORDERS", "name": "c2",
            "config": {"durable_name": "c2", "name": "c2", "ack_policy": "explicit", "max_deliver": 4},
        })
        .to_string();
        let c = parse_advisory(&advisory("cli", "$JS.API.CONSUMER.CREATE.ORDERS.c2", &answer)).unwrap();
        let Touched::Consumer(_, _, Some(config)) = c.touched else {
            panic!("no configuration read from {answer}")
        };
        let config = config.get();
        assert_eq!((config.durable_name.as_deref(), config.max_deliver), (Some("c2"), 4));
        // An ephemeral consumer (no durable name) is no managed resource: passed over.
        let ephemeral = serde_json::json!({"stream_name": "ORDERS", "name": "x1",
            "config": {"name": "x1", "ack_policy": "none"}})
        .to_string();
        assert!(parse_advisory(&advisory("cli", "$JS.API.CONSUMER.CREATE.ORDERS.x1", &ephemeral)).is_none());
        // A delete or a pause carries no configuration: the server is read when it is recorded.
        let c = parse_advisory(&advisory(
            "cli",
            "$JS.API.CONSUMER.DELETE.ORDERS.c2",
            "{\"success\":true}",
        ))
        .unwrap();
        assert_eq!(c.touched, Touched::Consumer("ORDERS".into(), "c2".into(), None));
        // An answer that cannot be read is a change all the same, recorded from the server.
        let c = parse_advisory(&advisory("cli", "$JS.API.STREAM.CREATE.ORDERS", "{\"config\": 7}")).unwrap();
        assert_eq!(c.touched, Touched::Stream("ORDERS".into(), None));
    }

    #[test]
    fn the_consoles_own_requests_failures_and_reads_are_ignored() {
        assert!(parse_advisory(&advisory(CLIENT_NAME, "$JS.API.STREAM.CREATE.ORDERS", "{}")).is_none());
        assert!(
            parse_advisory(&advisory(
                "cli",
                "$JS.API.STREAM.CREATE.ORDERS",
                "{\"error\":{\"code\":400}}"
            ))
            .is_none()
        );
        assert!(parse_advisory(&advisory("cli", "$JS.API.STREAM.INFO.ORDERS", "{}")).is_none());
        // A list's advisory carries the whole page; it is passed over on its subject.
        let page = serde_json::json!({"total": 1, "streams": [{"config": {"name": "ORDERS"}}]}).to_string();
        let list = advisory("cli", "$JS.API.STREAM.LIST", &page);
        assert!(changes_nothing(&list));
        assert!(parse_advisory(&list).is_none());
        // Changes are not passed over, whatever their request says.
        let create = advisory("cli", "$JS.API.CONSUMER.DURABLE.CREATE.ORDERS.c2", "{}");
        assert!(!changes_nothing(&create));
        // Not written as expected: parsed to be sure.
        assert!(!changes_nothing(br#"{"subject": "$JS.API.STREAM.LIST"}"#));
    }

    #[test]
    fn a_client_without_a_name_is_named_by_its_language() {
        let payload = serde_json::json!({
            "client": {"lang": "go", "host": "10.0.0.8", "name": null},
            "subject": "$JS.API.CONSUMER.DELETE.ORDERS.c1",
            "response": "{\"success\":true}",
        });
        let c = parse_advisory(payload.to_string().as_bytes()).unwrap();
        assert_eq!(c.touched, Touched::Consumer("ORDERS".into(), "c1".into(), None));
        assert_eq!(c.client, "go client (10.0.0.8)");
        let bare = serde_json::json!({"subject": "$JS.API.STREAM.DELETE.ORDERS"});
        assert_eq!(
            parse_advisory(bare.to_string().as_bytes()).unwrap().client,
            "unnamed client (?)"
        );
    }
}
