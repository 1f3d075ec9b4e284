//! The console's domain: aggregates, their commands and events, and domain errors.
//!
//! Pure: no I/O and no runtime. Rules live in `handle`, state changes only in `apply`, and
//! anything that must reach the outside world (probing a cluster, checking a name against
//! the read model) goes through an aggregate's `Services` trait.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod consumer;
pub mod identity;
pub mod names;
pub mod secret;
pub mod stream;

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
