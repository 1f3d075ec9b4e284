//! The console's domain: aggregates, their commands and events, and domain errors.
//!
//! Pure: no I/O and no runtime. Rules live in `handle`, state changes only in `apply`, and
//! anything that must reach the outside world (probing a cluster, checking a name against
//! the read model) goes through an aggregate's `Services` trait.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod claim;
pub mod cluster;
pub mod consumer;
pub mod digest;
pub mod export;
pub mod extra;
pub mod identity;
pub mod ids;
pub mod masking;
pub mod names;
pub mod policy;
pub mod secret;
pub mod shared;
pub mod stream;

#[cfg(test)]
mod tests;

pub use digest::sha256_hex;
pub use secret::Sealed;

/// What kind of failure a domain error is, so that one place (the API) can map every
/// aggregate's errors to `extensions.code` without knowing each enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input breaks a rule; the message says which field and what to do.
    Validation,
    /// The aggregate does not exist (or no longer does).
    NotFound,
    /// The command clashes with the aggregate's current state.
    Conflict,
    /// Something outside the console (a managed cluster) could not be reached.
    Unavailable,
}

/// Implemented by every aggregate's error enum.
pub trait DomainError: std::error::Error {
    fn kind(&self) -> ErrorKind;
}

/// Every aggregate type: the one list history, replay and the audit trail read. Its name is
/// the aggregate's `TYPE`, the token in event subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateKind {
    Cluster,
    Stream,
    Consumer,
    Organization,
    User,
    Invitation,
    Session,
    ApiKey,
    AlertRule,
    NotificationChannel,
    AlertPolicy,
    Silence,
    Alert,
    Claim,
}

impl AggregateKind {
    pub const ALL: [AggregateKind; 14] = [
        Self::Cluster,
        Self::Stream,
        Self::Consumer,
        Self::Organization,
        Self::User,
        Self::Invitation,
        Self::Session,
        Self::ApiKey,
        Self::AlertRule,
        Self::NotificationChannel,
        Self::AlertPolicy,
        Self::Silence,
        Self::Alert,
        Self::Claim,
    ];

    /// The aggregate's `TYPE`.
    pub fn as_str(self) -> &'static str {
        use cqrs_es::Aggregate;
        match self {
            Self::Cluster => cluster::Cluster::TYPE,
            Self::Stream => stream::Stream::TYPE,
            Self::Consumer => consumer::Consumer::TYPE,
            Self::Organization => identity::Organization::TYPE,
            Self::User => identity::User::TYPE,
            Self::Invitation => identity::Invitation::TYPE,
            Self::Session => identity::Session::TYPE,
            Self::ApiKey => identity::ApiKey::TYPE,
            Self::AlertRule => alerts::AlertRule::TYPE,
            Self::NotificationChannel => alerts::NotificationChannel::TYPE,
            Self::AlertPolicy => alerts::AlertPolicy::TYPE,
            Self::Silence => alerts::Silence::TYPE,
            Self::Alert => alerts::Alert::TYPE,
            Self::Claim => claim::Claim::TYPE,
        }
    }

    /// By its `TYPE`; the error lists the types there are.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.as_str() == name).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown aggregate type '{name}'; use one of {}", names.join(", "))
        })
    }

    /// Managed resources (on a cluster) rather than identity.
    pub fn is_managed_resource(self) -> bool {
        matches!(self, Self::Cluster | Self::Stream | Self::Consumer)
    }
}

#[cfg(test)]
mod kind_tests {
    #[test]
    fn every_kind_parses_back_from_its_type() {
        for k in super::AggregateKind::ALL {
            assert_eq!(super::AggregateKind::parse(k.as_str()), Ok(k));
        }
        assert!(
            super::AggregateKind::parse("nope")
                .unwrap_err()
                .contains("cluster, stream")
        );
    }
}
