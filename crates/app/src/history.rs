//! History and time travel (an aggregate's events with the state change each made, and
//! its state at any moment, replayed from the event stream itself), and the audit trail
//! (queries over the Parquet table, the live trail, exports with signed links).

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use futures::{Stream, StreamExt};
use jsc_domain::AggregateKind;
use jsc_domain::identity::{self, DEFAULT_ORGANIZATION, Role};
use jsc_eventstore::{EventRecord, JetStreamEventStore};
use jsc_projections::audit::{AuditFilter, AuditRow, End, ExportFormat, Span};
use serde_json::Value;

use crate::paging::{Edge, List, MAX_EVENT_PAGE, Page, Paging, Take};
use crate::{Caller, Code, Console, Error, Principal, Result};

/// One event of an aggregate's history and what it changed (credentials redacted).
pub struct HistoryEntry {
    pub record: EventRecord,
    /// The event as stored, credentials redacted.
    pub payload: Value,
    /// `(path, before, after)` of every leaf of the state the event changed.
    pub changes: Vec<(String, Option<Value>, Option<Value>)>,
}

/// An aggregate's state at a point in its history.
pub struct StateAt {
    pub version: u64,
    /// Stream sequence of the last event applied; 0 if none.
    pub as_of_sequence: u64,
    pub as_of: Option<DateTime<Utc>>,
    /// Credentials redacted; `None` before the first event.
    pub state: Option<Value>,
}

/// Where in its history to look.
#[derive(Clone, Copy)]
pub enum PointInTime {
    At(DateTime<Utc>),
    Sequence(u64),
}

/// A finished export and its download link.
pub struct Export {
    /// Relative download URL, signed; valid until `expires_at`.
    pub url: String,
    pub rows: u64,
    pub bytes: u64,
    pub expires_at: DateTime<Utc>,
}

/// How long a download link stays valid.
pub const EXPORT_LINK_TTL: chrono::Duration = chrono::Duration::hours(1);

/// The message a download link signs.
pub fn export_link_message(file: &str, expires: i64) -> String {
    format!("export:{file}:{expires}")
}

/// Replays `records` of one aggregate type, returning the state after each event.
fn states_after<A: Aggregate>(store: &JetStreamEventStore, records: &[EventRecord]) -> Result<Vec<Value>, BoxError> {
    let mut aggregate = A::default();
    let mut out = Vec::with_capacity(records.len());
    for rec in records {
        let env = store.to_envelope::<A>(rec.clone())?;
        aggregate.apply(env.payload);
        out.push(serde_json::to_value(&aggregate)?);
    }
    Ok(out)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn replay(store: &JetStreamEventStore, kind: AggregateKind, records: &[EventRecord]) -> Result<Vec<Value>> {
    use jsc_domain::{alerts, cluster, consumer, stream};
    let result = match kind {
        AggregateKind::Cluster => states_after::<cluster::Cluster>(store, records),
        AggregateKind::Stream => states_after::<stream::Stream>(store, records),
        AggregateKind::Consumer => states_after::<consumer::Consumer>(store, records),
        AggregateKind::Organization => states_after::<identity::Organization>(store, records),
        AggregateKind::User => states_after::<identity::User>(store, records),
        AggregateKind::Invitation => states_after::<identity::Invitation>(store, records),
        AggregateKind::Session => states_after::<identity::Session>(store, records),
        AggregateKind::ApiKey => states_after::<identity::ApiKey>(store, records),
        AggregateKind::AlertRule => states_after::<alerts::AlertRule>(store, records),
        AggregateKind::NotificationChannel => states_after::<alerts::NotificationChannel>(store, records),
        AggregateKind::AlertPolicy => states_after::<alerts::AlertPolicy>(store, records),
        AggregateKind::Silence => states_after::<alerts::Silence>(store, records),
        AggregateKind::Alert => states_after::<alerts::Alert>(store, records),
        AggregateKind::Claim => states_after::<jsc_domain::claim::Claim>(store, records),
    };
    result.map_err(|e| Error::internal(e.as_ref(), "history-replay"))
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

/// A changed value as it may be shown: credentials never.
pub fn redacted(v: Option<Value>, path: &str) -> Option<Value> {
    v.map(|mut v| {
        if is_secret_path(path) && !v.is_null() {
            v = Value::String("<redacted>".into());
        }
        jsc_domain::secret::redact_json(&mut v);
        v
    })
}

impl Console {
    /// An aggregate's events, if the caller may read its history: managed resources
    /// (cluster, stream, consumer) for viewers of their organization; identity aggregates
    /// for admins (a user's own account and sessions for the user). `NOT_FOUND` alike for
    /// what does not exist and what is not the caller's to see.
    async fn records_of(&self, caller: &Caller, kind: AggregateKind, id: &str) -> Result<Vec<EventRecord>> {
        let p = &caller.principal;
        let subject = self.store.subject(kind.as_str(), id);
        let records = self.store.reader().read_subject(&subject, 1).await.map_err(|e| {
            tracing::warn!(error = %e, "history read failed");
            Error::unavailable("the console's NATS did not answer; retry in a moment")
        })?;
        let not_found = || Error::not_found(format!("no {} with id '{id}' has any history", kind.as_str()));
        if records.is_empty() {
            return Err(not_found());
        }
        let org = records
            .iter()
            .rev()
            .find_map(|r| r.metadata.get("organization").cloned())
            .unwrap_or_else(|| DEFAULT_ORGANIZATION.to_string());
        let user_of = |r: &EventRecord| {
            r.payload
                .pointer("/Started/user_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let allowed = match kind {
            k if k.is_managed_resource() => self.require_org(p, &org, Role::Viewer).map(|_| ()),
            // Alerting is the organization's to see (channel secrets are redacted).
            AggregateKind::AlertRule
            | AggregateKind::NotificationChannel
            | AggregateKind::AlertPolicy
            | AggregateKind::Silence
            | AggregateKind::Alert => self.require_org(p, &org, Role::Viewer).map(|_| ()),
            AggregateKind::User | AggregateKind::Session => {
                let user = if kind == AggregateKind::User {
                    Some(id.to_string())
                } else {
                    records.first().and_then(user_of)
                };
                match user {
                    Some(u) if p.user_id.as_deref() == Some(u.as_str()) => Ok(()),
                    Some(u) => self.require_admin_over(p, &u),
                    None => Err(not_found()),
                }
            }
            _ => self.require_org(p, &org, Role::Admin).map(|_| ()),
        };
        match allowed {
            Ok(()) => Ok(records),
            Err(e) if e.code == Code::Forbidden => Err(e),
            Err(_) => Err(not_found()),
        }
    }

    /// The events of one aggregate, oldest first, with the change each made to its state:
    /// one page (at most [`MAX_EVENT_PAGE`]).
    pub async fn history(
        &self,
        caller: &Caller,
        kind: AggregateKind,
        id: &str,
        paging: &Paging,
    ) -> Result<Page<HistoryEntry>> {
        let scope = format!("{}/{id}", kind.as_str());
        let all = self.all_history(caller, kind, id).await?;
        let list = List::new("history", &scope);
        self.page(list, all, |e| e.record.stream_sequence, paging, MAX_EVENT_PAGE)
    }

    /// Every event of one aggregate, oldest first, with the change each made to its state.
    async fn all_history(&self, caller: &Caller, kind: AggregateKind, id: &str) -> Result<Vec<HistoryEntry>> {
        let records = self.records_of(caller, kind, id).await?;
        let states = replay(&self.store, kind, &records)?;
        let mut previous = Value::Null;
        let mut out = Vec::with_capacity(records.len());
        for (record, state) in records.into_iter().zip(states) {
            let changes = diff(&previous, &state)
                .into_iter()
                .map(|(path, before, after)| {
                    let (before, after) = (redacted(before, &path), redacted(after, &path));
                    (path, before, after)
                })
                .collect();
            previous = state;
            let mut payload = record.payload.clone();
            jsc_domain::secret::redact_json(&mut payload);
            out.push(HistoryEntry {
                record,
                payload,
                changes,
            });
        }
        Ok(out)
    }

    /// An aggregate's state at a time or just after a stream sequence, replayed from its events.
    pub async fn state_at(&self, caller: &Caller, kind: AggregateKind, id: &str, when: PointInTime) -> Result<StateAt> {
        let records: Vec<EventRecord> = self
            .records_of(caller, kind, id)
            .await?
            .into_iter()
            .filter(|r| match when {
                PointInTime::At(t) => r.timestamp <= t,
                PointInTime::Sequence(s) => r.stream_sequence <= s,
            })
            .collect();
        let states = replay(&self.store, kind, &records)?;
        let last = records.last();
        Ok(StateAt {
            version: records.len() as u64,
            as_of_sequence: last.map_or(0, |r| r.stream_sequence),
            as_of: last.map(|r| r.timestamp),
            state: states.into_iter().last().map(|mut s| {
                jsc_domain::secret::redact_json(&mut s);
                s
            }),
        })
    }

    /// Narrows an audit filter to what the caller may see: organizations where they are
    /// admin, and installation-wide events (accounts, sessions) for owners of the default
    /// organization.
    pub(crate) fn restrict(&self, p: &Principal, mut filter: AuditFilter) -> Result<AuditFilter> {
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from > to
        {
            return Err(Error::validation(format!(
                "filter.from: {} is after filter.to ({}); give a from at or before to",
                from.to_rfc3339(),
                to.to_rfc3339()
            )));
        }
        let within = self.organizations_with(p, Role::Admin);
        if within.is_empty() {
            return Err(Error::forbidden(
                "the audit trail needs the admin role in an organization",
            ));
        }
        filter.within_installation = self.org_role(p, DEFAULT_ORGANIZATION) == Some(Role::Owner);
        filter.within = Some(within);
        Ok(filter)
    }

    /// The audit trail, newest first, one page (at most [`MAX_EVENT_PAGE`]) of the events
    /// matching `filter`; cursors are stream sequences.
    pub async fn audit_trail(&self, caller: &Caller, filter: AuditFilter, paging: &Paging) -> Result<Page<AuditRow>> {
        let filter = self.restrict(&caller.principal, filter)?;
        let take = paging.take(MAX_EVENT_PAGE)?;
        let list = List::new("audit", "");
        let (after, before) = self.bounds::<u64>(list, paging)?;
        // Newest first: `after` a cursor means older (lower sequences), `before` newer.
        let span = Span {
            above: before.unwrap_or(0),
            below: after.unwrap_or(u64::MAX),
        };
        let failed = |e| Error::internal(&e, caller.correlation_id());
        // What lies beyond the cursor the page starts from was on an earlier page: events are
        // never removed from the trail.
        let (rows, has_previous_page, has_next_page) = match take {
            Take::First(n) => {
                let (rows, more) = self.audit.query(&filter, span, n, End::Newest).await.map_err(failed)?;
                (rows, after.is_some(), more)
            }
            Take::Last(n) => {
                let (mut rows, more) = self.audit.query(&filter, span, n, End::Oldest).await.map_err(failed)?;
                rows.reverse();
                (rows, more, before.is_some())
            }
        };
        let positions = Self::positions(list, rows.iter().map(|r| r.sequence));
        Ok(Page {
            edges: positions
                .into_iter()
                .zip(rows)
                .map(|(position, node)| Edge { position, node })
                .collect(),
            has_previous_page,
            has_next_page,
            total_count: None,
        })
    }

    /// How many events of the audit trail match `filter` (of those the caller may see).
    pub async fn audit_count(&self, caller: &Caller, filter: AuditFilter) -> Result<usize> {
        let filter = self.restrict(&caller.principal, filter)?;
        self.audit
            .count(&filter)
            .await
            .map_err(|e| Error::internal(&e, caller.correlation_id()))
    }

    /// Every new event matching `filter` as it is appended, from `from_sequence` if given
    /// (to resume without a gap). Re-checked per event: a caller who stops being admin
    /// stops seeing events.
    pub async fn audit_events(
        &self,
        caller: &Caller,
        filter: AuditFilter,
        from_sequence: Option<u64>,
    ) -> Result<impl Stream<Item = AuditRow> + Send + use<>> {
        use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
        self.restrict(&caller.principal, filter.clone())?;
        let unavailable = |_| Error::unavailable("the console's NATS did not answer; retry in a moment");
        let js = async_nats::jetstream::new(self.home.clone());
        let stream = js
            .get_stream(&self.store.config().stream)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let consumer = stream
            .create_consumer(OrderedConfig {
                // Small pulls: a subscriber that reads slowly holds a few dozen events, not
                // hundreds.
                max_batch: 32,
                deliver_policy: match from_sequence {
                    Some(s) => DeliverPolicy::ByStartSequence {
                        start_sequence: s.max(1),
                    },
                    None => DeliverPolicy::New,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let messages = consumer.messages().await.map_err(|e| unavailable(e.to_string()))?;
        let (c, p) = (self.clone(), caller.principal.clone());
        Ok(messages.filter_map(move |m| {
            let allowed = c.restrict(&p, filter.clone()).ok();
            let row = m.ok().and_then(|m| {
                let seq = m.info().ok()?.stream_sequence;
                EventRecord::from_message(&m.payload, m.headers.as_ref(), seq).ok()
            });
            let out = row
                .map(|r| AuditRow::from_record(&r))
                .filter(|r| allowed.as_ref().is_some_and(|f| f.matches(r)));
            futures::future::ready(out)
        }))
    }

    /// Writes the audit trail (or the part matching `filter`) to the object store, oldest
    /// first, and returns a signed download link valid for [`EXPORT_LINK_TTL`].
    pub async fn export_audit(&self, caller: &Caller, filter: AuditFilter, format: ExportFormat) -> Result<Export> {
        let filter = self.restrict(&caller.principal, filter)?;
        let (file, _, sink) = self.new_export(format);
        let correlation = caller.correlation_id();
        let rows = self
            .audit
            .export(&filter, format, sink, &mut |_, _| {})
            .await
            .map_err(|e| Error::internal(&e, correlation))?;
        self.signed_export(&file, rows, correlation).await
    }

    /// Where a new export of `format` goes: its file name and its path on the object store
    /// (`exports/<uuid v7>.<extension>`), and a writer to it.
    pub(crate) fn new_export(
        &self,
        format: ExportFormat,
    ) -> (String, object_store::path::Path, object_store::buffered::BufWriter) {
        let file = format!("{}.{}", uuid::Uuid::now_v7(), format.extension());
        let path = object_store::path::Path::from(format!("exports/{file}"));
        let sink = object_store::buffered::BufWriter::new(self.audit.store.clone(), path.clone());
        (file, path, sink)
    }

    /// Removes what a failed export wrote (best effort: the file may never have been made).
    pub(crate) async fn discard_export(&self, path: &object_store::path::Path) {
        use object_store::ObjectStoreExt;
        let _ = self.audit.store.delete(path).await;
    }

    /// The download link of a finished export `file` of `rows` rows, valid for
    /// [`EXPORT_LINK_TTL`].
    pub(crate) async fn signed_export(&self, file: &str, rows: u64, correlation: &str) -> Result<Export> {
        use object_store::ObjectStoreExt;
        let path = object_store::path::Path::from(format!("exports/{file}"));
        let bytes = self
            .audit
            .store
            .head(&path)
            .await
            .map_err(|e| Error::internal(&e, correlation))?
            .size;
        let expires_at = Utc::now() + EXPORT_LINK_TTL;
        let expires = expires_at.timestamp();
        let signature = self.auth.keys.sign_link(&export_link_message(file, expires));
        Ok(Export {
            url: format!("/exports/{file}?expires={expires}&signature={signature}"),
            rows,
            bytes,
            expires_at,
        })
    }

    /// An export's bytes, for whoever holds its signed, unexpired link; `None` when the
    /// link is invalid, expired or names no export.
    pub async fn download_export(&self, file: &str, expires: i64, signature: &str) -> Option<object_store::GetResult> {
        use object_store::ObjectStoreExt;
        let message = export_link_message(file, expires);
        if expires < Utc::now().timestamp()
            || file.contains(['/', '\\'])
            || file.contains("..")
            || !self.auth.keys.verify_link(&message, signature)
        {
            return None;
        }
        let path = object_store::path::Path::from(format!("exports/{file}"));
        self.audit.store.get(&path).await.ok()
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
            redacted(Some(json!("v1:x")), "spec.auth.password").unwrap(),
            json!("<redacted>")
        );
    }
}
