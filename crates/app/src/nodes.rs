//! Global object identification: every object a client may cache has one id, unique across
//! every type, and can be fetched again by it alone, with the same permission checks as
//! everywhere else (`NOT_FOUND` alike for what does not exist and what the caller may not
//! see).
//!
//! Objects that have their own random id (clusters, users, organizations, teams, sessions,
//! API keys, invitations: UUIDs) keep it as their global id. Objects named within another
//! (streams, consumers) or numbered (audit entries) get an opaque id that encodes the path
//! to them: base64url of `<Type>\n<part>\n<part>...` (names cannot hold a newline).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsc_domain::identity::{KeyOwner, Role};
use jsc_projections::audit::{AuditFilter, AuditRow, End, Span};
use jsc_projections::identity::{ApiKeyView, InvitationView, OrganizationView, SessionView, UserView};
use jsc_projections::{ClusterView, ConsumerView, StreamView};
use jsc_projector::Versioned;

use crate::identity::Team;
use crate::{Caller, Code, Console, Error, Result};

/// Most ids one `nodes` call resolves.
pub const MAX_NODES: usize = 100;

/// The id of an object that has no id of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathId {
    Stream {
        cluster_id: String,
        name: String,
    },
    Consumer {
        cluster_id: String,
        stream: String,
        name: String,
    },
    AuditEntry {
        sequence: u64,
    },
}

impl PathId {
    pub fn stream(cluster_id: &str, name: &str) -> String {
        Self::encode(&["Stream", cluster_id, name])
    }

    pub fn consumer(cluster_id: &str, stream: &str, name: &str) -> String {
        Self::encode(&["Consumer", cluster_id, stream, name])
    }

    pub fn audit_entry(sequence: u64) -> String {
        Self::encode(&["AuditEntry", &sequence.to_string()])
    }

    fn encode(parts: &[&str]) -> String {
        B64.encode(parts.join("\n"))
    }

    /// The path an id encodes; `None` for an id of the other kind (or none at all).
    pub fn parse(id: &str) -> Option<Self> {
        let text = String::from_utf8(B64.decode(id).ok()?).ok()?;
        let parts: Vec<&str> = text.split('\n').collect();
        Some(match parts.as_slice() {
            ["Stream", c, n] => Self::Stream {
                cluster_id: c.to_string(),
                name: n.to_string(),
            },
            ["Consumer", c, s, n] => Self::Consumer {
                cluster_id: c.to_string(),
                stream: s.to_string(),
                name: n.to_string(),
            },
            ["AuditEntry", seq] => Self::AuditEntry {
                sequence: seq.parse().ok()?,
            },
            _ => return None,
        })
    }
}

/// An object found by its global id.
#[derive(Debug, Clone)]
pub enum Node {
    Cluster(Versioned<ClusterView>),
    Stream(Versioned<StreamView>),
    Consumer(Versioned<ConsumerView>),
    User(UserView),
    Organization(OrganizationView),
    Team(Team),
    /// With whether it is the caller's own session.
    Session(SessionView, bool),
    ApiKey(ApiKeyView),
    Invitation(InvitationView),
    AuditEntry(AuditRow),
}

impl Console {
    /// The object with global id `id`, if the caller may see it; `NOT_FOUND` otherwise.
    pub async fn node(&self, caller: &Caller, id: &str) -> Result<Node> {
        let not_found = || Error::not_found(format!("no object with id '{id}' that you may see"));
        let hidden = |e: Error| {
            if e.code == Code::Unauthenticated {
                e
            } else {
                not_found()
            }
        };
        if let Some(path) = PathId::parse(id) {
            return match path {
                PathId::Stream { cluster_id, name } => self.stream(caller, &cluster_id, &name).map(Node::Stream),
                PathId::Consumer {
                    cluster_id,
                    stream,
                    name,
                } => self.consumer(caller, &cluster_id, &stream, &name).map(Node::Consumer),
                PathId::AuditEntry { sequence } => self
                    .audit_entry(caller, sequence)
                    .await
                    .and_then(|row| row.map(Node::AuditEntry).ok_or_else(not_found)),
            }
            .map_err(hidden);
        }
        let v = &self.views;
        let p = &caller.principal;
        let token = jsc_projector::kv_token(id);
        if v.clusters.get(&token).is_some() {
            return self.cluster(caller, id).map(Node::Cluster).map_err(hidden);
        }
        if v.users.get(&token).is_some() {
            return self.user(caller, id).map(Node::User).map_err(hidden);
        }
        if v.organizations.get(&token).is_some() {
            return self.organization(caller, id).map(Node::Organization).map_err(hidden);
        }
        if let Some(s) = v.sessions.get(&token) {
            // As `User.sessions`: a session that ended is gone.
            if !s.view.state.active_at(chrono::Utc::now()) {
                return Err(not_found());
            }
            let user_id = &s.view.state.user_id;
            let own = p.user_id.as_ref() == Some(user_id);
            if !own {
                self.require_admin_over(p, user_id).map_err(hidden)?;
            }
            let current = p.session_id.as_deref() == Some(id);
            return Ok(Node::Session(s.view, current));
        }
        if let Some(k) = v.api_keys.get(&token) {
            let org = &k.view.state.organization;
            let role = self.require_org(p, org, Role::Viewer).map_err(hidden)?;
            let own =
                matches!(&k.view.state.owner, Some(KeyOwner::User { user_id }) if Some(user_id) == p.user_id.as_ref());
            return if role >= Role::Admin || own {
                Ok(Node::ApiKey(k.view))
            } else {
                Err(not_found())
            };
        }
        if let Some(i) = v.invitations.get(&token) {
            self.require_org(p, &i.view.state.organization, Role::Admin)
                .map_err(hidden)?;
            return Ok(Node::Invitation(i.view));
        }
        let team = v
            .organizations
            .list()
            .into_iter()
            .find(|o| o.view.state.teams.contains_key(id));
        if let Some(o) = team {
            self.require_org(p, &o.view.state.id, Role::Viewer).map_err(hidden)?;
            return Ok(Node::Team(Team {
                organization: o.view.state,
                id: id.to_string(),
            }));
        }
        Err(not_found())
    }

    /// Several objects by global id, in the order asked; each one that cannot be seen is its
    /// own `NOT_FOUND`. At most [`MAX_NODES`].
    pub async fn nodes(&self, caller: &Caller, ids: &[String]) -> Result<Vec<Result<Node>>> {
        if ids.len() > MAX_NODES {
            return Err(Error::validation(format!(
                "ids: at most {MAX_NODES} at a time, not {}; split the list",
                ids.len()
            )));
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.node(caller, id).await);
        }
        Ok(out)
    }

    /// One event of the audit trail by stream sequence, if the caller may see it.
    pub async fn audit_entry(&self, caller: &Caller, sequence: u64) -> Result<Option<AuditRow>> {
        let filter = self.restrict(&caller.principal, AuditFilter::default())?;
        let span = Span {
            above: sequence.saturating_sub(1),
            below: sequence.saturating_add(1),
        };
        let (rows, _) = self
            .audit
            .query(&filter, span, 1, End::Newest)
            .await
            .map_err(|e| Error::internal(&e, caller.correlation_id()))?;
        Ok(rows.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_ids_round_trip_and_refuse_anything_else() {
        let s = PathId::stream("c1", "ORDERS");
        assert_eq!(
            PathId::parse(&s),
            Some(PathId::Stream {
                cluster_id: "c1".into(),
                name: "ORDERS".into()
            })
        );
        let c = PathId::consumer("c1", "ORDERS", "worker");
        assert!(matches!(PathId::parse(&c), Some(PathId::Consumer { name, .. }) if name == "worker"));
        assert_eq!(
            PathId::parse(&PathId::audit_entry(42)),
            Some(PathId::AuditEntry { sequence: 42 })
        );
        assert_ne!(s, c);
        assert_eq!(
            PathId::parse("0193a7c2-8a4e-7c2d-9f1e-1a2b3c4d5e6f"),
            None,
            "a UUID is not a path"
        );
        assert_eq!(PathId::parse(&B64.encode("Stream\nc1")), None, "too few parts");
        assert_eq!(PathId::parse(&B64.encode("AuditEntry\nx")), None);
    }
}
