//! The one place where errors become GraphQL errors with `extensions.code`.
//!
//! Domain errors keep their message (it tells the user what to do); infrastructure errors
//! are logged with their chain and returned as a generic message naming the correlation
//! id, never with internals.

use async_graphql::ErrorExtensions;
use cqrs_es::AggregateError;
use jsc_domain::{DomainError, ErrorKind};

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
            Self::Internal => "INTERNAL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// Seconds to wait before retrying (`RATE_LIMITED`); also sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
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

    /// Logs `detail` and returns a message that reveals nothing but the correlation id.
    pub fn internal(detail: &dyn std::fmt::Display, correlation_id: &str) -> Self {
        tracing::error!(%correlation_id, error = %detail, "internal error");
        Self::new(
            Code::Internal,
            format!("internal error; it was logged with correlation id {correlation_id}"),
        )
    }

    /// Maps a command's failure.
    pub fn from_aggregate<E: DomainError>(e: AggregateError<E>, correlation_id: &str) -> Self {
        match e {
            AggregateError::UserError(e) => {
                let code = match e.kind() {
                    ErrorKind::Validation => Code::Validation,
                    ErrorKind::NotFound => Code::NotFound,
                    ErrorKind::Conflict => Code::Conflict,
                    ErrorKind::Unavailable => Code::Unavailable,
                };
                Self::new(code, e.to_string())
            }
            AggregateError::AggregateConflict => Self::new(
                Code::Conflict,
                "someone else changed this resource at the same time and retries did not resolve it; \
                 reload it and try again",
            ),
            AggregateError::DatabaseConnectionError(inner) => match inner.downcast_ref::<jsc_eventstore::Error>() {
                Some(jsc_eventstore::Error::Timeout) => {
                    tracing::warn!(%correlation_id, "event store timed out");
                    Self::unavailable(
                        "the console's NATS did not confirm the change in time; it may or may not be saved — \
                             reload and check before retrying",
                    )
                }
                Some(jsc_eventstore::Error::Nats(detail)) => {
                    tracing::warn!(%correlation_id, error = %detail, "event store unavailable");
                    Self::unavailable("the console's NATS server is unreachable; nothing was changed, retry later")
                }
                _ => Self::internal(&inner, correlation_id),
            },
            AggregateError::DeserializationError(inner) | AggregateError::UnexpectedError(inner) => {
                Self::internal(&inner, correlation_id)
            }
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        async_graphql::Error::new(e.message).extend_with(|_, ext| {
            ext.set("code", e.code.as_str());
            if let Some(s) = e.retry_after {
                ext.set("retryAfter", s);
            }
        })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
