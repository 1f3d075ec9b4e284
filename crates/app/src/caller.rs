//! Who is asking and from where: every use case takes a [`Caller`] (or, for the few open
//! to anonymous callers, the request's [`RequestMeta`]), and every command it issues
//! carries the caller as its actor.

use chrono::{DateTime, Utc};
use jsc_domain::identity::Role;
use jsc_eventstore::{CommandContext, Receipt};

/// Where a request came from; attached to every request and WebSocket connection.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// The stream sequence of the last event this request's commands committed (shared by
    /// the request's clones; [`Self::fresh_receipt`] starts a new count).
    pub receipt: Receipt,
}

impl RequestMeta {
    /// A request with a fresh correlation id and no address (in-process callers).
    pub fn local() -> Self {
        Self {
            request_id: uuid::Uuid::now_v7().to_string(),
            client_addr: None,
            user_agent: None,
            receipt: Receipt::default(),
        }
    }

    /// The same request with a receipt of its own: what one mutation of a document commits.
    pub fn fresh_receipt(&self) -> Self {
        Self {
            receipt: Receipt::default(),
            ..self.clone()
        }
    }

    /// The context of a command `actor` issues through this request, on a resource of
    /// `organization`.
    pub fn command_context(&self, actor: &str, organization: Option<&str>) -> CommandContext {
        CommandContext {
            actor: actor.to_string(),
            organization: organization.map(str::to_string),
            correlation_id: self.request_id.clone(),
            causation_id: self.request_id.clone(),
            client_addr: self.client_addr.clone(),
            user_agent: self.user_agent.clone(),
            receipt: self.receipt.clone(),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `user:<id>` or `apikey:<id>`: what events record as the actor.
    pub actor: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub api_key: Option<KeyGrant>,
    /// When the credential stops being valid (access token expiry, API key expiry).
    pub expires_at: Option<DateTime<Utc>>,
    /// When the access token (or key) was issued.
    pub issued_at: Option<DateTime<Utc>>,
}

/// What an API key may do.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub key_id: String,
    pub organization: String,
    pub role: Role,
}

/// An authenticated caller and their request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub meta: RequestMeta,
}

impl Caller {
    pub fn new(principal: Principal, meta: RequestMeta) -> Self {
        Self { principal, meta }
    }

    /// The context of a command this caller issues on a resource of `organization`.
    pub fn context(&self, organization: Option<&str>) -> CommandContext {
        self.meta.command_context(&self.principal.actor, organization)
    }

    pub fn correlation_id(&self) -> &str {
        &self.meta.request_id
    }

    /// The caller's user id, if a user (not a service-account key).
    pub fn user_id(&self) -> Option<&str> {
        self.principal.user_id.as_deref()
    }

    /// `FORBIDDEN` for an API key: `what` needs a signed-in user.
    pub fn require_user(&self, what: &str) -> crate::Result<&str> {
        match (&self.principal.api_key, &self.principal.user_id) {
            (None, Some(uid)) => Ok(uid),
            _ => Err(crate::Error::forbidden(format!(
                "an API key cannot {what}; sign in as a user"
            ))),
        }
    }
}
