//! The application's one error type: a [`Code`] a client can rely on, and a message that
//! says what to do next. Domain and event-store failures are mapped here, once; the
//! GraphQL edge turns an [`Error`] into `extensions.code` without looking inside.
//!
//! Infrastructure failures are logged with their chain and reach the caller as a generic
//! message naming the correlation id, never with internals.

use jsc_domain::{DomainError, ErrorKind};
use jsc_eventstore::CommandError;

/// The codes a client can rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Validation,
    NotFound,
    Conflict,
    Unavailable,
    Unauthenticated,
    Forbidden,
    RateLimited,
    /// A persisted query's hash is not registered: send the query with it (Apollo's
    /// automatic persisted queries).
    PersistedQueryNotFound,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validation => "VALIDATION",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::Unavailable => "UNAVAILABLE",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::RateLimited => "RATE_LIMITED",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::Internal => "INTERNAL",
        }
    }
}

/// A failed use case, as the caller sees it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// Seconds to wait before retrying (`RATE_LIMITED`); also sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// For a change that failed on the console's side: whether it was made anyway
    /// (`extensions.applied`).
    pub applied: Option<Applied>,
}

/// Whether a change that failed was made, as far as the console knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Nothing was changed: the change may be sent again.
    No,
    /// It may or may not have been saved: look before sending it again.
    Unknown,
    /// It was made (on the managed cluster), and is recorded once the console's NATS is back:
    /// do not send it again.
    Yes,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::No => "NO",
            Self::Unknown => "UNKNOWN",
            Self::Yes => "YES",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
            applied: None,
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(Code::Validation, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, message)
    }

    /// `RATE_LIMITED`, to retry after `wait`.
    pub fn rate_limited(message: impl Into<String>, wait: std::time::Duration) -> Self {
        let mut e = Self::new(Code::RateLimited, message);
        e.retry_after = Some(wait.as_secs().max(1));
        e
    }

    /// Logs `detail` with its whole chain and returns a message that reveals nothing but
    /// the correlation id.
    pub fn internal(detail: &(dyn std::error::Error + 'static), correlation_id: &str) -> Self {
        tracing::error!(%correlation_id, error = %Chain(detail), "internal error");
        Self::new(
            Code::Internal,
            format!("internal error; it was logged with correlation id {correlation_id}"),
        )
    }

    /// An internal error from a plain description (a broken invariant).
    pub fn bug(what: &str, correlation_id: &str) -> Self {
        tracing::error!(%correlation_id, error = what, "internal error");
        Self::new(
            Code::Internal,
            format!("internal error; it was logged with correlation id {correlation_id}"),
        )
    }

    /// Maps a command's failure: the domain's kind, a conflict, or the event store.
    pub fn from_command<E: DomainError + 'static>(e: CommandError<E>, correlation_id: &str) -> Self {
        match e {
            CommandError::Rejected(e) => {
                let code = match e.kind() {
                    ErrorKind::Validation => Code::Validation,
                    ErrorKind::NotFound => Code::NotFound,
                    ErrorKind::Conflict => Code::Conflict,
                    ErrorKind::Unavailable => Code::Unavailable,
                };
                Self::new(code, e.to_string())
            }
            CommandError::Conflict => Self::new(
                Code::Conflict,
                "someone else changed this resource at the same time and retries did not resolve it; \
                 reload it and try again",
            ),
            CommandError::Store(e) => Self::from_store(e, correlation_id),
            CommandError::Unrecorded(e) => {
                tracing::warn!(%correlation_id, error = %e, "a change was made but not recorded yet");
                Self {
                    applied: Some(Applied::Yes),
                    ..Self::unavailable(
                        "the change was made on the cluster, but the console's NATS failed before it was recorded; \
                         the console records it, with you as its author, as soon as its NATS is back: do not repeat \
                         it, reload in a moment",
                    )
                }
            }
        }
    }

    /// Maps an event-store failure.
    pub fn from_store(e: jsc_eventstore::Error, correlation_id: &str) -> Self {
        match e {
            jsc_eventstore::Error::Timeout => {
                tracing::warn!(%correlation_id, "event store timed out");
                Self {
                    applied: Some(Applied::Unknown),
                    ..Self::unavailable(
                        "the console's NATS did not confirm the change in time; it may or may not be saved — \
                         reload and check before retrying",
                    )
                }
            }
            jsc_eventstore::Error::NoStream(detail) => {
                Self::from_store(jsc_eventstore::Error::Nats(detail.into()), correlation_id)
            }
            jsc_eventstore::Error::Nats(detail) => {
                tracing::warn!(%correlation_id, error = %Chain(detail.as_ref()), "event store unavailable");
                Self {
                    applied: Some(Applied::No),
                    ..Self::unavailable("the console's NATS server is unreachable; nothing was changed, retry later")
                }
            }
            other => Self::internal(&other, correlation_id),
        }
    }
}

/// Displays an error with its sources: `outer: inner: innermost`.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// The input field a validation message names, by the convention every validation follows:
/// `subjects: 'a.>' and 'a.b' overlap; …` names `subjects` (a path such as `config.maxAge` or
/// `headers[2]` too). Clients show the message on that field.
#[cfg_attr(not(feature = "graphql"), allow(dead_code))]
pub fn field_named(message: &str) -> Option<String> {
    let (head, _) = message.split_once(": ")?;
    let mut chars = head.chars();
    (chars.next()?.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c)))
        .then(|| head.to_string())
}

#[cfg(feature = "graphql")]
impl From<Error> for async_graphql::Error {
    /// The one place a use case's error becomes a GraphQL error with `extensions.code`.
    fn from(e: Error) -> Self {
        use async_graphql::ErrorExtensions;
        let field = (e.code == Code::Validation).then(|| field_named(&e.message)).flatten();
        async_graphql::Error::new(e.message).extend_with(|_, ext| {
            ext.set("code", e.code.as_str());
            if let Some(f) = field {
                ext.set("field", f);
            }
            if let Some(s) = e.retry_after {
                ext.set("retryAfter", s);
            }
            if let Some(a) = e.applied {
                ext.set("applied", a.as_str());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::field_named;

    #[test]
    fn a_validation_message_names_its_field_by_its_prefix() {
        assert_eq!(
            field_named("subjects: 'a.>' and 'a.b' overlap").as_deref(),
            Some("subjects")
        );
        assert_eq!(field_named("config.maxAge: too long").as_deref(), Some("config.maxAge"));
        assert_eq!(field_named("headers[2]: empty name").as_deref(), Some("headers[2]"));
        // Prose is not a field: a space, or no `: ` at all.
        assert_eq!(field_named("admin email: not an address"), None);
        assert_eq!(field_named("you cannot disable or enable your own account"), None);
        assert_eq!(field_named("'x': odd"), None);
    }
}
