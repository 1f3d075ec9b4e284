//! History and time travel over GraphQL, and the audit trail: queries, the live trail and
//! exports, each one use case of the application.

use async_graphql::{Context, Enum, ID, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use jsc_app::{Error as ApiError, PointInTime};
use jsc_projections::audit::{AuditFilter, AuditRow};
use serde_json::Value;

use crate::connection::{Parts, Total, connection, paging};
use crate::context::{caller, console, guarded};
use crate::mutation::{Outcome, input, payload};

/// The kinds of aggregate that have a history.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::AggregateKind")]
pub enum AggregateType {
    /// A managed cluster (id: the cluster id).
    Cluster,
    /// A stream (id: `<cluster id>/<stream>`).
    Stream,
    /// A durable consumer (id: `<cluster id>/<stream>/<consumer>`).
    Consumer,
    /// An organization, with its members and teams (id: the organization id).
    Organization,
    /// A user account (id: the user id).
    User,
    /// An invitation (id: the invitation id).
    Invitation,
    /// A session (id: the session id).
    Session,
    /// An API key (id: the key id).
    ApiKey,
    /// An alert rule (id: the rule id).
    AlertRule,
    /// A notification channel (id: the channel id).
    NotificationChannel,
    /// An organization's alert routing policy (id: the organization id).
    AlertPolicy,
    /// A silence (id: the silence id).
    Silence,
    /// An alert: one rule on one resource (id: the alert id).
    Alert,
    /// A unique key and who holds it, taken and released with its holder's changes (id:
    /// `cluster-name/<organization>/<name in lower case>` or `user-email/<email>`).
    Claim,
}

/// One field an event changed.
#[derive(SimpleObject, Clone, PartialEq, Debug)]
pub struct FieldChange {
    /// Dotted path in the aggregate's state, e.g. `spec.description`.
    path: String,
    /// The value before the event (credentials redacted); null if the field did not exist.
    before: Option<Json<Value>>,
    /// The value after the event (credentials redacted); null if the event removed it.
    after: Option<Json<Value>>,
}

/// One event of an aggregate's history and what it changed.
#[derive(SimpleObject, Clone)]
pub struct HistoryEntry {
    /// Position in the event stream (a stream sequence, usable as `stateAt(sequence:)`).
    sequence: u64,
    /// Position in the aggregate's own history (1, 2, ...).
    aggregate_sequence: u64,
    /// What happened, e.g. `UserDisabled`.
    event_type: String,
    /// Version of the event's schema, e.g. `1.0`.
    event_version: String,
    /// When the event was recorded.
    timestamp: DateTime<Utc>,
    /// Who caused it: `user:<id>`, `apikey:<id>` or `system:<component>`.
    actor: String,
    /// The ID of the request that caused the event; shared by every event of one request.
    correlation_id: Option<String>,
    /// The ID of the request or event that directly caused this one.
    causation_id: Option<String>,
    /// The client address the request came from, if known.
    client_addr: Option<String>,
    /// The OpenTelemetry trace the change was made in (32 hex digits), when the console
    /// exports traces (`--otlp-endpoint`): find the request, command, commit and projection
    /// spans under it in your tracing backend.
    trace_id: Option<String>,
    /// The event as stored (credentials redacted).
    payload: Json<Value>,
    /// The state change the event made.
    changes: Vec<FieldChange>,
}

connection!(
    HistoryEntryConnection,
    HistoryEntryEdge,
    HistoryEntry,
    "events of one aggregate"
);

/// An aggregate's state at a point in its history.
#[derive(SimpleObject)]
pub struct AggregateState {
    /// The kind of aggregate, as asked.
    aggregate_type: AggregateType,
    /// The aggregate's ID, as asked.
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

#[derive(Default)]
pub struct HistoryQuery;

#[Object]
impl HistoryQuery {
    /// Every event of one aggregate, oldest first, with the change each made to its state;
    /// credentials are redacted. Clusters, streams, consumers and alerting need viewer; organizations,
    /// invitations and API keys admin; a user's account and sessions need the user, or admin
    /// over them. `NOT_FOUND` alike for what has no history and what you may not see. One
    /// page, oldest first.
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The kind of aggregate.")] aggregate_type: AggregateType,
        #[graphql(desc = "The aggregate's ID, in the form its AggregateType describes.")] id: ID,
        #[graphql(
            desc = "The first `first` events (after `after`): 0 to 1,000; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only events after this cursor (an `endCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        after: Option<String>,
        #[graphql(desc = "The last `last` events (before `before`): 0 to 1,000.")] last: Option<i32>,
        #[graphql(
            desc = "Only events before this cursor (a `startCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        before: Option<String>,
    ) -> Result<HistoryEntryConnection> {
        history_page(ctx, aggregate_type.into(), &id, paging(first, after, last, before)).await
    }

    /// An aggregate's state as it was at time `at`, or just after stream sequence
    /// `sequence`, replayed from its events; credentials are redacted. Needs the same roles
    /// as `history`; `VALIDATION` unless exactly one of `at` and `sequence` is given.
    async fn state_at(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The kind of aggregate.")] aggregate_type: AggregateType,
        #[graphql(desc = "The aggregate's ID, in the form its AggregateType describes.")] id: ID,
        #[graphql(desc = "The moment to look at: events recorded at or before it are applied.")] at: Option<
            DateTime<Utc>,
        >,
        #[graphql(desc = "The stream sequence to look at: events up to and including it are applied.")]
        sequence: Option<u64>,
    ) -> Result<AggregateState> {
        let when = match (at, sequence) {
            (Some(t), None) => PointInTime::At(t),
            (None, Some(s)) => PointInTime::Sequence(s),
            _ => {
                return Err(ApiError::validation("give either `at` (a time) or `sequence` (a stream sequence)").into());
            }
        };
        let s = console(ctx)
            .state_at(&caller(ctx)?, aggregate_type.into(), &id, when)
            .await?;
        Ok(AggregateState {
            aggregate_type,
            id,
            version: s.version,
            as_of_sequence: s.as_of_sequence,
            as_of: s.as_of,
            state: s.state.map(Json),
        })
    }
}

// ---------------------------------------------------------------------------------------
// The audit trail
// ---------------------------------------------------------------------------------------

/// What to look for in the audit trail; every field narrows the result, and an omitted or
/// null field matches everything.
#[derive(async_graphql::InputObject, Default, Clone)]
pub struct AuditFilterInput {
    /// Only events recorded at or after this time.
    from: Option<DateTime<Utc>>,
    /// Only events recorded at or before this time.
    to: Option<DateTime<Utc>>,
    /// Only events of this actor, exactly: `user:<id>`, `apikey:<id>` or `system:<component>`.
    actor: Option<String>,
    /// Only events of this kind of aggregate.
    aggregate_type: Option<AggregateType>,
    /// Only events of the aggregate with this ID, exactly (see AggregateType for the forms).
    aggregate_id: Option<String>,
    /// Only events of this type, exactly, e.g. `UserDisabled`.
    event_type: Option<String>,
    /// Only events of this cluster and its streams and consumers.
    cluster: Option<ID>,
    /// Only events of the organization with this ID.
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
            aggregate_type: f
                .aggregate_type
                .map(|t| jsc_domain::AggregateKind::from(t).as_str().to_string()),
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
#[derive(Clone)]
pub struct AuditEntry(pub(crate) AuditRow);

/// One event of the audit trail: who did what to which resource, and when.
#[Object]
impl AuditEntry {
    /// The entry's global id, unique across every type: for `node(id)` and client caches.
    pub(crate) async fn id(&self) -> ID {
        ID(jsc_app::nodes::PathId::audit_entry(self.0.sequence))
    }
    /// The event's position in the event stream (a stream sequence).
    async fn sequence(&self) -> u64 {
        self.0.sequence
    }
    /// When the event was recorded.
    async fn time(&self) -> DateTime<Utc> {
        self.0.time
    }
    /// The kind of aggregate the event belongs to.
    async fn aggregate_type(&self) -> Result<AggregateType> {
        jsc_domain::AggregateKind::parse(&self.0.aggregate_type)
            .map(AggregateType::from)
            .map_err(|e| ApiError::new(jsc_app::Code::Internal, e).into())
    }
    /// The aggregate's ID (see AggregateType for the forms).
    async fn aggregate_id(&self) -> &str {
        &self.0.aggregate_id
    }
    /// Position in the aggregate's own history (1, 2, ...).
    async fn aggregate_sequence(&self) -> u64 {
        self.0.aggregate_sequence
    }
    /// What happened, e.g. `UserDisabled`.
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// Version of the event's schema, e.g. `1.0`.
    async fn event_version(&self) -> &str {
        &self.0.event_version
    }
    /// Who caused it: `user:<id>`, `apikey:<id>` or `system:<component>`.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    /// The client address the request came from, if known.
    async fn client_addr(&self) -> Option<&str> {
        self.0.client_addr.as_deref()
    }
    /// The ID of the request that caused the event; shared by every event of one request.
    async fn correlation_id(&self) -> Option<&str> {
        self.0.correlation_id.as_deref()
    }
    /// The ID of the request or event that directly caused this one.
    async fn causation_id(&self) -> Option<&str> {
        self.0.causation_id.as_deref()
    }
    /// The ID of the organization the event belongs to; null for installation-wide events
    /// (accounts, sessions).
    async fn organization(&self) -> Option<&str> {
        self.0.organization.as_deref()
    }
    /// The ID of the cluster, for events of a cluster or its streams and consumers.
    async fn cluster(&self) -> Option<&str> {
        self.0.cluster.as_deref()
    }
    /// One readable line: who did what to which resource.
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    /// The event (credentials redacted).
    async fn payload(&self) -> Json<Value> {
        Json(serde_json::from_str(&self.0.payload).unwrap_or(Value::Null))
    }
}

connection!(
    AuditEntryConnection,
    AuditEntryEdge,
    AuditEntry,
    "events of the audit trail"
);

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit trail, newest first, one page of the events matching `filter` (paging
    /// forward with `first`/`after` goes to older events). Reads the Parquet table (files and row groups pruned
    /// by their statistics) and the events not yet written to it. Needs admin in an
    /// organization (`FORBIDDEN` otherwise) and shows only those organizations' events, plus
    /// installation-wide ones (accounts, sessions) to owners of the default organization.
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which events to return; null matches every event you may see.")] filter: Option<
            AuditFilterInput,
        >,
        #[graphql(
            desc = "The first `first` events (after `after`, newest first): 0 to 1,000; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only events older than this cursor (an `endCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        after: Option<String>,
        #[graphql(desc = "The last `last` events (before `before`): 0 to 1,000.")] last: Option<i32>,
        #[graphql(
            desc = "Only events newer than this cursor (a `startCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        before: Option<String>,
    ) -> Result<AuditEntryConnection> {
        let filter: AuditFilter = filter.unwrap_or_default().into();
        let (c, who) = (console(ctx).clone(), caller(ctx)?);
        let page = c
            .audit_trail(&who, filter.clone(), &paging(first, after, last, before))
            .await?;
        // Counting reads every file the filter may match: only when asked for.
        let count = Total::Later(std::sync::Arc::new(move || {
            let (c, who, filter) = (c.clone(), who.clone(), filter.clone());
            Box::pin(async move { c.audit_count(&who, filter).await })
        }));
        Ok(AuditEntryConnection(Parts::of(page, AuditEntry, Some(count)), ()))
    }
}

#[derive(Default)]
pub struct AuditSubscription;

#[async_graphql::Subscription]
impl AuditSubscription {
    /// Every new event matching `filter`, as it is appended; with `fromSequence`, starting
    /// at that stream sequence (to resume after a disconnect without a gap). Needs admin
    /// like auditTrail, checked again for every event; ends with `UNAUTHENTICATED` when
    /// your credential does.
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which events to deliver; null matches every event you may see.")] filter: Option<
            AuditFilterInput,
        >,
        #[graphql(
            desc = "The stream sequence to start at (e.g. the last `sequence` seen, plus one); null starts with the next new event."
        )]
        from_sequence: Option<u64>,
    ) -> Result<impl futures::Stream<Item = Result<AuditEntry>> + use<>> {
        use futures::StreamExt;
        let filter: AuditFilter = filter.unwrap_or_default().into();
        let rows = console(ctx).audit_events(&caller(ctx)?, filter, from_sequence).await?;
        Ok(guarded(ctx, rows.map(AuditEntry))?)
    }
}

/// The file format of an export.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::export::ExportFormat")]
pub enum ExportFileFormat {
    /// Apache Parquet, columnar and compressed (`.parquet`).
    Parquet,
    /// Comma-separated values with a header row (`.csv`).
    Csv,
    /// JSON Lines: one JSON object per row, an event or a message (`.jsonl`).
    Jsonl,
}

/// A finished export and where to download it.
#[derive(SimpleObject)]
pub struct ExportFile {
    /// Relative download URL, signed; valid until `expiresAt`.
    url: String,
    /// Number of rows written: events, or messages.
    rows: u64,
    /// Size of the file, in bytes.
    bytes: u64,
    /// When the download link stops working (an hour after the export).
    expires_at: DateTime<Utc>,
}

impl From<jsc_app::Export> for ExportFile {
    fn from(e: jsc_app::Export) -> Self {
        Self {
            url: e.url,
            rows: e.rows,
            bytes: e.bytes,
            expires_at: e.expires_at,
        }
    }
}

#[derive(Default)]
pub struct AuditMutation;

#[Object]
impl AuditMutation {
    /// Writes the audit trail (or the part matching `filter`) to the object store, oldest
    /// first, and returns a signed download link valid for an hour. Needs admin and exports
    /// only what auditTrail would show you (`FORBIDDEN` otherwise).
    async fn export_audit(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which events to export, and in which format.")] input: ExportAuditInput,
    ) -> Result<ExportAuditPayload> {
        let caller = caller(ctx)?;
        let e = console(ctx)
            .export_audit(&caller, input.filter.unwrap_or_default().into(), input.format.into())
            .await?;
        Ok(ExportAuditPayload {
            export: e.into(),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }
}

input! {
    /// Exports the audit trail (mutation exportAudit).
    ExportAuditInput {
        /// Which events to export; left out or null exports every event you may see.
        filter: Option<AuditFilterInput>,
        /// The file format.
        format: ExportFileFormat,
    }
}

payload! {
    /// What mutation exportAudit answers: the finished export and where to download it.
    ExportAuditPayload {
        #[graphql(flatten)]
        export: ExportFile,
    }
}

/// One page of an aggregate's history, as the `history` query and the objects that have a
/// history (alerts, alert rules) answer it.
pub(crate) async fn history_page(
    ctx: &Context<'_>,
    kind: jsc_domain::AggregateKind,
    id: &str,
    paging: jsc_app::Paging,
) -> Result<HistoryEntryConnection> {
    let page = console(ctx).history(&caller(ctx)?, kind, id, &paging).await?;
    Ok(HistoryEntryConnection::new(page, history_entry))
}

fn history_entry(e: jsc_app::HistoryEntry) -> HistoryEntry {
    let rec = e.record;
    HistoryEntry {
        sequence: rec.stream_sequence,
        aggregate_sequence: rec.aggregate_sequence,
        event_type: rec.event_type.clone(),
        event_version: rec.event_version.clone(),
        timestamp: rec.timestamp,
        actor: rec.actor().to_string(),
        correlation_id: rec.metadata.get("correlation_id").cloned(),
        causation_id: rec.metadata.get("causation_id").cloned(),
        client_addr: rec.metadata.get("client_addr").cloned(),
        trace_id: rec.metadata.get(jsc_eventstore::trace::TRACE_ID).cloned(),
        payload: Json(e.payload),
        changes: e
            .changes
            .into_iter()
            .map(|(path, before, after)| FieldChange {
                path,
                before: before.map(Json),
                after: after.map(Json),
            })
            .collect(),
    }
}
