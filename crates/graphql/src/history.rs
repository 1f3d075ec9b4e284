//! History and time travel over GraphQL, and the audit trail: queries, the live trail and
//! exports, each one use case of the application.

use async_graphql::{Context, Enum, ID, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use jsc_app::{Error as ApiError, PointInTime};
use jsc_projections::audit::{AuditFilter, AuditRow, ExportFormat};
use serde_json::Value;

use crate::context::{caller, console, guarded};

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
    Organization,
    User,
    Invitation,
    Session,
    ApiKey,
}

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
    aggregate_type: AggregateType,
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
    /// Every event of one aggregate, oldest first, with the change each made to its state.
    /// Credentials are redacted.
    async fn history(&self, ctx: &Context<'_>, aggregate_type: AggregateType, id: ID) -> Result<Vec<HistoryEntry>> {
        let entries = console(ctx).history(&caller(ctx)?, aggregate_type.into(), &id).await?;
        Ok(entries
            .into_iter()
            .map(|e| {
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
            })
            .collect())
    }

    /// An aggregate's state as it was at time `at`, or just after stream sequence
    /// `sequence` (give one), replayed from its events.
    async fn state_at(
        &self,
        ctx: &Context<'_>,
        aggregate_type: AggregateType,
        id: ID,
        at: Option<DateTime<Utc>>,
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
        let filter: AuditFilter = filter.unwrap_or_default().into();
        let (rows, more) = console(ctx).audit_trail(&caller(ctx)?, filter, first, before).await?;
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
        let filter: AuditFilter = filter.unwrap_or_default().into();
        let rows = console(ctx).audit_events(&caller(ctx)?, filter, from_sequence).await?;
        Ok(guarded(ctx, rows.map(AuditEntry))?)
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
        let format = match format {
            AuditExportFormat::Parquet => ExportFormat::Parquet,
            AuditExportFormat::Csv => ExportFormat::Csv,
            AuditExportFormat::Jsonl => ExportFormat::Jsonl,
        };
        let e = console(ctx)
            .export_audit(&caller(ctx)?, filter.unwrap_or_default().into(), format)
            .await?;
        Ok(AuditExport {
            url: e.url,
            rows: e.rows,
            bytes: e.bytes,
            expires_at: e.expires_at,
        })
    }
}
