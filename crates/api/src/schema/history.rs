//! History and time travel: an aggregate's events with the state change each made, and
//! its state at any moment, replayed from the event stream itself.

use async_graphql::{Context, ID, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use jsc_domain::cluster::Cluster;
use jsc_domain::consumer::Consumer;
use jsc_domain::stream::Stream;
use jsc_eventstore::{EventRecord, JetStreamEventStore};
use jsc_projections::audit::{AuditFilter, AuditRow};
use serde_json::Value;

use super::console;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::state::Console;
use jsc_domain::identity::{self, Role};

/// One field an event changed.
#[derive(SimpleObject, Clone, PartialEq, Debug)]
pub struct FieldChange {
    /// Dotted path in the aggregate's state, e.g. `spec.description`.
    path: String,
    before: Option<Json<Value>>,
    after: Option<Json<Value>>,
}

/// One event of an aggregate's history and what it changed.
#[derive(SimpleObject)]
pub struct HistoryEntry {
    /// Position in the event stream.
    sequence: u64,
    /// Position in the aggregate's own history (1, 2, ...).
    aggregate_sequence: u64,
    event_type: String,
    event_version: String,
    timestamp: DateTime<Utc>,
    actor: String,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    client_addr: Option<String>,
    /// The event as stored (credentials redacted).
    payload: Json<Value>,
    /// The state change the event made.
    changes: Vec<FieldChange>,
}

/// An aggregate's state at a point in its history.
#[derive(SimpleObject)]
pub struct AggregateState {
    aggregate_type: String,
    id: ID,
    /// Number of events applied.
    version: u64,
    /// Stream sequence of the last event applied; 0 if none.
    as_of_sequence: u64,
    /// Time of the last event applied.
    as_of: Option<DateTime<Utc>>,
    /// The state (credentials redacted); null before the first event.
    state: Option<Json<Value>>,
}

/// Replays `records` of one aggregate type, returning the state after each event.
fn states_after<A: Aggregate>(store: &JetStreamEventStore, records: &[EventRecord]) -> Result<Vec<Value>, String> {
    let mut aggregate = A::default();
    let mut out = Vec::with_capacity(records.len());
    for rec in records {
        let env = store.to_envelope::<A>(rec.clone()).map_err(|e| e.to_string())?;
        aggregate.apply(env.payload);
        out.push(serde_json::to_value(&aggregate).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn replay(store: &JetStreamEventStore, aggregate_type: &str, records: &[EventRecord]) -> ApiResult<Vec<Value>> {
    let result = match aggregate_type {
        "cluster" => states_after::<Cluster>(store, records),
        "stream" => states_after::<Stream>(store, records),
        "consumer" => states_after::<Consumer>(store, records),
        "organization" => states_after::<identity::Organization>(store, records),
        "user" => states_after::<identity::User>(store, records),
        "invitation" => states_after::<identity::Invitation>(store, records),
        "session" => states_after::<identity::Session>(store, records),
        "api_key" => states_after::<identity::ApiKey>(store, records),
        other => {
            return Err(ApiError::validation(format!(
                "aggregateType: unknown type '{other}'; use cluster, stream, consumer, organization, user, \
                 invitation, session or api_key"
            )));
        }
    };
    result.map_err(|e| ApiError::internal(&e, "history-replay"))
}

/// The leaves that differ between two states, by dotted path.
pub fn diff(before: &Value, after: &Value) -> Vec<(String, Option<Value>, Option<Value>)> {
    let mut out = Vec::new();
    diff_at("", before, after, &mut out);
    out
}

fn diff_at(path: &str, before: &Value, after: &Value, out: &mut Vec<(String, Option<Value>, Option<Value>)>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (b.get(k), a.get(k)) {
                    (Some(x), Some(y)) => diff_at(&p, x, y, out),
                    (x, y) => out.push((p, x.cloned(), y.cloned())),
                }
            }
        }
        _ => out.push((path.to_string(), Some(before.clone()), Some(after.clone()))),
    }
}

fn is_secret_path(path: &str) -> bool {
    path.split('.')
        .any(|seg| jsc_domain::secret::SECRET_KEYS.contains(&seg))
}

fn redacted(v: Option<Value>, path: &str) -> Option<Json<Value>> {
    v.map(|mut v| {
        if is_secret_path(path) && !v.is_null() {
            v = Value::String("<redacted>".into());
        }
        jsc_domain::secret::redact_json(&mut v);
        Json(v)
    })
}

/// An aggregate's events, if the caller may read its history: managed resources (cluster,
/// stream, consumer) for viewers of their organization; identity aggregates for admins
/// (a user's own account and sessions for the user). `NOT_FOUND` alike for what does not
/// exist and what is not the caller's to see.
async fn records_of(ctx: &Context<'_>, aggregate_type: &str, id: &str) -> ApiResult<Vec<EventRecord>> {
    const TYPES: [&str; 8] = [
        "cluster",
        "stream",
        "consumer",
        "organization",
        "user",
        "invitation",
        "session",
        "api_key",
    ];
    if !TYPES.contains(&aggregate_type) {
        return Err(ApiError::validation(format!(
            "aggregateType: unknown type '{aggregate_type}'; use one of {}",
            TYPES.join(", ")
        )));
    }
    let c = console(ctx);
    let p = super::principal(ctx)?;
    let store = c.clusters.store();
    let subject = store.subject(aggregate_type, id);
    let records = store.reader().read_subject(&subject, 1).await.map_err(|e| {
        tracing::warn!(error = %e, "history read failed");
        ApiError::unavailable("the console's NATS did not answer; retry in a moment")
    })?;
    let not_found = || ApiError::not_found(format!("no {aggregate_type} with id '{id}' has any history"));
    if records.is_empty() {
        return Err(not_found());
    }
    let org = records
        .iter()
        .rev()
        .find_map(|r| r.metadata.get("organization").cloned())
        .unwrap_or_else(|| jsc_domain::identity::DEFAULT_ORGANIZATION.to_string());
    let user_of = |r: &EventRecord| {
        r.payload
            .pointer("/Started/user_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let allowed = match aggregate_type {
        "cluster" | "stream" | "consumer" => c.require_org(p, &org, Role::Viewer).map(|_| ()),
        "user" | "session" => {
            let user = if aggregate_type == "user" {
                Some(id.to_string())
            } else {
                records.first().and_then(user_of)
            };
            match user {
                Some(u) if p.user_id.as_deref() == Some(u.as_str()) => Ok(()),
                Some(u) => super::identity::require_admin_over(c, p, &u),
                None => Err(not_found()),
            }
        }
        _ => c.require_org(p, &org, Role::Admin).map(|_| ()),
    };
    match allowed {
        Ok(()) => Ok(records),
        Err(e) if e.code == crate::error::Code::Forbidden => Err(e),
        Err(_) => Err(not_found()),
    }
}

/// Narrows an audit filter to what the caller may see: organizations where they are admin,
/// and installation-wide events (accounts, sessions) for owners of the default organization.
fn restrict(c: &Console, p: &Principal, mut filter: AuditFilter) -> ApiResult<AuditFilter> {
    let within = c.organizations_with(p, Role::Admin);
    if within.is_empty() {
        return Err(crate::auth::forbidden(
            "the audit trail needs the admin role in an organization",
        ));
    }
    filter.within_installation = c.org_role(p, jsc_domain::identity::DEFAULT_ORGANIZATION) == Some(Role::Owner);
    filter.within = Some(within);
    Ok(filter)
}

#[derive(Default)]
pub struct HistoryQuery;

#[Object]
impl HistoryQuery {
    /// Every event of one aggregate (`cluster`, `stream` with id `<cluster>/<stream>`,
    /// `consumer` with id `<cluster>/<stream>/<consumer>`), oldest first, with the change
    /// each made to its state. Credentials are redacted.
    async fn history(&self, ctx: &Context<'_>, aggregate_type: String, id: ID) -> Result<Vec<HistoryEntry>> {
        let records = records_of(ctx, &aggregate_type, &id).await?;
        let store = console(ctx).clusters.store();
        let states = replay(store, &aggregate_type, &records)?;
        let mut previous = Value::Null;
        let mut out = Vec::with_capacity(records.len());
        for (rec, state) in records.into_iter().zip(states) {
            let changes = diff(&previous, &state)
                .into_iter()
                .map(|(path, before, after)| FieldChange {
                    before: redacted(before, &path),
                    after: redacted(after, &path),
                    path,
                })
                .collect();
            previous = state;
            let mut payload = rec.payload.clone();
            jsc_domain::secret::redact_json(&mut payload);
            out.push(HistoryEntry {
                sequence: rec.stream_sequence,
                aggregate_sequence: rec.aggregate_sequence,
                event_type: rec.event_type.clone(),
                event_version: rec.event_version.clone(),
                timestamp: rec.timestamp,
                actor: rec.actor().to_string(),
                correlation_id: rec.metadata.get("correlation_id").cloned(),
                causation_id: rec.metadata.get("causation_id").cloned(),
                client_addr: rec.metadata.get("client_addr").cloned(),
                payload: Json(payload),
                changes,
            });
        }
        if out.is_empty() {
            return Err(
                ApiError::not_found(format!("no {aggregate_type} with id '{}' has any history", id.as_str())).into(),
            );
        }
        Ok(out)
    }

    /// An aggregate's state as it was at time `at`, or just after stream sequence
    /// `sequence` (give one), replayed from its events.
    async fn state_at(
        &self,
        ctx: &Context<'_>,
        aggregate_type: String,
        id: ID,
        at: Option<DateTime<Utc>>,
        sequence: Option<u64>,
    ) -> Result<AggregateState> {
        if at.is_some() == sequence.is_some() {
            return Err(ApiError::validation("give either `at` (a time) or `sequence` (a stream sequence)").into());
        }
        let records: Vec<EventRecord> = records_of(ctx, &aggregate_type, &id)
            .await?
            .into_iter()
            .filter(|r| at.is_none_or(|t| r.timestamp <= t) && sequence.is_none_or(|s| r.stream_sequence <= s))
            .collect();
        let store = console(ctx).clusters.store();
        let states = replay(store, &aggregate_type, &records)?;
        let last = records.last();
        Ok(AggregateState {
            aggregate_type,
            version: records.len() as u64,
            as_of_sequence: last.map_or(0, |r| r.stream_sequence),
            as_of: last.map(|r| r.timestamp),
            state: states.into_iter().last().map(|mut s| {
                jsc_domain::secret::redact_json(&mut s);
                Json(s)
            }),
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn diffs_name_the_leaves_that_changed() {
        let a = json!({"spec": {"name": "x", "tags": ["a"], "auth": {"kind": "none"}}, "removed": false});
        let b = json!({"spec": {"name": "y", "tags": ["a"], "auth": {"kind": "token", "token": "v1:..."}}, "removed": false});
        let d = diff(&a, &b);
        let paths: Vec<&str> = d.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(paths, vec!["spec.auth.kind", "spec.auth.token", "spec.name"]);
    }

    #[test]
    fn credentials_are_redacted() {
        let mut v = json!({"auth": {"kind": "user_password", "username": "u", "password": "v1:k:n:c"}});
        jsc_domain::secret::redact_json(&mut v);
        assert_eq!(v["auth"]["password"], "<redacted>");
        assert_eq!(v["auth"]["username"], "u");
        assert_eq!(
            redacted(Some(json!("v1:x")), "spec.auth.password").unwrap().0,
            json!("<redacted>")
        );
    }
}

// ---------------------------------------------------------------------------------------
// The audit trail
// ---------------------------------------------------------------------------------------

/// What to look for in the audit trail; every field narrows the result.
#[derive(async_graphql::InputObject, Default, Clone)]
pub struct AuditFilterInput {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    actor: Option<String>,
    aggregate_type: Option<String>,
    aggregate_id: Option<String>,
    event_type: Option<String>,
    cluster: Option<ID>,
    organization: Option<String>,
    /// Text in the summary, case-insensitive.
    text: Option<String>,
}

impl From<AuditFilterInput> for AuditFilter {
    fn from(f: AuditFilterInput) -> Self {
        Self {
            from: f.from,
            to: f.to,
            actor: f.actor,
            aggregate_type: f.aggregate_type,
            aggregate_id: f.aggregate_id,
            event_type: f.event_type,
            cluster: f.cluster.map(|c| c.0),
            organization: f.organization,
            text: f.text,
            within: None,
            within_installation: false,
        }
    }
}

/// One event of the audit trail.
pub struct AuditEntry(AuditRow);

#[Object]
impl AuditEntry {
    /// Stream sequence: also the cursor to page from.
    async fn sequence(&self) -> u64 {
        self.0.sequence
    }
    async fn time(&self) -> DateTime<Utc> {
        self.0.time
    }
    async fn aggregate_type(&self) -> &str {
        &self.0.aggregate_type
    }
    async fn aggregate_id(&self) -> &str {
        &self.0.aggregate_id
    }
    async fn aggregate_sequence(&self) -> u64 {
        self.0.aggregate_sequence
    }
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    async fn event_version(&self) -> &str {
        &self.0.event_version
    }
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    async fn client_addr(&self) -> Option<&str> {
        self.0.client_addr.as_deref()
    }
    async fn correlation_id(&self) -> Option<&str> {
        self.0.correlation_id.as_deref()
    }
    async fn causation_id(&self) -> Option<&str> {
        self.0.causation_id.as_deref()
    }
    async fn organization(&self) -> Option<&str> {
        self.0.organization.as_deref()
    }
    async fn cluster(&self) -> Option<&str> {
        self.0.cluster.as_deref()
    }
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    /// The event (credentials redacted).
    async fn payload(&self) -> Json<Value> {
        Json(serde_json::from_str(&self.0.payload).unwrap_or(Value::Null))
    }
}

#[derive(SimpleObject)]
pub struct AuditPage {
    /// Newest first.
    nodes: Vec<AuditEntry>,
    has_next_page: bool,
    /// Pass as `after` for the next (older) page.
    end_cursor: Option<String>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit trail, newest first: `first` (at most 1,000) events matching `filter`,
    /// older than the cursor `after`. Reads the Parquet table (files and row groups pruned
    /// by their statistics) and the events not yet written to it.
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilterInput>,
        #[graphql(default = 50)] first: usize,
        after: Option<String>,
    ) -> Result<AuditPage> {
        let before = after
            .map(|a| {
                a.parse::<u64>()
                    .map_err(|_| ApiError::validation("after: not a cursor from a previous page"))
            })
            .transpose()?;
        let first = first.clamp(1, 1000);
        let c = console(ctx);
        let filter = restrict(c, super::principal(ctx)?, filter.unwrap_or_default().into())?;
        let (rows, more) = c
            .audit
            .query(&filter, first, before)
            .await
            .map_err(|e| ApiError::internal(&e, "audit-trail"))?;
        Ok(AuditPage {
            end_cursor: rows.last().map(|r| r.sequence.to_string()),
            has_next_page: more,
            nodes: rows.into_iter().map(AuditEntry).collect(),
        })
    }
}

#[derive(Default)]
pub struct AuditSubscription;

#[async_graphql::Subscription]
impl AuditSubscription {
    /// Every new event matching `filter`, as it is appended; with `fromSequence`, starting
    /// at that stream sequence (to resume after a disconnect without a gap).
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilterInput>,
        from_sequence: Option<u64>,
    ) -> Result<impl futures::Stream<Item = Result<AuditEntry>> + use<>> {
        use futures::StreamExt;
        let c = console(ctx);
        let p = super::principal(ctx)?.clone();
        let base: AuditFilter = filter.unwrap_or_default().into();
        restrict(c, &p, base.clone())?;
        let js = async_nats::jetstream::new(c.home.clone());
        let stream = js
            .get_stream(&c.clusters.store().config().stream)
            .await
            .map_err(|_| ApiError::unavailable("the console's NATS did not answer; retry in a moment"))?;
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                deliver_policy: match from_sequence {
                    Some(s) => async_nats::jetstream::consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: s.max(1),
                    },
                    None => async_nats::jetstream::consumer::DeliverPolicy::New,
                },
                ..Default::default()
            })
            .await
            .map_err(|_| ApiError::unavailable("the console's NATS did not answer; retry in a moment"))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|_| ApiError::unavailable("the console's NATS did not answer; retry in a moment"))?;
        let (vc, vp) = (c.clone(), p.clone());
        let entries = messages.filter_map(move |m| {
            // Re-evaluated per event: a caller who stops being admin stops seeing events.
            let filter = restrict(&vc, &vp, base.clone()).ok();
            let row = m.ok().and_then(|m| {
                let seq = m.info().ok()?.stream_sequence;
                EventRecord::from_message(&m.payload, m.headers.as_ref(), seq).ok()
            });
            let out = row
                .map(|r| AuditRow::from_record(&r))
                .filter(|r| filter.as_ref().is_some_and(|f| f.matches(r)))
                .map(AuditEntry);
            futures::future::ready(out)
        });
        Ok(super::guarded(ctx, entries)?)
    }
}

#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AuditExportFormat {
    Parquet,
    Csv,
    Jsonl,
}

/// A finished export and where to download it.
#[derive(SimpleObject)]
pub struct AuditExport {
    /// Relative download URL, signed; valid until `expiresAt`.
    url: String,
    rows: u64,
    bytes: u64,
    expires_at: DateTime<Utc>,
}

/// How long a download link stays valid.
pub const EXPORT_LINK_TTL: chrono::Duration = chrono::Duration::hours(1);

/// The message a download link signs.
pub fn export_link_message(file: &str, expires: i64) -> String {
    format!("export:{file}:{expires}")
}

#[derive(Default)]
pub struct AuditMutation;

#[Object]
impl AuditMutation {
    /// Writes the audit trail (or the part matching `filter`) to the object store, oldest
    /// first, and returns a signed download link valid for an hour.
    async fn export_audit(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilterInput>,
        format: AuditExportFormat,
    ) -> Result<AuditExport> {
        use jsc_projections::audit::ExportFormat;
        use object_store::ObjectStoreExt;
        let c = console(ctx);
        let filter = restrict(c, super::principal(ctx)?, filter.unwrap_or_default().into())?;
        let format = match format {
            AuditExportFormat::Parquet => ExportFormat::Parquet,
            AuditExportFormat::Csv => ExportFormat::Csv,
            AuditExportFormat::Jsonl => ExportFormat::Jsonl,
        };
        let file = format!("{}.{}", uuid::Uuid::now_v7(), format.extension());
        let path = object_store::path::Path::from(format!("exports/{file}"));
        let sink = object_store::buffered::BufWriter::new(c.audit.store.clone(), path.clone());
        let correlation = super::meta(ctx).request_id;
        let rows = c
            .audit
            .export(&filter, format, sink, &mut |_, _| {})
            .await
            .map_err(|e| ApiError::internal(&e, &correlation))?;
        let bytes = c
            .audit
            .store
            .head(&path)
            .await
            .map_err(|e| ApiError::internal(&e, &correlation))?
            .size;
        let expires_at = Utc::now() + EXPORT_LINK_TTL;
        let expires = expires_at.timestamp();
        let signature = c.fleet.secrets().sign(&export_link_message(&file, expires));
        Ok(AuditExport {
            url: format!("/exports/{file}?expires={expires}&signature={signature}"),
            rows,
            bytes,
            expires_at,
        })
    }
}
