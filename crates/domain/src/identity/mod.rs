//! Identity and access: organizations (members, teams, per-cluster grants), users,
//! invitations, sessions and API keys.
//!
//! Nothing secret is ever in clear here: a password hash and an API key's hash are
//! [`Sealed`] (encrypted with the console's key), and refresh and invitation tokens are
//! not stored at all: they are signed by the API and checked against the `generation` or
//! the state kept in these aggregates.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::{DomainError, ErrorKind, Sealed};

/// The organization every installation starts with; clusters registered before
/// organizations existed belong to it.
pub const DEFAULT_ORGANIZATION: &str = "default";

/// What a member may do in an organization (or, through a team, on one cluster).
/// Ordered: each role can do everything the roles before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads clusters, streams, consumers and their history.
    Viewer,
    /// Also changes streams and consumers and tests connections.
    Operator,
    /// Also manages clusters, members below owner, teams, API keys and reads the audit trail.
    Admin,
    /// Also manages owners.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
}

impl DomainError for IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Validation,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::Conflict,
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> IdentityError {
    IdentityError::Invalid {
        field,
        message: message.into(),
    }
}

/// A display name: trimmed, 1..=64 characters, no control characters.
pub fn normalize_display_name(field: &'static str, name: &str) -> Result<String, IdentityError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if name.chars().count() > 64 {
        return Err(invalid(field, "must be at most 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(name.to_string())
}

/// Fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Most bytes a password may have (argon2 hashes it whole).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The password rules: long enough, not absurdly long, not the email address.
pub fn check_password(password: &str, email: &str) -> Result<(), IdentityError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(invalid(
            "password",
            format!("use at least {MIN_PASSWORD_CHARS} characters (a few words make a good one)"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(invalid("password", format!("at most {MAX_PASSWORD_BYTES} bytes")));
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err(invalid("password", "must not be your email address"));
    }
    Ok(())
}

/// Why a session was revoked (recorded in `SessionRevoked` in words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevokeReason {
    SignedOut,
    PasswordChanged,
    /// The account was disabled or its password changed since the session started.
    Stale,
    Expired,
    /// Someone presented a refresh token that was already traded.
    ReuseDetected,
    /// Ended by its user or an administrator (`actor`).
    RevokedBy(String),
}

impl std::fmt::Display for RevokeReason {
    /// The words recorded in the event (as they always were, so old events read the same).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignedOut => f.write_str("signed out"),
            Self::PasswordChanged => f.write_str("password changed"),
            Self::Stale => f.write_str("account disabled or password changed"),
            Self::Expired => f.write_str("expired"),
            Self::ReuseDetected => f.write_str(REUSE_DETECTED),
            Self::RevokedBy(actor) => write!(f, "revoked by {actor}"),
        }
    }
}

/// An email address, lower-cased; only its shape is checked (`local@domain`).
pub fn normalize_email(email: &str) -> Result<String, IdentityError> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@') && !d.starts_with('.'));
    if ok {
        Ok(email)
    } else {
        Err(invalid("email", "is not an email address (expected name@example.com)"))
    }
}

mod api_key;
mod invitation;
mod organization;
mod session;
mod user;

pub use api_key::*;
pub use invitation::*;
pub use organization::*;
pub use session::*;
pub use user::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> Organization {
        let mut o = Organization::default();
        o.apply(OrganizationEvent::Created {
            id: "acme".into(),
            name: "Acme".into(),
        });
        o.apply(OrganizationEvent::MemberSet {
            user_id: "u".into(),
            role: Role::Viewer,
            previous: None,
        });
        o.apply(OrganizationEvent::TeamCreated {
            team_id: "t".into(),
            name: "payments".into(),
        });
        o.apply(OrganizationEvent::TeamMemberAdded {
            team_id: "t".into(),
            user_id: "u".into(),
        });
        o.apply(OrganizationEvent::TeamClusterRoleSet {
            team_id: "t".into(),
            cluster_id: "c1".into(),
            role: Some(Role::Operator),
            previous: None,
        });
        o
    }

    #[test]
    fn a_team_grant_raises_the_role_on_its_cluster_only() {
        let o = org();
        assert_eq!(o.cluster_role("u", "c1"), Some(Role::Operator));
        assert_eq!(o.cluster_role("u", "c2"), Some(Role::Viewer));
        assert_eq!(o.cluster_role("stranger", "c1"), None);
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(normalize_email(" Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in ["", "ann", "@x", "ann@", "a b@x.y", "a@@x"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
