//! One shape for every mutation: a single `input` argument of type `<Name>Input`, and a
//! `<Name>Payload` answer that holds what changed and, the same on every payload, the
//! client's `clientMutationId`, the request's correlation id and the event stream sequence
//! of the last event the mutation committed. A client can then add a field to an input or
//! a payload without breaking, read the audit trail or `history` from `sequence`, or wait
//! until a subscription has seen it.

use async_graphql::SimpleObject;
use jsc_app::RequestMeta;

/// What every payload answers besides what changed (flattened into each payload).
#[derive(SimpleObject)]
pub struct Outcome {
    /// The `clientMutationId` of the input, unchanged; null when it was left out.
    pub client_mutation_id: Option<String>,
    /// The id of this request: every event it caused carries it (the audit trail's
    /// `correlationId`), as do the console's log lines and the `X-Request-Id` header of the
    /// answer. Send `X-Request-Id` to choose it.
    pub correlation_id: String,
    /// The event stream sequence of the last event this mutation committed, or null when
    /// it changed nothing (say, adding a member twice). Views have caught up to it when the
    /// answer arrives; compare it with `sequence` in `history`, the audit trail and
    /// subscriptions.
    pub sequence: Option<u64>,
}

impl Outcome {
    /// What the commands run under `meta` committed, for the input's `clientMutationId`.
    pub fn of(meta: &RequestMeta, client_mutation_id: Option<String>) -> Self {
        Self {
            client_mutation_id,
            correlation_id: meta.request_id.clone(),
            sequence: meta.receipt.last(),
        }
    }
}

/// Declares a mutation's input object: the fields given, then `clientMutationId`.
macro_rules! input {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(async_graphql::InputObject)]
        pub struct $name {
            $($(#[$fm])* pub $field: $ty,)*
            /// Any string of the client's own (say, to match answers to requests), returned
            /// unchanged in the payload's `clientMutationId`. Optional.
            pub client_mutation_id: Option<String>,
        }
    };
}

/// Declares a mutation's payload: the fields given, then those of [`Outcome`].
macro_rules! payload {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(async_graphql::SimpleObject)]
        pub struct $name {
            $($(#[$fm])* pub $field: $ty,)*
            #[graphql(flatten)]
            pub outcome: $crate::mutation::Outcome,
        }
    };
}

pub(crate) use {input, payload};
