//! Changes made outside the console: for every managed cluster, follow JetStream's API
//! audit advisories and reconcile periodically, so streams and consumers created, edited
//! or deleted with the `nats` CLI or any client land in the history as external changes.
//!
//! The console's own connections carry the client name `jsconsole`; advisories for their
//! requests are ignored (the console recorded those changes itself). Every observation goes
//! through the aggregate's `Observe` command, which reads the server inside the aggregate's
//! lock and records only a real difference, so nothing is recorded twice.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt;
use jsc_domain::stream::{ChangeOrigin, StreamCommand, StreamConfig, stream_id};
use jsc_eventstore::CommandContext;
use jsc_fleet::CLIENT_NAME;
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
pub(crate) async fn run(console: Console, interval: Duration, shutdown: CancellationToken) {
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
            tokio::spawn(watch_cluster(console.clone(), id, interval, token));
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

async fn watch_cluster(console: Console, cluster_id: String, interval: Duration, token: CancellationToken) {
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
        reconcile(&console, &cluster_id).await;
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tick.tick() => reconcile(&console, &cluster_id).await,
                msg = advisories.next() => match msg {
                    Some(m) => on_advisory(&console, &cluster_id, &m.payload).await,
                    None => break,
                },
                Some(m) = dead_letters.next() => console.record_dead_letter(&cluster_id, &m.payload).await,
            }
        }
    }
}

/// What an API audit advisory says was changed, and by whom.
#[derive(Debug, PartialEq, Eq)]
enum Touched {
    Stream(String),
    Consumer(String, String),
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

/// Whether a JetStream API answer is an error.
fn is_error_answer(response: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        error: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Answer>(response).is_ok_and(|a| a.error.is_some())
}

fn parse_advisory(payload: &[u8]) -> Option<(Touched, String)> {
    let subject: AuditSubject = serde_json::from_slice(payload).ok()?;
    let tokens: Vec<&str> = subject.subject.strip_prefix("$JS.API.")?.split('.').collect();
    let touched = match tokens.as_slice() {
        ["STREAM", "CREATE" | "UPDATE" | "DELETE", stream] => Touched::Stream(stream.to_string()),
        ["CONSUMER", "CREATE", stream, consumer, ..]
        | ["CONSUMER", "DURABLE", "CREATE", stream, consumer]
        | ["CONSUMER", "DELETE", stream, consumer]
        | ["CONSUMER", "PAUSE", stream, consumer] => Touched::Consumer(stream.to_string(), consumer.to_string()),
        _ => return None,
    };
    let audit: Audit = serde_json::from_slice(payload).ok()?;
    let client = audit.client;
    let name = client.name.unwrap_or_default();
    if name == CLIENT_NAME || audit.response.as_deref().is_some_and(is_error_answer) {
        return None;
    }
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
    Some((touched, desc))
}

async fn on_advisory(console: &Console, cluster_id: &str, payload: &[u8]) {
    let Some((touched, client)) = parse_advisory(payload) else {
        return;
    };
    let origin = ChangeOrigin::External {
        observed_via: "advisory".into(),
        client: Some(client),
    };
    let ctx = CommandContext::system("advisories").in_organization(console.cluster_organization(cluster_id).as_deref());
    let stream = match &touched {
        Touched::Stream(s) | Touched::Consumer(s, _) => s.clone(),
    };
    match touched {
        Touched::Stream(name) if !console.is_internal_stream(&name) => {
            observe_stream(console, cluster_id, &name, origin.clone(), &ctx).await;
            console
                .observe_consumers_of(cluster_id, &name, origin.clone(), &ctx)
                .await;
        }
        Touched::Consumer(stream, name) if !console.is_internal_stream(&stream) => {
            console.observe_consumer(cluster_id, &stream, &name, origin, &ctx).await;
        }
        _ => {}
    }
    // The changed stream's state read again on its own (a burst of outside changes costs a
    // read per change, not a list of the cluster per query after each).
    console.live.stream_changed(cluster_id, &stream).await;
}

async fn observe_stream(console: &Console, cluster_id: &str, name: &str, origin: ChangeOrigin, ctx: &CommandContext) {
    let cmd = StreamCommand::Observe {
        cluster_id: cluster_id.to_string(),
        name: name.to_string(),
        origin,
    };
    if let Err(e) = console
        .repos
        .streams
        .execute(&stream_id(cluster_id, name), cmd, ctx)
        .await
    {
        tracing::warn!(cluster = %cluster_id, stream = %name, error = %e, "could not record an external stream change");
    }
}

/// Compares a cluster with the views and observes every stream and durable consumer that
/// differs. Cheap when nothing changed: one list request per 256 streams plus one per
/// stream for its consumers, and no command.
pub(crate) async fn reconcile(console: &Console, cluster_id: &str) {
    let admin = match console.live.managed().admin(cluster_id).await {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(cluster = %cluster_id, error = %e, "reconcile skipped");
            return;
        }
    };
    let server = match admin.list_streams().await {
        Ok(list) => list,
        Err(e) => {
            tracing::info!(cluster = %cluster_id, error = %e, "reconcile: cannot list streams");
            return;
        }
    };
    let origin = ChangeOrigin::External {
        observed_via: "reconcile".into(),
        client: None,
    };
    let ctx = CommandContext::system("reconciler").in_organization(console.cluster_organization(cluster_id).as_deref());
    let server: HashMap<String, StreamConfig> = server
        .into_iter()
        .filter(|i| !console.is_internal_stream(&i.config.name))
        .map(|i| (i.config.name.clone(), i.config.normalized()))
        .collect();
    let prefix = jsc_projections::streams_group(cluster_id) + ".";
    let known: HashMap<String, StreamConfig> = console
        .views
        .streams
        .with_prefix(&prefix)
        .into_iter()
        .map(|s| (s.view.name, s.view.config))
        .collect();
    // The console's consumers of this cluster, by stream: one pass over the view, not one
    // per stream.
    let mut known_consumers: HashMap<String, HashMap<String, _>> = HashMap::new();
    for c in console.views.consumers.with_prefix(&prefix) {
        known_consumers
            .entry(c.view.stream)
            .or_default()
            .insert(c.view.name, c.view.config);
    }
    let names: BTreeSet<&String> = server.keys().chain(known.keys()).collect();
    for name in names {
        if server.get(name) != known.get(name) {
            observe_stream(console, cluster_id, name, origin.clone(), &ctx).await;
        }
        let on_server = match server.contains_key(name) {
            true => match admin.list_consumers(name).await {
                Ok(list) => list
                    .into_iter()
                    .filter(|c| c.config.durable_name.is_some())
                    .map(|c| (c.name.clone(), c.config.normalized()))
                    .collect(),
                Err(_) => continue,
            },
            false => HashMap::new(),
        };
        let known_consumers = known_consumers.remove(name.as_str()).unwrap_or_default();
        let consumer_names: BTreeSet<&String> = on_server.keys().chain(known_consumers.keys()).collect();
        for consumer in consumer_names {
            if on_server.get(consumer) != known_consumers.get(consumer) {
                console
                    .observe_consumer(cluster_id, name, consumer, origin.clone(), &ctx)
                    .await;
            }
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
        let (t, who) = parse_advisory(&advisory(
            "nats-cli",
            "$JS.API.STREAM.UPDATE.ORDERS",
            "{\"type\":\"ok\"}",
        ))
        .unwrap();
        assert_eq!(t, Touched::Stream("ORDERS".into()));
        assert_eq!(who, "nats-cli (alice@10.0.0.7)");
        let (t, _) = parse_advisory(&advisory("x", "$JS.API.CONSUMER.CREATE.ORDERS.c1.orders.>", "{}")).unwrap();
        assert_eq!(t, Touched::Consumer("ORDERS".into(), "c1".into()));
        let (t, _) = parse_advisory(&advisory("x", "$JS.API.CONSUMER.DURABLE.CREATE.ORDERS.c2", "{}")).unwrap();
        assert_eq!(t, Touched::Consumer("ORDERS".into(), "c2".into()));
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
        assert!(parse_advisory(&advisory("cli", "$JS.API.STREAM.LIST", &page)).is_none());
    }

    #[test]
    fn a_client_without_a_name_is_named_by_its_language() {
        let payload = serde_json::json!({
            "client": {"lang": "go", "host": "10.0.0.8", "name": null},
            "subject": "$JS.API.CONSUMER.DELETE.ORDERS.c1",
            "response": "{\"success\":true}",
        });
        let (t, who) = parse_advisory(payload.to_string().as_bytes()).unwrap();
        assert_eq!(t, Touched::Consumer("ORDERS".into(), "c1".into()));
        assert_eq!(who, "go client (10.0.0.8)");
        let bare = serde_json::json!({"subject": "$JS.API.STREAM.DELETE.ORDERS"});
        assert_eq!(
            parse_advisory(bare.to_string().as_bytes()).unwrap().1,
            "unnamed client (?)"
        );
    }
}
