//! The identity views: users, organizations, invitations, sessions and API keys.
//!
//! Each is the aggregate's own state, folded with the aggregate's `apply` (so the view can
//! never disagree with the command side), plus who created it and when. Sealed values
//! (password and key hashes) stay sealed; they are in the views because the API checks
//! credentials against them, and are never returned.
//!
//! Keys are aggregate ids; buckets `view_<name>_v1`; read `es.<aggregate type>.>`.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use jsc_domain::identity::{ApiKey, Invitation, Organization, Session, User};
use jsc_eventstore::EventRecord;
use jsc_projector::KvProjection;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// An aggregate's current state as a view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateView<S> {
    pub state: S,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    /// The aggregate's version (number of events).
    pub version: u64,
}

/// Folds one aggregate type into a view keyed by aggregate id; `keep` decides whether an
/// aggregate stays in the view (revoked sessions leave it).
pub struct StateProjection<A> {
    name: &'static str,
    keep: fn(&A) -> bool,
    _a: PhantomData<fn() -> A>,
}

impl<A> StateProjection<A> {
    pub const fn new(name: &'static str, keep: fn(&A) -> bool) -> Self {
        Self {
            name,
            keep,
            _a: PhantomData,
        }
    }
}

impl<A> KvProjection for StateProjection<A>
where
    A: Aggregate + Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type View = StateView<A>;

    fn name(&self) -> &'static str {
        self.name
    }

    fn version(&self) -> u32 {
        1
    }

    fn aggregate_types(&self) -> Vec<&'static str> {
        vec![A::TYPE]
    }

    fn key(&self, event: &EventRecord) -> Option<String> {
        (event.aggregate_type == A::TYPE).then(|| jsc_projector::kv_token(&event.aggregate_id))
    }

    fn apply(&self, view: Option<StateView<A>>, event: &EventRecord) -> Result<Option<StateView<A>>, String> {
        let payload: A::Event =
            Deserialize::deserialize(&event.payload).map_err(|e: serde_json::Error| e.to_string())?;
        let actor = event.actor().to_string();
        let mut view = view.unwrap_or_else(|| StateView {
            state: A::default(),
            created_at: event.timestamp,
            created_by: actor.clone(),
            updated_at: event.timestamp,
            updated_by: actor.clone(),
            version: 0,
        });
        view.state.apply(payload);
        view.updated_at = event.timestamp;
        view.updated_by = actor;
        view.version = event.aggregate_sequence;
        Ok((self.keep)(&view.state).then_some(view))
    }
}

pub type UserView = StateView<User>;
pub type OrganizationView = StateView<Organization>;
pub type InvitationView = StateView<Invitation>;
pub type SessionView = StateView<Session>;
pub type ApiKeyView = StateView<ApiKey>;

pub const USERS: StateProjection<User> = StateProjection::new("users", |_| true);
pub const ORGANIZATIONS: StateProjection<Organization> = StateProjection::new("organizations", |_| true);
pub const INVITATIONS: StateProjection<Invitation> = StateProjection::new("invitations", |_| true);
/// Only sessions that were not revoked: a session missing here is not valid.
pub const SESSIONS: StateProjection<Session> = StateProjection::new("sessions", |s| s.revoked.is_none());
pub const API_KEYS: StateProjection<ApiKey> = StateProjection::new("api_keys", |_| true);
